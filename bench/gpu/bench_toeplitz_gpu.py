"""GPU check and timing of kernkit.toeplitz_matmul's CUDA paths: the fused one-launch kernel
(cuda/toeplitz_fused.cu, power-of-two L <= 8192 float32 / 4096 float64) and cuFFT, chosen per call
by KERNKIT_TOEPLITZ_CUDA=fused|cufft|auto (set here around each measurement).

1. correctness, under auto (fused where it applies) and under cufft: CUDA (torch tensors) against
   the float64 dense product and the CPU result, float32 and float64, causal and not, shared and
   per-batch coefficients, a non-contiguous X, n = 1 / 97 / 4096 (prime and smooth);
2. timing for n = 4096 with k = 4096 float32 columns (and a batched (8, 4096, 512) case, and
   n = 16384 where only cuFFT applies): kernkit's product with a cached spectrum
   (ToeplitzOperator) by the fused kernel and by cuFFT, and the whole toeplitz_matmul call (auto),
   next to a torch.fft implementation of the same product on the same card (rfft of X padded to 2n
   along the rows, multiply, irfft, slice), and the bandwidth fraction of reading X and writing Y
   once against a large device copy.
Writes toeplitz_gpu.json and toeplitz_gpu.md into --out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from typing import Iterator

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


@contextlib.contextmanager
def cuda_path(path: str) -> Iterator[None]:
    """KERNKIT_TOEPLITZ_CUDA=path for the block (the CUDA core reads it on every call)."""
    old = os.environ.get("KERNKIT_TOEPLITZ_CUDA")
    os.environ["KERNKIT_TOEPLITZ_CUDA"] = path
    try:
        yield
    finally:
        if old is None:
            del os.environ["KERNKIT_TOEPLITZ_CUDA"]
        else:
            os.environ["KERNKIT_TOEPLITZ_CUDA"] = old


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
            refs = dense(c[0], r[0], causal) @ X
            Yc = toeplitz_matmul(c, None if causal else r, X, causal=causal)
            for dt in (torch.float32, torch.float64):
                ct, rt, Xt = (torch.tensor(a, dtype=dt, device="cuda") for a in (c, r, X))
                Xs = Xt.transpose(1, 2).contiguous().transpose(1, 2)  # column-major per batch
                for path in ("auto", "cufft"):  # auto: the fused kernel where it applies
                    with cuda_path(path):
                        Y = toeplitz_matmul(ct, None if causal else rt, Xs, causal=causal)
                        # shared coefficients through the operator
                        T = ToeplitzOperator(ct[0], None if causal else rt[0], causal=causal)
                        Ys = (T @ Xt).double().cpu().numpy()
                    err = float(np.abs(Y.double().cpu().numpy() - ref).max() / scale)
                    cpu = float(np.abs(Y.double().cpu().numpy() - Yc).max() / scale)
                    errs = float(np.abs(Ys - refs).max() / np.abs(refs).max())
                    out.append({"path": path, "n": n, "k": k, "batch": nb, "causal": causal,
                                "dtype": str(dt).replace("torch.", ""),
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
        ref = torch_fft_product(H, X, n, L2)
        fused_ok = 2 * n - 1 <= 8192  # the fused kernel's float32 lengths
        row = {"shape": "x".join(map(str, shape)), "dtype": "float32"}
        floor = 2 * X.numel() * X.element_size() / bw
        for path in (("fused", "cufft") if fused_ok else ("cufft",)):
            with cuda_path(path):
                row[f"kernkit_{path}_ms"] = cuda_time(lambda: T @ X) * 1e3
                row[f"rel_diff_{path}_vs_torch"] = float((T @ X - ref).abs().max() / ref.abs().max())
        if fused_ok:  # the fused kernel without its L2 prefetch of the next column group
            os.environ["KERNKIT_TOEPLITZ_PREFETCH"] = "0"
            with cuda_path("fused"):
                row["fused_no_prefetch_ms"] = cuda_time(lambda: T @ X) * 1e3
            del os.environ["KERNKIT_TOEPLITZ_PREFETCH"]
        t_call = cuda_time(lambda: toeplitz_matmul(c, r, X))
        t_torch = cuda_time(lambda: torch_fft_product(H, X, n, L2))
        best = min(v for key, v in row.items() if key.startswith("kernkit_"))
        row.update({"kernkit_call_ms": t_call * 1e3, "torch_fft_ms": t_torch * 1e3,
                    "speedup_vs_torch_fft": t_torch * 1e3 / best, "bandwidth_fraction": floor * 1e3 / best,
                    "torch_bandwidth_fraction": floor / t_torch})
        if fused_ok:
            row["fused_speedup_vs_cufft"] = row["kernkit_cufft_ms"] / row["kernkit_fused_ms"]
        rows.append(row)
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
    L = [f"# kernkit.toeplitz_matmul (CUDA: fused kernel and cuFFT) on {res['device']} "
         f"(copy {res['copy_GBps']:.0f} GB/s)", "",
         f"checks (paths auto and cufft): {len(res['checks']) - len(bad)}/{len(res['checks'])} within tolerance "
         f"(1e-12 float64, 1e-5 float32 relative to max|T X|); max error float32 "
         f"{max(c['rel_err_vs_f64'] for c in res['checks'] if c['dtype'] == 'float32'):.2e}, float64 "
         f"{max(c['rel_err_vs_f64'] for c in res['checks'] if c['dtype'] == 'float64'):.2e}", "",
         "Operator (cached spectrum) ms by path; speedup and bandwidth fraction of the faster path.", "",
         "| X shape | fused ms | fused ms, no L2 prefetch | cuFFT ms | fused / cuFFT speedup | "
         "toeplitz_matmul ms (auto) | torch.fft ms | speedup vs torch | kernkit bw fraction | torch bw fraction |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["timing"]:
        fused = f"{r['kernkit_fused_ms']:.3f}" if "kernkit_fused_ms" in r else "-"
        nopf = f"{r['fused_no_prefetch_ms']:.3f}" if "fused_no_prefetch_ms" in r else "-"
        ratio = f"{r['fused_speedup_vs_cufft']:.2f}" if "fused_speedup_vs_cufft" in r else "-"
        L.append(f"| {r['shape']} | {fused} | {nopf} | {r['kernkit_cufft_ms']:.3f} | {ratio} | {r['kernkit_call_ms']:.3f} | "
                 f"{r['torch_fft_ms']:.3f} | {r['speedup_vs_torch_fft']:.2f} | {r['bandwidth_fraction']:.2f} | "
                 f"{r['torch_bandwidth_fraction']:.2f} |")
    if bad:
        L += ["", "FAILED checks:", *[json.dumps(b) for b in bad]]
    with open(os.path.join(args.out, "toeplitz_gpu.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print("\n".join(L))
    print("kernkit", kernkit.__version__)


if __name__ == "__main__":
    main()
