#!/usr/bin/env python3
"""kernkit.fft.rfft / irfft (our own FFT) side by side with scipy.fft (pocketfft, workers=1) and
numpy.fft, single-threaded, on powers of two 2^6..2^20, smooth 2^a 3^b 5^c sizes and primes.

Run::

    python bench/toeplitz/bench_fft.py [--quick] [--out bench/results]

Times are the best of several repeats of the public calls (Python overhead included for all
three; small sizes are dominated by it) and of kernkit's compiled call alone (``core``). The SIMD
variant in use is recorded; ``KERNKIT_SIMD=baseline`` (SSE2) measures the portable build.
Writes ``fft.json`` and ``fft.md`` (and ``fft.png`` with matplotlib) into --out.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from pathlib import Path

import numpy as np
import scipy.fft as sfft

import kernkit
from kernkit import _core
from kernkit import fft as kfft
from kernkit._bench import best_time

HERE = Path(__file__).resolve().parent

POW2 = [2**e for e in range(6, 21)]
SMOOTH = [1000, 3**7, 3**8, 3**10, 5**5, 5**6, 3**4 * 5**3, 2**10 * 3**3 * 5**2, 10**5, 3 * 2**16,
          7**5, 7 * 2**13, 13 * 2**12, 7 * 11 * 13 * 4]
PRIMES = [97, 1009, 7919]


def one(n: int, dtype: type, repeat: int) -> dict:
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(dtype)
    X = np.fft.rfft(x.astype(np.float64)).astype(np.complex64 if dtype == np.float32 else np.complex128)
    out = np.empty((1, n // 2 + 1), X.dtype)
    x2 = x[None]
    mt = 0.02 if n < 2**16 else 0.05
    t_k = best_time(lambda: kfft.rfft(x), repeat=repeat, min_time=mt)
    t_core = best_time(lambda: _core.fft_rfft(x2, n, out.view(dtype)), repeat=repeat, min_time=mt)
    t_s = best_time(lambda: sfft.rfft(x, workers=1), repeat=repeat, min_time=mt)
    t_np = best_time(lambda: np.fft.rfft(x), repeat=repeat, min_time=mt)
    t_ki = best_time(lambda: kfft.irfft(X, n), repeat=repeat, min_time=mt)
    t_si = best_time(lambda: sfft.irfft(X, n, workers=1), repeat=repeat, min_time=mt)
    ref = np.fft.rfft(x.astype(np.float64))
    err = float(np.abs(kfft.rfft(x) - ref).max() / np.abs(ref).max())
    return {"n": n, "dtype": np.dtype(dtype).name, "kernkit_s": t_k, "kernkit_core_s": t_core,
            "scipy_s": t_s, "numpy_s": t_np, "kernkit_irfft_s": t_ki, "scipy_irfft_s": t_si,
            "ratio_vs_scipy": t_k / t_s, "ratio_irfft_vs_scipy": t_ki / t_si, "max_rel_err": err}


BATCHES = [(1000, 64), (256, 256), (256, 1024), (64, 4096), (16, 65536), (100, 97)]


def batched(rows_n: tuple[int, int], dtype: type, repeat: int) -> dict:
    """rfft of a (rows, n) array along the last axis: scipy vectorizes across rows; kernkit
    transforms short rows several at a time (lanes), long rows one by one."""
    rows, n = rows_n
    x = np.random.default_rng(n).standard_normal((rows, n)).astype(dtype)
    X = np.fft.rfft(x.astype(np.float64)).astype(np.complex64 if dtype == np.float32 else np.complex128)
    t_k = best_time(lambda: kfft.rfft(x), repeat=repeat, min_time=0.05)
    t_s = best_time(lambda: sfft.rfft(x, workers=1), repeat=repeat, min_time=0.05)
    t_ki = best_time(lambda: kfft.irfft(X, n), repeat=repeat, min_time=0.05)
    t_si = best_time(lambda: sfft.irfft(X, n, workers=1), repeat=repeat, min_time=0.05)
    return {"rows": rows, "n": n, "dtype": np.dtype(dtype).name, "kernkit_s": t_k, "scipy_s": t_s,
            "kernkit_irfft_s": t_ki, "scipy_irfft_s": t_si, "ratio_vs_scipy": t_k / t_s,
            "ratio_irfft_vs_scipy": t_ki / t_si}


def markdown_batched(rows: list[dict]) -> str:
    lines = ["", "Batched: (rows, n) arrays along the last axis (us per call).", "",
             "| rows x n | dtype | kernkit rfft | scipy rfft | ratio | kernkit irfft | scipy irfft | ratio |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['rows']} x {r['n']} | {r['dtype']} | {r['kernkit_s'] * 1e6:.1f} | {r['scipy_s'] * 1e6:.1f} | "
                     f"{r['ratio_vs_scipy']:.2f} | {r['kernkit_irfft_s'] * 1e6:.1f} | {r['scipy_irfft_s'] * 1e6:.1f} | "
                     f"{r['ratio_irfft_vs_scipy']:.2f} |")
    return "\n".join(lines)


def markdown(rows: list[dict], facts: dict) -> str:
    lines = [
        f"kernkit.fft vs scipy.fft (pocketfft, workers=1) and numpy.fft, 1 thread; {facts['cpu']}, "
        f"SIMD {facts['simd']}; {facts['date']}.",
        "",
        "Time of one call (us; public Python calls for all; `core` = kernkit's compiled call alone). "
        "ratio = kernkit / scipy (< 1: kernkit faster). err = max |X - X_ref| / max |X_ref| against "
        "numpy.fft in float64.",
        "",
        "| n | dtype | kernkit rfft | core | scipy rfft | numpy rfft | ratio | kernkit irfft | scipy irfft | ratio | err |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['dtype']} | {r['kernkit_s'] * 1e6:.2f} | {r['kernkit_core_s'] * 1e6:.2f} | "
            f"{r['scipy_s'] * 1e6:.2f} | {r['numpy_s'] * 1e6:.2f} | {r['ratio_vs_scipy']:.2f} | "
            f"{r['kernkit_irfft_s'] * 1e6:.2f} | {r['scipy_irfft_s'] * 1e6:.2f} | {r['ratio_irfft_vs_scipy']:.2f} | "
            f"{r['max_rel_err']:.1e} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for dt, mk in (("float64", "o"), ("float32", "s")):
        rr = [r for r in rows if r["dtype"] == dt and r["n"] in POW2]
        if rr:
            ax.semilogx([r["n"] for r in rr], [r["ratio_vs_scipy"] for r in rr], mk + "-", label=f"rfft {dt}")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.axhline(1.5, color="red", lw=0.8, ls="--", label="target 1.5x")
    ax.set_xlabel("n (powers of two)")
    ax.set_ylabel("kernkit time / scipy.fft time")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, default=HERE.parent / "results")
    args = p.parse_args(argv)
    prev = kernkit.get_num_threads()
    kernkit.set_num_threads(1)
    sizes = (POW2[::3] + SMOOTH[:2] + PRIMES[:1]) if args.quick else (POW2 + SMOOTH + PRIMES)
    repeat = 3 if args.quick else 7
    rows = []
    try:
        for dt in (np.float64, np.float32):
            for n in sizes:
                rows.append(one(n, dt, repeat))
                r = rows[-1]
                print(f"{r['dtype']} n={n}: kernkit/scipy {r['ratio_vs_scipy']:.2f} (irfft {r['ratio_irfft_vs_scipy']:.2f}) err {r['max_rel_err']:.1e}", flush=True)
        brows = [batched(b, dt, repeat) for dt in (np.float64, np.float32)
                 for b in (BATCHES[:2] if args.quick else BATCHES)]
    finally:
        kernkit.set_num_threads(prev)
    facts = {"cpu": kernkit.info()["cpu"], "simd": kernkit.info().get("simd", "?"),
             "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
             "kernkit": kernkit.__version__, "numpy": np.__version__}
    import scipy

    facts["scipy"] = scipy.__version__
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fft.json").write_text(json.dumps({"info": facts, "rows": rows, "batched": brows}, indent=1))
    md = markdown(rows, facts) + "\n" + markdown_batched(brows)
    (args.out / "fft.md").write_text(md + "\n")
    plot(rows, args.out / "fft.png")
    print(md)


if __name__ == "__main__":
    main()
