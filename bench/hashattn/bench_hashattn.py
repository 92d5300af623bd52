#!/usr/bin/env python3
"""kernkit.hashed_attention (EcoFormer binary-hash attention) on the CPU, side by side.

Run::

    python bench/hashattn/bench_hashattn.py [--quick] [--out bench/results]

One batch of H = 8 heads, b = 16 bits, d = 64, float32 values, n up to 65536 tokens:

* kernkit: ``kernkit.hashed_attention`` on packed uint16 codes (non-causal and causal);
* the reference's float formulation (ziplab/EcoFormer ``linear_attention_bias``: ±1 codes as
  float32, ``context = einsum(k, v)``, ``out = einsum(context, q) + ...``) in PyTorch eager on
  the CPU (torch's BLAS) and in numpy (``matmul``, BLAS);
* numpy softmax attention ``softmax(q k^T / sqrt(d)) v`` with float32 q, k of d = 64 (skipped
  where the H n^2 score matrix would exceed ~1.1 GB; the table says so);
* kernkit with a preallocated ``out=`` (no fresh output pages to fault in on every call);
* the memory bound: the time to read the inputs once (values + codes) and to read them and
  write the output once, at the bandwidth of a large numpy copy.

Also times the kernel under each SIMD level (``KERNKIT_SIMD``, one subprocess each) and prints
the energy model (``kernkit.hashattn.energy_model``) of the three attention kinds.
Writes ``hashattn.json`` and ``hashattn.md`` (+ ``hashattn.png``) into --out.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

import kernkit
from kernkit import hashattn as ha
from kernkit._bench import best_time, copy_bandwidth

H, BITS, D = 8, 16, 64
SOFTMAX_MAX_BYTES = 1.1e9


def make_inputs(n: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    s = np.where(rng.random((1, H, n, BITS)) < 0.5, 1, -1).astype(np.int8)
    h = ha.pack(s.astype(np.float32))
    v = rng.standard_normal((1, H, n, D)).astype(np.float32)
    return {"s": s, "h": h, "v": v}


def einsum_numpy(sf: np.ndarray, v: np.ndarray, c: float) -> np.ndarray:
    """The reference's linear_attention_bias in numpy float32 (consistent normalisation)."""
    n = v.shape[-2]
    ksum = sf.sum(-2)                                   # (.., b)
    den = np.einsum("...nb,...b->...n", sf, ksum) + c * n
    ctx = np.matmul(np.swapaxes(sf, -1, -2), v)         # (.., b, d)
    out = np.matmul(sf, ctx) + c * v.sum(-2, keepdims=True)
    return out / den[..., None]


def einsum_torch_fn(torch: Any, sf: Any, v: Any, c: float) -> Any:
    n = v.shape[-2]
    ksum = sf.sum(dim=-2)
    den = torch.einsum("...nd,...d->...n", sf, ksum) + n * c
    ctx = torch.einsum("...nd,...ne->...de", sf, v)
    out = torch.einsum("...de,...nd->...ne", ctx, sf) + c * v.sum(-2, keepdim=True)
    return out / den.unsqueeze(-1)


def softmax_numpy(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * np.float32(1.0 / np.sqrt(q.shape[-1]))
    s -= s.max(-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(-1, keepdims=True)
    return np.matmul(s, v)


def time_simd_levels(n: int) -> dict[str, float]:
    """Seconds per call of the non-causal kernel under each KERNKIT_SIMD level (subprocesses)."""
    code = (
        "import numpy as np, kernkit, json; from kernkit._bench import best_time;"
        f"kernkit.set_num_threads({kernkit.get_num_threads()});"
        "from kernkit import hashattn as ha;"
        f"rng=np.random.default_rng(0); n={n};"
        f"h=ha.pack(rng.standard_normal((1,{H},n,{BITS})).astype(np.float32));"
        f"v=rng.standard_normal((1,{H},n,{D})).astype(np.float32);"
        f"t=best_time(lambda: kernkit.hashed_attention(h,h,v,{BITS}), repeat=3);"
        "print(json.dumps({'simd': kernkit.info()['simd'], 't': t}))"
    )
    res: dict[str, float] = {}
    for level in ("baseline", "avx2", "avx512"):
        env = dict(os.environ, KERNKIT_SIMD=level)
        p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        if p.returncode != 0:
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        if r["simd"] == level:
            res[level] = r["t"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads for kernkit, torch and the BLAS (1: the machine is shared)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results"))
    args = ap.parse_args()
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    kernkit.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.threads)
    except ImportError:  # pragma: no cover
        pass

    sizes = [256, 1024, 4096] if args.quick else [256, 1024, 4096, 16384, 65536]
    bw = copy_bandwidth()
    threads = kernkit.get_num_threads()
    c = BITS + 1.0
    rows: list[dict[str, Any]] = []
    for n in sizes:
        inp = make_inputs(n)
        h, v, s = inp["h"], inp["v"], inp["s"]
        sf = s.astype(np.float32)
        mt = 0.02 if n < 16384 else 0.2
        rep = 5 if n < 16384 else 3
        t_k = best_time(lambda: kernkit.hashed_attention(h, h, v, BITS), repeat=rep, min_time=mt)
        buf = np.empty_like(v)
        t_ko = best_time(lambda: kernkit.hashed_attention(h, h, v, BITS, out=buf), repeat=rep, min_time=mt)
        t_kc = best_time(lambda: kernkit.hashed_attention(h, h, v, BITS, causal=True), repeat=rep,
                         min_time=mt)
        t_np = best_time(lambda: einsum_numpy(sf, v, c), repeat=rep, min_time=mt)
        err = float(np.max(np.abs(kernkit.hashed_attention(h, h, v, BITS) - einsum_numpy(
            sf.astype(np.float64), v.astype(np.float64), c))))
        row: dict[str, Any] = {"n": n, "kernkit_s": t_k, "kernkit_out_s": t_ko, "kernkit_causal_s": t_kc,
                               "einsum_numpy_s": t_np, "max_abs_diff_vs_float64": err}
        if torch is not None:
            st, vt = torch.from_numpy(sf), torch.from_numpy(v)
            with torch.no_grad():
                row["einsum_torch_s"] = best_time(lambda: einsum_torch_fn(torch, st, vt, c),
                                                  repeat=rep, min_time=mt)
        score_bytes = H * n * n * 4
        if score_bytes <= SOFTMAX_MAX_BYTES:
            rng = np.random.default_rng(1)
            q = rng.standard_normal((1, H, n, D)).astype(np.float32)
            k = rng.standard_normal((1, H, n, D)).astype(np.float32)
            row["softmax_numpy_s"] = best_time(lambda: softmax_numpy(q, k, v), repeat=3 if n < 4096 else 2,
                                               min_time=mt)
        else:
            row["softmax_numpy_s"] = None
            row["softmax_skipped"] = f"H n^2 float32 scores = {score_bytes / 1e9:.1f} GB"
        in_bytes = v.nbytes + 2 * h.nbytes
        row["read_once_s"] = in_bytes / bw
        row["read_write_once_s"] = (in_bytes + v.nbytes) / bw
        rows.append(row)
        print(f"n={n}: kernkit {t_k * 1e3:.2f} ms, causal {t_kc * 1e3:.2f} ms, numpy einsum "
              f"{t_np * 1e3:.2f} ms, torch einsum "
              f"{row.get('einsum_torch_s', float('nan')) * 1e3:.2f} ms, softmax "
              f"{(row['softmax_numpy_s'] or float('nan')) * 1e3:.2f} ms, read once "
              f"{row['read_once_s'] * 1e3:.2f} ms", flush=True)

    simd_n = 4096 if args.quick else 16384
    simd = time_simd_levels(simd_n)
    energy = []
    for n in (196, 3136, 16384, 65536):
        e = {k: ha.energy_model(k, n, 512, 8) for k in ("softmax", "linear", "hashed")}  # type: ignore[arg-type]
        energy.append({"n": n, **{f"{k}_uJ": v["energy_pj"] * 1e-6 for k, v in e.items()},
                       **{f"{k}_muls": v["muls"] for k, v in e.items()},
                       **{f"{k}_adds": v["adds"] for k, v in e.items()}})

    facts = kernkit.info()
    meta = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": kernkit.info()["cpu"], "simd": facts["simd"],
            "threads": threads, "copy_GBps": bw / 1e9, "heads": H, "bits": BITS, "d": D,
            "torch": getattr(torch, "__version__", None), "quick": args.quick}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "hashattn.json").write_text(json.dumps({"meta": meta, "rows": rows, "simd": simd,
                                                   "simd_n": simd_n, "energy": energy}, indent=2))

    def ms(x: float | None) -> str:
        return "skipped" if x is None else f"{x * 1e3:.3g}"

    lines = [
        "# hashattn: binary-hash attention on the CPU",
        "",
        f"{meta['date']}, {meta['machine']}, SIMD {meta['simd']}, {threads} thread(s), copy "
        f"bandwidth {bw / 1e9:.1f} GB/s, torch {meta['torch']}. One batch, {H} heads, "
        f"b = {BITS} bits, d = {D}, float32 values; times in ms (best of several).",
        "",
        "| n | kernkit | kernkit, out= | kernkit causal | torch einsum (reference formulation) | numpy einsum/matmul | "
        "numpy softmax | read inputs once | read + write once | vs torch einsum | vs numpy softmax | "
        "x read-once |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        te = r.get("einsum_torch_s")
        sm = r["softmax_numpy_s"]
        lines.append(
            f"| {r['n']} | {ms(r['kernkit_s'])} | {ms(r['kernkit_out_s'])} | {ms(r['kernkit_causal_s'])} | {ms(te)} | "
            f"{ms(r['einsum_numpy_s'])} | {ms(sm) if sm else 'skipped (' + r['softmax_skipped'] + ')'} | "
            f"{ms(r['read_once_s'])} | {ms(r['read_write_once_s'])} | "
            f"{(te / r['kernkit_s']) if te else float('nan'):.1f}x | "
            f"{(sm / r['kernkit_s']) if sm else float('nan'):.1f}x | "
            f"{r['kernkit_s'] / r['read_once_s']:.1f} ({r['kernkit_out_s'] / r['read_once_s']:.1f} with out=) |")
    lines += ["", f"SIMD levels (non-causal, n = {simd_n}, same inputs; ms): "
              + ", ".join(f"{k} {v * 1e3:.3g}" for k, v in simd.items()), "",
              "## Energy model (EcoFormer's 45 nm counts: 3.7 pJ/mul, 0.9 pJ/add; dim 512, 8 heads)",
              "", "| n | softmax (uJ) | linear / Performer (uJ) | hashed (uJ) | hashed / softmax |",
              "|---:|---:|---:|---:|---:|"]
    for e in energy:
        lines.append(f"| {e['n']} | {e['softmax_uJ']:.4g} | {e['linear_uJ']:.4g} | {e['hashed_uJ']:.4g} | "
                     f"{e['hashed_uJ'] / e['softmax_uJ']:.3g} |")
    (out / "hashattn.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.5, 4))
        ns = [r["n"] for r in rows]
        ax.loglog(ns, [r["kernkit_s"] * 1e3 for r in rows], "o-", label="kernkit")
        ax.loglog(ns, [r["kernkit_causal_s"] * 1e3 for r in rows], "o--", label="kernkit causal")
        if torch is not None:
            ax.loglog(ns, [r["einsum_torch_s"] * 1e3 for r in rows], "s-", label="torch einsum (reference)")
        ax.loglog(ns, [r["einsum_numpy_s"] * 1e3 for r in rows], "s--", label="numpy matmul")
        sm = [(r["n"], r["softmax_numpy_s"] * 1e3) for r in rows if r["softmax_numpy_s"]]
        if sm:
            ax.loglog(*zip(*sm), "^-", label="numpy softmax")
        ax.loglog(ns, [r["read_once_s"] * 1e3 for r in rows], "k:", label="read inputs once")
        ax.set_xlabel("tokens n")
        ax.set_ylabel("ms per call (8 heads, b=16, d=64)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "hashattn.png", dpi=110)
    except ImportError:
        pass


if __name__ == "__main__":
    main()
