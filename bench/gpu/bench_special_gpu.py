"""GPU throughput of the log-Bessel functions next to the card's memory-bandwidth limit.

For each function and dtype: evaluations/s on 2^24 elements (random log-uniform v, x, and
the same points sorted by order, which keeps warps on one branch), the bytes it must move
(read v and x, write the result) as a fraction of the bandwidth of a large device copy.
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
        del out
    info = {"device": torch.cuda.get_device_name(), "copy_bandwidth_GBps": bw / 1e9, "n": n,
            "kernkit": kernkit.info()}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "special_gpu.json"), "w") as fh:
        json.dump({"info": info, "rows": rows}, fh, indent=2)
    lines = [f"{info['device']}, copy bandwidth {bw / 1e9:.0f} GB/s, n = {n}", "",
             "| function | dtype | layout | G evals/s | ms | fraction of bandwidth |",
             "|---|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['function']} | {r['dtype']} | {r['layout']} | {r['evals_per_s'] / 1e9:.2f} | "
                     f"{r['seconds'] * 1e3:.3f} | {100 * r['fraction_of_bandwidth']:.1f}% |")
    text = "\n".join(lines)
    with open(os.path.join(args.out, "special_gpu.md"), "w") as fh:
        fh.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
