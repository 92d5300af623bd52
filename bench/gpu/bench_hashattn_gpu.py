"""GPU check and timing of kernkit.hashed_attention's CUDA kernels (prepared; run by bench/gpu/run.sh).

1. correctness: the CUDA path (torch tensors) against the dense float64 formula and against the
   CPU kernel, float64 / float32 / float16 / bfloat16 values, both modes, causal and not,
   b = 8 / 16 / 33 / 64, d = 64 and 72 (a partial column tile), n = 1000 / 2000;
2. timing at 8 heads, b = 16, d = 64, batch 1, n = 1024 .. 65536, next to torch SDPA
   (float16, non-causal and causal) and the reference's float32 einsum formulation
   (ziplab/EcoFormer ``linear_attention_bias``: ±1 codes as float32), with the time to read the
   inputs once (values + packed codes) at the bandwidth of a large device copy.
   Targets (issue #6): >= 10x faster than the einsum formulation at n = 65536 and within 2x of
   reading the inputs once.
Writes hashattn_gpu.json and hashattn_gpu.md into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import kernkit
from kernkit.torch import pack_codes
from cuda_timing import copy_bandwidth, cuda_time

H, BITS, D = 8, 16, 64


def dense_ref(sq, sk, v, c, causal, mode):
    G = np.matmul(sq, np.swapaxes(sk, -1, -2))
    n = G.shape[-1]
    mask = np.tril(np.ones((n, n))) if causal else np.ones((n, n))
    if mode == "consistent":
        W = (G + c) * mask
        return (W @ v) / W.sum(-1, keepdims=True)
    W = G * mask
    return (W @ v + c * v) / (W.sum(-1, keepdims=True) + mask.sum(-1)[:, None] * c)


def check(rng) -> list[dict]:
    out = []
    for bits in (8, 16, 33, 64):
        for n, d in ((1000, 64), (2000, 72)):
            sq = np.where(rng.random((2, 2, n, bits)) < 0.5, 1.0, -1.0)
            sk = np.where(rng.random((2, 2, n, bits)) < 0.5, 1.0, -1.0)
            v = rng.standard_normal((2, 2, n, d)) + 0.2
            hq_c, hk_c = kernkit.hashattn.pack(sq), kernkit.hashattn.pack(sk)
            hq = pack_codes(torch.from_numpy(sq)).cuda()
            hk = pack_codes(torch.from_numpy(sk)).cuda()
            for causal in (False, True):
                for mode in ("consistent", "ecoformer"):
                    ref = dense_ref(sq, sk, v, bits + 1.0, causal, mode)
                    cpu = kernkit.hashed_attention(hq_c, hk_c, v, bits, causal=causal, mode=mode)
                    for dt in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
                        vt = torch.from_numpy(v).to(device="cuda", dtype=dt)
                        o = kernkit.hashed_attention(hq, hk, vt, bits, causal=causal, mode=mode)
                        o64 = o.double().cpu().numpy()
                        scale = np.abs(ref).max()
                        out.append({"bits": bits, "n": n, "d": d, "causal": causal, "mode": mode,
                                    "dtype": str(dt).replace("torch.", ""),
                                    "rel_err_vs_f64": float(np.abs(o64 - ref).max() / scale),
                                    "rel_diff_vs_cpu": float(np.abs(o64 - cpu).max() / scale)})
    return out


def einsum_reference(sf, v, c):
    """ziplab/EcoFormer linear_attention_bias, consistent normalisation, float32, autocast off."""
    n = v.shape[-2]
    k_cumsum = sf.sum(dim=-2)
    d_inv = 1.0 / (torch.einsum("...nd,...d->...n", sf, k_cumsum) + n * c)
    context = torch.einsum("...nd,...ne->...de", sf, v)
    out = torch.einsum("...de,...nd->...ne", context, sf) + c * v.sum(-2, keepdim=True)
    return torch.einsum("...ne,...n->...ne", out, d_inv)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/gpu")
    args = ap.parse_args()
    t0 = time.time()
    rng = np.random.default_rng(0)
    res = {"device": torch.cuda.get_device_name(), "checks": check(rng), "timing": []}
    bw = copy_bandwidth()
    res["copy_GBps"] = bw / 1e9
    c = BITS + 1.0
    for n in (1024, 4096, 16384, 65536):
        sq = torch.where(torch.rand(1, H, n, BITS, device="cuda") < 0.5, 1.0, -1.0)
        h = pack_codes(sq)
        v32 = torch.randn(1, H, n, D, device="cuda")
        v16 = v32.half()
        row = {"n": n}
        row["kernkit_f16_ms"] = cuda_time(lambda: kernkit.hashed_attention(h, h, v16, BITS)) * 1e3
        row["kernkit_f32_ms"] = cuda_time(lambda: kernkit.hashed_attention(h, h, v32, BITS)) * 1e3
        row["kernkit_causal_f16_ms"] = cuda_time(
            lambda: kernkit.hashed_attention(h, h, v16, BITS, causal=True)) * 1e3
        row["einsum_f32_ms"] = cuda_time(lambda: einsum_reference(sq, v32, c)) * 1e3
        q = torch.randn(1, H, n, D, device="cuda", dtype=torch.float16)
        k = torch.randn(1, H, n, D, device="cuda", dtype=torch.float16)
        row["sdpa_f16_ms"] = cuda_time(lambda: F.scaled_dot_product_attention(q, k, v16), repeat=5) * 1e3
        row["sdpa_causal_f16_ms"] = cuda_time(
            lambda: F.scaled_dot_product_attention(q, k, v16, is_causal=True), repeat=5) * 1e3
        in16 = v16.numel() * 2 + 2 * h.numel() * h.element_size()
        in32 = v32.numel() * 4 + 2 * h.numel() * h.element_size()
        row["read_once_f16_ms"] = in16 / bw * 1e3
        row["read_once_f32_ms"] = in32 / bw * 1e3
        row["read_write_once_f16_ms"] = (in16 + v16.numel() * 2) / bw * 1e3
        row["speedup_vs_einsum_f16"] = row["einsum_f32_ms"] / row["kernkit_f16_ms"]
        row["speedup_vs_einsum_f32"] = row["einsum_f32_ms"] / row["kernkit_f32_ms"]
        row["speedup_vs_sdpa_f16"] = row["sdpa_f16_ms"] / row["kernkit_f16_ms"]
        row["x_read_once_f16"] = row["kernkit_f16_ms"] / row["read_once_f16_ms"]
        row["x_read_once_f32"] = row["kernkit_f32_ms"] / row["read_once_f32_ms"]
        # the kernel and the einsum agree (float32 values)
        o = kernkit.hashed_attention(h, h, v32, BITS)
        row["max_rel_diff_vs_einsum"] = float(((o - einsum_reference(sq, v32, c)).abs().max()
                                               / o.abs().max()).item())
        res["timing"].append(row)
        print(row, flush=True)
    res["seconds"] = time.time() - t0
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "hashattn_gpu.json"), "w") as f:
        json.dump(res, f, indent=1)
    worst = max(res["checks"], key=lambda r: r["rel_err_vs_f64"] / {"float64": 1e-12, "float32": 1e-5,
                                                                      "float16": 4e-3, "bfloat16": 3e-2}[r["dtype"]])
    L = [f"# kernkit.hashed_attention CUDA on {res['device']} (copy {res['copy_GBps']:.0f} GB/s)", "",
         "max relative error vs float64 by value dtype over "
         f"{len(res['checks'])} checks: "
         + ", ".join(f"{dt} {max(r['rel_err_vs_f64'] for r in res['checks'] if r['dtype'] == dt):.2e}"
                     for dt in ("float64", "float32", "float16", "bfloat16"))
         + f" (worst relative to its dtype: {worst})", "",
         f"{H} heads, b = {BITS}, d = {D}, batch 1; ms (median of CUDA-event timings).", "",
         "| n | kernkit f16 | kernkit f32 | kernkit causal f16 | einsum f32 (reference) | SDPA f16 | SDPA causal f16 | "
         "read once f16 | x einsum (f16) | x einsum (f32) | x SDPA | x read-once f16 | x read-once f32 |",
         "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["timing"]:
        L.append(f"| {r['n']} | {r['kernkit_f16_ms']:.4f} | {r['kernkit_f32_ms']:.4f} | {r['kernkit_causal_f16_ms']:.4f} | "
                 f"{r['einsum_f32_ms']:.4f} | {r['sdpa_f16_ms']:.4f} | {r['sdpa_causal_f16_ms']:.4f} | "
                 f"{r['read_once_f16_ms']:.4f} | {r['speedup_vs_einsum_f16']:.1f} | {r['speedup_vs_einsum_f32']:.1f} | "
                 f"{r['speedup_vs_sdpa_f16']:.1f} | {r['x_read_once_f16']:.2f} | {r['x_read_once_f32']:.2f} |")
    L.append("")
    L.append(f"total {res['seconds']:.1f} s")
    with open(os.path.join(args.out, "hashattn_gpu.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print("\n".join(L))
    print("kernkit", kernkit.__version__)


if __name__ == "__main__":
    main()
