"""kernkit: fast, exact kernels from recent kernel-method papers.

Families: log-Bessel special functions (``log_iv``, ``log_kv``, ...) and von Mises-Fisher
distributions on top (``kernkit.vmf``); group-rational (KAT / PAU) activations (``rational``,
``rational_backward``, ``rational_init``; the PyTorch module in ``kernkit.torch``); power-exponent
weight quantization (``kernkit.quant``); a real FFT (``kernkit.fft``) and batched Toeplitz
products by FFT (``toeplitz_matmul``, ``ToeplitzOperator``); kernelized attention with relative
positional encoding (``rpe_attention``, Luo et al. 2021); binary-hash linear attention
(``KernelHash``, ``hashed_attention``, ``kernkit.hashattn``; EcoFormer). Every function takes numpy
arrays on the CPU and CuPy / PyTorch arrays on a CUDA GPU.
"""

from __future__ import annotations

from . import _core, fft, hashattn, quant, rpe, vmf
from .hashattn import KernelHash, hashed_attention
from ._rational import rational, rational_backward, rational_init, variance_gain
from .rpe import (
    random_projection,
    rpe_attention,
    rpe_attention_backward,
    rpe_attention_decay,
    rpe_attention_decay_backward,
    rpe_features,
)
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
from .toeplitz import ToeplitzOperator, toeplitz_matmul

__version__: str = _core.version()

__all__ = [
    "KernelHash",
    "ToeplitzOperator",
    "bessel_iv_ratio",
    "cmake_dir",
    "cuda_available",
    "dlog_iv",
    "fft",
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
    "random_projection",
    "rational",
    "rational_backward",
    "rational_init",
    "rpe",
    "rpe_attention",
    "rpe_attention_backward",
    "rpe_attention_decay",
    "rpe_attention_decay_backward",
    "rpe_features",
    "set_num_threads",
    "toeplitz_matmul",
    "variance_gain",
    "vmf",
]
