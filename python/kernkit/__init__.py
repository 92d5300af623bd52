"""kernkit: fast, exact kernels from recent kernel-method papers.

Families: log-Bessel special functions (``log_iv``, ``log_kv``, ...) and von Mises-Fisher
distributions on top (``kernkit.vmf``); group-rational (KAT / PAU) activations (``rational``,
``rational_backward``, ``rational_init``; the PyTorch module in ``kernkit.torch``); power-exponent
weight quantization (``kernkit.quant``); binary-hash linear attention (``KernelHash``,
``hashed_attention``, ``kernkit.hashattn``; EcoFormer). Every function takes numpy arrays on the CPU and
CuPy / PyTorch arrays on a CUDA GPU.
"""

from __future__ import annotations

from . import _core, hashattn, quant, vmf
from ._rational import rational, rational_backward, rational_init, variance_gain
from .hashattn import KernelHash, hashed_attention
from ._runtime import cmake_dir, cuda_available, get_num_threads, info, set_num_threads
from .special import (
    bessel_iv_ratio,
    dlog_iv,
    dlog_kv,
    log_iv,
    log_ive,
    log_kv,
    log_kve,
)

__version__: str = _core.version()

__all__ = [
    "KernelHash",
    "bessel_iv_ratio",
    "cmake_dir",
    "cuda_available",
    "dlog_iv",
    "dlog_kv",
    "get_num_threads",
    "hashattn",
    "hashed_attention",
    "info",
    "log_iv",
    "log_ive",
    "log_kv",
    "log_kve",
    "quant",
    "rational",
    "rational_backward",
    "rational_init",
    "set_num_threads",
    "variance_gain",
    "vmf",
]
