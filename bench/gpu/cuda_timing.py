"""Timing helpers shared by the GPU benchmarks (run as scripts from bench/gpu/)."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import torch


def cuda_time(f: Callable[[], Any], repeat: int = 20) -> float:
    """Median seconds of f() on the current stream, by CUDA events, after one warm-up call.
    Includes any host time between the events (Python and launch overhead of short calls)."""
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


def graph_time(f: Callable[[], Any], repeat: int = 50) -> float | None:
    """Device seconds per call of f(): `repeat` calls captured in one CUDA graph and replayed,
    so host overhead drops out (what a model run under CUDA graphs or a fused caller pays).
    None when f cannot be captured."""
    try:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                f()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for _ in range(repeat):
                f()
        g.replay()
        torch.cuda.synchronize()
        return cuda_time(g.replay, repeat=5) / repeat
    except Exception as e:  # noqa: BLE001 - report, time by events instead
        print(f"graph capture failed: {type(e).__name__}: {e}")
        torch.cuda.synchronize()
        return None


def host_profile(f: Callable[[], Any], steps: int = 5, top: int = 12) -> list[dict]:
    """Where the host time of f() goes: torch.profiler over `steps` calls enqueued back to back
    (CPU and, where present, CUDA activity), the `top` operations and CUDA runtime calls by self
    CPU time, per call. A path whose host time is close to its device time shows the call that
    waits for the device here (cudaStreamSynchronize, a blocking cudaMemcpy, ...)."""
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available()
    f()
    if cuda:
        torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        for _ in range(steps):
            f()
        if cuda:
            torch.cuda.synchronize()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return [{"name": e.key, "calls_per_step": e.count / steps, "self_cpu_us": e.self_cpu_time_total / steps,
             "cpu_total_us": e.cpu_time_total / steps} for e in events]


def copy_bandwidth(nbytes: int = 1 << 28) -> float:
    """Bytes/s of a large device-to-device copy (read + write): the card's practical limit."""
    big = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    return 2 * big.numel() / cuda_time(lambda: big.clone())


def host_time(f: Callable[[], Any], repeat: int = 50) -> float:
    """Seconds the host spends per call when calls are enqueued back to back (no waiting)."""
    f()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeat):
        f()
    t1 = time.perf_counter()
    torch.cuda.synchronize()
    return (t1 - t0) / repeat
