#!/usr/bin/env python3
"""Scalar vs vector: kernkit's log I / log K at each SIMD level this CPU has.

Run::

    python bench/special/bench_simd.py [--out bench/results] [--points 20000]

``KERNKIT_SIMD`` (baseline | avx2 | avx512) caps the instruction set the runtime dispatch picks,
so each level runs in its own process on the same 8 x 8 grid of (v, x) cells as
bench_special.py, single-threaded; SciPy's ``log(ive)+x`` / ``log(kve)-x`` on the same points is
the common yardstick. Writes special_simd.json and special_simd.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

V_RANGE, X_RANGE, CELLS = (1e-2, 1e5), (1e-3, 1e6), 8
LEVELS = ("baseline", "avx2", "avx512")


def grid_rates(points: int, repeats: int, scipy_too: bool) -> dict[str, list[float]]:
    """Evaluations/s per cell (row-major) for kernkit (and SciPy) in this process."""
    import time

    import kernkit

    kernkit.set_num_threads(1)
    rng = np.random.default_rng(0)
    ve = np.logspace(np.log10(V_RANGE[0]), np.log10(V_RANGE[1]), CELLS + 1)
    xe = np.logspace(np.log10(X_RANGE[0]), np.log10(X_RANGE[1]), CELLS + 1)
    calls = {"log_iv": kernkit.log_iv, "log_kv": kernkit.log_kv}
    if scipy_too:
        import scipy.special as sc

        calls["scipy_log_iv"] = lambda v, x: np.log(sc.ive(v, x)) + x
        calls["scipy_log_kv"] = lambda v, x: np.log(sc.kve(v, x)) - x
    rates: dict[str, list[float]] = {k: [] for k in calls}
    for i in range(CELLS):
        for j in range(CELLS):
            v = np.exp(rng.uniform(np.log(ve[i]), np.log(ve[i + 1]), points))
            x = np.exp(rng.uniform(np.log(xe[j]), np.log(xe[j + 1]), points))
            for name, f in calls.items():
                with np.errstate(all="ignore"):
                    f(v, x)
                    best = min(_timed(f, v, x, time) for _ in range(repeats))
                rates[name].append(points / best)
    return rates


def output_digest() -> str:
    """SHA-256 of log_iv and log_kv on fixed points over the whole box: equal digests across
    levels mean every level computed the same bits."""
    import hashlib

    import kernkit

    rng = np.random.default_rng(1)
    v = np.exp(rng.uniform(np.log(1e-6), np.log(1e5), 200_000))
    x = np.exp(rng.uniform(np.log(1e-300), np.log(1e300), 200_000))
    h = hashlib.sha256()
    for f in (kernkit.log_iv, kernkit.log_kv, kernkit.log_ive, kernkit.log_kve):
        h.update(f(v, x).tobytes())
        h.update(f(v.astype(np.float32), np.minimum(x, 3e38).astype(np.float32)).tobytes())
    return h.hexdigest()


def _timed(f, v, x, time) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    f(v, x)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--points", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        res = grid_rates(args.points, args.repeats, scipy_too=False)
        print(json.dumps({"rates": res, "digest": output_digest()}))
        return
    import kernkit

    top = kernkit.info()["simd"]
    levels = LEVELS[: LEVELS.index(top) + 1]
    scipy_rates = grid_rates(args.points, args.repeats, scipy_too=True)
    results = {}
    for level in levels:
        env = dict(os.environ, KERNKIT_SIMD=level)
        out = subprocess.run([sys.executable, __file__, "--child", "--points", str(args.points),
                              "--repeats", str(args.repeats)], env=env, capture_output=True,
                             text=True, check=True).stdout
        results[level] = json.loads(out)
    same_bits = len({results[level]["digest"] for level in levels}) == 1
    results = {level: results[level]["rates"] for level in levels}
    rows = []
    for level in levels:
        row = {"level": level}
        for fn in ("log_iv", "log_kv"):
            ours = np.array(results[level][fn])
            theirs = np.array(scipy_rates["scipy_" + fn])
            base = np.array(results["baseline"][fn])
            row[fn + "_median_Mps"] = float(np.median(ours) / 1e6)
            row[fn + "_speedup_vs_scipy"] = float(np.median(ours / theirs))
            row[fn + "_speedup_vs_baseline"] = float(np.median(ours / base))
        rows.append(row)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "special_simd.json"), "w") as fh:
        json.dump({"info": kernkit.info(), "points_per_cell": args.points, "same_bits": same_bits,
                   "rows": rows}, fh, indent=2)
    lines = ["# kernkit log I / log K by SIMD level (1 thread)", "",
             f"`bench/special/bench_simd.py`; 8x8 cells, {args.points} points each; medians over cells.",
             f"CPU top level: {top}. All levels give bit-identical results on 200,000 points over "
             f"the whole domain (float64 and float32, four functions): {'yes' if same_bits else 'NO'}.", "",
             "| level | log_iv M/s | vs SciPy | vs baseline | log_kv M/s | vs SciPy | vs baseline |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['level']} | {r['log_iv_median_Mps']:.1f} | {r['log_iv_speedup_vs_scipy']:.1f}x | "
                     f"{r['log_iv_speedup_vs_baseline']:.2f}x | {r['log_kv_median_Mps']:.1f} | "
                     f"{r['log_kv_speedup_vs_scipy']:.1f}x | {r['log_kv_speedup_vs_baseline']:.2f}x |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "special_simd.md"), "w") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
