"""Threads, build facts and devices."""

from __future__ import annotations

import os
from typing import Any

from . import _core


def set_num_threads(n: int) -> None:
    """Threads kernkit's CPU kernels use; ``n <= 0`` restores OpenMP's default.

    threadpoolctl limits apply as well (kernkit uses OpenMP's thread pool).
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"argument 'n' must be an int, got {type(n).__name__}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """Threads kernkit's CPU kernels will use for a large call."""
    return int(_core.get_num_threads())


def cuda_available() -> bool:
    """True when this build has CUDA kernels and the driver sees at least one GPU."""
    return bool(_core.cuda_built()) and _core.cuda_device_count() > 0


def cmake_dir() -> str:
    """The folder holding kernkitConfig.cmake, for ``find_package(kernkit CONFIG)``."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", "cmake", "kernkit")


def info() -> dict[str, Any]:
    """Version, compiler, SIMD level, threads, CUDA build and visible GPUs."""
    import numpy as np

    return {
        "version": _core.version(),
        "compiler": _core.compiler(),
        "simd": _core.simd_level(),
        "simd_built": _core.simd_built(),
        "openmp": bool(_core.openmp_enabled()),
        "threads": get_num_threads(),
        "cuda_built": bool(_core.cuda_built()),
        "cuda_devices": int(_core.cuda_device_count()),
        "numpy": np.__version__,
        "cmake_dir": cmake_dir(),
    }
