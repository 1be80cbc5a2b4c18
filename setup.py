"""Builds s2c_ops._C: the s2c operator library (CPU kernels, and CUDA kernels when a toolkit is there).

CUDA kernels are built when a CUDA toolkit is found (CUDA_HOME, nvcc on the PATH or /usr/local/cuda)
or FORCE_CUDA=1; FORCE_CUDA=0 builds the CPU kernels only. Without a visible GPU the CUDA code is
compiled for TORCH_CUDA_ARCH_LIST, by default Ampere and Hopper (8.0;9.0+PTX).
"""
import glob
import os
import sysconfig

from setuptools import setup
from torch.utils import cpp_extension

CSRC = "csrc"


def _want_cuda() -> bool:
    force = os.environ.get("FORCE_CUDA")
    if force is not None:
        return force == "1"
    return cpp_extension.CUDA_HOME is not None


def _cuda_include_dirs() -> list[str]:
    # CUDA wheels of torch keep headers that ATen/cuda includes (cusparse.h, ...) in nvidia/cu*/include.
    site = sysconfig.get_paths()["purelib"]
    return sorted(glob.glob(os.path.join(site, "nvidia", "cu*", "include")))


def _extension():
    sources = sorted(
        glob.glob(os.path.join(CSRC, "*.cpp"))
        + glob.glob(os.path.join(CSRC, "cpu", "*.cpp"))
        + glob.glob(os.path.join(CSRC, "autocast", "*.cpp"))
    )
    cxx_flags = ["-O3"]
    if not _want_cuda():
        return cpp_extension.CppExtension("s2c_ops._C", sources, extra_compile_args={"cxx": cxx_flags})
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0+PTX")
    sources += sorted(glob.glob(os.path.join(CSRC, "cuda", "*.cu")))
    return cpp_extension.CUDAExtension(
        "s2c_ops._C",
        sources,
        include_dirs=_cuda_include_dirs(),
        define_macros=[("WITH_CUDA", None)],
        extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "--expt-relaxed-constexpr"]},
    )


setup(
    ext_modules=[_extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
