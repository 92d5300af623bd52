"""Threads, build facts and devices."""

from __future__ import annotations

import os
import platform
from typing import Any

from . import _core


def set_num_threads(n: int) -> None:
    """Threads kernkit's CPU kernels use; ``n <= 0`` restores OpenMP's default.

    threadpoolctl limits apply as well (kernkit uses OpenMP's thread pool), in the thread that set
    them: OpenMP keeps its limit per calling thread, while this setting holds for every thread.
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


def _cpu_model() -> str:
    """The CPU's model name from Linux's /proc/cpuinfo, with x86 family and model numbers (a
    virtual machine may name only "Intel(R) Xeon(R) Processor"); else what platform knows."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if not sep:
                    break  # the end of the first processor's block
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name")
    if not name:
        return platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def info() -> dict[str, Any]:
    """Version, compiler, CPU model, SIMD level, threads, CUDA build and visible GPUs."""
    import numpy as np

    return {
        "version": _core.version(),
        "cpu": _cpu_model(),
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
