"""Timing helpers shared by the GPU benchmarks (run as scripts from bench/gpu/)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch


def cuda_time(f: Callable[[], Any], repeat: int = 20) -> float:
    """Median seconds of f() on the current stream, by CUDA events, after one warm-up call."""
    f()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(repeat):
        start.record()
        f()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return float(np.median(times))


def copy_bandwidth(nbytes: int = 1 << 28) -> float:
    """Bytes/s of a large device-to-device copy (read + write): the card's practical limit."""
    big = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    return 2 * big.numel() / cuda_time(lambda: big.clone())
