"""GPU benchmark of kernkit.rpe_attention (kernelized attention with relative positional encoding).

First correctness on the device (n = 1000, not a power of two, padding mask, causal and not):
every method (``fft``, ``dense``; decay ``scan``, ``dense``) in float64 and float32 against the
dense O(n^2) formula in float64 with the same features, and the autograd gradients (q, k, v,
rpe_bias, lam) against torch autograd of that formula. Then timings on torch CUDA tensors,
float32, batch 1, 8 heads, d = dv = 64, m = 64 features, n from 1024 to 65536:

* kernkit ``rpe_attention`` by FFT Toeplitz products and by dense row blocks, and
  ``rpe_attention_decay`` (O(n) chunkwise scan); forward, and forward + backward (autograd);
* torch ``scaled_dot_product_attention`` with the additive (heads, n, n) RPE bias, float32 and
  bfloat16 (exact softmax attention with RPE: what users run), up to n = 16384;
* the naive dense kernel formula in torch ops ((n, n) matrices per head), up to n = 8192;

with peak device memory per call and the card's copy bandwidth. Writes rpe_gpu.json and
rpe_gpu.md into --out; finishes in well under a minute on an H100.
Run: python bench/gpu/bench_rpe_gpu.py --out DIR   (``--cpu-smoke``: tiny sizes on the CPU, to
check the script itself on a machine without a GPU).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any, Callable

import numpy as np
import torch

import kernkit
import kernkit.torch as kt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

H, D, M = 8, 64, 64


def dense_formula(q, k, v, W, coef, causal=False, mask=None):
    """sum_j C_ij phi(q_i).phi(k_j) v_j / sum_j C_ij phi(q_i).phi(k_j) with (n, n) matrices.

    phi as in kernkit (FAVOR+, max-stabilized, differentiable here through torch ops)."""
    n, d, m = q.shape[2], q.shape[3], W.shape[0]
    Wt = torch.as_tensor(W, dtype=q.dtype, device=q.device)

    def phi(x, is_query):
        x = x * d ** -0.25
        e = x @ Wt.T - 0.5 * (x * x).sum(-1, keepdim=True)
        s = e.amax(-1, keepdim=True) if is_query else e.amax((-2, -1), keepdim=True)
        return torch.exp(e - s) / math.sqrt(m)

    i = torch.arange(n, device=q.device)
    t = i[None, :] - i[:, None]
    C = coef(t)
    if causal:
        C = C * (t <= 0)
    Mx = (phi(q, True) @ phi(k, False).transpose(-1, -2)) * C[None]
    if mask is not None:
        Mx = Mx * mask[:, None, None, :]
    return (Mx @ v) / Mx.sum(-1)[..., None]


def relerr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def correctness(dev: str) -> dict[str, Any]:
    gen = torch.Generator(device=dev).manual_seed(0)
    Bt, Hc, n, d, m = 2, 4, 1000, 32, 32
    q, k, v = (torch.randn(Bt, Hc, n, d, device=dev, dtype=torch.float64, generator=gen) for _ in range(3))
    b = torch.randn(Hc, 2 * n - 1, device=dev, dtype=torch.float64, generator=gen)
    lam = torch.rand(Hc, device=dev, dtype=torch.float64, generator=gen) * 0.5 + 0.49
    mask = torch.rand(Bt, n, device=dev, generator=gen) < 0.9
    mask[:, 0] = True
    W = kernkit.random_projection(d, m, seed=0)
    res: dict[str, Any] = {}
    for causal in (False, True):
        ref_b = dense_formula(q, k, v, W, lambda t: torch.exp(b[:, t + n - 1] - b.max()), causal, mask)
        ref_d = dense_formula(q, k, v, W, lambda t: lam[:, None, None] ** t.abs(), causal, mask)
        for dt in (torch.float64, torch.float32):
            args = [x.to(dt) for x in (q, k, v)]
            for meth in ("fft", "dense"):
                out = kernkit.rpe_attention(*args, b.to(dt), projection=W, causal=causal,
                                            key_padding_mask=mask, method=meth)
                res[f"fwd {meth} causal={causal} {str(dt)[6:]}"] = relerr(out, ref_b)
            for meth in ("scan", "dense"):
                out = kernkit.rpe_attention_decay(*args, lam.to(dt), projection=W, causal=causal,
                                                  key_padding_mask=mask, method=meth)
                res[f"fwd decay-{meth} causal={causal} {str(dt)[6:]}"] = relerr(out, ref_d)
        # gradients, float64, against autograd of the dense formula
        g = torch.randn(v.shape, device=dev, dtype=torch.float64, generator=gen)
        for meth in ("fft", "dense"):
            leaves = [x.clone().requires_grad_() for x in (q, k, v, b)]
            out = kt.rpe_attention(*leaves, projection=W, causal=causal, key_padding_mask=mask, method=meth)
            ours = torch.autograd.grad((out * g).sum(), leaves)
            ref = dense_formula(*leaves[:3], W, lambda t: torch.exp(leaves[3][:, t + n - 1] - leaves[3].max()),
                                causal, mask)
            theirs = torch.autograd.grad((ref * g).sum(), leaves)
            for name, o, t in zip(("q", "k", "v", "bias"), ours, theirs):
                res[f"grad {name} {meth} causal={causal}"] = relerr(o, t)
        for meth in ("scan", "dense"):
            leaves = [x.clone().requires_grad_() for x in (q, k, v, lam)]
            out = kt.rpe_attention_decay(*leaves, projection=W, causal=causal, key_padding_mask=mask,
                                         method=meth)
            ours = torch.autograd.grad((out * g).sum(), leaves)
            ref = dense_formula(*leaves[:3], W, lambda t: leaves[3][:, None, None] ** t.abs(), causal, mask)
            theirs = torch.autograd.grad((ref * g).sum(), leaves)
            for name, o, t in zip(("q", "k", "v", "lam"), ours, theirs):
                res[f"grad {name} decay-{meth} causal={causal}"] = relerr(o, t)
    return res


def peak_mib(f: Callable[[], Any], dev: str) -> float:
    if dev != "cuda":
        return float("nan")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = f()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del out
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/gpu")
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU (script check)")
    ap.add_argument("--max-n", type=int, default=65536, help="largest n timed (1024, 4096, 16384, 65536)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    t_start = time.perf_counter()
    if args.cpu_smoke:
        dev = "cpu"

        def timer(f: Callable[[], Any], repeat: int = 3) -> float:
            f()
            t0 = time.perf_counter()
            for _ in range(repeat):
                f()
            return (time.perf_counter() - t0) / repeat

        bw = float("nan")
        card = "cpu (smoke run)"
        ns = [256, 512]
        max_sdpa, max_naive, max_bwd = 512, 512, 512
    else:
        from cuda_timing import copy_bandwidth, cuda_time

        dev = "cuda"
        timer = cuda_time
        bw = copy_bandwidth()
        card = torch.cuda.get_device_name()
        ns = [n for n in (1024, 4096, 16384, 65536) if n <= args.max_n]
        max_sdpa, max_naive, max_bwd = 16384, 8192, 16384
    checks = correctness(dev)
    worst_f64 = max(v for kk, v in checks.items() if "float32" not in kk)
    worst_f32 = max(v for kk, v in checks.items() if "float32" in kk)
    print(f"correctness: worst float64 {worst_f64:.2e}, worst float32 {worst_f32:.2e}", flush=True)
    W = kernkit.random_projection(D, M, seed=0)
    rows = []
    for n in ns:
        gen = torch.Generator(device=dev).manual_seed(n)
        q, k, v = (0.5 * torch.randn(1, H, n, D, device=dev, generator=gen) for _ in range(3))
        b = 0.5 * torch.randn(H, 2 * n - 1, device=dev, generator=gen)
        row: dict[str, Any] = {"n": n}
        rep = 10 if n <= 4096 else 3
        cases: dict[str, Callable[[], Any]] = {
            "fft": lambda: kernkit.rpe_attention(q, k, v, b, projection=W, method="fft"),
            "decay_scan": lambda: kernkit.rpe_attention_decay(q, k, v, 0.99, projection=W, method="scan"),
        }
        if n <= 16384:
            cases["dense"] = lambda: kernkit.rpe_attention(q, k, v, b, projection=W, method="dense")
        for name, f in cases.items():
            row[f"{name}_ms"] = 1e3 * timer(f, repeat=rep)
            row[f"{name}_MiB"] = peak_mib(f, dev)
        if n <= max_bwd:
            leaves = [x.clone().requires_grad_() for x in (q, k, v, b)]

            def fwd_bwd(meth: str) -> Any:
                out = kt.rpe_attention(*leaves, projection=W, method=meth)
                return torch.autograd.grad(out.sum(), leaves)

            for meth in ("fft", "dense"):
                row[f"{meth}_fwd_bwd_ms"] = 1e3 * timer(lambda: fwd_bwd(meth), repeat=3)
            lamt = torch.tensor(0.99, device=dev, requires_grad=True)

            def decay_fb() -> Any:
                out = kt.rpe_attention_decay(*leaves[:3], lamt, projection=W, method="scan")
                return torch.autograd.grad(out.sum(), leaves[:3] + [lamt])

            row["decay_scan_fwd_bwd_ms"] = 1e3 * timer(decay_fb, repeat=3)
        if n <= max_sdpa:
            i = torch.arange(n, device=dev)
            bias = b[:, (i[None, :] - i[:, None]) + n - 1][None]          # (1, H, n, n)
            sd = torch.nn.functional.scaled_dot_product_attention
            row["sdpa_f32_ms"] = 1e3 * timer(lambda: sd(q, k, v, attn_mask=bias), repeat=rep)
            row["sdpa_f32_MiB"] = peak_mib(lambda: sd(q, k, v, attn_mask=bias), dev) + bias.numel() * 4 / 2**20
            qh, kh, vh, bh = (x.to(torch.bfloat16) for x in (q, k, v, bias))
            row["sdpa_bf16_ms"] = 1e3 * timer(lambda: sd(qh, kh, vh, attn_mask=bh), repeat=rep)
            del bias, bh
        if n <= max_naive:
            f = lambda: dense_formula(q, k, v, W, lambda t: torch.exp(b[:, t + n - 1] - b.max()))  # noqa: E731
            row["naive_dense_ms"] = 1e3 * timer(f, repeat=rep)
            row["naive_dense_MiB"] = peak_mib(f, dev)
        rows.append(row)
        print(f"n={n}: " + ", ".join(f"{kk}={vv:.3g}" for kk, vv in row.items() if kk != "n"), flush=True)
        del q, k, v, b
        if dev == "cuda":
            torch.cuda.empty_cache()
    facts = {"card": card, "copy_GBps": bw / 1e9, "heads": H, "d": D, "m": M, "dtype": "float32",
             "toeplitz_backend": "kernkit.toeplitz_matmul" if hasattr(kernkit, "toeplitz_matmul")
             else "stand-in (torch.fft, kernkit/rpe.py)",
             "auto_dense_max_n": {f"{kk[0]}{'_gpu' if kk[1] else '_cpu'}": vv
                                  for kk, vv in kernkit.rpe._DENSE_MAX_N.items()},
             "seconds": time.perf_counter() - t_start}
    with open(os.path.join(args.out, "rpe_gpu.json"), "w") as fh:
        json.dump({"info": facts, "correctness": checks, "rows": rows}, fh, indent=2)
    md = markdown(facts, checks, rows, worst_f64, worst_f32)
    with open(os.path.join(args.out, "rpe_gpu.md"), "w") as fh:
        fh.write(md + "\n")
    print(md)


def markdown(facts: dict[str, Any], checks: dict[str, float], rows: list[dict[str, Any]],
             worst_f64: float, worst_f32: float) -> str:
    def f(r: dict[str, Any], key: str, fmt: str = ".2f") -> str:
        return format(r[key], fmt) if key in r and not math.isnan(r[key]) else "—"

    lines = [
        f"# kernkit.rpe_attention on {facts['card']}",
        "",
        f"Batch 1, {facts['heads']} heads, d = dv = {facts['d']}, m = {facts['m']}, float32; copy "
        f"bandwidth {facts['copy_GBps']:.0f} GB/s; Toeplitz products: {facts['toeplitz_backend']}; "
        f"whole script {facts['seconds']:.0f} s.",
        "",
        f"Correctness on the device (n = 1000, mask, causal and not; every method vs the dense "
        f"formula in float64): worst relative error {worst_f64:.1e} (float64 paths and gradients), "
        f"{worst_f32:.1e} (float32 forward). Full list in rpe_gpu.json.",
        "",
        "Times in ms (CUDA events, median), peak device memory in MiB above the inputs.",
        "",
        "| n | fft | dense | decay scan | fft fwd+bwd | dense fwd+bwd | decay fwd+bwd | SDPA+bias f32 | "
        "SDPA+bias bf16 | naive dense | MiB fft | MiB dense | MiB scan | MiB SDPA f32 (+bias) | MiB naive |",
        "|---:|" + "---:|" * 14,
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {f(r, 'fft_ms')} | {f(r, 'dense_ms')} | {f(r, 'decay_scan_ms')} | "
            f"{f(r, 'fft_fwd_bwd_ms')} | {f(r, 'dense_fwd_bwd_ms')} | {f(r, 'decay_scan_fwd_bwd_ms')} | "
            f"{f(r, 'sdpa_f32_ms')} | {f(r, 'sdpa_bf16_ms')} | {f(r, 'naive_dense_ms')} | "
            f"{f(r, 'fft_MiB', '.0f')} | {f(r, 'dense_MiB', '.0f')} | {f(r, 'decay_scan_MiB', '.0f')} | "
            f"{f(r, 'sdpa_f32_MiB', '.0f')} | {f(r, 'naive_dense_MiB', '.0f')} |")
    fast = [r["n"] for r in rows if "dense_ms" in r and r["fft_ms"] < r["dense_ms"]]
    sd = [r["n"] for r in rows if "sdpa_f32_ms" in r and r["fft_ms"] < r["sdpa_f32_ms"]]
    lines += ["",
              f"Crossover fft < dense: {min(fast) if fast else 'not in this range'}; fft < SDPA+bias "
              f"(float32): {min(sd) if sd else 'not in this range'}. method='auto' uses dense up to "
              f"{facts['auto_dense_max_n']} (set in kernkit/rpe.py `_DENSE_MAX_N`)."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
