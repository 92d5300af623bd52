#!/usr/bin/env python3
"""Side-by-side CPU benchmark of kernkit's group-rational activation (KAT's GR-KAN, form A).

Run::

    python bench/rational/bench_rational.py [--quick] [--out bench/results]

At ViT shapes (B*L, D) = (197*128, 768) and (197*128, 3072) (``--quick``: 197*16 rows),
float32, KAT's grouping (one shared numerator, G = 8 denominator groups), degrees (5, 4):

* forward ``kernkit.rational`` and forward + backward (``kernkit.rational`` then
  ``kernkit.rational_backward``), through the public API (outputs allocated per call) and
  through the core with preallocated outputs ("kernel");
* the same in PyTorch eager on the CPU (form A by Horner on a (N, G, D/G) view; backward by
  autograd), what a KAT user runs without a GPU;
* the fraction of the machine's memory bandwidth (a large numpy copy, read + write, measured in
  the same run): forward moves 8 bytes per element (read x, write y), forward + backward 20
  (the forward, then read x and grad_out, write dx).

Writes ``rational.json`` and ``rational.md`` into --out. Threads: all kernkit threads (and 1).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys

import numpy as np

import kernkit
from kernkit._bench import best_time, copy_bandwidth


def torch_eager_form_a(torch, x, a, b):
    """KAT form A in PyTorch ops: x (N, D), a (1 or G, m+1), b (G, n)."""
    N, D = x.shape
    G = b.shape[0]
    xg = x.view(N, G, D // G)
    A = a.expand(G, -1) if a.shape[0] == 1 else a
    m = A.shape[1] - 1
    p = A[:, m].view(G, 1).expand(N, G, 1)
    for k in range(m - 1, -1, -1):
        p = p * xg + A[:, k].view(G, 1)
    t = xg.abs()
    c = b.abs()
    n = c.shape[1]
    s = c[:, n - 1].view(G, 1)
    for k in range(n - 1, 0, -1):
        s = s * t + c[:, k - 1].view(G, 1)
    q = 1 + t * s
    return (p / q).view(N, D)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "results"))
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    try:
        import torch

        if args.no_torch:
            torch = None
    except ImportError:
        torch = None
    rows_n = 197 * (16 if args.quick else 128)
    shapes = [(rows_n, 768), (rows_n, 3072)]
    G = 8
    rng = np.random.default_rng(0)
    a0, b0 = kernkit.rational_init("swish", (5, 4), "A")
    a = a0[None].astype(np.float32)
    b = (np.tile(b0, (G, 1)) + 0.01 * rng.normal(size=(G, 4))).astype(np.float32)
    bw = copy_bandwidth(1 << 28)
    nthreads = kernkit.get_num_threads()
    rep = 3
    results = []
    for N, D in shapes:
        x = rng.normal(size=(N, D)).astype(np.float32)
        g = rng.normal(size=(N, D)).astype(np.float32)
        y = np.empty_like(x)
        dx = np.empty_like(x)
        dn, dd = np.empty_like(a), np.empty_like(b)
        n_el = N * D
        for nt in sorted({1, nthreads}):
            kernkit.set_num_threads(nt)
            t_fwd = best_time(lambda: kernkit.rational(x, a, b), repeat=rep, min_time=0.2)
            t_fb = best_time(lambda: (kernkit.rational(x, a, b), kernkit.rational_backward(g, x, a, b)),
                             repeat=rep, min_time=0.2)
            # kernel and copy interleaved, best of each: the machine is shared and noisy
            t_kf = t_kb = t_cp = float("inf")
            for _ in range(rep):
                t_kf = min(t_kf, best_time(lambda: kernkit._core.rational_forward(x, a, b, y, 0, N, D, 1),
                                           repeat=1, min_time=0.2))
                t_kb = min(t_kb, best_time(
                    lambda: kernkit._core.rational_backward(g, x, a, b, dx, dn, dd, 0, N, D, 1),
                    repeat=1, min_time=0.2))
                t_cp = min(t_cp, best_time(lambda: np.copyto(y, x), repeat=1, min_time=0.2))
            bw_here = 2 * x.nbytes / t_cp  # a copy of the same array size, same moment
            row = {"shape": [N, D], "groups": G, "threads": nt, "elements": n_el,
                   "kernkit_fwd_s": t_fwd, "kernkit_fwdbwd_s": t_fb,
                   "kernel_fwd_s": t_kf, "kernel_fwdbwd_s": t_kf + t_kb,
                   "copy_same_size_s": t_cp, "copy_GBps_here": bw_here / 1e9,
                   "kernel_fwd_bw_fraction": 8 * n_el / t_kf / bw_here,
                   "kernel_fwdbwd_bw_fraction": 20 * n_el / (t_kf + t_kb) / bw_here,
                   "api_fwd_bw_fraction": 8 * n_el / t_fwd / bw_here,
                   "api_fwdbwd_bw_fraction": 20 * n_el / t_fb / bw_here}
            if torch is not None:
                torch.set_num_threads(nt)
                tx = torch.from_numpy(x)
                tg = torch.from_numpy(g)
                ta = torch.from_numpy(a).requires_grad_()
                tb = torch.from_numpy(b).requires_grad_()
                txg = tx.clone().requires_grad_()

                def t_forward():
                    with torch.no_grad():
                        torch_eager_form_a(torch, tx, ta, tb)

                def t_fwdbwd():
                    out = torch_eager_form_a(torch, txg, ta, tb)
                    out.backward(tg)

                row["torch_fwd_s"] = best_time(t_forward, repeat=2, min_time=0.0)
                row["torch_fwdbwd_s"] = best_time(t_fwdbwd, repeat=2, min_time=0.0)
                row["speedup_fwd"] = row["torch_fwd_s"] / t_fwd
                row["speedup_fwdbwd"] = row["torch_fwdbwd_s"] / t_fb
                # agreement with the eager result (float32 both)
                with torch.no_grad():
                    ref = torch_eager_form_a(torch, tx.double(), ta.double(), tb.double()).numpy()
                row["max_rel_err_vs_float64"] = float(np.abs(kernkit.rational(x, a, b) - ref).max()
                                                      / np.abs(ref).max())
            results.append(row)
            print(json.dumps(row), flush=True)
        del x, g, y, dx
    kernkit.set_num_threads(0)
    info = kernkit.info()
    facts = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
             "machine": kernkit.info()["cpu"], "python": sys.version.split()[0],
             "kernkit": info, "copy_GBps": bw / 1e9, "torch": getattr(torch, "__version__", None),
             "quick": args.quick, "dtype": "float32", "form": "A", "degrees": [5, 4],
             "num_groups": 1, "den_groups": G}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "rational.json"), "w") as f:
        json.dump({"facts": facts, "rows": results}, f, indent=2, default=str)
    lines = [
        f"# rational (KAT GR-KAN, form A, (5, 4), G_num = 1, G_den = 8), float32, CPU",
        "",
        f"{facts['date']}, {facts['machine']}, SIMD {info.get('simd', '?')}; "
        f"copy bandwidth {bw / 1e9:.1f} GB/s (numpy copy, read + write); torch {facts['torch']}",
        "",
        "Times in ms (best of 3; torch best of 2). 'kernel' = core call with preallocated outputs "
        "(the API call adds the output allocation's page faults); bandwidth fraction = bytes "
        "moved (fwd 8 B/element, fwd+bwd 20 B/element) / time / bandwidth of np.copyto of the "
        "same array, measured interleaved with the kernel.",
        "",
        "| (B·L, D) | threads | kernkit fwd | kernkit fwd+bwd | torch eager fwd | torch eager fwd+bwd | speedup fwd | speedup fwd+bwd | kernel fwd (BW %) | kernel fwd+bwd (BW %) | copy GB/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        tf = f"{1e3 * r['torch_fwd_s']:.1f}" if "torch_fwd_s" in r else "n/a"
        tb_ = f"{1e3 * r['torch_fwdbwd_s']:.1f}" if "torch_fwdbwd_s" in r else "n/a"
        sf = f"{r['speedup_fwd']:.1f}x" if "speedup_fwd" in r else "n/a"
        sb = f"{r['speedup_fwdbwd']:.1f}x" if "speedup_fwdbwd" in r else "n/a"
        lines.append(
            f"| ({r['shape'][0]}, {r['shape'][1]}) | {r['threads']} | {1e3 * r['kernkit_fwd_s']:.1f} | "
            f"{1e3 * r['kernkit_fwdbwd_s']:.1f} | {tf} | {tb_} | {sf} | {sb} | "
            f"{1e3 * r['kernel_fwd_s']:.1f} ({100 * r['kernel_fwd_bw_fraction']:.0f}%) | "
            f"{1e3 * r['kernel_fwdbwd_s']:.1f} ({100 * r['kernel_fwdbwd_bw_fraction']:.0f}%) | "
            f"{r['copy_GBps_here']:.1f} |")
    lines += ["", "GPU (H200/H100: kernkit vs PyTorch eager, KAT Triton, FlashKAT) is measured by "
              "bench/gpu/bench_rational_gpu.py through bench/gpu/run.sh."]
    with open(os.path.join(args.out, "rational.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
