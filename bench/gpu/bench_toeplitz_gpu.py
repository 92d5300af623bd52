"""GPU check and timing of kernkit.toeplitz_matmul's CUDA path (cuFFT; prepared, not yet run on a GPU).

1. correctness: CUDA (torch tensors) against the float64 dense product and the CPU result, float32
   and float64, causal and not, shared and per-batch coefficients, a non-contiguous X, n = 1 / 97 /
   4096 (prime and smooth);
2. timing for n = 4096 with k = 4096 float32 columns (and a batched (8, 4096, 512) case): kernkit
   (product with a cached spectrum, ToeplitzOperator, and the whole toeplitz_matmul call) next to a
   torch.fft implementation of the same product on the same card (rfft of X padded to 2n along the
   rows, multiply, irfft, slice), and the bandwidth fraction of reading X and writing Y once
   against a large device copy.
Writes toeplitz_gpu.json and toeplitz_gpu.md into --out.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch

import kernkit
from kernkit import ToeplitzOperator, toeplitz_matmul
from cuda_timing import copy_bandwidth, cuda_time


def dense(c: np.ndarray, r: np.ndarray | None, causal: bool) -> np.ndarray:
    """T[i, j] = c[i - j] (i >= j), r[j - i] (j > i); lower triangle only when causal."""
    n = len(c)
    d = np.arange(n)[:, None] - np.arange(n)[None, :]
    rr = np.zeros(n) if causal else np.asarray(r, np.float64)
    return np.where(d >= 0, np.asarray(c, np.float64)[np.abs(d)], rr[np.abs(d)])


def check(rng: np.random.Generator) -> list[dict]:
    out = []
    for n, k, nb in ((1, 3, 1), (97, 33, 2), (4096, 16, 2)):
        for causal in (False, True):
            c = rng.standard_normal((nb, n))
            r = rng.standard_normal((nb, n))
            r[:, 0] = c[:, 0]
            X = rng.standard_normal((nb, n, k))
            ref = np.stack([dense(c[b], r[b], causal) for b in range(nb)]) @ X
            scale = np.abs(ref).max()
            for dt in (torch.float32, torch.float64):
                ct, rt, Xt = (torch.tensor(a, dtype=dt, device="cuda") for a in (c, r, X))
                Xs = Xt.transpose(1, 2).contiguous().transpose(1, 2)  # column-major per batch
                Y = toeplitz_matmul(ct, None if causal else rt, Xs, causal=causal)
                torch.cuda.synchronize()
                Yc = toeplitz_matmul(c, None if causal else r, X, causal=causal)
                err = float(np.abs(Y.double().cpu().numpy() - ref).max() / scale)
                cpu = float(np.abs(Y.double().cpu().numpy() - Yc).max() / scale)
                # shared coefficients through the operator
                T = ToeplitzOperator(ct[0], None if causal else rt[0], causal=causal)
                Ys = (T @ Xt).double().cpu().numpy()
                refs = dense(c[0], r[0], causal) @ X
                errs = float(np.abs(Ys - refs).max() / np.abs(refs).max())
                out.append({"n": n, "k": k, "batch": nb, "causal": causal, "dtype": str(dt).replace("torch.", ""),
                            "rel_err_vs_f64": err, "rel_diff_vs_cpu": cpu, "shared_operator_rel_err": errs,
                            "ok": max(err, errs) <= (1e-12 if dt == torch.float64 else 1e-5)})
    return out


def torch_fft_product(H: torch.Tensor, X: torch.Tensor, n: int, L: int) -> torch.Tensor:
    """The same product written with torch.fft: H = rfft(h) (L//2 + 1,), X (..., n, k)."""
    Xf = torch.fft.rfft(X, n=L, dim=-2)
    return torch.fft.irfft(Xf * H[:, None], n=L, dim=-2)[..., :n, :]


def timing(rng: np.random.Generator, bw: float) -> list[dict]:
    rows = []
    for shape in ((4096, 4096), (8, 4096, 512), (16384, 1024)):
        n, k = shape[-2], shape[-1]
        c = torch.randn(n, device="cuda")
        r = torch.randn(n, device="cuda")
        r[0] = c[0]
        X = torch.randn(*shape, device="cuda")
        T = ToeplitzOperator(c, r)
        L2 = 2 * n  # torch baseline: pad to 2n (a power of two here)
        h = torch.zeros(L2, device="cuda")
        h[:n] = c
        h[L2 - n + 1:] = torch.flip(r[1:], [0])
        H = torch.fft.rfft(h)
        t_op = cuda_time(lambda: T @ X)
        t_call = cuda_time(lambda: toeplitz_matmul(c, r, X))
        t_torch = cuda_time(lambda: torch_fft_product(H, X, n, L2))
        ref = torch_fft_product(H, X, n, L2)
        diff = float((T @ X - ref).abs().max() / ref.abs().max())
        floor = 2 * X.numel() * X.element_size() / bw
        rows.append({"shape": "x".join(map(str, shape)), "dtype": "float32", "kernkit_operator_ms": t_op * 1e3,
                     "kernkit_call_ms": t_call * 1e3, "torch_fft_ms": t_torch * 1e3,
                     "speedup_vs_torch_fft": t_torch / t_op, "bandwidth_fraction": floor / t_op,
                     "torch_bandwidth_fraction": floor / t_torch, "rel_diff_vs_torch": diff})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/gpu")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    res = {"device": torch.cuda.get_device_name(), "checks": check(rng)}
    bw = copy_bandwidth()
    res["copy_GBps"] = bw / 1e9
    res["timing"] = timing(rng, bw)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "toeplitz_gpu.json"), "w") as f:
        json.dump(res, f, indent=1)
    bad = [c for c in res["checks"] if not c["ok"]]
    L = [f"# kernkit.toeplitz_matmul (CUDA, cuFFT) on {res['device']} (copy {res['copy_GBps']:.0f} GB/s)", "",
         f"checks: {len(res['checks']) - len(bad)}/{len(res['checks'])} within tolerance (1e-12 float64, 1e-5 float32 "
         f"relative to max|T X|); max error float32 "
         f"{max(c['rel_err_vs_f64'] for c in res['checks'] if c['dtype'] == 'float32'):.2e}, float64 "
         f"{max(c['rel_err_vs_f64'] for c in res['checks'] if c['dtype'] == 'float64'):.2e}", "",
         "| X shape | kernkit operator ms | toeplitz_matmul ms | torch.fft ms | speedup | kernkit bw fraction | torch bw fraction |",
         "|---|---:|---:|---:|---:|---:|---:|"]
    for r in res["timing"]:
        L.append(f"| {r['shape']} | {r['kernkit_operator_ms']:.3f} | {r['kernkit_call_ms']:.3f} | {r['torch_fft_ms']:.3f} | "
                 f"{r['speedup_vs_torch_fft']:.2f} | {r['bandwidth_fraction']:.2f} | {r['torch_bandwidth_fraction']:.2f} |")
    if bad:
        L += ["", "FAILED checks:", *[json.dumps(b) for b in bad]]
    with open(os.path.join(args.out, "toeplitz_gpu.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print("\n".join(L))
    print("kernkit", kernkit.__version__)


if __name__ == "__main__":
    main()
