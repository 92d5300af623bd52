#!/usr/bin/env python3
"""kernkit.toeplitz_matmul side by side with scipy.linalg.matmul_toeplitz and a plain scipy.fft
implementation of the same circulant-embedding product, on 1 and 2 threads.

Run::

    python bench/toeplitz/bench_toeplitz.py [--quick] [--out bench/results]

* Products ``T(c, r) @ X`` for n = 256 .. 65536 and k = 1, 64, 256 columns, float64 (and float32
  for kernkit and the scipy.fft implementation), 1 and 2 threads (scipy ``workers=``, kernkit
  ``set_num_threads``). The scipy.fft implementation pads to ``next_fast_len(2n - 1, real=True)``,
  transforms X along axis 0 (``rfft(X, L, axis=0)``), multiplies and transforms back: what a user
  writes by hand. The memory-traffic floor is reading X and writing Y once at the copy bandwidth
  of a large numpy copy.
* The crossover of the direct O(n^2 k) sum and the FFT path (both kernkit's, 1 thread).
* Accuracy of each against the float64 result of scipy.linalg.matmul_toeplitz.

Writes ``toeplitz.json`` and ``toeplitz.md`` into --out. The machine is shared: compare ratios
within one run.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from pathlib import Path

import numpy as np
import scipy
import scipy.fft as sfft
import scipy.linalg as sl

import kernkit
from kernkit import _core
from kernkit._bench import best_time, copy_bandwidth

HERE = Path(__file__).resolve().parent


def fft_product(c: np.ndarray, r: np.ndarray, X: np.ndarray, workers: int) -> np.ndarray:
    n = len(c)
    L = sfft.next_fast_len(2 * n - 1, real=True)
    h = np.zeros(L, X.dtype)
    h[:n] = c
    h[L - n + 1:] = r[1:][::-1]
    H = sfft.rfft(h)
    Xf = sfft.rfft(X, L, axis=0, workers=workers)
    Xf *= H[:, None]
    return sfft.irfft(Xf, L, axis=0, workers=workers)[:n]


def product_rows(cases: list[tuple[int, int]], threads: list[int], repeat: int) -> list[dict]:
    rows = []
    bw = copy_bandwidth()
    for n, k in cases:
        rng = np.random.default_rng(n + k)
        c = rng.standard_normal(n)
        r = rng.standard_normal(n)
        r[0] = c[0]
        X = rng.standard_normal((n, k))
        ref = sl.matmul_toeplitz((c, r), X)
        scale = np.abs(ref).max()
        c32, r32, X32 = c.astype(np.float32), r.astype(np.float32), X.astype(np.float32)
        for t in threads:
            kernkit.set_num_threads(t)
            mt = 0.05
            rep = repeat if n * k < 2**22 else max(2, repeat // 2)
            row = {"n": n, "k": k, "threads": t}
            row["kernkit_f64_s"] = best_time(lambda: kernkit.toeplitz_matmul(c, r, X), repeat=rep, min_time=mt)
            row["kernkit_f32_s"] = best_time(lambda: kernkit.toeplitz_matmul(c32, r32, X32), repeat=rep, min_time=mt)
            row["scipy_matmul_toeplitz_s"] = best_time(lambda: sl.matmul_toeplitz((c, r), X, workers=t), repeat=rep, min_time=mt)
            row["scipy_fft_f64_s"] = best_time(lambda: fft_product(c, r, X, t), repeat=rep, min_time=mt)
            row["scipy_fft_f32_s"] = best_time(lambda: fft_product(c32, r32, X32, t), repeat=rep, min_time=mt)
            row["speedup_vs_matmul_toeplitz"] = row["scipy_matmul_toeplitz_s"] / row["kernkit_f64_s"]
            row["speedup_vs_scipy_fft"] = row["scipy_fft_f64_s"] / row["kernkit_f64_s"]
            row["memory_floor_f64_s"] = 2 * X.nbytes / bw
            row["bandwidth_fraction_f64"] = row["memory_floor_f64_s"] / row["kernkit_f64_s"]
            row["err_kernkit_f64"] = float(np.abs(kernkit.toeplitz_matmul(c, r, X) - ref).max() / scale)
            row["err_kernkit_f32"] = float(np.abs(kernkit.toeplitz_matmul(c32, r32, X32) - ref).max() / scale)
            row["err_scipy_fft_f64"] = float(np.abs(fft_product(c, r, X, 1) - ref).max() / scale)
            rows.append(row)
            print(f"n={n} k={k} threads={t}: kernkit {row['kernkit_f64_s'] * 1e3:.3f} ms, "
                  f"matmul_toeplitz {row['scipy_matmul_toeplitz_s'] * 1e3:.3f} ms "
                  f"({row['speedup_vs_matmul_toeplitz']:.1f}x), scipy.fft {row['scipy_fft_f64_s'] * 1e3:.3f} ms "
                  f"({row['speedup_vs_scipy_fft']:.1f}x)", flush=True)
    return rows


def crossover_rows(repeat: int) -> list[dict]:
    kernkit.set_num_threads(1)
    rows = []
    for dt in (np.float64, np.float32):
        for k in (1, 16, 256):
            for n in (8, 12, 16, 20, 24, 32, 48, 64, 128):
                rng = np.random.default_rng(n)
                c = rng.standard_normal((1, n)).astype(dt)
                X = rng.standard_normal((1, n, k)).astype(dt)
                Y = np.empty_like(X)
                td = best_time(lambda: _core.toeplitz_matmul(c, c, False, X, Y, 1), repeat=repeat, min_time=0.01)
                tf = best_time(lambda: _core.toeplitz_matmul(c, c, False, X, Y, 2), repeat=repeat, min_time=0.01)
                rows.append({"dtype": np.dtype(dt).name, "k": k, "n": n, "direct_s": td, "fft_s": tf,
                             "auto_uses_direct": bool(_core.toeplitz_use_direct(n, k))})
    return rows


def markdown(prod: list[dict], cross: list[dict], facts: dict) -> str:
    out = [
        f"kernkit.toeplitz_matmul vs scipy.linalg.matmul_toeplitz (pocketfft; pads to 2n-1, loops over "
        f"columns' batches in Python) and a hand-written scipy.fft product (pads to next_fast_len); "
        f"{facts['cpu']}, SIMD {facts['simd']}, copy bandwidth {facts['copy_GBps']:.1f} GB/s; {facts['date']}.",
        "",
        "Times in ms (float64 unless marked). speedup = other / kernkit float64. floor = reading X and "
        "writing Y once at the copy bandwidth; bw% = floor / kernkit time. err = max |Y - Y_ref| / max "
        "|Y_ref| vs matmul_toeplitz in float64.",
        "",
        "| n | k | threads | kernkit f64 | kernkit f32 | matmul_toeplitz | speedup | scipy.fft f64 | speedup | scipy.fft f32 | bw% | err f64 | err f32 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in prod:
        out.append(
            f"| {r['n']} | {r['k']} | {r['threads']} | {r['kernkit_f64_s'] * 1e3:.3f} | {r['kernkit_f32_s'] * 1e3:.3f} | "
            f"{r['scipy_matmul_toeplitz_s'] * 1e3:.3f} | {r['speedup_vs_matmul_toeplitz']:.1f}x | "
            f"{r['scipy_fft_f64_s'] * 1e3:.3f} | {r['speedup_vs_scipy_fft']:.1f}x | {r['scipy_fft_f32_s'] * 1e3:.3f} | "
            f"{100 * r['bandwidth_fraction_f64']:.0f}% | {r['err_kernkit_f64']:.1e} | {r['err_kernkit_f32']:.1e} |")
    if cross:
        out += ["", "Direct O(n^2 k) sum vs the FFT path (kernkit, 1 thread): time direct / time FFT "
                "(< 1: direct faster; * = the automatic choice takes the direct sum).", ""]
        ns = sorted({r["n"] for r in cross})
        out.append("| dtype | k | " + " | ".join(f"n={n}" for n in ns) + " |")
        out.append("|---|---:|" + "---:|" * len(ns))
        for dt in ("float64", "float32"):
            for k in sorted({r["k"] for r in cross}):
                cells = []
                for n in ns:
                    rr = [r for r in cross if r["dtype"] == dt and r["k"] == k and r["n"] == n]
                    if rr:
                        x = rr[0]
                        cells.append(f"{x['direct_s'] / x['fft_s']:.2f}{'*' if x['auto_uses_direct'] else ''}")
                out.append(f"| {dt} | {k} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, default=HERE.parent / "results")
    args = p.parse_args(argv)
    if args.quick:
        cases = [(256, 64), (1024, 1), (4096, 64)]
        threads, repeat = [1], 3
    else:
        cases = [(n, k) for n in (256, 1024, 4096, 16384) for k in (1, 64, 256)] + [(65536, 1), (65536, 64)]
        threads, repeat = [1, 2], 5
    prev = kernkit.get_num_threads()
    try:
        prod = product_rows(cases, threads, repeat)
        cross = crossover_rows(3) if not args.quick else []
    finally:
        kernkit.set_num_threads(prev)
    facts = {"cpu": kernkit.info()["cpu"], "simd": kernkit.info().get("simd", "?"),
             "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
             "kernkit": kernkit.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
             "copy_GBps": copy_bandwidth() / 1e9}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "toeplitz.json").write_text(json.dumps({"info": facts, "products": prod, "crossover": cross}, indent=1))
    md = markdown(prod, cross, facts)
    (args.out / "toeplitz.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
