#!/usr/bin/env python3
"""CPU benchmark of kernkit.rpe_attention (Luo et al. 2021) against dense attention with the same RPE.

Run::

    python bench/toeplitz/bench_rpe.py [--quick] [--out bench/results] [--max-dense-n 16384]

Shapes: batch 1, heads 8, d = dv = 64, m = 64 random features, float32, one thread
(OMP/BLAS threads pinned to 1 before numpy loads; the FFTs are single-threaded anyway), n from
256 to 16384 (``--quick``: to 2048). Side by side, in one run:

* ``kernkit.rpe_attention`` (general bias b of length 2n-1) by FFT Toeplitz products
  (``method="fft"``, Luo et al.'s Algorithm 1) and by the dense formula in row blocks
  (``method="dense"``, what ``"auto"`` picks on the CPU up to n = 12288), forward, and forward +
  backward (``rpe_attention_backward``, all four gradients);
* ``kernkit.rpe_attention_decay`` (c_t = lam^|t|, O(n) chunkwise scan) forward and forward +
  backward;
* the dense O(n^2) kernel formula with the same features and coefficients
  ``(Phi(Q) Phi(K)^T * C) V / rowsum`` (what the FFT path computes exactly), one head at a time;
* exact softmax attention with the same RPE, ``softmax(Q K^T / sqrt(d) + B) V`` in numpy, one head
  at a time (what the kernelized form approximates), and torch's CPU
  ``scaled_dot_product_attention`` with the additive bias when torch is installed;
* peak memory of each numpy call above its inputs (tracemalloc; numpy reports its buffers to it),
  the crossover n where the FFT path becomes faster than softmax, and the machine's copy
  bandwidth from the same run.

Writes rpe.json, rpe.md and rpe.png into --out.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import datetime as _dt  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import tracemalloc  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

import kernkit  # noqa: E402
from kernkit._bench import best_time, copy_bandwidth  # noqa: E402

H, D, M = 8, 64, 64


def timed(f: Callable[[], Any], budget: float = 0.5) -> float:
    """Best of up to 3 runs, fewer once `budget` seconds are spent (no warm-up: these calls take
    seconds)."""
    return best_time(f, repeat=3, min_time=0.0, budget=budget, warmup=False)


def peak_bytes(f: Callable[[], Any]) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = f()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del out
    return int(peak)


def coefficients(b: np.ndarray, n: int) -> np.ndarray:
    """B[i, j] = b[j - i + n - 1] - max b for one head: a read-only strided (n, n) view, no copy."""
    w = np.ascontiguousarray(b - b.max())
    return np.lib.stride_tricks.sliding_window_view(w, n)[::-1]


def dense_kernel(q, k, v, b, W):
    """The O(n^2) formula with kernkit's own features (same numbers as the FFT path)."""
    A = kernkit.rpe_features(q, W, is_query=True)
    B = kernkit.rpe_features(k, W, is_query=False)
    out = np.empty_like(v)
    n = q.shape[2]
    for h in range(q.shape[1]):
        Mx = A[0, h] @ B[0, h].T
        Mx *= np.exp(coefficients(b[h], n))
        out[0, h] = (Mx @ v[0, h]) / Mx.sum(1, keepdims=True)
    return out


def softmax_rpe(q, k, v, b):
    """Exact softmax attention with an additive relative-position bias, one head at a time."""
    out = np.empty_like(v)
    n, d = q.shape[2], q.shape[3]
    for h in range(q.shape[1]):
        S = q[0, h] @ k[0, h].T
        S *= 1.0 / math.sqrt(d)
        S += coefficients(b[h], n)
        S -= S.max(1, keepdims=True)
        np.exp(S, out=S)
        out[0, h] = (S @ v[0, h]) / S.sum(1, keepdims=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "results"))
    ap.add_argument("--max-dense-n", type=int, default=8192,
                    help="largest n for the naive O(n^2) kernel formula (n^2 floats per head)")
    ap.add_argument("--max-softmax-n", type=int, default=16384)
    ap.add_argument("--max-backward-n", type=int, default=4096)
    ap.add_argument("--max-sdpa-n", type=int, default=8192, help="torch needs the (heads, n, n) bias")
    ap.add_argument("--ns", type=int, nargs="*", help="only these n")
    args = ap.parse_args()
    kernkit.set_num_threads(1)
    torch: Any = None
    try:
        import torch as _torch

        torch = _torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    ns = [256, 512, 1024, 2048] if args.quick else [256, 512, 1024, 2048, 4096, 8192, 16384]
    ns = args.ns or ns
    rng = np.random.default_rng(0)
    W = kernkit.random_projection(D, M, seed=0)
    bw = copy_bandwidth()
    rows: list[dict[str, Any]] = []
    for n in ns:
        q, k = (0.5 * rng.standard_normal((1, H, n, D))).astype(np.float32), \
            (0.5 * rng.standard_normal((1, H, n, D))).astype(np.float32)
        v = rng.standard_normal((1, H, n, D)).astype(np.float32)
        b = (0.5 * rng.standard_normal((H, 2 * n - 1))).astype(np.float32)
        g = rng.standard_normal(v.shape).astype(np.float32)
        row: dict[str, Any] = {"n": n}

        def fft_fwd() -> Any:
            return kernkit.rpe_attention(q, k, v, b, projection=W, method="fft")

        def dense_fwd() -> Any:
            return kernkit.rpe_attention(q, k, v, b, projection=W, method="dense")

        def decay() -> Any:
            return kernkit.rpe_attention_decay(q, k, v, 0.99, projection=W, method="scan")

        for name, f in (("rpe_fft", fft_fwd), ("rpe_dense", dense_fwd), ("rpe_decay", decay)):
            row[f"{name}_s"] = timed(f)
            row[f"{name}_MiB"] = peak_bytes(f) / 2**20
        for name, meth in (("rpe_fft", "fft"), ("rpe_dense", "dense")):
            if n <= args.max_backward_n or (meth == "dense" and n <= 2 * args.max_backward_n):
                row[f"{name}_fwd_bwd_s"] = timed(lambda: kernkit.rpe_attention_backward(
                    g, q, k, v, b, projection=W, method=meth), budget=0.2)
        row["rpe_decay_fwd_bwd_s"] = timed(lambda: kernkit.rpe_attention_decay_backward(
            g, q, k, v, 0.99, projection=W, method="scan"), budget=0.2)
        if n <= args.max_dense_n:
            ref = dense_kernel(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                               b.astype(np.float64), W)
            for name, f in (("rpe_fft", fft_fwd), ("rpe_dense", dense_fwd)):
                out = f()
                row[f"{name}_relerr_vs_dense_f64"] = float(np.abs(out - ref).max() / np.abs(ref).max())
            del ref
            row["dense_kernel_s"] = timed(lambda: dense_kernel(q, k, v, b, W))
            row["dense_kernel_MiB"] = peak_bytes(lambda: dense_kernel(q, k, v, b, W)) / 2**20
        if n <= args.max_softmax_n:
            out_fft = dense_fwd()  # the same numbers as the fft path (err columns)
            row["softmax_rpe_s"] = timed(lambda: softmax_rpe(q, k, v, b))
            row["softmax_rpe_MiB"] = peak_bytes(lambda: softmax_rpe(q, k, v, b)) / 2**20
            sm = softmax_rpe(q, k, v, b)
            row["rpe_relerr_vs_softmax"] = float(np.sqrt(((out_fft - sm) ** 2).mean() / (sm ** 2).mean()))
            if torch is not None and n <= args.max_sdpa_n:
                qt, kt, vt = (torch.from_numpy(a) for a in (q, k, v))
                bias = torch.from_numpy(np.stack([coefficients(b[h], n) for h in range(H)]))

                def sdpa() -> Any:
                    with torch.no_grad():
                        return torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, attn_mask=bias)

                row["torch_sdpa_s"] = timed(sdpa)
                del bias
        rows.append(row)
        print(f"n={n}: " + ", ".join(f"{k_}={v_:.4g}" for k_, v_ in row.items() if k_ != "n"), flush=True)
        write(rows, args.out, bw)
    print(write(rows, args.out, bw))


def write(rows: list[dict[str, Any]], out_dir: str, bw: float) -> str:
    """rpe.json, rpe.md, rpe.png from the rows so far (written after every n)."""

    def first(key: str, other: str) -> int | None:
        """First n from which `key` stays faster than `other` (None if never)."""
        both = [r for r in rows if key in r and other in r]
        for i, r in enumerate(both):
            if all(x[key] < x[other] for x in both[i:]):
                return int(r["n"])
        return None

    facts = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": kernkit.info()["cpu"],
        "numpy": np.__version__,
        "kernkit": kernkit.__version__,
        "toeplitz_backend": "kernkit.toeplitz_matmul" if hasattr(kernkit, "toeplitz_matmul")
        else "stand-in (numpy.fft, kernkit/rpe.py)",
        "threads": 1, "batch": 1, "heads": H, "d": D, "m": M, "dtype": "float32",
        "copy_GBps": bw / 1e9,
        "q_k_scale": 0.5,
        "crossover_n_fft_vs_dense": first("rpe_fft_s", "rpe_dense_s"),
        "crossover_n_fft_vs_softmax": first("rpe_fft_s", "softmax_rpe_s"),
        "crossover_n_dense_vs_softmax": first("rpe_dense_s", "softmax_rpe_s"),
        "crossover_n_decay_vs_softmax": first("rpe_decay_s", "softmax_rpe_s"),
        "crossover_n_decay_vs_dense": first("rpe_decay_s", "rpe_dense_s"),
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "rpe.json"), "w") as f:
        json.dump({"info": facts, "rows": rows}, f, indent=2)
    md = markdown(rows, facts)
    with open(os.path.join(out_dir, "rpe.md"), "w") as f:
        f.write(md + "\n")
    plot(rows, os.path.join(out_dir, "rpe.png"))
    return md


def _f(r: dict[str, Any], key: str, fmt: str) -> str:
    return format(r[key], fmt) if key in r else "—"


def markdown(rows: list[dict[str, Any]], facts: dict[str, Any]) -> str:
    lines = [
        "# kernkit.rpe_attention on the CPU (Luo et al. 2021, kernelized attention with RPE)",
        "",
        f"{facts['date']}, {facts['machine']}, numpy {facts['numpy']}, one thread; batch 1, "
        f"{facts['heads']} heads, d = dv = {facts['d']}, m = {facts['m']} features, {facts['dtype']}, "
        f"q, k ~ N(0, {facts['q_k_scale']}^2), v ~ N(0, 1), b ~ N(0, 0.5^2); Toeplitz products: "
        f"{facts['toeplitz_backend']}; copy bandwidth {facts['copy_GBps']:.1f} GB/s.",
        "",
        "Times in ms (best of up to 3), peak memory above the inputs in MiB (tracemalloc). "
        "`fft`: general bias (2n-1 values per head) by FFT Toeplitz products (Luo et al.'s "
        "Algorithm 1, m (dv+1) FFT columns per head); `dense`: the same formula in row blocks "
        "(`method='dense'`, what `'auto'` picks on the CPU up to n = 12288); `decay`: c_t = 0.99^|t| "
        "by the O(n) chunkwise scan; `naive dense`: the formula with a full (n, n) matrix per head "
        "in numpy; `softmax+RPE`: exact softmax(QK^T/sqrt(d) + B)V in numpy, one head at a time; "
        "`torch SDPA`: torch.nn.functional.scaled_dot_product_attention with the additive bias on "
        "the CPU (1 thread); fwd+bwd: forward and all gradients (q, k, v, bias or lam).",
        "",
        "| n | fft | dense | decay | fft fwd+bwd | dense fwd+bwd | decay fwd+bwd | naive dense | "
        "softmax+RPE | torch SDPA | MiB fft | MiB dense | MiB decay | MiB naive | MiB softmax | "
        "err fft | err dense | err vs softmax |",
        "|---:|" + "---:|" * 17,
    ]
    for r in rows:
        ms = {k: 1e3 * v for k, v in r.items() if k.endswith("_s")}
        lines.append(
            f"| {r['n']} | {_f(ms, 'rpe_fft_s', '.1f')} | {_f(ms, 'rpe_dense_s', '.1f')} | "
            f"{_f(ms, 'rpe_decay_s', '.1f')} | {_f(ms, 'rpe_fft_fwd_bwd_s', '.1f')} | "
            f"{_f(ms, 'rpe_dense_fwd_bwd_s', '.1f')} | {_f(ms, 'rpe_decay_fwd_bwd_s', '.1f')} | "
            f"{_f(ms, 'dense_kernel_s', '.1f')} | {_f(ms, 'softmax_rpe_s', '.1f')} | "
            f"{_f(ms, 'torch_sdpa_s', '.1f')} | {_f(r, 'rpe_fft_MiB', '.0f')} | "
            f"{_f(r, 'rpe_dense_MiB', '.0f')} | {_f(r, 'rpe_decay_MiB', '.0f')} | "
            f"{_f(r, 'dense_kernel_MiB', '.0f')} | {_f(r, 'softmax_rpe_MiB', '.0f')} | "
            f"{_f(r, 'rpe_fft_relerr_vs_dense_f64', '.1e')} | {_f(r, 'rpe_dense_relerr_vs_dense_f64', '.1e')} | "
            f"{_f(r, 'rpe_relerr_vs_softmax', '.3f')} |")

    def cross(key: str) -> str:
        v = facts[key]
        return str(v) if v else "not in this range"

    lines += [
        "",
        f"Crossovers (first n from which the first is faster): fft vs dense {cross('crossover_n_fft_vs_dense')}; "
        f"fft vs softmax+RPE {cross('crossover_n_fft_vs_softmax')}; dense vs softmax+RPE "
        f"{cross('crossover_n_dense_vs_softmax')}; decay vs softmax+RPE {cross('crossover_n_decay_vs_softmax')}; "
        f"decay vs dense {cross('crossover_n_decay_vs_dense')}.",
        "",
        "`err fft` / `err dense`: max |rpe_attention(float32) - the formula in float64| / max |formula|: "
        "the exactness of each path; `err vs softmax`: relative RMS error ||out - softmax|| / "
        "||softmax|| against exact softmax attention with the same RPE, i.e. the random-feature "
        f"approximation error with m = {facts['m']} (it shrinks as 1/sqrt(m); not a bug of either path).",
    ]
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("rpe_fft_s", "rpe_attention fft"), ("rpe_dense_s", "rpe_attention dense"),
                       ("rpe_decay_s", "decay (scan)"), ("dense_kernel_s", "naive dense O(n²)"),
                       ("softmax_rpe_s", "softmax+RPE numpy"), ("torch_sdpa_s", "torch SDPA CPU")):
        pts = [(r["n"], r[key]) for r in rows if key in r]
        if pts:
            ax1.loglog(*zip(*pts), "o-", label=label)
    ax1.set_xlabel("n")
    ax1.set_ylabel("seconds (1 thread)")
    ax1.legend(fontsize=8)
    for key, label in (("rpe_fft_MiB", "rpe_attention fft"), ("rpe_dense_MiB", "rpe_attention dense"),
                       ("rpe_decay_MiB", "decay (scan)"), ("dense_kernel_MiB", "naive dense"),
                       ("softmax_rpe_MiB", "softmax+RPE")):
        pts = [(r["n"], r[key]) for r in rows if key in r]
        if pts:
            ax2.loglog(*zip(*pts), "o-", label=label)
    ax2.set_xlabel("n")
    ax2.set_ylabel("peak MiB above inputs")
    ax2.legend(fontsize=8)
    fig.suptitle(f"heads {H}, d {D}, m {M}, float32")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
