"""Import decord without breaking torch's CPU BLAS.

decord2 (the maintained decord fork) dlopens, at import, every shared object under site-packages/nvidia/*/lib
with RTLD_GLOBAL, to find a pip-installed CUDA runtime. torch's CUDA wheels bring those packages, libnvblas
among them, and libnvblas exports the BLAS symbols (sgemm_, ...). When torch is loaded AFTER that, torch's CPU
matrix products bind to libnvblas, which without its config file (NVBLAS_CPU_BLAS_LIB) jumps to address 0:
the first Linear forward segfaults ("[NVBLAS] CPU Blas library need to be provided"). Loading torch first
keeps its own BLAS bound. Every decord import in rova goes through `decord_module()`.

It also silences libav's log, which decord leaves at ERROR: a corrupt clip printed hundreds of "[h264 @ ...]"
lines on stderr. Decode failures still raise, and rova reports each broken clip once, with its reason.
"""

from __future__ import annotations


def decord_module():
    import torch  # noqa: F401  (must be loaded before decord: see above)
    import decord

    decord.logging.set_level(decord.logging.QUIET)
    return decord
