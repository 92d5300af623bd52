"""Plug points of the numpy encoder and the substitutions that need no kernkit family.

A :class:`Substitution` is what the report compares with the float32 model. It has two optional
parts, each a plain callable:

``attention(q, k, v, mask, layer) -> context``
    q, k, v: (B, H, T, d) float32, the *unscaled* projections of layer ``layer`` (0-based);
    mask: (B, T) bool, True on real tokens (padding keys must get no weight; padded queries'
    outputs are ignored). Return the attention context (B, H, T, d). The model's own is
    :func:`realmodel.model.softmax_attention` (softmax of q k^T / sqrt(d), times v).

``linear_weight(name, W) -> W'``
    Called once per Linear when the substituted encoder is built; W is (out, in) float32,
    ``name`` e.g. ``encoder.layer.3.attention.self.key``. Return the dequantized weight.

:class:`Taps` records q, k, v (and optionally the attention context) per layer and the final
embeddings, e.g. to fit a KernelHash on real queries and keys before building a hashed-attention
substitution. :class:`ErrorMeter` wraps an attention callable and measures, layer by layer, its
relative error against exact softmax attention on the same q, k, v.

Baselines implemented here (no kernkit): symmetric round-to-nearest uniform quantization
(per-channel or per-group), NF4 (QLoRA's 4-bit NormalFloat with absmax blocks), and Performer's
FAVOR+ positive random features. kernkit families plug in through :data:`KERNKIT_FAMILIES`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Callable, Iterable, Sequence

import numpy as np

from .model import softmax_attention

AttentionFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]
WeightFn = Callable[[str, np.ndarray], np.ndarray]


@dataclass
class Substitution:
    """A named replacement of the attention and/or the Linear weights of the float32 model."""

    name: str
    attention: AttentionFn | None = None
    linear_weight: WeightFn | None = None
    description: str = ""
    family: str = "baseline"  # "baseline" or the kernkit family it exercises
    info: dict = field(default_factory=dict)  # filled by the builder (e.g. bits per weight)


def only_layers(attention: AttentionFn, layers: Iterable[int]) -> AttentionFn:
    """``attention`` on the given layers, exact softmax on the others."""
    chosen = frozenset(int(i) for i in layers)

    def attn(q, k, v, mask, layer):
        if layer in chosen:
            return attention(q, k, v, mask, layer)
        return softmax_attention(q, k, v, mask, layer)

    return attn


# --------------------------------------------------------------------------------------------
# taps and error meters
# --------------------------------------------------------------------------------------------


class Taps:
    """Records what flows through the encoder.

    Parameters
    ----------
    layers : layers whose q, k, v (and context) to keep; None keeps all.
    context : also keep each layer's attention context (B, H, T, d).
    max_sentences : stop recording q, k, v, context after this many sentences (embeddings are
        always recorded).

    After a run, ``qkv[layer]`` is a list of ``(q, k, v, mask)`` per batch (shapes as passed to the
    attention callable), ``context[layer]`` a list of contexts, ``batches`` the sentence indices of
    each batch and :meth:`embeddings` the final embeddings in input order.
    """

    def __init__(self, layers: Iterable[int] | None = None, context: bool = False,
                 max_sentences: int | None = None):
        self.layers = None if layers is None else frozenset(layers)
        self.keep_context = context
        self.max_sentences = max_sentences
        self.qkv: dict[int, list] = {}
        self.context: dict[int, list] = {}
        self.batches: list[list[int]] = []
        self._emb: list[np.ndarray] = []
        self._seen = 0
        self._recording = True

    # hooks called by BertEncoder
    def on_batch(self, idx: Sequence[int]) -> None:
        self._recording = self.max_sentences is None or self._seen < self.max_sentences
        self._seen += len(idx)
        self.batches.append(list(idx))

    def _want(self, layer: int) -> bool:
        return self._recording and (self.layers is None or layer in self.layers)

    def on_qkv(self, layer, q, k, v, mask) -> None:
        if self._want(layer):
            self.qkv.setdefault(layer, []).append((q, k, v, mask))

    def on_context(self, layer, ctx, mask) -> None:
        if self.keep_context and self._want(layer):
            self.context.setdefault(layer, []).append(ctx)

    def on_embeddings(self, e) -> None:
        self._emb.append(e)

    # views
    def embeddings(self) -> np.ndarray:
        """Final embeddings (N, D) in input order."""
        n = sum(len(b) for b in self.batches)
        out = np.empty((n, self._emb[0].shape[1]), dtype=np.float32)
        for idx, e in zip(self.batches, self._emb):
            out[idx] = e
        return out

    def tokens(self, layer: int, which: str = "q") -> np.ndarray:
        """All real tokens' q, k or v of a layer, concatenated: (N_tokens, H, d)."""
        j = "qkv".index(which)
        parts = []
        for t in self.qkv.get(layer, []):
            x, mask = t[j], t[3]
            parts.append(x.transpose(0, 2, 1, 3)[mask])  # (B, T, H, d)[mask] -> (n, H, d)
        return np.concatenate(parts) if parts else np.empty((0,))

    def sequences(self, layer: int):
        """Yield ``(q, k, v)`` of each recorded sentence, each (H, T_i, d) with T_i real tokens."""
        for q, k, v, mask in self.qkv.get(layer, []):
            for b in range(mask.shape[0]):
                n = int(mask[b].sum())
                yield q[b, :, :n], k[b, :, :n], v[b, :, :n]


class ErrorMeter:
    """Wraps an attention callable; measures its error against exact softmax, per layer.

    The wrapped callable's output is what the model continues with, so the error of layer l is
    measured on the q, k, v that the substituted model itself produces (a *local* error: the
    kernel's approximation at that layer, not the drift accumulated from earlier layers).

    Attributes after a run: :meth:`relative_error` (Frobenius over all real query tokens of the
    corpus, ||A - S|| / ||S||) and :meth:`sequence_errors` (one relative error per sentence).
    """

    def __init__(self, attention: AttentionFn):
        self.attention = attention
        self.sq_err: dict[int, float] = {}
        self.sq_ref: dict[int, float] = {}
        self.seq_err: dict[int, list] = {}

    def __call__(self, q, k, v, mask, layer):
        exact = softmax_attention(q, k, v, mask, layer)
        approx = np.asarray(self.attention(q, k, v, mask, layer), dtype=np.float32)
        qm = mask[:, None, :, None]  # only real query tokens count
        diff = np.where(qm, approx.astype(np.float64) - exact, 0.0)
        ref = np.where(qm, exact.astype(np.float64), 0.0)
        e2 = (diff * diff).sum(axis=(1, 2, 3))
        r2 = (ref * ref).sum(axis=(1, 2, 3))
        self.sq_err[layer] = self.sq_err.get(layer, 0.0) + float(e2.sum())
        self.sq_ref[layer] = self.sq_ref.get(layer, 0.0) + float(r2.sum())
        self.seq_err.setdefault(layer, []).extend(np.sqrt(e2 / r2).tolist())
        return approx

    def layers(self) -> list[int]:
        return sorted(self.sq_ref)

    def relative_error(self, layer: int) -> float:
        return math.sqrt(self.sq_err[layer] / self.sq_ref[layer])

    def sequence_errors(self, layer: int) -> np.ndarray:
        return np.asarray(self.seq_err[layer])


# --------------------------------------------------------------------------------------------
# weight quantization baselines
# --------------------------------------------------------------------------------------------


def _groups(W: np.ndarray, group: int | None) -> np.ndarray:
    """View W (out, in) as (out, n_groups, g); group None means one group per output channel."""
    out, inp = W.shape
    g = inp if group is None else int(group)
    if inp % g:
        raise ValueError(f"in_features {inp} is not a multiple of the group size {g}")
    return W.reshape(out, inp // g, g)


def quantize_uniform(W: np.ndarray, bits: int, group: int | None = None) -> np.ndarray:
    """Symmetric round-to-nearest uniform quantization, dequantized back to float32.

    Each group (an output channel when ``group`` is None, else ``group`` consecutive inputs of a
    channel) gets the scale s = max|w| / (2^(b-1) - 1); w -> s * clip(round(w/s), -(2^(b-1)-1),
    2^(b-1)-1). So W4 has 15 levels, W3 has 7 (the symmetric grid, zero exactly representable).
    """
    if bits < 2:
        raise ValueError(f"bits must be >= 2, got {bits}")
    G = _groups(np.asarray(W, dtype=np.float32), group)
    qmax = 2 ** (bits - 1) - 1
    amax = np.abs(G).max(axis=-1, keepdims=True)
    s = np.where(amax > 0, amax / qmax, 1.0).astype(np.float32)
    Q = np.clip(np.rint(G / s), -qmax, qmax)
    return (Q * s).reshape(W.shape).astype(np.float32)


def normal_float_codebook(bits: int = 4) -> np.ndarray:
    """The k-bit NormalFloat code book of QLoRA (Dettmers et al. 2023, sec. 3), from its definition.

    NF-k places its 2^k values at quantiles Q of N(0, 1), normalised into [-1, 1], with an exact
    zero and an asymmetric split: 2^(k-1) positives Q(p) for p evenly spaced on [1/2, 1 - delta]
    (2^(k-1) + 1 points, p = 1/2 dropped), 2^(k-1) - 1 negatives -Q(p) for p evenly spaced on
    [1/2, 1 - delta] (2^(k-1) points, p = 1/2 dropped), and 0. The outermost probability stays off
    Q's pole at 1: delta = (1/(2 (2^k - 1)) + 1/(2 * 2^k)) / 2, the mean of the half-bin widths of
    2^k - 1 and 2^k equal bins (1 - delta = 0.96770833 for k = 4). All values are divided by the
    largest, so the code book spans exactly [-1, 1].
    """
    n = 2**bits
    delta = 0.5 * (1.0 / (2 * (n - 1)) + 1.0 / (2 * n))
    nd = NormalDist()
    half = n // 2
    pos_p = np.linspace(1 - delta, 0.5, half + 1)[:-1]  # `half` positives, 0.5 (-> 0) excluded
    neg_p = np.linspace(1 - delta, 0.5, half)[:-1]  # `half - 1` negatives
    pos = [nd.inv_cdf(p) for p in pos_p]
    neg = [-nd.inv_cdf(p) for p in neg_p]
    v = np.array(sorted(pos + [0.0] + neg), dtype=np.float64)
    return (v / v.max()).astype(np.float32)


def quantize_codebook(W: np.ndarray, codebook: np.ndarray, group: int | None = 64) -> np.ndarray:
    """Absmax-scaled code-book quantization (as NF4): per group, w -> a * c_nearest(w / a).

    a = max|w| of the group (kept in float32; QLoRA's second-level quantization of the scales is
    not applied). Returns the dequantized float32 weight.
    """
    cb = np.sort(np.asarray(codebook, dtype=np.float32))
    G = _groups(np.asarray(W, dtype=np.float32), group)
    a = np.abs(G).max(axis=-1, keepdims=True)
    a = np.where(a > 0, a, 1.0).astype(np.float32)
    x = G / a
    mid = 0.5 * (cb[1:] + cb[:-1])
    idx = np.searchsorted(mid, x)  # nearest code (ties go up)
    return (cb[idx] * a).reshape(W.shape).astype(np.float32)


def weight_relative_error(W: np.ndarray, Wq: np.ndarray) -> float:
    return float(np.linalg.norm(Wq.astype(np.float64) - W) / np.linalg.norm(W.astype(np.float64)))


def uniform_substitution(bits: int, group: int | None) -> Substitution:
    gname = "per-channel" if group is None else f"g{group}"
    return Substitution(
        name=f"uniform W{bits} {gname}",
        linear_weight=lambda name, W: quantize_uniform(W, bits, group),
        description=f"symmetric round-to-nearest, {2 ** bits - 1} levels, absmax scale "
        + ("per output channel" if group is None else f"per group of {group} inputs"),
        info={"bits": bits, "group": group, "scheme": "uniform"},
    )


def nf4_substitution(group: int = 64) -> Substitution:
    cb = normal_float_codebook(4)
    return Substitution(
        name=f"NF4 g{group}",
        linear_weight=lambda name, W: quantize_codebook(W, cb, group),
        description=f"QLoRA 4-bit NormalFloat, absmax per block of {group} (fp32 scales)",
        info={"bits": 4, "group": group, "scheme": "nf4"},
    )


# --------------------------------------------------------------------------------------------
# Performer FAVOR+ (positive orthogonal random features)
# --------------------------------------------------------------------------------------------


def orthogonal_gaussian(m: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """m x d matrix of orthogonal random features (Performer ORF).

    Stacked blocks of d orthonormal rows (QR of a Gaussian), each row rescaled to the norm of an
    independent d-dimensional Gaussian vector, so each row is marginally N(0, I_d).
    """
    blocks = []
    for _ in range(-(-m // d)):
        Qm, R = np.linalg.qr(rng.standard_normal((d, d)))
        Qm = Qm * np.sign(np.diag(R))  # uniform (Haar) orthogonal
        blocks.append(Qm.T)
    Wr = np.concatenate(blocks)[:m]
    norms = np.linalg.norm(rng.standard_normal((m, d)), axis=1)
    return (Wr * norms[:, None]).astype(np.float64)


class FavorPlus:
    """Performer's FAVOR+ attention (Choromanski et al. 2021) as an attention callable.

    softmax kernel exp(q.k / sqrt d) ~ phi(q').phi(k') with q' = q / d^(1/4) and the positive
    features phi(x) = exp(w_i.x - |x|^2 / 2) / sqrt(m), w_i orthogonal Gaussian; attention =
    phi(Q') (phi(K')^T V) / phi(Q') (phi(K')^T 1): linear in T, no T x T matrix.

    One feature matrix per (layer, head), fixed by ``seed``. Numerical stabilisers: a per-query
    constant (cancels between numerator and denominator) and a per-(sentence, head) constant for
    the keys.
    """

    def __init__(self, num_features: int, num_layers: int, num_heads: int, head_dim: int, seed: int = 0):
        self.m = int(num_features)
        rng = np.random.default_rng(seed)
        self.W = [
            np.stack([orthogonal_gaussian(self.m, head_dim, rng) for _ in range(num_heads)]).astype(np.float32)
            for _ in range(num_layers)
        ]  # per layer: (H, m, d)
        self.Wt = [np.ascontiguousarray(W.transpose(0, 2, 1)) for W in self.W]

    def __call__(self, q, k, v, mask, layer):
        d = q.shape[-1]
        Wt = self.Wt[layer]  # (H, d, m)
        c = np.float32(d ** -0.25)
        qs, ks = q * c, k * c
        pq = np.matmul(qs, Wt)  # (B, H, T, m), one GEMM per (sentence, head)
        pk = np.matmul(ks, Wt)
        pq -= 0.5 * (qs * qs).sum(-1, keepdims=True)
        pk -= 0.5 * (ks * ks).sum(-1, keepdims=True)
        km = mask[:, None, :, None]
        pq -= pq.max(axis=-1, keepdims=True)  # per query: cancels in num / den
        pk -= np.where(km, pk, -np.inf).max(axis=(2, 3), keepdims=True)  # per (sentence, head)
        phq = np.exp(pq, out=pq)
        phk = np.exp(pk, out=pk)
        phk *= km
        kv = np.matmul(np.swapaxes(phk, -1, -2), v)  # (B, H, m, d)
        num = np.matmul(phq, kv)
        den = np.matmul(phq, phk.sum(axis=2)[..., None])  # (B, H, T, 1)
        return (num / np.maximum(den, np.finfo(np.float32).tiny)).astype(np.float32, copy=False)


def favor_substitution(num_features: int, config, seed: int = 0, layers: Iterable[int] | None = None) -> Substitution:
    fav = FavorPlus(num_features, config.num_layers, config.num_heads, config.head_dim, seed)
    attn = fav if layers is None else only_layers(fav, layers)
    where = "all layers" if layers is None else "layers " + ",".join(map(str, sorted(layers)))
    return Substitution(
        name=f"FAVOR+ m={num_features}" + ("" if layers is None else f" [{where}]"),
        attention=attn,
        description=f"Performer positive orthogonal random features, m={num_features}, {where}",
        info={"num_features": num_features, "layers": None if layers is None else sorted(layers)},
    )


# --------------------------------------------------------------------------------------------
# kernkit families: feature-detected plug-ins
# --------------------------------------------------------------------------------------------


@dataclass
class KernkitFamily:
    """A kernkit family the report will exercise once it lands.

    ``attrs`` are the dotted names (under ``kernkit``) it needs; ``builder(ctx)`` returns the
    substitutions (``ctx`` is a dict with ``encoder``, ``config``, ``calib_taps``: q/k/v of a
    calibration set, ``calib_ids`` and ``options``). An attention family may also give
    ``layer_builder(ctx, layers)``, one substitution on the given layers only, for the
    one-layer-at-a-time sweep (fit once in ``ctx`` and reuse). A family whose attributes exist but
    whose builder is None is reported as "in kernkit, adapter not written yet".

    Example, once ``kernkit.hashed_attention`` lands (sketch; the real API decides)::

        def build_hashattn(ctx):
            taps, cfg = ctx["calib_taps"], ctx["config"]
            hashes = [kernkit.KernelHash(bits=16).fit(taps.tokens(l, "q"), taps.tokens(l, "k"))
                      for l in range(cfg.num_layers)]
            def attn(q, k, v, mask, layer):
                h = hashes[layer]
                return kernkit.hashed_attention(h.encode(q), h.encode(k), v, mask=mask)
            return [Substitution("hashed attention b=16", attention=attn)]
    """

    key: str
    title: str
    attrs: tuple[str, ...]
    kind: str  # "attention", "weights" or "vmf"
    builder: Callable[[dict], list[Substitution]] | None = None
    layer_builder: Callable[[dict, list[int]], Substitution] | None = None


def kernkit_module():
    try:
        import kernkit  # noqa: F401
    except Exception:  # not built/installed yet: everything is "not present"
        return None
    return kernkit


def kernkit_has(dotted: str) -> bool:
    """True if ``kernkit.<dotted>`` exists (submodules imported on the way)."""
    import importlib

    obj = kernkit_module()
    if obj is None:
        return False
    path = "kernkit"
    for part in dotted.split("."):
        path += "." + part
        if hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        try:
            obj = importlib.import_module(path)
        except Exception:
            return False
    return True


def rpe_substitution(num_features: int, seed: int = 0, layers: Iterable[int] | None = None) -> Substitution:
    """``kernkit.rpe_attention`` with a zero relative-position bias (c_t = 1).

    MiniLM uses absolute positions and no relative bias, so the faithful substitution is b = 0:
    the FAVOR+ kernel phi(q).phi(k) (positive orthogonal random features, max-stabilized) by
    kernkit's Toeplitz/dense machinery, one projection per layer (seed + layer), shared by
    the heads. It should match the FAVOR+ baseline of the same m within sampling noise.
    """
    import kernkit

    def attn(q, k, v, mask, layer):
        H, T = q.shape[1], q.shape[2]
        b = np.zeros((H, max(2 * T - 1, 0)), np.float32)
        return kernkit.rpe_attention(q, k, v, b, num_features=num_features, seed=seed + 1000 * layer,
                                     key_padding_mask=mask)

    where = "all layers" if layers is None else "layers " + ",".join(map(str, sorted(layers)))
    return Substitution(
        name=f"rpe_attention b=0 m={num_features}" + ("" if layers is None else f" [{where}]"),
        attention=attn if layers is None else only_layers(attn, layers),
        description=f"kernkit.rpe_attention, zero RPE bias (FAVOR+ kernel), m={num_features}, {where}",
        info={"num_features": num_features, "layers": None if layers is None else sorted(layers)},
    )


# Adapters are written when each family's API is fixed; until then builder=None.
KERNKIT_FAMILIES: list[KernkitFamily] = [
    KernkitFamily(
        "hashattn",
        "hashed attention (EcoFormer: KernelHash fitted on this model's q, k)",
        ("hashed_attention", "KernelHash"),
        "attention",
        builder=lambda ctx: build_hashattn(ctx),
        layer_builder=lambda ctx, layers: hashattn_layer_substitution(ctx, layers),
    ),
    KernkitFamily(
        "toeplitz",
        "kernelized attention with relative positional encoding (Luo et al. 2021)",
        ("rpe_attention",),
        "attention",
        builder=lambda ctx: [rpe_substitution(m, ctx["options"].seed) for m in ctx["options"].favor_features],
        layer_builder=lambda ctx, layers: rpe_substitution(ctx["options"].sweep_features, ctx["options"].seed,
                                                           layers),
    ),
    KernkitFamily(
        "powerquant",
        "power-quantized weights sign(w)|w|^a, W4/W3 (PowerQuant / NUPES)",
        ("quant.quantize", "quant.refine"),
        "weights",
        builder=lambda ctx: build_powerquant(ctx),
    ),
    KernkitFamily("vmf", "vMF mixture of the corpus embeddings", ("vmf.VonMisesFisherMixture",), "vmf"),
]


def linear_grams(encoder, ids, max_sentences: int = 128, batch_size: int = 16) -> dict[str, np.ndarray]:
    """X^T X of every Linear's float32-model inputs over the real (unpadded) tokens."""
    from .model import Tokenizer

    grams: dict[str, np.ndarray] = {}
    probe = type(encoder)(encoder.w, encoder.config, encoder.tokenizer)
    plain = encoder._linear
    ids = list(ids[:max_sentences])
    state = {}

    class _Batch:  # only on_batch is used: it tells which sentences (hence which mask) come next
        def on_batch(self, idx):
            state["mask"] = Tokenizer.pad([ids[j] for j in idx])[1].astype(bool)

        def __getattr__(self, name):
            return lambda *a, **k: None

    def rec(x, name):
        X = x[state["mask"]] if x.ndim == 3 else x.reshape(-1, x.shape[-1])
        G = X.T @ X  # float32 GEMM, summed in float64
        grams[name] = grams.get(name, 0.0) + G.astype(np.float64)
        return plain(x, name)

    probe._linear = rec
    probe.embed_ids(ids, taps=_Batch(), batch_size=batch_size)
    return grams


def build_powerquant(ctx) -> list[Substitution]:
    """kernkit.quant: searched exponent (weight MSE) and the full recipe (all 2^b codes, searched
    exponent, NUPES refinement on the layer outputs of calibration inputs), W4/W3 per channel and g64."""
    from kernkit import quant

    # NUPES needs a real calibration set (and ~1-2 min a model): only for the full report
    with_nupes = len(ctx["calib_ids"]) >= 64
    grams = linear_grams(ctx["encoder"], ctx["calib_ids"]) if with_nupes else {}
    subs = []
    for bits, group in ((4, 64), (3, 64), (4, None), (3, None)):
        gran = "group" if group else "channel"
        gname = f"g{group}" if group else "per-channel"

        def plain(name, W, bits=bits, group=group, gran=gran):
            return quant.quantize(W, bits, granularity=gran, group_size=group).dequantize()

        def nupes(name, W, bits=bits, group=group, gran=gran):
            qw = quant.quantize(W, bits, granularity=gran, group_size=group, full_range=True)
            return quant.refine(qw, W, gram=grams[name], iters=3).dequantize()

        subs.append(Substitution(f"power W{bits} {gname} (searched a)", linear_weight=plain,
                                 description=f"kernkit.quant: one exponent per tensor, weight-MSE search, 2^{bits}-1 levels",
                                 info={"bits": bits, "group": group, "scheme": "power"}))
        if group is None or not with_nupes:  # the full recipe for the g64 rows only
            continue
        subs.append(Substitution(f"power W{bits} {gname} full+NUPES", linear_weight=nupes,
                                 description=f"kernkit.quant: all 2^{bits} codes, searched exponent, NUPES refinement on "
                                 "128 calibration sentences (codes over the whole grid, scales, exponent)",
                                 info={"bits": bits, "group": group, "scheme": "power+nupes"}))
    return subs


def family_status(fam: KernkitFamily) -> str:
    """'ready', 'no adapter' (kernkit has it, the harness has no builder yet) or 'absent'."""
    if not all(kernkit_has(a) for a in fam.attrs):
        return "absent"
    if fam.builder is None and fam.kind != "vmf":
        return "no adapter"
    return "ready"


# --------------------------------------------------------------------------------------------
# kernkit.hashed_attention (EcoFormer)
# --------------------------------------------------------------------------------------------


def hash_fit_tokens(taps: Taps, layer: int, groups: int = 4, length: int = 128, seed: int = 0):
    """(q, k) of shape (groups, H, length, d) float32 for a KernelHash fit: the calibration
    set's real tokens of ``layer``, shuffled under ``seed`` and cut into ``groups`` pseudo-
    sequences of ``length`` tokens (sentences are ~17 tokens; the KSH targets, top-10 most / least
    cosine-similar keys per query, need longer sequences, as in the reference's 56x56 images).
    q and k of one token stay together."""
    Q, K = taps.tokens(layer, "q"), taps.tokens(layer, "k")  # (N, H, d)
    perm = np.random.default_rng(seed).permutation(Q.shape[0])
    length = min(length, Q.shape[0])  # tiny calibration sets (--quick): one shorter sequence
    groups = max(1, min(groups, Q.shape[0] // length))
    take = perm[: groups * length]
    shape = (groups, length) + Q.shape[1:]
    q = Q[take].reshape(shape).transpose(0, 2, 1, 3)
    k = K[take].reshape(shape).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(q), np.ascontiguousarray(k)


def fit_layer_hashes(taps: Taps, num_layers: int, bits: int, iterations: int = 100, seed: int = 0,
                     layers: Iterable[int] | None = None, **kw) -> dict:
    """One KernelHash per layer (separate query / key hashes, one per head) fitted on the
    calibration taps with the reference's settings (m = 25 anchors, top-10 targets)."""
    import kernkit

    out = {}
    for layer in (range(num_layers) if layers is None else layers):
        q, k = hash_fit_tokens(taps, layer, seed=seed)
        out[layer] = kernkit.KernelHash(bits=bits, seed=seed, iterations=iterations, **kw).fit(q, k)
    return out


class HashedAttention:
    """kernkit.hashed_attention with per-layer fitted KernelHashes as an attention callable.

    Padding keys are masked with ``key_lengths`` (sentences are padded at the end); padded
    query rows are computed but ignored by the model."""

    def __init__(self, hashes: dict, bits: int, mode: str = "consistent"):
        self.hashes, self.bits, self.mode = hashes, int(bits), mode

    def __call__(self, q, k, v, mask, layer):
        import kernkit

        kh = self.hashes[layer]
        hq, hk = kh.encode(q, role="query"), kh.encode(k, role="key")  # (B, H, T) words
        lens = mask.sum(axis=1).astype(np.int64)[:, None]  # real tokens per sentence
        return kernkit.hashed_attention(hq, hk, v, self.bits, mode=self.mode, key_lengths=lens)


def build_hashattn(ctx) -> list[Substitution]:
    """kernkit.hashed_attention b = 16 on all layers (KernelHash fitted on the calibration taps)."""
    cfg = ctx["config"]
    hashes = fit_layer_hashes(ctx["calib_taps"], cfg.num_layers, 16)
    ctx["_hashattn16"] = hashes
    return [Substitution("hashed attention b=16", attention=HashedAttention(hashes, 16),
                         description="kernkit.hashed_attention, 16-bit KSH codes (separate q/k hashes, "
                         "25 anchors, top-10 targets) fitted per layer on the calibration taps; no fine-tuning",
                         info={"bits": 16})]


def hashattn_layer_substitution(ctx, layers) -> Substitution:
    hashes = ctx.get("_hashattn16") or fit_layer_hashes(ctx["calib_taps"], ctx["config"].num_layers, 16)
    ctx["_hashattn16"] = hashes
    return Substitution(f"hashed attention b=16 [layers {','.join(map(str, layers))}]",
                        attention=only_layers(HashedAttention(hashes, 16), layers))
