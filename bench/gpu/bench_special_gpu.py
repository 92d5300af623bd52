"""GPU throughput of the log-Bessel functions next to the card's memory-bandwidth limit.

For each function and dtype: evaluations/s on 2^24 elements (random log-uniform v, x, and
the same points sorted by order, which keeps warps on one branch), the bytes it must move
(read v and x, write the result) as a fraction of the bandwidth of a large device copy.
The float32 functions work in double internally (kernkit/math/log_bessel.hpp) with fewer Debye
terms than float64 needs; the row "float32 via float64" times the full float64 function with a
cast in and out, to show what the shortened float path saves. A float32-arithmetic path does not
exist yet. SciPy's np.log(ive(v, x)) + x on one core of the same machine gives the
speedup next to the paper's 77x (its GPU vs SciPy median).
Writes special_gpu.json and special_gpu.md into --out.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch

import kernkit
from cuda_timing import copy_bandwidth, cuda_time


def scipy_evals_per_s(v: np.ndarray, x: np.ndarray, n: int = 1 << 18) -> float:
    """What users run today, np.log(scipy.special.ive(v, x)) + x, on one host core."""
    import time

    from scipy import special
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            np.log(special.ive(v[:n], x[:n])) + x[:n]
            best = min(best, time.perf_counter() - t0)
    return n / best


REGIONS = {  # name: (v range, x range), log-uniform unless the low end is 0
    "small v, x <= 30": ((0.0, 30.0), (0.0, 30.0)),
    "v <= 30, x in [1e3, 1e6]": ((0.0, 30.0), (1e3, 1e6)),
    "v in [1e3, 1e5], x in [1, 1e3]": ((1e3, 1e5), (1.0, 1e3)),
    "turning x = v (1 +- 0.1), v in [1e2, 1e5]": ((1e2, 1e5), None),
    "huge v, x in [1e6, 1e300]": ((1e6, 1e300), (1e6, 1e300)),
    # one class (Debye, 5 terms, kind F) in every tile: the tiles skip the sort (cuda/special.cu)
    "one class: v = 5, x in [1000, 1010]": ((5.0, 5.0), (1000.0, 1010.0)),
}


def region_rows(n: int = 1 << 22) -> list[dict]:
    rng = np.random.default_rng(1)

    def draw(lo, hi):
        if lo == 0.0:
            return rng.uniform(lo, hi, n)
        return np.exp(rng.uniform(np.log(lo), np.log(hi), n))

    out = []
    for region, (vr, xr) in REGIONS.items():
        v = draw(*vr)
        x = v * rng.uniform(0.9, 1.1, n) if xr is None else draw(*xr)
        for name in ("log_iv", "log_kv", "bessel_iv_ratio"):
            row = {"region": region, "function": name}
            for dtype in (torch.float32, torch.float64):
                tv, tx = torch.from_numpy(v).to("cuda", dtype), torch.from_numpy(x).to("cuda", dtype)
                f = getattr(kernkit, name)
                row[str(dtype).replace("torch.", "")] = n / cuda_time(lambda: f(tv, tx), repeat=10)
            out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/gpu")
    ap.add_argument("--n", type=int, default=1 << 24)
    args = ap.parse_args()
    n = args.n
    bw = copy_bandwidth()
    rng = np.random.default_rng(0)
    v = np.exp(rng.uniform(np.log(1e-2), np.log(1e5), n))
    x = np.exp(rng.uniform(np.log(1e-3), np.log(1e6), n))
    rows = []
    scipy_rate = scipy_evals_per_s(v, x)
    for dtype in (torch.float32, torch.float64):
        tv, tx = torch.from_numpy(v).to("cuda", dtype), torch.from_numpy(x).to("cuda", dtype)
        order = torch.argsort(tv)
        sv, sx = tv[order].contiguous(), tx[order].contiguous()
        out = torch.empty_like(tv)
        for name in ("log_iv", "log_kv", "bessel_iv_ratio"):
            f = getattr(kernkit, name)
            for layout, (a, b) in (("random", (tv, tx)), ("sorted by v", (sv, sx))):
                t = cuda_time(lambda: f(a, b))
                nbytes = 3 * n * tv.element_size()
                rows.append({"function": name, "dtype": str(dtype).replace("torch.", ""),
                             "layout": layout, "evals_per_s": n / t, "seconds": t,
                             "fraction_of_bandwidth": nbytes / t / bw})
                if dtype == torch.float32 and layout == "random":
                    t = cuda_time(lambda: f(a.double(), b.double()).float())
                    rows.append({"function": name, "dtype": "float32 via float64", "layout": layout,
                                 "evals_per_s": n / t, "seconds": t,
                                 "fraction_of_bandwidth": nbytes / t / bw})
        del out
    regions = region_rows()
    for r in rows:
        r["x_scipy_1core"] = r["evals_per_s"] / scipy_rate if r["function"] == "log_iv" else None
    info = {"device": torch.cuda.get_device_name(), "copy_bandwidth_GBps": bw / 1e9, "n": n,
            "scipy_log_ive_evals_per_s_1core": scipy_rate,
            "kernkit": kernkit.info()}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "special_gpu.json"), "w") as fh:
        json.dump({"info": info, "rows": rows, "regions": regions}, fh, indent=2)
    lines = [f"{info['device']}, copy bandwidth {bw / 1e9:.0f} GB/s, n = {n}; SciPy log(ive)+x on one "
             f"host core: {scipy_rate / 1e6:.2f} M evals/s (same points)", "",
             "| function | dtype | layout | G evals/s | ms | fraction of bandwidth | x SciPy (1 core) |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        ratio = f"{r['x_scipy_1core']:.0f}" if r["x_scipy_1core"] else ""
        lines.append(f"| {r['function']} | {r['dtype']} | {r['layout']} | {r['evals_per_s'] / 1e9:.2f} | "
                     f"{r['seconds'] * 1e3:.3f} | {100 * r['fraction_of_bandwidth']:.1f}% | {ratio} |")
    lines += ["", "Per region (uniform points of one region, float32 / float64, G evals/s): where the "
              "time goes.", "", "| region | function | float32 | float64 |", "|---|---|---:|---:|"]
    for r in regions:
        lines.append(f"| {r['region']} | {r['function']} | {r['float32'] / 1e9:.2f} | {r['float64'] / 1e9:.2f} |")
    text = "\n".join(lines)
    with open(os.path.join(args.out, "special_gpu.md"), "w") as fh:
        fh.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
