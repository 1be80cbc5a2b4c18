"""What setup.py compiles: the CUDA kernels only with a CUDA toolkit that is complete and consistent
with the torch it builds against; nothing without a C++ compiler.

Everything here takes its inputs as arguments (environment, torch's CUDA version and folder), so the
tests run it on fake toolkits in temporary folders. setup.py calls :func:`choose`.
"""
import glob
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Tuple

# Headers that torch's ATen/cuda headers include. CUDA wheels of torch ship all but the runtime's in
# <site-packages>/nvidia/cu<major>/include (older wheels: nvidia/<library>/include), and a minimal
# toolkit (nvcc + cudart) has only cuda_runtime.h, so each may come from either place.
REQUIRED_HEADERS = ("cuda_runtime.h", "cublas_v2.h", "cublasLt.h", "cusparse.h", "cusolverDn.h")
DEFAULT_HOME = "/usr/local/cuda"


class CudaBuildError(RuntimeError):
    """FORCE_CUDA=1 without a usable CUDA toolkit."""


@dataclass(frozen=True)
class Toolkit:
    home: str  # the real installation folder (links and wrapper scripts resolved)
    nvcc: str
    version: Tuple[int, int]
    # -I folders in search order: empty when <home>/include has every header; else <home>/include first,
    # then the torch wheels' folders for the headers it lacks (see header_dirs).
    include_dirs: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class Decision:
    toolkit: Optional[Toolkit]  # None: CPU kernels only
    reason: str  # one line for the build log

    @property
    def line(self) -> str:
        if self.toolkit is None:
            return f"s2cnet: building the CPU kernels only: {self.reason}"
        return f"s2cnet: building the CPU and CUDA kernels: {self.reason}"


class _Unusable(Exception):
    """Why a toolkit cannot be used (one line)."""


def _run(cmd: List[str], cwd: Optional[str] = None) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise _Unusable(f"{cmd[0]} does not run ({e})") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise _Unusable(f"`{' '.join(cmd)}` failed: {tail[0]}")
    return done.stdout + done.stderr


def find_nvcc(environ: Mapping[str, str]) -> Tuple[str, str]:
    """The nvcc to use and where it came from: $CUDA_HOME (or $CUDA_PATH), else the PATH, else
    /usr/local/cuda."""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if environ.get(var):
            nvcc = os.path.join(environ[var], "bin", "nvcc")
            if not os.access(nvcc, os.X_OK):
                raise _Unusable(f"{var}={environ[var]} has no bin/nvcc")
            return nvcc, f"${var}"
    on_path = shutil.which("nvcc", path=environ.get("PATH", os.defpath))
    if on_path:
        return on_path, "the PATH"
    nvcc = os.path.join(DEFAULT_HOME, "bin", "nvcc")
    if os.access(nvcc, os.X_OK):
        return nvcc, DEFAULT_HOME
    raise _Unusable("no nvcc ($CUDA_HOME unset, none on the PATH, none in /usr/local/cuda)")


def nvcc_version(nvcc: str) -> Tuple[int, int]:
    out = _run([nvcc, "--version"])
    m = re.search(r"release (\d+)\.(\d+)", out)
    if not m:
        raise _Unusable(f"cannot read a CUDA release from `{nvcc} --version`")
    return int(m.group(1)), int(m.group(2))


def nvcc_home(nvcc: str) -> str:
    """The toolkit folder of the real nvcc behind `nvcc`, through links and wrapper scripts: nvcc's
    dry run prints the folder it runs from (``#$ TOP=...``)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = _run([nvcc, "--dryrun", "-c", "s2c_probe.cu", "-o", "s2c_probe.o"], cwd=tmp)
    top = re.search(r"^#\$ TOP=(.+)$", out, re.MULTILINE)
    if top:
        return os.path.realpath(top.group(1).strip())
    return os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))


def cudart_dir(home: str) -> str:
    # torch's cpp_extension links -lcudart from <home>/lib64, or <home>/lib when lib64 is missing.
    lib = os.path.join(home, "lib64") if os.path.isdir(os.path.join(home, "lib64")) else os.path.join(home, "lib")
    if not glob.glob(os.path.join(lib, "libcudart.so*")):
        raise _Unusable(f"no libcudart.so in {lib}")
    return lib


def header_dirs(home: str, torch_dir: str, cuda_major: int) -> List[str]:
    """The -I folders for the headers of REQUIRED_HEADERS the toolkit lacks, taken beside the torch being
    built against, after <home>/include. The wheels' folders also hold the CUDA runtime's headers of
    torch's CUDA minor version (say 13.2); searched before the toolkit's own they would meet nvcc 13.0's
    CCCL headers, which stop with "CUDA compiler and CUDA toolkit headers are incompatible". torch's
    cpp_extension puts the extension's include_dirs ahead of <home>/include, so it is named first here."""
    site = os.path.dirname(os.path.realpath(torch_dir))
    candidates = [os.path.join(site, "nvidia", f"cu{cuda_major}", "include")]
    candidates += sorted(glob.glob(os.path.join(site, "nvidia", "*", "include")))
    extra: List[str] = []
    for header in REQUIRED_HEADERS:
        if os.path.exists(os.path.join(home, "include", header)):
            continue
        found = next((d for d in candidates if os.path.exists(os.path.join(d, header))), None)
        if found is None:
            raise _Unusable(f"{header} is neither in {home}/include nor in {site}/nvidia/*/include")
        if found not in extra:
            extra.append(found)
    return [os.path.join(home, "include"), *extra] if extra else []


def find_toolkit(environ: Mapping[str, str], torch_cuda: Optional[str], torch_dir: str) -> Toolkit:
    """The usable toolkit, or _Unusable saying why there is none."""
    if not torch_cuda:
        raise _Unusable("this torch is a CPU-only build (torch.version.cuda is None)")
    torch_major = int(torch_cuda.split(".")[0])
    nvcc, source = find_nvcc(environ)
    version = nvcc_version(nvcc)
    home = nvcc_home(nvcc)
    if version[0] != torch_major:
        raise _Unusable(
            f"the CUDA {version[0]}.{version[1]} toolkit at {home} (nvcc from {source}) does not match "
            f"torch's CUDA {torch_cuda} (the major versions must agree)"
        )
    cudart_dir(home)
    return Toolkit(home, nvcc, version, header_dirs(home, torch_dir, torch_major))


def find_cxx(environ: Mapping[str, str]) -> Optional[str]:
    """The C++ compiler torch's cpp_extension would call ($CXX, else c++), if it is there."""
    return shutil.which(environ.get("CXX") or "c++", path=environ.get("PATH", os.defpath))


def choose(environ: Mapping[str, str], torch_cuda: Optional[str], torch_dir: str) -> Decision:
    """Applies FORCE_CUDA: "0" builds the CPU kernels only; "1" needs a usable toolkit (else
    CudaBuildError, before anything compiles); unset uses one when there is one."""
    force = environ.get("FORCE_CUDA")
    if force == "0":
        return Decision(None, "FORCE_CUDA=0")
    try:
        toolkit = find_toolkit(environ, torch_cuda, torch_dir)
    except _Unusable as e:
        if force == "1":
            raise CudaBuildError(f"FORCE_CUDA=1 but no usable CUDA toolkit: {e}") from None
        return Decision(None, str(e))
    return Decision(toolkit, f"CUDA {toolkit.version[0]}.{toolkit.version[1]} at {toolkit.home}")
