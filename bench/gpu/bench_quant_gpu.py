"""GPU check and timing of kernkit.quant's CUDA LUT matmul.

1. correctness: ``kernkit.quant.matmul`` on CUDA (torch) against the CPU kernel and against
   float64 ``x @ W_hat.T`` for 2/3/4/8-bit codes, per-group / per-channel / per-tensor exponents;
2. timing at batch 1..32 for W (out x in) = 4096 x 4096, 11008 x 4096 and 4096 x 11008, 4-bit g64
   (batches 1-4 also with KERNKIT_QUANT_GEMV_WARPS=8, the default's blocks of 4 warps doubled), next to
   torch float16 cuBLAS ``x @ W.T`` and the bytes the packed codes move as a fraction of the
   bandwidth of a large device copy.
Writes quant_gpu.json and quant_gpu.md into --out.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os

import numpy as np
import torch

import kernkit
from kernkit import quant as Q
from cuda_timing import copy_bandwidth, cuda_time, graph_time, host_time

WARPS = "KERNKIT_QUANT_GEMV_WARPS"  # warps per block of the batch 1-4 kernel (cuda/quant.cu)


def check(rng) -> list[dict]:
    out = []
    W = (0.02 * rng.standard_t(3, size=(300, 256))).astype(np.float32)
    for bits, warps in itertools.product((2, 3, 4, 8), ("8", "4")):
        os.environ[WARPS] = warps
        for kw in (dict(granularity="group", group_size=64), dict(granularity="channel", a_granularity="channel"),
                   dict(granularity="tensor"), dict(granularity="group", group_size=32, a_granularity="group")):
            qw = Q.quantize(W, bits, full_range=True, **kw)
            for dt, B in itertools.product((np.float32, np.float64), (1, 3, 5)):
                x = rng.standard_normal((B, 256)).astype(dt)
                xd = torch.from_numpy(x).cuda()
                yd = Q.matmul(xd, qw.to(xd)).cpu().numpy()
                ref = x.astype(np.float64) @ qw.dequantize().astype(np.float64).T
                err = float(np.abs(yd - ref).max() / np.abs(ref).max())
                cpu = float(np.abs(yd - Q.matmul(x, qw)).max() / np.abs(ref).max())
                out.append({"bits": bits, "gemv_warps": warps, "case": str(kw), "dtype": np.dtype(dt).name,
                            "batch": B, "rel_err_vs_f64": err,
                            "rel_diff_vs_cpu": cpu})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/gpu")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    res = {"device": torch.cuda.get_device_name(), "checks": check(rng), "timing": []}
    bw = copy_bandwidth()
    res["copy_GBps"] = bw / 1e9
    os.environ.pop(WARPS, None)
    for rows, cols in ((4096, 4096), (11008, 4096), (4096, 11008)):
        W = (0.02 * rng.standard_normal((rows, cols))).astype(np.float32)
        qw = Q.quantize(W, 4, a=0.7, granularity="group", group_size=64)
        Wh = torch.from_numpy(W).cuda().half()
        # Weight copies cycled through the graph so that neither side is served from L2 (50 MB):
        # at least 128 MB of packed codes.
        ncopy = max(2, -(-(128 << 20) // qw.packed.nbytes))
        whs = [Wh.clone() for _ in range(ncopy)]
        qws = [copy.deepcopy(qw) for _ in range(ncopy)]
        for B in (1, 2, 4, 8, 16, 32):
            x = torch.randn(B, cols, device="cuda")
            qd = qw.to(x)
            t_q = cuda_time(lambda: Q.matmul(x, qd))
            xh = x.half()
            t_h = cuda_time(lambda: xh @ Wh.T)
            qds, cw = itertools.cycle([q.to(x) for q in qws]), itertools.cycle(whs)
            g_q = graph_time(lambda: Q.matmul(x, next(qds)), repeat=2 * ncopy)
            g_h = graph_time(lambda: xh @ next(cw).T, repeat=2 * ncopy)
            g_q8 = None
            if B <= 4:  # the batch 1-4 kernel with blocks of 8 warps instead of 4
                os.environ[WARPS] = "8"
                g_q8 = graph_time(lambda: Q.matmul(x, next(qds)), repeat=2 * ncopy)
                del os.environ[WARPS]
            host = {}
            if B == 1:  # host time per call, calls enqueued back to back
                host = {"lut_host_us": host_time(lambda: Q.matmul(x, qd)) * 1e6,
                        "fp16_cublas_host_us": host_time(lambda: xh @ Wh.T) * 1e6}
            moved = qw.packed.nbytes + 4 * (qw.scales.size + B * (rows + cols))
            res["timing"].append({"shape": f"{rows}x{cols}", "batch": B, "lut_ms": t_q * 1e3, "fp16_cublas_ms": t_h * 1e3,
                                  "speedup_vs_fp16": t_h / t_q, "lut_bandwidth_fraction": moved / t_q / bw,
                                  "lut_graph_ms": g_q and g_q * 1e3, "lut_graph_8warps_ms": g_q8 and g_q8 * 1e3, "fp16_cublas_graph_ms": g_h and g_h * 1e3,
                                  "graph_speedup_vs_fp16": g_q and g_h and g_h / g_q,
                                  "graph_lut_bandwidth_fraction": g_q and moved / g_q / bw, **host})
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "quant_gpu.json"), "w") as f:
        json.dump(res, f, indent=1)
    L = [f"# kernkit.quant CUDA LUT matmul on {res['device']} (copy {res['copy_GBps']:.0f} GB/s)", "",
         f"max relative error vs float64 over {len(res['checks'])} checks: "
         f"{max(c['rel_err_vs_f64'] for c in res['checks']):.2e}", "",
         "Per call from Python (events around each call, host overhead included) and device time "
         "per call (50 calls captured in one CUDA graph).", "",
         "| W (out x in) | batch | LUT W4 g64 ms | fp16 cuBLAS ms | speedup | LUT graph ms | cuBLAS graph ms | graph speedup | LUT bandwidth fraction (graph) | LUT graph ms, 8-warp blocks |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def f(v, fmt):
        return format(v, fmt) if v is not None else "n/a"

    for r in res["timing"]:
        L.append(f"| {r['shape']} | {r['batch']} | {r['lut_ms']:.4f} | {r['fp16_cublas_ms']:.4f} | {r['speedup_vs_fp16']:.2f} | "
                 f"{f(r['lut_graph_ms'], '.4f')} | {f(r['fp16_cublas_graph_ms'], '.4f')} | {f(r['graph_speedup_vs_fp16'], '.2f')} | "
                 f"{f(r['graph_lut_bandwidth_fraction'], '.2f')} | {f(r['lut_graph_8warps_ms'], '.4f')} |")
    L += ["", "Host time per call at batch 1 (us; calls enqueued back to back): "
          + "; ".join(f"{r['shape']}: LUT {r['lut_host_us']:.1f}, cuBLAS {r['fp16_cublas_host_us']:.1f}"
                      for r in res["timing"] if "lut_host_us" in r)]
    with open(os.path.join(args.out, "quant_gpu.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print("\n".join(L))
    print("kernkit", kernkit.__version__)


if __name__ == "__main__":
    main()
