"""Builds s2c_ops._C: the s2c operator library (CPU kernels, and CUDA kernels with a usable toolkit).

The CUDA kernels are built when build_support/cuda_toolkit.py finds a CUDA toolkit that is complete
(nvcc, cudart, the headers torch's CUDA headers include) and matches torch's CUDA version; otherwise
the CPU kernels are built and one line says why. FORCE_CUDA=1 makes a missing toolkit an error,
FORCE_CUDA=0 builds the CPU kernels only. Without a visible GPU the CUDA code is compiled for
TORCH_CUDA_ARCH_LIST, by default Ampere and Hopper (8.0;9.0+PTX). Without a C++ compiler nothing is
compiled: the package installs, and s2c_ops registers its pure-PyTorch operators instead.

The torch version built against is written to _build_info.json beside the built _C (in the build
output; in the source tree only with _C itself, for in-place and editable builds), never at import of
this file: s2c_ops compares it with the torch it imports before it loads _C, and uses its pure-PyTorch
operators when they differ. So building one checkout against two torches leaves each install as built.
"""
import glob
import json
import os
import sys

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # build_support, also under PEP 517 builds that leave the source folder off sys.path

try:
    import torch
except ImportError:
    sys.exit("error: s2cnet builds against torch: install torch first, or let pip build in isolation")

from build_support.cuda_toolkit import CudaBuildError, choose, find_cxx  # noqa: E402

CSRC = "csrc"
BUILD_INFO = "_build_info.json"

CXX = find_cxx(os.environ)
if CXX is None and os.environ.get("FORCE_CUDA") == "1":
    sys.exit("error: FORCE_CUDA=1 but there is no C++ compiler ($CXX, or c++ on the PATH)")
try:
    DECISION = choose(os.environ, torch.version.cuda, os.path.dirname(torch.__file__))
except CudaBuildError as e:
    sys.exit(f"error: {e}")
if CXX is None:
    print("s2cnet: no C++ compiler ($CXX, or c++ on the PATH): installing without s2c_ops._C; "
          "the pure-PyTorch operators will stand in", flush=True)
else:
    print(DECISION.line, flush=True)
if DECISION.toolkit is not None and CXX is not None:
    # torch guesses CUDA_HOME from the first nvcc on the PATH, which may be a wrapper script.
    os.environ["CUDA_HOME"] = DECISION.toolkit.home

from torch.utils import cpp_extension  # noqa: E402  (reads CUDA_HOME on import)


def _extension():
    sources = sorted(
        glob.glob(os.path.join(CSRC, "*.cpp"))
        + glob.glob(os.path.join(CSRC, "cpu", "*.cpp"))
        + glob.glob(os.path.join(CSRC, "autocast", "*.cpp"))
    )
    cxx_flags = ["-O3"]
    if DECISION.toolkit is None:
        return cpp_extension.CppExtension("s2c_ops._C", sources, extra_compile_args={"cxx": cxx_flags})
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0+PTX")
    sources += sorted(glob.glob(os.path.join(CSRC, "cuda", "*.cu")))
    return cpp_extension.CUDAExtension(
        "s2c_ops._C",
        sources,
        include_dirs=DECISION.toolkit.include_dirs,
        define_macros=[("WITH_CUDA", None)],
        extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "--expt-relaxed-constexpr"]},
    )


class BuildExt(cpp_extension.BuildExtension.with_options(use_ninja=True)):
    """Writes the build record beside each extension it builds (where the wheel or the in-place copy of
    the extension goes)."""

    def run(self) -> None:
        super().run()
        info = {"torch": torch.__version__, "cuda": None if DECISION.toolkit is None else torch.version.cuda}
        for ext in self.extensions:
            path = os.path.join(os.path.dirname(self.get_ext_fullpath(ext.name)), BUILD_INFO)
            with open(path, "w") as f:
                json.dump(info, f)
                f.write("\n")


setup(ext_modules=[] if CXX is None else [_extension()], cmdclass={"build_ext": BuildExt})
