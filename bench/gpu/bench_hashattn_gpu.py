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
3. per-call breakdown at n = 1024 and 65536 (float16): the whole call timed by events, the device
   time alone (the call captured in a CUDA graph: host overhead drops out), the host time of a
   call (enqueueing calls back to back), the same through the nb::ndarray / DLPack import that
   non-torch arrays take, each kernel's device time (torch.profiler) and the Python functions
   that cost most on the host (cProfile). A few seconds in all.
Writes hashattn_gpu.json and hashattn_gpu.md into --out.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import time

import numpy as np
import torch
import torch.nn.functional as F

import kernkit
from kernkit.torch import pack_codes
from cuda_timing import copy_bandwidth, cuda_time, graph_time, host_time

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


def kernel_times(f, repeat: int = 5) -> dict[str, float]:
    """Device microseconds per call of each kernel / memset / copy f() launches (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    f()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(repeat):
            f()
        torch.cuda.synchronize()
    res: dict[str, float] = {}
    for e in prof.key_averages():
        us = getattr(e, "self_device_time_total", None)
        if us is None:
            us = getattr(e, "self_cuda_time_total", 0.0)
        if us and us > 0:
            m = re.search(r"(\w+_kernel)\b", e.key)
            name = m.group(1) if m else e.key[:60]
            res[name] = res.get(name, 0.0) + us / repeat
    return res


def python_profile(f, repeat: int = 200, top: int = 8) -> list[list]:
    """The host functions with the most own time over `repeat` calls: [name, us per call]."""
    f()
    torch.cuda.synchronize()
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(repeat):
        f()
    pr.disable()
    torch.cuda.synchronize()
    st = pstats.Stats(pr).stats
    rows = sorted(((v[2], k) for k, v in st.items()), reverse=True)[:top]
    return [[f"{os.path.basename(k[0])}:{k[1]}({k[2]})", t / repeat * 1e6] for t, k in rows]


def breakdown(n: int) -> dict:
    """Where one float16 call's time goes at length n (8 heads, b = 16, d = 64)."""
    sq = torch.where(torch.rand(1, H, n, BITS, device="cuda") < 0.5, 1.0, -1.0)
    h = pack_codes(sq)
    v = torch.randn(1, H, n, D, device="cuda").half()
    call = lambda: kernkit.hashed_attention(h, h, v, BITS)  # noqa: E731
    r: dict = {"n": n}
    r["call_ms"] = cuda_time(call) * 1e3
    g = graph_time(call, repeat=20)
    r["graph_ms"] = None if g is None else g * 1e3
    r["host_us"] = host_time(call) * 1e6
    ptr = kernkit._dispatch.device_pointer
    kernkit._dispatch.device_pointer = lambda a: None  # the nb::ndarray (DLPack) path
    try:
        r["call_dlpack_ms"] = cuda_time(call) * 1e3
        r["host_dlpack_us"] = host_time(call) * 1e6
    finally:
        kernkit._dispatch.device_pointer = ptr
    try:
        r["kernels_us"] = kernel_times(call)
    except Exception as e:  # noqa: BLE001 - the profiler is optional here
        r["kernels_us"] = {"profiler failed": str(e)[:80]}
    if n <= 4096:
        r["host_profile_us"] = python_profile(call)
    r["read_write_once_ms"] = (2 * v.numel() * 2 + 2 * h.numel() * h.element_size()) / BW * 1e3
    print(r, flush=True)
    return r


BW = 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/gpu")
    args = ap.parse_args()
    t0 = time.time()
    rng = np.random.default_rng(0)
    res = {"device": torch.cuda.get_device_name(), "checks": check(rng), "timing": []}
    global BW
    bw = BW = copy_bandwidth()
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
    t_b = time.time()
    res["breakdown"] = [breakdown(n) for n in (1024, 65536)]
    res["breakdown_seconds"] = time.time() - t_b
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
    L += ["", "Per-call breakdown, float16 (ms unless marked): call = CUDA events around the Python "
          "call; device = the call in a CUDA graph (host overhead gone); host = host time per call, "
          "calls enqueued back to back; dlpack = the same through the nb::ndarray import that "
          "non-torch arrays take; read+write once = v and codes read, out written, at copy bandwidth.", "",
          "| n | call | device (graph) | host us | call dlpack | host dlpack us | read+write once | kernels (device us per call) |",
          "|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in res["breakdown"]:
        ks = ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k}: {v}" for k, v in r["kernels_us"].items())
        gms = "n/a" if r["graph_ms"] is None else f"{r['graph_ms']:.4f}"
        L.append(f"| {r['n']} | {r['call_ms']:.4f} | {gms} | {r['host_us']:.1f} | {r['call_dlpack_ms']:.4f} | "
                 f"{r['host_dlpack_us']:.1f} | {r['read_write_once_ms']:.4f} | {ks} |")
    for r in res["breakdown"]:
        if "host_profile_us" in r:
            L.append("")
            L.append(f"Host functions with the most own time per call at n = {r['n']} (cProfile, us; "
                     "profiling inflates them): "
                     + "; ".join(f"{name} {us:.1f}" for name, us in r["host_profile_us"]))
    L.append("")
    L.append(f"breakdown {res['breakdown_seconds']:.1f} s; total {res['seconds']:.1f} s")
    with open(os.path.join(args.out, "hashattn_gpu.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print("\n".join(L))
    print("kernkit", kernkit.__version__)


if __name__ == "__main__":
    main()
