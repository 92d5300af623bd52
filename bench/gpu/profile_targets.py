"""One call of each family's main GPU kernel path at its benchmark shape, for a profiler.

Run by ``bench/gpu/run.sh OUTDIR profile`` under Nsight Compute (ncu), which records only the
kernels between cudaProfilerStart and cudaProfilerStop (ncu --profile-from-start off), i.e. one
call per target after its warm-up call; the targets run in the order printed.
Without ncu it just runs the calls. What the profile answers: per kernel, the time, DRAM
throughput as a share of peak, achieved occupancy and registers per thread, i.e. whether a kernel
that misses its bandwidth target is latency-bound (few bytes in flight), instruction-bound or
occupancy-bound.
"""

from __future__ import annotations

import numpy as np
import torch

import kernkit
from kernkit import quant as Q
from kernkit.torch import pack_codes


def targets(dev: str = "cuda"):
    rng = np.random.default_rng(0)
    W = (0.02 * rng.standard_normal((4096, 4096))).astype(np.float32)
    x = torch.randn(1, 4096, device=dev)
    qw = Q.quantize(W, 4, a=0.7, granularity="group", group_size=64).to(x)
    yield "quant_gemv_w4g64", lambda: Q.matmul(x, qw)

    a0, b0 = kernkit.rational_init("gelu", (5, 4), "A")
    xr = torch.randn(197 * 128, 768, device=dev)
    gr = torch.randn_like(xr)
    a = torch.tensor(a0[None], dtype=torch.float32, device=dev)
    b = torch.tensor(np.tile(b0, (8, 1)), dtype=torch.float32, device=dev)
    yield "rational_forward", lambda: kernkit.rational(xr, a, b)
    yield "rational_backward", lambda: kernkit.rational_backward(gr, xr, a, b)

    n, h, bits, d = 65536, 8, 16, 64
    hq = pack_codes(torch.randn(1, h, n, bits)).to(dev)
    v = torch.randn(1, h, n, d, device=dev, dtype=torch.float16 if dev == "cuda" else torch.float32)
    yield "hashattn_n65536_f16", lambda: kernkit.hashed_attention(hq, hq, v, bits)

    c = torch.randn(4096, device=dev)
    X = torch.randn(4096, 4096, device=dev)
    yield "toeplitz_4096x4096", lambda: kernkit.toeplitz_matmul(c, c, X)
    # n = 16384: the cuFFT path (transpose in, R2C, multiply, C2R, transpose out), at 0.89x
    # torch.fft on the H200: which of its kernels takes the time
    c2, r2 = torch.randn(16384, device=dev), torch.randn(16384, device=dev)
    r2[0] = c2[0]
    T = kernkit.ToeplitzOperator(c2, r2)
    X2 = torch.randn(16384, 1024, device=dev)
    yield "toeplitz_16384x1024_cufft", lambda: T @ X2

    vv = torch.rand(1 << 24, device=dev) * 1000
    xx = torch.rand(1 << 24, device=dev) * 1000
    yield "special_log_iv_f32", lambda: kernkit.log_iv(vv, xx)
    vb = torch.rand(1 << 24, device=dev, dtype=torch.float64) * 25  # the box below Debye
    xb = torch.rand(1 << 24, device=dev, dtype=torch.float64) * 25
    yield "special_log_iv_box_f64", lambda: kernkit.log_iv(vb, xb)
    yield "special_log_kv_box_f64", lambda: kernkit.log_kv(vb, xb)


def main() -> None:
    for name, fn in targets():
        try:
            fn()  # warm-up: plans, tables, first-call costs
            torch.cuda.synchronize()
            torch.cuda.profiler.start()
            fn()
            torch.cuda.synchronize()
            torch.cuda.profiler.stop()
            print(f"{name}: ok", flush=True)
        except Exception as e:  # one family's failure must not hide the others' profiles
            print(f"{name}: {type(e).__name__}: {e}", flush=True)


if __name__ == "__main__":
    main()
