"""`kernkit bench`: a quick side-by-side benchmark of every family present.

Each family contributes rows (what was timed, kernkit's rate, the alternative a user would
reach for, and the ratio, all from the same run). Prints a Markdown table; with ``out`` also
writes bench_quick.json and bench_quick.png there. The full campaigns live in bench/.
"""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Any, Callable

import numpy as np

from ._runtime import get_num_threads, info, set_num_threads


def best_time(f: Callable[[], Any], repeat: int = 5, min_time: float = 0.05,
              budget: float = float("inf"), warmup: bool = True) -> float:
    """Best-of-`repeat` seconds per call, each sample looping until `min_time` has passed;
    fewer samples once `budget` seconds are spent (for calls that take seconds)."""
    if warmup:
        f()
    best, spent = float("inf"), 0.0
    for _ in range(repeat):
        n, t0 = 0, time.perf_counter()
        while True:
            f()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        best = min(best, dt / n)
        spent += dt
        if spent > budget:
            break
    return best


def copy_bandwidth(nbytes: int = 1 << 27) -> float:
    """Bytes/s of a large numpy copy (read + write), the machine's practical memory limit."""
    a = np.ones(nbytes // 8)
    b = np.empty_like(a)
    t = best_time(lambda: np.copyto(b, a), repeat=3, min_time=0.1)
    return 2 * a.nbytes / t


def _special_rows(quick: bool) -> list[dict[str, Any]]:
    from . import special

    try:
        import scipy.special as sc
    except ImportError:  # pragma: no cover - scipy is a bench/test extra
        sc = None
    n = 20_000 if quick else 200_000
    rng = np.random.default_rng(0)
    regions = {
        "v<=10, x<=10": ((1e-2, 10.0), (1e-3, 10.0)),
        "v<=10, x in [10,1e4]": ((1e-2, 10.0), (10.0, 1e4)),
        "v in [100,1e4], x in [1,1e4]": ((100.0, 1e4), (1.0, 1e4)),
        "v in [1e3,1e5], x in [1e3,1e6]": ((1e3, 1e5), (1e3, 1e6)),
    }
    rows = []
    for region, ((v0, v1), (x0, x1)) in regions.items():
        v = np.exp(rng.uniform(np.log(v0), np.log(v1), n))
        x = np.exp(rng.uniform(np.log(x0), np.log(x1), n))
        out = np.empty(n)
        for fname, ours, theirs, label in (
            ("log_iv", special.log_iv, (lambda: np.log(sc.ive(v, x)) + x) if sc else None,
             "np.log(scipy.special.ive(v, x)) + x"),
            ("log_kv", special.log_kv, (lambda: np.log(sc.kve(v, x)) - x) if sc else None,
             "np.log(scipy.special.kve(v, x)) - x"),
        ):
            t_ours = best_time(lambda: ours(v, x, out=out))
            row: dict[str, Any] = {
                "family": "special", "case": f"{fname}, {region}", "n": n,
                "kernkit_per_s": n / t_ours, "alternative": label,
            }
            if theirs is not None:
                with np.errstate(all="ignore"):
                    t_alt = best_time(theirs)
                    finite = float(np.isfinite(theirs()).mean())
                row.update(alternative_per_s=n / t_alt, speedup=t_alt / t_ours,
                           alternative_finite=finite)
            rows.append(row)
    return rows


def _rational_rows(quick: bool) -> list[dict[str, Any]]:
    from . import _rational

    n_rows, D, G = (197 * 4 if quick else 197 * 32), 768, 8
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n_rows, D)).astype(np.float32)
    g = rng.normal(size=x.shape).astype(np.float32)
    a0, b0 = _rational.rational_init("swish")
    a = a0[None].astype(np.float32)
    b = np.tile(b0, (G, 1)).astype(np.float32)
    n = x.size

    def numpy_form_a() -> Any:  # what a user writes without kernkit: numpy Horner per group
        xg = x.reshape(n_rows, G, D // G)
        p = np.full_like(xg, a[0, 5])
        for k in range(4, -1, -1):
            p = p * xg + a[0, k]
        t = np.abs(xg)
        c = np.abs(b)[None, :, :, None]
        s = c[:, :, 3]
        for k in range(2, -1, -1):
            s = s * t + c[:, :, k]
        return p / (1 + t * s)

    t_f = best_time(lambda: _rational.rational(x, a, b))
    t_fb = best_time(lambda: (_rational.rational(x, a, b), _rational.rational_backward(g, x, a, b)))
    t_np = best_time(numpy_form_a)
    rows: list[dict[str, Any]] = [
        {"family": "rational", "case": f"forward form A (5,4), ({n_rows}, {D}), G=8, float32", "n": n,
         "kernkit_per_s": n / t_f, "alternative": "numpy Horner on a (N, G, D/G) view",
         "alternative_per_s": n / t_np, "speedup": t_np / t_f, "alternative_finite": 1.0},
        {"family": "rational", "case": f"forward + backward (dx, dnum, dden), ({n_rows}, {D})", "n": n,
         "kernkit_per_s": n / t_fb, "alternative": "(no CPU alternative with coefficient gradients "
         "but PyTorch autograd: bench/rational)"},
    ]
    return rows


def _quant_rows(quick: bool) -> list[dict[str, Any]]:
    """LUT GEMV on 4-bit power-quantized weights vs numpy float32 W @ x (BLAS)."""
    from . import quant

    rows_, cols = (1024, 1024) if quick else (4096, 4096)
    rng = np.random.default_rng(0)
    W = (0.02 * rng.standard_normal((rows_, cols))).astype(np.float32)
    x = rng.standard_normal(cols).astype(np.float32)
    qw = quant.quantize(W, 4, a=0.7, granularity="group", group_size=64)
    t_ours = best_time(lambda: quant.matmul(x, qw))
    t_alt = best_time(lambda: W @ x)
    n = rows_ * cols
    return [{"family": "quant", "case": f"W4 g64 LUT gemv {rows_}x{cols} (weights/s)", "n": n,
             "kernkit_per_s": n / t_ours, "alternative": "numpy float32 W @ x",
             "alternative_per_s": n / t_alt, "speedup": t_alt / t_ours,
             "alternative_finite": float(np.isfinite(W @ x).mean())}]


def _toeplitz_rows(quick: bool) -> list[dict[str, Any]]:
    """Real FFT vs scipy.fft (or numpy.fft) and the Toeplitz product vs scipy.linalg.matmul_toeplitz."""
    from . import fft
    from .toeplitz import toeplitz_matmul

    rng = np.random.default_rng(0)
    n = 4096 if quick else 65536
    x = rng.standard_normal(n)
    try:
        import scipy.fft as sfft
        import scipy.linalg as sl

        alt_fft, alt_name = (lambda: sfft.rfft(x, workers=1)), "scipy.fft.rfft (pocketfft, 1 worker)"
    except ImportError:  # numpy only
        sl = None
        alt_fft, alt_name = (lambda: np.fft.rfft(x)), "numpy.fft.rfft"
    t_k = best_time(lambda: fft.rfft(x))
    t_a = best_time(alt_fft)
    rows: list[dict[str, Any]] = [
        {"family": "toeplitz", "case": f"rfft n={n}, float64 (transforms/s x n)", "n": n,
         "kernkit_per_s": n / t_k, "alternative": alt_name, "alternative_per_s": n / t_a,
         "speedup": t_a / t_k, "alternative_finite": 1.0}]
    m, k = (1024, 16) if quick else (4096, 64)
    c = rng.standard_normal(m)
    r = rng.standard_normal(m)
    r[0] = c[0]
    X = rng.standard_normal((m, k))
    t_t = best_time(lambda: toeplitz_matmul(c, r, X))
    row: dict[str, Any] = {"family": "toeplitz", "case": f"T @ X, n={m}, k={k}, float64 (entries of X/s)",
                           "n": m * k, "kernkit_per_s": m * k / t_t}
    if sl is not None:
        t_s = best_time(lambda: sl.matmul_toeplitz((c, r), X, workers=1))
        row.update({"alternative": "scipy.linalg.matmul_toeplitz (1 worker)", "alternative_per_s": m * k / t_s,
                    "speedup": t_s / t_t, "alternative_finite": 1.0})
    else:
        row["alternative"] = "(scipy not installed)"
    rows.append(row)
    return rows


def _rpe_rows(quick: bool) -> list[dict[str, Any]]:
    """rpe_attention (8 heads, d = m = 64, float32) vs numpy softmax attention with the same RPE."""
    import math

    from . import rpe

    H, d, m = 8, 64, 64
    n = 1024 if quick else 4096
    rng = np.random.default_rng(0)
    q, k = ((0.5 * rng.standard_normal((1, H, n, d))).astype(np.float32) for _ in range(2))
    v = rng.standard_normal((1, H, n, d)).astype(np.float32)
    b = (0.5 * rng.standard_normal((H, 2 * n - 1))).astype(np.float32)
    W = rpe.random_projection(d, m, 0)
    i = np.arange(n)
    idx = i[None, :] - i[:, None] + n - 1

    def softmax_rpe() -> Any:  # what a user writes without kernkit, one head at a time
        out = np.empty_like(v)
        for h in range(H):
            S = q[0, h] @ k[0, h].T / np.float32(math.sqrt(d)) + b[h][idx]
            P = np.exp(S - S.max(1, keepdims=True))
            out[0, h] = (P @ v[0, h]) / P.sum(1, keepdims=True)
        return out

    t_alt = best_time(softmax_rpe, repeat=2, min_time=0.01)
    rows = []
    for case, f in (
        (f"rpe_attention auto (dense blocks) n={n}, 8 heads, d=m=64 (queries/s)",
         lambda: rpe.rpe_attention(q, k, v, b, projection=W)),
        (f"rpe_attention_decay O(n) scan n={n} (queries/s)",
         lambda: rpe.rpe_attention_decay(q, k, v, 0.99, projection=W, method="scan")),
    ):
        t = best_time(f, repeat=2, min_time=0.01)
        rows.append({"family": "rpe", "case": case, "n": n * H, "kernkit_per_s": n * H / t,
                     "alternative": "numpy softmax(QK^T/sqrt(d) + B) V per head",
                     "alternative_per_s": n * H / t_alt, "speedup": t_alt / t,
                     "alternative_finite": 1.0})
    return rows


def _hashattn_rows(quick: bool) -> list[dict[str, Any]]:
    """Binary-hash attention (8 heads, b = 16, d = 64) vs the reference's float formulation
    (±1 codes as float32 matrices, numpy matmul / BLAS)."""
    from . import hashattn

    H, b, d = 8, 16, 64
    n = 2048 if quick else 16384
    rng = np.random.default_rng(0)
    s = np.where(rng.random((H, n, b)) < 0.5, 1.0, -1.0).astype(np.float32)
    h = hashattn.pack(s)
    v = rng.standard_normal((H, n, d)).astype(np.float32)
    c = b + 1.0

    def float_form() -> Any:
        ctx = np.matmul(np.swapaxes(s, -1, -2), v)
        den = np.matmul(s, s.sum(1)[..., None])[..., 0] + c * n
        return (np.matmul(s, ctx) + c * v.sum(1, keepdims=True)) / den[..., None]

    t_ours = best_time(lambda: hashattn.hashed_attention(h, h, v, b))
    t_alt = best_time(float_form)
    m = H * n
    return [{"family": "hashattn", "case": f"hashed attention {H} heads x n={n}, b=16, d=64 (tokens/s)",
             "n": m, "kernkit_per_s": m / t_ours,
             "alternative": "numpy float32 matmul form (EcoFormer's einsum)",
             "alternative_per_s": m / t_alt, "speedup": t_alt / t_ours, "alternative_finite": 1.0}]


FAMILIES: dict[str, Callable[[bool], list[dict[str, Any]]]] = {
    "special": _special_rows,
    "rational": _rational_rows,
    "quant": _quant_rows,
    "toeplitz": _toeplitz_rows,
    "rpe": _rpe_rows,
    "hashattn": _hashattn_rows,
}


def _markdown(rows: list[dict[str, Any]], facts: dict[str, Any]) -> str:
    lines = [
        f"kernkit {facts['version']} on {platform.processor() or platform.machine()}, "
        f"SIMD {facts['simd']}, {facts['threads']} thread(s); "
        f"copy bandwidth {facts['copy_GBps']:.1f} GB/s",
        "",
        "| family | case | kernkit (M/s) | alternative | alternative (M/s) | speedup | alternative finite |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        alt = r.get("alternative_per_s")
        lines.append(
            f"| {r['family']} | {r['case']} | {r['kernkit_per_s'] / 1e6:.2f} | {r['alternative']} | "
            + (f"{alt / 1e6:.2f} | {r['speedup']:.1f}x | {100 * r['alternative_finite']:.0f}% |"
               if alt else "n/a | n/a | n/a |")
        )
    return "\n".join(lines)


def run(quick: bool = True, out: str | None = None, threads: int = 1) -> str:
    """Run every family's quick benchmark; returns the Markdown table."""
    if out:  # before the run, so that a bad folder does not cost the results
        os.makedirs(out, exist_ok=True)
    previous = get_num_threads()
    set_num_threads(threads)
    try:
        rows = [row for fam in FAMILIES.values() for row in fam(quick)]
    finally:
        set_num_threads(previous)
    facts = info()
    facts["threads"] = threads
    facts["copy_GBps"] = copy_bandwidth() / 1e9
    table = _markdown(rows, facts)
    if out:
        with open(os.path.join(out, "bench_quick.json"), "w") as f:
            json.dump({"info": facts, "rows": rows}, f, indent=2)
        _plot(rows, os.path.join(out, "bench_quick.png"))
    return table


def _plot(rows: list[dict[str, Any]], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    labels = [r["case"] for r in rows]
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.5))
    ax.barh(y - 0.2, [r["kernkit_per_s"] / 1e6 for r in rows], 0.4, label="kernkit")
    ax.barh(y + 0.2, [r.get("alternative_per_s", 0) / 1e6 for r in rows], 0.4, label="alternative")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("million evaluations / s (single thread)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
