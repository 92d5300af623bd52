"""GPU benchmark of kernkit's group-rational activation (KAT GR-KAN, form A, degrees (5, 4)).

At (B*L, D) in {(197*128, 768), (197*128, 3072)}, one shared numerator, G = 8 denominator
groups, float32 and bfloat16 inputs: forward and forward + backward of

* kernkit (``kernkit.rational`` / ``kernkit.rational_backward``; deterministic two-pass
  coefficient-gradient reduction),
* PyTorch eager (form A by Horner on a (N, G, D/G) view, autograd backward),
* KAT's Triton kernel (``kat_rational.rational_triton.RationalTriton1DGroup``) and FlashKAT
  (``FLASHKAT_PATH`` pointing at a checkout of OSU-STARLAB/FlashKAT) when importable; "absent"
  otherwise (the GPU machine has no internet: they must be installed there beforehand),

next to the card's memory bandwidth (a large device copy): forward moves 8 B/element for float32
(read x, write y), forward + backward 20 B/element. Also checks kernkit against a float64
evaluation on the device and that two backward runs are bitwise identical.
Writes rational_gpu.json and rational_gpu.md into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

import kernkit
import kernkit.torch as kt
from cuda_timing import copy_bandwidth, cuda_time, graph_time, host_profile, host_time

PER = "KERNKIT_RATIONAL_BWD_PER_THREAD"  # elements per thread of a backward block (cuda/rational.cu)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rational"))
from bench_rational import torch_eager_form_a  # noqa: E402  (the same eager reference as on the CPU)


def _flashkat_path() -> None:
    path = os.environ.get("FLASHKAT_PATH")
    if path and path not in sys.path:
        sys.path.insert(0, path)


def load_kat():
    """KAT's Triton kernel: from kat_rational (rational_kat_cu) or FlashKAT's copy of it.
    Call: RationalTriton1DGroup.apply(x, num (G, 6), den (G, 4), G); x (B, L, D)."""
    _flashkat_path()
    for mod in ("kat_rational.rational_triton", "rational_kat.kernels.rational_triton"):
        try:
            RationalTriton1DGroup = __import__(mod, fromlist=["RationalTriton1DGroup"]).RationalTriton1DGroup
            return lambda x, a, b: RationalTriton1DGroup.apply(
                x, a.expand(b.shape[0], -1).contiguous(), b, b.shape[0])
        except Exception as e:  # noqa: BLE001 - any import failure means "absent"
            err = e
    print(f"KAT Triton: absent ({type(err).__name__}: {err})")
    return None


def load_flashkat():
    """FlashKAT (FLASHKAT_PATH = a checkout of OSU-STARLAB/FlashKAT): FlashRationalTriton1DGroup
    .apply(x (B, L, D), num (G, 6), den (G, 4)), numerator repeated over the groups."""
    _flashkat_path()
    try:
        from rational_kat.kernels.flash_rational_triton import FlashRationalTriton1DGroup  # type: ignore

        return lambda x, a, b: FlashRationalTriton1DGroup.apply(
            x, a.expand(b.shape[0], -1).contiguous(), b)
    except Exception as e:  # noqa: BLE001
        print(f"FlashKAT: absent ({type(e).__name__}: {e})")
        return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/gpu")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    bw = copy_bandwidth(1 << 30)
    kat, flash = load_kat(), load_flashkat()
    G = 8
    a0, b0 = kernkit.rational_init("swish", (5, 4), "A")
    rows_n = 197 * (16 if args.quick else 128)
    results = []
    for D in (768, 3072):
        gen = torch.Generator(device="cuda").manual_seed(0)
        x32 = torch.randn(rows_n, D, device="cuda", generator=gen)
        g32 = torch.randn(rows_n, D, device="cuda", generator=gen)
        a = torch.tensor(a0[None], dtype=torch.float32, device="cuda")
        b = torch.tensor(np.tile(b0, (G, 1)), dtype=torch.float32, device="cuda")
        b = b + 0.01 * torch.randn(b.shape, device="cuda", generator=gen)
        # correctness against float64 on the device, and determinism
        y = kernkit.rational(x32, a, b)
        y64 = torch_eager_form_a(torch, x32.double(), a.double(), b.double())
        err_y = float((y.double() - y64).abs().max() / y64.abs().max())
        d1 = kernkit.rational_backward(g32, x32, a, b)
        d2 = kernkit.rational_backward(g32, x32, a, b)
        determ = all(torch.equal(u, v) for u, v in zip(d1, d2))
        xr = x32.double().requires_grad_()
        ar, br = a.double().requires_grad_(), b.double().requires_grad_()
        torch_eager_form_a(torch, xr, ar, br).backward(g32.double())
        errs = [float((u.double() - v).abs().max() / v.abs().max()) for u, v in zip(d1, (xr.grad, ar.grad, br.grad))]
        del xr, ar, br, y64
        for dtype in (torch.float32, torch.bfloat16):
            x, g = x32.to(dtype), g32.to(dtype)
            esize = x.element_size()
            n = x.numel()
            row = {"shape": [rows_n, D], "dtype": str(dtype).replace("torch.", ""), "groups": G,
                   "err_y_f32": err_y, "err_grads_f32": errs, "deterministic": determ}
            row["kernkit_fwd_s"] = cuda_time(lambda: kernkit.rational(x, a, b))
            row["kernkit_fwdbwd_s"] = cuda_time(lambda: (kernkit.rational(x, a, b),
                                                         kernkit.rational_backward(g, x, a, b)))
            # device time without the Python call overhead (CUDA graph replay)
            row["kernkit_fwd_graph_s"] = graph_time(lambda: kernkit.rational(x, a, b), repeat=20)
            row["kernkit_fwdbwd_graph_s"] = graph_time(lambda: (kernkit.rational(x, a, b),
                                                                kernkit.rational_backward(g, x, a, b)), repeat=20)
            row["kernkit_fwd_bw"] = 2 * esize * n / row["kernkit_fwd_s"] / bw
            row["kernkit_fwdbwd_bw"] = 5 * esize * n / row["kernkit_fwdbwd_s"] / bw
            row["kernkit_fwd_graph_bw"] = 2 * esize * n / row["kernkit_fwd_graph_s"] / bw
            row["kernkit_fwdbwd_graph_bw"] = 5 * esize * n / row["kernkit_fwdbwd_graph_s"] / bw
            # host time per call, calls enqueued back to back (kernkit.torch: through autograd)
            xt, at, bt = x.clone().requires_grad_(), a.clone().requires_grad_(), b.clone().requires_grad_()
            row["kernkit_fwd_host_us"] = host_time(lambda: kernkit.rational(x, a, b)) * 1e6
            row["kernkit_bwd_host_us"] = host_time(lambda: kernkit.rational_backward(g, x, a, b)) * 1e6
            row["torch_fwdbwd_host_us"] = host_time(lambda: kt.rational(xt, at, bt).backward(g)) * 1e6
            # what that host time is made of (torch.profiler; a waiting call shows at the top)
            row["torch_fwdbwd_host_profile"] = host_profile(lambda: kt.rational(xt, at, bt).backward(g))
            # longer backward blocks: the same dx, coefficient gradients up to the summation order
            ref = kernkit.rational_backward(g, x, a, b)
            for per in ("32", "64"):
                os.environ[PER] = per
                dv = kernkit.rational_backward(g, x, a, b)
                row[f"bwd{per}_dx_equal"] = bool(torch.equal(dv[0], ref[0]))
                row[f"bwd{per}_coef_rel"] = max(float((u - v).abs().max() / v.abs().max())
                                                for u, v in zip(dv[1:], ref[1:]))
                row[f"kernkit_fwdbwd_graph_{per}_s"] = graph_time(
                    lambda: (kernkit.rational(x, a, b), kernkit.rational_backward(g, x, a, b)), repeat=20)
                del os.environ[PER]
            xe = x.clone().requires_grad_()
            ae, be = a.clone().requires_grad_(), b.clone().requires_grad_()

            def eager_fb():
                torch_eager_form_a(torch, xe, ae.to(dtype), be.to(dtype)).backward(g)

            with torch.no_grad():
                row["eager_fwd_s"] = cuda_time(lambda: torch_eager_form_a(torch, x, a.to(dtype), b.to(dtype)))
            row["eager_fwdbwd_s"] = cuda_time(eager_fb)
            for name, fn in (("kat_triton", kat), ("flashkat", flash)):
                if fn is None:
                    continue
                try:  # both take (B, L, D) inputs: (128, 197, D)
                    x3, g3 = x.view(-1, 197, D), g.view(-1, 197, D)
                    xk = x3.clone().requires_grad_()
                    ak, bk = a.clone().requires_grad_(), b.clone().requires_grad_()
                    with torch.no_grad():
                        row[f"{name}_fwd_s"] = cuda_time(lambda: fn(x3, a, b), repeat=10)
                    row[f"{name}_fwdbwd_s"] = cuda_time(lambda: fn(xk, ak, bk).backward(g3), repeat=5)
                    if name == "flashkat":
                        with torch.no_grad():
                            row["flashkat_fwd_graph_s"] = graph_time(lambda: fn(x3, a, b), repeat=20)
                except Exception as e:  # noqa: BLE001
                    row[f"{name}_error"] = f"{type(e).__name__}: {e}"
            results.append(row)
            print(json.dumps(row), flush=True)
    info = {"device": torch.cuda.get_device_name(), "copy_GBps": bw / 1e9, "torch": torch.__version__,
            "kernkit": kernkit.info()}
    with open(os.path.join(args.out, "rational_gpu.json"), "w") as f:
        json.dump({"info": info, "rows": results}, f, indent=2, default=str)

    def ms(r, k):
        return f"{1e3 * r[k]:.3f}" if r.get(k) is not None else "absent"

    lines = [f"# rational on {info['device']} (copy bandwidth {bw / 1e9:.0f} GB/s)", "",
             "Form A, (5, 4), G_num = 1, G_den = 8; times in ms (median of 20); BW = fraction of "
             "the device copy bandwidth (fwd 2, fwd+bwd 5 element sizes moved per element).", "",
             "Graph columns: device time per call from CUDA-graph replay (no Python overhead); the "
             "BW columns use the per-call times, the BW (graph) columns the graph times.", "",
             "| (B·L, D) | dtype | kernkit fwd | kernkit fwd+bwd | kernkit fwd (graph) | kernkit fwd+bwd (graph) | FlashKAT fwd (graph) | BW fwd | BW fwd+bwd | BW fwd (graph) | BW fwd+bwd (graph) | eager fwd | eager fwd+bwd | KAT Triton fwd | KAT fwd+bwd | FlashKAT fwd | FlashKAT fwd+bwd | deterministic | max rel err f32 (y, dx, da, db) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in results:
        lines.append(
            f"| ({r['shape'][0]}, {r['shape'][1]}) | {r['dtype']} | {ms(r, 'kernkit_fwd_s')} | "
            f"{ms(r, 'kernkit_fwdbwd_s')} | {ms(r, 'kernkit_fwd_graph_s')} | {ms(r, 'kernkit_fwdbwd_graph_s')} | "
            f"{ms(r, 'flashkat_fwd_graph_s')} | {100 * r['kernkit_fwd_bw']:.0f}% | {100 * r['kernkit_fwdbwd_bw']:.0f}% | "
            f"{100 * r['kernkit_fwd_graph_bw']:.0f}% | {100 * r['kernkit_fwdbwd_graph_bw']:.0f}% | "
            f"{ms(r, 'eager_fwd_s')} | {ms(r, 'eager_fwdbwd_s')} | {ms(r, 'kat_triton_fwd_s')} | "
            f"{ms(r, 'kat_triton_fwdbwd_s')} | {ms(r, 'flashkat_fwd_s')} | {ms(r, 'flashkat_fwdbwd_s')} | "
            f"{r['deterministic']} | {r['err_y_f32']:.1e}, " + ", ".join(f"{e:.1e}" for e in r["err_grads_f32"]) + " |")
    lines += ["", "Host time per call (us; calls enqueued back to back: kernkit.rational, kernkit.rational_backward, "
              "and kernkit.torch.rational forward + backward through autograd) and forward + backward "
              "device time (graph, ms) with backward blocks of 16 (default), 32 and 64 elements per thread "
              "(KERNKIT_RATIONAL_BWD_PER_THREAD; dx bitwise equal to the default's, coefficient gradients "
              "within the relative difference shown).", "",
              "| (B·L, D) | dtype | host fwd | host bwd | host torch fwd+bwd | fwd+bwd 16 | fwd+bwd 32 | fwd+bwd 64 | dx equal, coef rel (32; 64) |",
              "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        lines.append(
            f"| ({r['shape'][0]}, {r['shape'][1]}) | {r['dtype']} | {r['kernkit_fwd_host_us']:.1f} | "
            f"{r['kernkit_bwd_host_us']:.1f} | {r['torch_fwdbwd_host_us']:.1f} | {ms(r, 'kernkit_fwdbwd_graph_s')} | "
            f"{ms(r, 'kernkit_fwdbwd_graph_32_s')} | {ms(r, 'kernkit_fwdbwd_graph_64_s')} | "
            f"{r['bwd32_dx_equal']}, {r['bwd32_coef_rel']:.1e}; {r['bwd64_dx_equal']}, {r['bwd64_coef_rel']:.1e} |")
    for r in results[:2]:  # the first shape, float32 and bfloat16
        lines += ["", f"kernkit.torch.rational forward + backward at ({r['shape'][0]}, {r['shape'][1]}) "
                  f"{r['dtype']}: host time per step by operation (torch.profiler, 5 steps back to back)", "",
                  "| operation | calls per step | self CPU us | CPU total us |", "|---|---:|---:|---:|"]
        lines += [f"| {e['name']} | {e['calls_per_step']:.1f} | {e['self_cpu_us']:.1f} | {e['cpu_total_us']:.1f} |"
                  for e in r["torch_fwdbwd_host_profile"]]
    with open(os.path.join(args.out, "rational_gpu.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
