"""setup.py's CUDA toolkit detection (build_support/cuda_toolkit.py) on fake toolkits in temporary
folders: wrapper scripts and links, missing pieces, version mismatches, FORCE_CUDA."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO

_spec = importlib.util.spec_from_file_location("cuda_toolkit", REPO / "build_support" / "cuda_toolkit.py")
cuda_toolkit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cuda_toolkit)

ALL_HEADERS = cuda_toolkit.REQUIRED_HEADERS


def make_toolkit(root: Path, release="12.4", headers=("cuda_runtime.h",), cudart=True, lib="lib64") -> Path:
    """A fake toolkit: an nvcc that answers --version and --dryrun as the real one does."""
    home = root / f"cuda-{release}"
    (home / "bin").mkdir(parents=True)
    (home / "include").mkdir()
    (home / lib).mkdir()
    for h in headers:
        (home / "include" / h).write_text("")
    if cudart:
        (home / lib / "libcudart.so").write_text("")
    nvcc = home / "bin" / "nvcc"
    nvcc.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case "$a" in\n'
        f'  --version) echo "Cuda compilation tools, release {release}, V{release}.99"; exit 0;;\n'
        f'  --dryrun) echo "#\\$ _HERE_={home}/bin"; echo "#\\$ TOP={home}/bin/.."; exit 0;;\n'
        "esac; done\nexit 1\n"
    )
    nvcc.chmod(0o755)
    return home


def make_torch(root: Path, headers=ALL_HEADERS, cuda_major=12) -> Path:
    """A torch folder in a site directory whose nvidia/cu<major>/include holds `headers`."""
    site = root / "site-packages"
    (site / "torch").mkdir(parents=True)
    include = site / "nvidia" / f"cu{cuda_major}" / "include"
    include.mkdir(parents=True)
    for h in headers:
        (include / h).write_text("")
    return site / "torch"


def path_with(*dirs: Path) -> dict:
    return {"PATH": os.pathsep.join(str(d) for d in dirs)}


@pytest.fixture(autouse=True)
def no_default_toolkit(monkeypatch, tmp_path):
    monkeypatch.setattr(cuda_toolkit, "DEFAULT_HOME", str(tmp_path / "no-default-cuda"))


def test_wrapper_script_on_path(tmp_path):
    home = make_toolkit(tmp_path / "opt")
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    (wrappers / "nvcc").write_text(f'#!/bin/sh\nexec {home}/bin/nvcc "$@"\n')
    (wrappers / "nvcc").chmod(0o755)
    torch_dir = make_torch(tmp_path)
    decision = cuda_toolkit.choose(path_with(wrappers), "12.1", str(torch_dir))
    assert decision.toolkit is not None, decision.reason
    assert decision.toolkit.home == str(home)  # not the wrapper's folder
    assert decision.toolkit.version == (12, 4)
    # cuda_runtime.h from the toolkit, the rest beside torch, searched after the toolkit's own headers.
    wheel = str(torch_dir.parent / "nvidia" / "cu12" / "include")
    assert decision.toolkit.include_dirs == [str(home / "include"), wheel]
    assert "CUDA 12.4 at" in decision.line


def test_symlinked_nvcc_and_home(tmp_path):
    home = make_toolkit(tmp_path / "opt", headers=ALL_HEADERS)
    (tmp_path / "cuda").symlink_to(home)
    links = tmp_path / "bin"
    links.mkdir()
    (links / "nvcc").symlink_to(tmp_path / "cuda" / "bin" / "nvcc")
    decision = cuda_toolkit.choose(path_with(links), "12.4", str(make_torch(tmp_path, headers=())))
    assert decision.toolkit is not None and decision.toolkit.home == str(home)
    assert decision.toolkit.include_dirs == []  # every header is in the toolkit


def test_cuda_home_first(tmp_path):
    on_path = make_toolkit(tmp_path / "a", release="11.8")
    chosen = make_toolkit(tmp_path / "b", release="12.6")
    env = {**path_with(on_path / "bin"), "CUDA_HOME": str(chosen)}
    decision = cuda_toolkit.choose(env, "12.4", str(make_torch(tmp_path)))
    assert decision.toolkit.home == str(chosen)


def test_cuda_home_without_nvcc(tmp_path):
    env = {**path_with(make_toolkit(tmp_path / "a") / "bin"), "CUDA_HOME": str(tmp_path / "empty")}
    decision = cuda_toolkit.choose(env, "12.4", str(make_torch(tmp_path)))
    assert decision.toolkit is None and "CUDA_HOME" in decision.reason and "no bin/nvcc" in decision.reason


def test_no_nvcc(tmp_path):
    decision = cuda_toolkit.choose(path_with(tmp_path), "12.4", str(make_torch(tmp_path)))
    assert decision.toolkit is None and "no nvcc" in decision.reason
    assert decision.line.startswith("s2cnet: building the CPU kernels only: no nvcc")


def test_default_home(tmp_path, monkeypatch):
    home = make_toolkit(tmp_path / "opt")
    monkeypatch.setattr(cuda_toolkit, "DEFAULT_HOME", str(home))
    decision = cuda_toolkit.choose(path_with(tmp_path), "12.4", str(make_torch(tmp_path)))
    assert decision.toolkit is not None and decision.toolkit.home == str(home)


def test_nvcc_that_does_not_run(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvcc").write_text("#!/bin/sh\necho 'nvcc: broken install' >&2\nexit 3\n")
    (bin_dir / "nvcc").chmod(0o755)
    decision = cuda_toolkit.choose(path_with(bin_dir), "12.4", str(make_torch(tmp_path)))
    assert decision.toolkit is None and "broken install" in decision.reason


@pytest.mark.parametrize("lib", ["lib64", "lib"])
def test_cudart_in_lib_or_lib64(tmp_path, lib):
    home = make_toolkit(tmp_path / "opt", lib=lib)
    decision = cuda_toolkit.choose(path_with(home / "bin"), "12.4", str(make_torch(tmp_path)))
    assert decision.toolkit is not None, decision.reason


def test_missing_cudart(tmp_path):
    home = make_toolkit(tmp_path / "opt", cudart=False)
    decision = cuda_toolkit.choose(path_with(home / "bin"), "12.4", str(make_torch(tmp_path)))
    assert decision.toolkit is None and "no libcudart.so" in decision.reason


def test_missing_header(tmp_path):
    home = make_toolkit(tmp_path / "opt")
    torch_dir = make_torch(tmp_path, headers=[h for h in ALL_HEADERS if h != "cusparse.h"])
    decision = cuda_toolkit.choose(path_with(home / "bin"), "12.4", str(torch_dir))
    assert decision.toolkit is None and "cusparse.h" in decision.reason


def test_headers_beside_torch_not_elsewhere(tmp_path):
    """Headers in some other site directory (say the building interpreter's) do not count."""
    home = make_toolkit(tmp_path / "opt")
    make_torch(tmp_path / "other")
    torch_dir = make_torch(tmp_path / "torch-here", headers=())
    decision = cuda_toolkit.choose(path_with(home / "bin"), "12.4", str(torch_dir))
    assert decision.toolkit is None and "cublas_v2.h" in decision.reason


def test_older_wheel_layout(tmp_path):
    """torch wheels before CUDA 13 keep each library's headers in nvidia/<library>/include."""
    home = make_toolkit(tmp_path / "opt")
    torch_dir = make_torch(tmp_path, headers=())
    for lib, header in [("cublas", "cublas_v2.h"), ("cublas", "cublasLt.h"), ("cusparse", "cusparse.h"),
                        ("cusolver", "cusolverDn.h")]:
        (torch_dir.parent / "nvidia" / lib / "include").mkdir(parents=True, exist_ok=True)
        (torch_dir.parent / "nvidia" / lib / "include" / header).write_text("")
    decision = cuda_toolkit.choose(path_with(home / "bin"), "12.4", str(torch_dir))
    assert decision.toolkit is not None, decision.reason
    assert len(decision.toolkit.include_dirs) == 4 and decision.toolkit.include_dirs[0] == str(home / "include")


def test_toolkit_headers_before_a_newer_wheels_headers(tmp_path):
    """An isolated build gets the newest torch (CUDA 13.2 wheels, whose nvidia/cu13/include holds the runtime's
    13.2 headers too) while the toolkit is 13.0: the toolkit's own headers must be searched first, the wheel's
    only for what the toolkit lacks, else nvcc 13.0 stops at "CUDA compiler and CUDA toolkit headers are
    incompatible"."""
    home = make_toolkit(tmp_path / "opt", release="13.0")
    torch_dir = make_torch(tmp_path, cuda_major=13)  # cuda_runtime.h included
    decision = cuda_toolkit.choose(path_with(home / "bin"), "13.2", str(torch_dir))
    assert decision.toolkit is not None, decision.reason
    wheel = str(torch_dir.parent / "nvidia" / "cu13" / "include")
    assert decision.toolkit.include_dirs == [str(home / "include"), wheel]


def test_major_version_mismatch(tmp_path):
    home = make_toolkit(tmp_path / "opt", release="11.8")
    decision = cuda_toolkit.choose(path_with(home / "bin"), "12.4", str(make_torch(tmp_path)))
    assert decision.toolkit is None
    assert "CUDA 11.8 toolkit" in decision.reason and "torch's CUDA 12.4" in decision.reason


def test_minor_version_difference_is_fine(tmp_path):
    home = make_toolkit(tmp_path / "opt", release="12.8")
    assert cuda_toolkit.choose(path_with(home / "bin"), "12.1", str(make_torch(tmp_path))).toolkit is not None


def test_cpu_only_torch(tmp_path):
    home = make_toolkit(tmp_path / "opt")
    decision = cuda_toolkit.choose(path_with(home / "bin"), None, str(make_torch(tmp_path)))
    assert decision.toolkit is None and "CPU-only" in decision.reason


def test_force_cuda(tmp_path):
    home = make_toolkit(tmp_path / "opt", cudart=False)
    torch_dir = str(make_torch(tmp_path))
    with pytest.raises(cuda_toolkit.CudaBuildError, match="FORCE_CUDA=1 but no usable CUDA toolkit: no libcudart"):
        cuda_toolkit.choose({**path_with(home / "bin"), "FORCE_CUDA": "1"}, "12.4", torch_dir)
    good = make_toolkit(tmp_path / "good")
    assert cuda_toolkit.choose({**path_with(good / "bin"), "FORCE_CUDA": "1"}, "12.4", torch_dir).toolkit
    off = cuda_toolkit.choose({**path_with(good / "bin"), "FORCE_CUDA": "0"}, "12.4", torch_dir)
    assert off.toolkit is None and off.reason == "FORCE_CUDA=0"


def test_setup_py_force_cuda_error_before_compiling(tmp_path):
    env = {**os.environ, "FORCE_CUDA": "1", "CUDA_HOME": str(tmp_path / "none")}
    done = subprocess.run([sys.executable, "setup.py", "--name"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode != 0
    assert "error: FORCE_CUDA=1 but no usable CUDA toolkit: CUDA_HOME=" in done.stderr


@pytest.mark.skipif(not os.path.exists("/usr/local/cuda-13.0/bin/nvcc") or torch.version.cuda is None,
                    reason="this project's machine: the wrapper /usr/local/bin/nvcc and CUDA 13.0")
def test_this_machine(monkeypatch):
    """From a shell without CUDA_HOME, /usr/local/bin/nvcc (a wrapper script) leads to /usr/local/cuda-13.0."""
    monkeypatch.setattr(cuda_toolkit, "DEFAULT_HOME", "/usr/local/cuda")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    decision = cuda_toolkit.choose(env, torch.version.cuda, os.path.dirname(torch.__file__))
    assert decision.toolkit is not None, decision.reason
    assert decision.toolkit.home == "/usr/local/cuda-13.0"
    assert any(os.path.exists(os.path.join(d, "cusparse.h")) for d in decision.toolkit.include_dirs)


def test_find_cxx(tmp_path):
    assert cuda_toolkit.find_cxx(path_with(tmp_path)) is None
    cxx = tmp_path / "c++"
    cxx.write_text("#!/bin/sh\n")
    cxx.chmod(0o755)
    assert cuda_toolkit.find_cxx(path_with(tmp_path)) == str(cxx)
    assert cuda_toolkit.find_cxx({"CXX": str(tmp_path / "none"), **path_with(tmp_path)}) is None


def copy_checkout(dest: Path) -> Path:
    """The checkout's files as git sees them (no build outputs), copied to `dest`."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes((REPO / name).read_bytes())
    return dest


def test_no_compiler_builds_a_wheel_without_c(tmp_path):
    """With no C++ compiler, a wheel without s2c_ops._C; it carries the weights and demo photos."""
    import zipfile

    src = copy_checkout(tmp_path / "src")
    env = {**os.environ, "CXX": str(tmp_path / "no-compiler")}
    env.pop("FORCE_CUDA", None)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-v", "-w",
                           str(tmp_path / "dist"), str(src)], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "s2cnet: no C++ compiler" in done.stdout + done.stderr
    (wheel,) = (tmp_path / "dist").glob("s2cnet-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not any("_C" in n and n.endswith(".so") for n in names)
    assert "s2c_ops/weights/geometry_prior.safetensors" in names and "s2c_ops/demo_photos/coffee.png" in names


def fake_build(src: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`setup.py *args` in `src` with a C++ "compiler" that only creates what it is asked to (-o FILE): the
    build commands run in seconds."""
    cxx = tmp_path / "fake-bin" / "c++"
    cxx.parent.mkdir(exist_ok=True)
    cxx.write_text('#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && : > "$2"; shift; done\nexit 0\n')
    cxx.chmod(0o755)
    env = {**os.environ, "CXX": str(cxx), "LDSHARED": f"{cxx} -shared", "FORCE_CUDA": "0"}
    return subprocess.run([sys.executable, "setup.py", *args], cwd=src, env=env, capture_output=True, text=True,
                          timeout=300)


def test_build_record_beside_the_built_extension(tmp_path):
    """setup.py writes _build_info.json only where it builds _C: not into the source tree when it is merely
    imported (metadata, --version), beside _C in the build output, and in the source tree with an in-place _C."""
    src = copy_checkout(tmp_path / "src")
    record = src / "s2c_ops" / "_build_info.json"
    assert fake_build(src, tmp_path, "--version").returncode == 0 and not record.exists()
    done = fake_build(src, tmp_path, "build_ext", "--build-lib", str(tmp_path / "lib"), "--build-temp",
                      str(tmp_path / "temp"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert not record.exists()
    (built,) = (tmp_path / "lib" / "s2c_ops").glob("_C*.so")
    info = json.loads(built.with_name("_build_info.json").read_text())
    assert info == {"torch": torch.__version__, "cuda": None}
    done = fake_build(src, tmp_path, "build_ext", "--inplace", "--build-temp", str(tmp_path / "temp"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert list((src / "s2c_ops").glob("_C*.so")) and json.loads(record.read_text()) == info
