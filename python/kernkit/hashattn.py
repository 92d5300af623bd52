"""Binary-hash linear attention with add-only accumulation (EcoFormer).

Reference: Liu, Pan, He, Cai, Zhuang, "EcoFormer: Energy-Saving Attention with Linear
Complexity", NeurIPS 2022 (code: github.com/ziplab/EcoFormer, ``pvt/performer.py`` and
``pvt/hashing/ksh.py``). Kernel-based supervised hashing: Liu, Wang, Ji, Jiang, Chang,
"Supervised Hashing with Kernels", CVPR 2012.

* :class:`KernelHash` learns b-bit hash functions ``h(x) = sign(A k̄(x))`` on RBF features of
  ``m`` anchor points (KSH, greedy bit by bit, from the attention map) and encodes tokens into
  packed code words (``uint8/16/32/64`` by ``bits``; bit r set means +1).
* :func:`hashed_attention` computes attention from packed codes in ``O(n b d)`` with additions
  and subtractions of value rows only (C++ on the CPU, CUDA kernels on the GPU).
* :func:`unpack` / :func:`pack` convert between packed words and ±1 / real-valued codes.
* :func:`energy_model` reproduces the reference's multiply/add counts and 45 nm energies.

The differentiable layer (gradient w.r.t. the values and, through the straight-through
estimator, w.r.t. the real-valued pre-sign codes) is :func:`kernkit.torch.hashed_attention`.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from typing import Any, Literal

import numpy as np

from . import _core, _dispatch

logger = logging.getLogger(__name__)

__all__ = ["KernelHash", "energy_model", "hashed_attention", "load", "pack", "unpack",
           "word_dtype"]

_WORD_DTYPES: dict[int, type[np.unsignedinteger[Any]]] = {1: np.uint8, 2: np.uint16, 4: np.uint32,
                                                          8: np.uint64}
_MODES = {"consistent": 0, "ecoformer": 1}


def _check_bits(bits: Any, name: str = "bits") -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise TypeError(f"argument {name!r} must be an int in 1..64, got {type(bits).__name__}")
    b = int(bits)
    if not 1 <= b <= 64:
        raise ValueError(f"argument {name!r} must be in 1..64, got {b}")
    return b


def word_dtype(bits: int) -> type[np.unsignedinteger[Any]]:
    """The numpy word type that holds ``bits``-bit codes: uint8 (<= 8), uint16 (<= 16),
    uint32 (<= 32) or uint64 (<= 64)."""
    b = _check_bits(bits)
    return _WORD_DTYPES[1 if b <= 8 else 2 if b <= 16 else 4 if b <= 32 else 8]


def pack(x: Any, bits: int | None = None) -> np.ndarray:
    """Pack signs of real-valued or ±1 codes ``x`` of shape (..., bits) into words (...).

    Bit r of a word is set iff ``x[..., r] >= 0`` (sign(0) = +1). NaN raises ValueError.
    """
    x = np.asarray(x)
    if x.ndim < 1:
        raise ValueError("argument 'x' must have a trailing bits axis")
    b = _check_bits(x.shape[-1] if bits is None else bits)
    if x.shape[-1] != b:
        raise ValueError(f"argument 'x' must have {b} values in its last axis, got {x.shape[-1]}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if np.isnan(x).any():
        raise ValueError("argument 'x' contains NaN")
    flat = np.ascontiguousarray(x.reshape(-1, b))
    out = np.empty(flat.shape[0], dtype=word_dtype(b))
    _core.hashattn_pack(flat, out, b)
    return out.reshape(x.shape[:-1])


def unpack(codes: Any, bits: int) -> np.ndarray:
    """±1 int8 codes of shape (..., n, bits) from packed words (..., n) (bit r set -> +1)."""
    b = _check_bits(bits)
    codes = np.asarray(codes)
    want = word_dtype(b)
    if codes.dtype != want:
        raise ValueError(f"argument 'codes': {b}-bit codes are stored as {np.dtype(want).name} "
                         f"words, got {codes.dtype}")
    flat = np.ascontiguousarray(codes.reshape(-1))
    out = np.empty((flat.shape[0], b), dtype=np.int8)
    _core.hashattn_unpack(flat, out, b)
    return out.reshape(codes.shape + (b,))


# ----------------------------------------------------------------------------------------------
# attention
# ----------------------------------------------------------------------------------------------

_dtype_name = _dispatch.dtype_name


@functools.lru_cache(maxsize=64)
def _word_name(bits: int) -> str:
    return np.dtype(word_dtype(bits)).name


def _check_codes(name: str, h: Any, bits: int) -> None:
    want = _word_name(bits)
    dt = _dtype_name(h)
    # torch has no unsigned 16/32/64-bit arithmetic types everywhere: accept the signed type of
    # the same width there (the kernel reads the bits).
    if dt != want and not (dt == want[1:] and type(h).__module__.split(".")[0] == "torch"):
        raise ValueError(f"argument {name!r}: {bits}-bit codes are stored as {want} words, "
                         f"got {dt}")


def _lengths_to_device(lens_host: np.ndarray, v: Any, xp: Any) -> Any:
    """Host key lengths as an int64 array on v's device. torch: through pinned memory without
    blocking (a pageable copy waits for all work queued on the stream)."""
    if type(v).__module__.split(".")[0] == "torch":
        import torch

        return torch.from_numpy(lens_host).pin_memory().to(v.device, non_blocking=True)
    return xp.asarray(lens_host, device=v.device)


def hashed_attention(hq: Any, hk: Any, v: Any, bits: int, causal: bool = False,
                     offset: float | None = None,
                     mode: Literal["consistent", "ecoformer"] = "consistent",
                     out: np.ndarray | None = None, key_lengths: Any = None) -> Any:
    r"""Attention from packed binary codes, with additions and subtractions only.

    For ±1 codes ``h`` (``bits`` bits per token, bit r set = +1), ``c = offset`` (default
    ``bits + 1``, so every weight ``h_i^T h_j + c >= 1`` is positive):

    * ``mode="consistent"``:
      :math:`o_i = \sum_j (h_i^\top h_j + c)\, v_j \,/\, \sum_j (h_i^\top h_j + c)`.
    * ``mode="ecoformer"`` (the reference code's ``linear_attention_bias``, needed for its
      checkpoints): :math:`o_i = (\sum_j (h_i^\top h_j)\, v_j + c\, v_i) \,/\,
      (\sum_j h_i^\top h_j + N c)` -- the offset adds the token's *own* value ``c v_i`` in the
      numerator while the denominator adds ``N c`` (``top_bias = v * bias``, ``bottom_bias =
      N * bias``, ``bias = nbits + 1`` in ziplab/EcoFormer ``pvt/performer.py``), so the weights
      do not sum to one.

    The sums run over all keys, or over ``j <= i`` when ``causal`` (then ``N = i + 1``).
    Computed in ``O(n b d)`` from :math:`h_i^\top \sum_j h_j v_j^\top`: per bit r the signed
    value sum ``S_r = sum_j s_jr v_j`` and the integer ``k_r = sum_j s_jr``, then
    ``o_i = (sum_r s_ir S_r + ...) / (sum_r s_ir k_r + ...)``. Value rows are only added or
    subtracted as the code bits select (see ``kernkit/hashattn.hpp``); denominators are exact
    integer sums (plus the offset terms).

    Parameters
    ----------
    hq, hk : array (..., n_q) and (..., n_k)
        Packed code words of queries and keys (:meth:`KernelHash.encode`), dtype
        :func:`word_dtype` (``bits``), equal leading (batch, heads) axes.
    v : array (..., n_k, d)
        Values, float32/float64 (CPU) or float16/bfloat16/float32/float64 (CUDA; float32
        accumulation for the 16-bit types).
    bits : int
        Code length b in 1..64.
    causal : bool
        Key j attends only to queries i >= j (prefix sums); needs n_q == n_k.
    offset : float, optional
        The constant c (default ``bits + 1``).
    mode : {"consistent", "ecoformer"}
        See above; "ecoformer" needs n_q == n_k.
    out : numpy array (..., n_q, d), optional
        CPU only: a C-contiguous array of v's dtype to write the result into (saves the
        allocation and its first-touch page faults on repeated calls).
    key_lengths : int or integer array broadcastable to v's leading axes, optional
        Padding mask, non-causal only: each (batch, head) slice attends to its first
        ``key_lengths`` keys (1..n_k); later keys get no weight (and ``N = key_lengths`` in the
        ecoformer mode). An array on the GPU must live on v's device; a host list / numpy array
        of lengths with CUDA inputs is copied there.

    Returns
    -------
    array (..., n_q, d) of v's dtype and library (numpy, torch, CuPy), on v's device.

    Notes
    -----
    NaN or inf in ``v`` propagates to every output of its (batch, head) slice that sums over it
    (all of them, or the later rows when causal). Results do not depend on the thread count.
    """
    _dispatch.refuse_grad("hashed_attention", " (kernkit.torch.hashed_attention / HashedAttention "
                          "are the trainable forms)", v=v)
    b = _check_bits(bits)
    if mode not in _MODES:
        raise ValueError(f"argument 'mode' must be 'consistent' or 'ecoformer', got {mode!r}")
    c = float(b + 1) if offset is None else float(offset)
    if not math.isfinite(c):
        raise ValueError(f"argument 'offset' must be finite, got {offset!r}")
    for name, a in (("hq", hq), ("hk", hk), ("v", v)):
        if not hasattr(a, "shape"):
            raise TypeError(f"argument {name!r} must be an array")
    if len(v.shape) < 2:
        raise ValueError(f"argument 'v' must be (..., n, d), got shape {tuple(v.shape)}")
    lead = tuple(v.shape[:-2])
    nk, d = int(v.shape[-2]), int(v.shape[-1])
    if tuple(hk.shape) != lead + (nk,):
        raise ValueError(f"argument 'hk' must have shape {lead + (nk,)} (v's leading axes and n), "
                         f"got {tuple(hk.shape)}")
    if tuple(hq.shape[:-1]) != lead or len(hq.shape) != len(lead) + 1:
        raise ValueError(f"argument 'hq' must have shape {lead + ('n_q',)}, got {tuple(hq.shape)}")
    nq = int(hq.shape[-1])
    _check_codes("hq", hq, b)
    _check_codes("hk", hk, b)
    if nk == 0:
        raise ValueError("argument 'hk': at least one key is needed (n = 0)")
    if (causal or mode == "ecoformer") and nq != nk:
        raise ValueError(f"argument 'hq': {'causal' if causal else 'ecoformer-mode'} attention "
                         f"needs as many queries as keys ({nq} vs {nk})")
    dev = _dispatch.common_device({"hq": hq, "hk": hk, "v": v})
    bh = math.prod(int(x) for x in lead)
    m = _MODES[mode]
    lens_host: np.ndarray | None = None
    lens_dev: Any = None
    if key_lengths is not None:
        if causal:
            raise ValueError("argument 'key_lengths' is not used with causal attention (padding "
                             "keys after the last valid token are never attended by valid queries)")
        kdev = _dispatch.device_of(key_lengths)
        if kdev is not None and kdev.kind == "cuda":
            if kdev != dev:
                raise ValueError(f"argument 'key_lengths' is on {kdev} but 'v' is on {dev}")
            xpk = _dispatch.array_namespace(key_lengths)
            lens_dev = _dispatch.contiguous(
                xpk.broadcast_to(xpk.astype(key_lengths, xpk.int64), lead)).reshape(bh)
        else:
            la = np.asarray(key_lengths)
            if la.dtype.kind not in "iu":
                raise TypeError(f"argument 'key_lengths' must hold integers, got {la.dtype}")
            try:
                la = np.broadcast_to(la, lead)
            except ValueError:
                raise ValueError(f"argument 'key_lengths' (shape {la.shape}) does not broadcast to "
                                 f"v's leading axes {lead}") from None
            lens_host = np.ascontiguousarray(la, dtype=np.int64).reshape(bh)
            if lens_host.size and (lens_host.min() < 1 or lens_host.max() > nk):
                raise ValueError(f"argument 'key_lengths': every length must be in 1..{nk}")
    if dev.kind == "cuda":
        if out is not None:
            raise TypeError("argument 'out' is supported on the CPU only")
        _dispatch.require_cuda("v")
        if _dtype_name(v) not in ("float16", "bfloat16", "float32", "float64"):
            raise TypeError(f"argument 'v' must be float16, bfloat16, float32 or float64, got {_dtype_name(v)}")
        xp = _dispatch.array_namespace(v)
        q2 = _dispatch.contiguous(hq).reshape(bh, nq)
        k2 = _dispatch.contiguous(hk).reshape(bh, nk)
        v3 = _dispatch.contiguous(v).reshape(bh, nk, d)
        out = xp.empty((bh, nq, d), dtype=v.dtype, device=v.device)
        dt = _dispatch.CUDA_DTYPE_CODES[_dtype_name(v)]
        nbytes = int(_core.hashattn_workspace_cuda(b, bh, nq, nk, d, bool(causal), dt))
        ws = xp.empty((max(nbytes, 1),), dtype=xp.uint8, device=v.device)
        if lens_host is not None:
            lens_dev = _lengths_to_device(lens_host, v, xp)
        stream = _dispatch.current_stream(v)
        addr = _dispatch.addresses(q2, k2, v3, out, ws, lens_dev)
        if addr is not None:
            # torch / CuPy: addresses instead of six DLPack imports (checked above: shapes, code
            # and value dtypes, one device; contiguous; out, ws and lengths made here).
            pq, pk, pv, po, pw, pl = addr
            with _dispatch.device_guard(v):
                _core.hashattn_attention_cuda_ptr(pq, pk, pv, po, pw, nbytes,
                                                  int(_core.hashattn_word_bytes(b)), b, dt, bh, nq,
                                                  nk, d, c, bool(causal), m, stream, pl)
            return out.reshape(lead + (nq, d))
        _core.hashattn_attention_cuda(q2, k2, v3, out, ws, b, c, bool(causal), m, stream, lens_dev)
        return out.reshape(lead + (nq, d))
    _dispatch.check_float_dtype("v", v)
    is_torch = type(v).__module__.split(".")[0] == "torch"
    v3 = np.ascontiguousarray(_dispatch.contiguous(v) if is_torch else v).reshape(bh, nk, d)
    q2 = np.ascontiguousarray(_dispatch.contiguous(hq) if is_torch else hq).reshape(bh, nq)
    k2 = np.ascontiguousarray(_dispatch.contiguous(hk) if is_torch else hk).reshape(bh, nk)
    if out is None:
        res = np.empty(lead + (nq, d), dtype=v3.dtype)
    else:
        if is_torch or not isinstance(out, np.ndarray):
            raise TypeError("argument 'out' is supported for numpy inputs only")
        if (out.shape != lead + (nq, d) or out.dtype != v3.dtype
                or not out.flags.c_contiguous or not out.flags.writeable):
            raise ValueError(f"argument 'out' must be a writeable C-contiguous {v3.dtype} array "
                             f"of shape {lead + (nq, d)}")
        res = out
    _core.hashattn_attention(q2, k2, v3, res.reshape(bh, nq, d), b, c, bool(causal), m, lens_host)
    if is_torch:  # a CPU torch tensor in, a torch tensor out (sharing the numpy buffer)
        import torch

        return torch.from_numpy(res)
    return res


# ----------------------------------------------------------------------------------------------
# kernel-based supervised hashing
# ----------------------------------------------------------------------------------------------

def _as4d(x: Any, name: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """(batch, heads, n, d) float64 view of x: (n, d) -> (1, 1, n, d), (H, n, d) -> (1, H, n, d)."""
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"argument {name!r} must be a real array, got {a.dtype}")
    a = a.astype(np.float64, copy=False)
    if a.ndim < 2:
        raise ValueError(f"argument {name!r} must be (..., n, d), got shape {a.shape}")
    if a.ndim == 2:
        a4 = a[None, None]
    elif a.ndim == 3:
        a4 = a[None]
    else:
        a4 = a.reshape((int(np.prod(a.shape[:-3], dtype=np.int64)),) + a.shape[-3:])
    if not np.isfinite(a4).all():
        raise ValueError(f"argument {name!r} contains NaN or inf")
    return a4, a.shape


def _normalize(x: np.ndarray) -> np.ndarray:
    nrm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(nrm > 0, nrm, 1.0)


def _sqdist(x: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """||x_n - a_t||^2: x (B, H, N, d), anchors (H, m, d) -> (B, H, N, m)."""
    x2 = np.einsum("bhnd,bhnd->bhn", x, x)[..., None]
    a2 = np.einsum("hmd,hmd->hm", anchors, anchors)[None, :, None, :]
    xa = np.einsum("bhnd,hmd->bhnm", x, anchors)
    out: np.ndarray = np.maximum(x2 + a2 - 2.0 * xa, 0.0)
    return out


def _topk_targets(sim: np.ndarray, topk: int) -> np.ndarray:
    """S[i, j] = +1 for the topk largest sim[i, :], -1 for the topk smallest (rows of sim)."""
    n = sim.shape[-1]
    S = np.zeros(sim.shape, dtype=np.float64)
    order = np.argsort(-sim, axis=-1, kind="stable")
    np.put_along_axis(S, order[..., :topk], 1.0, axis=-1)
    np.put_along_axis(S, order[..., n - topk:], -1.0, axis=-1)
    return S


def _phi(z: np.ndarray) -> np.ndarray:
    """The sigmoid relaxation of sign: 2 / (1 + e^-z) - 1 = tanh(z / 2)."""
    return np.tanh(0.5 * z)


class KernelHash:
    r"""Kernelized b-bit hash functions learned from an attention map (EcoFormer's KSH).

    ``h(x) = sign(A k̄(x))`` with sign(0) = +1, where ``k̄(x)`` are RBF features to m anchor
    tokens, ``k_t(x) = exp(-||x - a_t||^2 / (2 sigma))``, centred by their mean over the fit
    tokens. Inputs are L2-normalised per token first (``normalize=True``, as the reference does
    to its shared q/k projection). One hash per head.

    ``fit`` follows ``KernelSH.train_hashing_weight_woeig`` of ziplab/EcoFormer: targets
    ``S_ij = +1`` for the ``topk`` most cosine-similar tokens j of token i, ``-1`` for the
    ``topk`` least similar, 0 elsewhere; ``R_0 = b S``; for bit r = 1..b, starting from a
    random normal column ``a_r``, minimise the relaxed KSH loss

    .. math:: L(a) = -\frac{1}{N b}\,\mathrm{mean}_{batch, head}\; \phi(\bar K a)^\top
              R_{r-1}\, \phi(\bar K a), \qquad \phi(z) = \frac{2}{1 + e^{-z}} - 1

    with ``iterations`` steps of SGD with Nesterov momentum (lr 5e-4, momentum 0.9); keep the
    new column only if the binarised loss (``phi -> sign``) beats the initial column's, then
    deflate ``R_r = R_{r-1} - h_r h_r^T``. Greedy minimisation of ``||H H^T - b S||_F^2``.
    Differences from the reference, by design: the accept test is made per head (the
    reference compares the loss averaged over heads, so one head's gain can reject another's);
    ``sigma="fixed"`` (default) freezes ``sigma`` at fit time (per head, the mean squared
    distance to the anchors over the fit tokens) instead of recomputing it from every encoded
    batch (``sigma="batch"``: the reference's per-(batch, head) mean over tokens and anchors).

    Separate query and key hashes: ``fit(q, k)`` learns ``A_q`` and ``A_k`` jointly per bit
    on the asymmetric loss ``phi(K_q a_q)^T R phi(K_k a_k)`` with ``S`` from the cosine map
    ``q_i . k_j`` and ``R -= h_q h_k^T`` (same anchors, sigma and centring for both, from
    the union of q and k tokens); then ``encode(x, role="query"|"key")``.

    Parameters
    ----------
    bits : int
        Code length b (1..64). The reference uses 16.
    anchors : int
        Anchor count m (tokens of the first batch element, drawn under ``seed``; 25).
    topk : int
        Positive and negative targets per token (10).
    seed : int
        Seeds the anchors and the initial A; the fit is deterministic given it.
    sigma : {"fixed", "batch"}
    normalize : bool
    iterations, lr, momentum : int, float, float
        The per-bit optimiser (100, 5e-4, 0.9 in the reference).
    """

    def __init__(self, bits: int = 16, anchors: int = 25, topk: int = 10, seed: int = 0,
                 sigma: Literal["fixed", "batch"] = "fixed", normalize: bool = True,
                 iterations: int = 100, lr: float = 5e-4, momentum: float = 0.9) -> None:
        self.bits = _check_bits(bits)
        if isinstance(anchors, bool) or not isinstance(anchors, (int, np.integer)) or anchors < 1:
            raise ValueError(f"argument 'anchors' must be an int >= 1, got {anchors!r}")
        if isinstance(topk, bool) or not isinstance(topk, (int, np.integer)) or topk < 1:
            raise ValueError(f"argument 'topk' must be an int >= 1, got {topk!r}")
        if sigma not in ("fixed", "batch"):
            raise ValueError(f"argument 'sigma' must be 'fixed' or 'batch', got {sigma!r}")
        if int(iterations) < 0:
            raise ValueError("argument 'iterations' must be >= 0")
        self.anchors = int(anchors)
        self.topk = int(topk)
        self.seed = int(seed)
        self.sigma = sigma
        self.normalize = bool(normalize)
        self.iterations = int(iterations)
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.fitted = False
        self.shared = True
        self.anchors_: np.ndarray | None = None  # (H, m, d)
        self.sigma_: np.ndarray | None = None    # (H,)
        self.mvec_: np.ndarray | None = None     # (H, m)
        self.A_: np.ndarray | None = None        # (H, b, m) (queries; keys too when shared)
        self.A_key_: np.ndarray | None = None    # (H, b, m) when separate
        self.A_init_: np.ndarray | None = None   # (H, b, m) the random start
        self.bit_loss_: np.ndarray | None = None  # (H, b) binarised loss of each chosen bit
        self.accepted_: np.ndarray | None = None  # (H, b) bool: optimised column kept

    # -- features -------------------------------------------------------------------------------
    def _features(self, x4: np.ndarray) -> np.ndarray:
        """Centred RBF features (B, H, N, m) of a (B, H, N, d) float64 array (fitted state)."""
        assert self.anchors_ is not None and self.mvec_ is not None and self.sigma_ is not None
        if self.normalize:
            x4 = _normalize(x4)
        D = _sqdist(x4, self.anchors_)
        if self.sigma == "batch":
            sig = D.mean(axis=(2, 3), keepdims=True)
        else:
            sig = self.sigma_[None, :, None, None]
        sig = np.where(sig > 0, sig, 1.0)
        feats: np.ndarray = np.exp(-D / (2.0 * sig)) - self.mvec_[None, :, None, :]
        return feats

    # -- fit ------------------------------------------------------------------------------------
    def fit(self, x: Any, k: Any = None, progress: bool = False) -> KernelHash:
        """Learn the hash functions from tokens ``x`` (queries and keys when shared) of shape
        (batch, heads, n, d), (heads, n, d) or (n, d); with ``k`` (same shape) learn separate
        query (``x``) and key (``k``) hashes. Returns self."""
        xq, _ = _as4d(x, "x")
        shared = k is None
        xk = xq if shared else _as4d(k, "k")[0]
        if not shared and xk.shape != xq.shape:
            raise ValueError(f"argument 'k' must have the shape of 'x' {xq.shape}, got {xk.shape}")
        B, H, N, dim = xq.shape
        if N == 0 or B == 0:
            raise ValueError("argument 'x' has no tokens (n = 0)")
        if dim == 0:
            raise ValueError("argument 'x' has no features (d = 0)")
        pool = N if shared else 2 * N
        if self.anchors > pool:
            raise ValueError(f"argument 'anchors' ({self.anchors}) must not exceed the number of "
                             f"tokens per head of the first batch element ({pool})")
        if 2 * self.topk > N:
            raise ValueError(f"argument 'topk' ({self.topk}) needs n >= 2*topk tokens, got n = {N}")
        b, m = self.bits, self.anchors
        rng = np.random.default_rng(self.seed)
        if self.normalize:
            xq = _normalize(xq)
            xk = xq if shared else _normalize(xk)
        # Anchors: the same m token indices for every head, from the first batch element.
        perm = rng.permutation(pool)[:m]
        src = xq[0] if shared else np.concatenate([xq[0], xk[0]], axis=1)
        anchors = np.ascontiguousarray(src[:, perm, :])
        Dq = _sqdist(xq, anchors)
        Dk = Dq if shared else _sqdist(xk, anchors)
        Dall = Dq if shared else np.concatenate([Dq, Dk], axis=2)
        sigma_h = Dall.mean(axis=(0, 2, 3))
        if self.sigma == "batch":
            sq = Dall.mean(axis=(2, 3), keepdims=True)
        else:
            sq = sigma_h[None, :, None, None]
        sq = np.where(sq > 0, sq, 1.0)
        Kq = np.exp(-Dq / (2.0 * sq))
        Kk = Kq if shared else np.exp(-Dk / (2.0 * sq))
        mvec = (Kq.mean(axis=(0, 2)) if shared
                      else np.concatenate([Kq, Kk], axis=2).mean(axis=(0, 2)))
        Kq = Kq - mvec[None, :, None, :]
        Kk = Kq if shared else Kk - mvec[None, :, None, :]
        sim = np.einsum("bhid,bhjd->bhij", xq, xk)
        R = b * _topk_targets(sim, self.topk)
        del sim
        # Drawn bit-major: a b'-bit fit starts from the first b' columns a b-bit fit starts from.
        A0 = np.ascontiguousarray(rng.standard_normal((b, H, m)).transpose(1, 0, 2))
        Aq = A0.copy()
        Ak = Aq if shared else A0.copy()
        scale = 1.0 / (N * b * B * H)  # mean over batch and heads, as the reference's loss
        bit_loss = np.zeros((H, b))
        accepted = np.zeros((H, b), dtype=bool)

        def loss_per_head(yq: np.ndarray, yk: np.ndarray) -> np.ndarray:
            # -(1/(N b)) mean_batch yq^T R yk, per head -> (H,)
            lh: np.ndarray = -np.einsum("bhi,bhij,bhj->h", yq, R, yk) / (N * b * B)
            return lh

        bar: Any = None
        if progress:
            try:
                from tqdm.auto import tqdm  # type: ignore[import-untyped,unused-ignore]
                bar = tqdm(total=b, desc="KSH bits")
            except ImportError:
                bar = None
        try:
            for r in range(b):
                aq = Aq[:, r, :].copy()
                ak = aq if shared else Ak[:, r, :].copy()
                bq = np.zeros_like(aq)
                bk = np.zeros_like(ak)
                RT = R if shared else np.swapaxes(R, -1, -2)
                for it in range(self.iterations):
                    # matmul (BLAS) forms of the einsums "bhnm,hm->bhn", "bhij,bhj->bhi",
                    # "bhnm,bhn->hm"
                    yq = _phi(np.matmul(Kq, aq[None, :, :, None])[..., 0])
                    yk = yq if shared else _phi(np.matmul(Kk, ak[None, :, :, None])[..., 0])
                    # dL/dyq = -scale R yk, dL/dyk = -scale R^T yq; dphi/dz = (1 - phi^2)/2
                    gyq = -scale * np.matmul(R, yk[..., None])[..., 0]
                    if shared:
                        gyk = -scale * np.matmul(yq[..., None, :], R)[..., 0, :]
                        gz = (gyq + gyk) * 0.5 * (1.0 - yq * yq)
                        gq = np.matmul(gz[:, :, None, :], Kq)[:, :, 0, :].sum(0)
                        bq = gq if it == 0 else self.momentum * bq + gq
                        aq = aq - self.lr * (gq + self.momentum * bq)
                        ak = aq
                    else:
                        gyk = -scale * np.matmul(RT, yq[..., None])[..., 0]
                        gq = np.matmul((gyq * 0.5 * (1.0 - yq * yq))[:, :, None, :], Kq)[:, :, 0, :].sum(0)
                        gk = np.matmul((gyk * 0.5 * (1.0 - yk * yk))[:, :, None, :], Kk)[:, :, 0, :].sum(0)
                        bq = gq if it == 0 else self.momentum * bq + gq
                        bk = gk if it == 0 else self.momentum * bk + gk
                        aq = aq - self.lr * (gq + self.momentum * bq)
                        ak = ak - self.lr * (gk + self.momentum * bk)
                if not (np.isfinite(aq).all() and np.isfinite(ak).all()):
                    raise FloatingPointError(f"KSH fit diverged at bit {r}")
                # Binarised losses: initial column vs optimised column, per head.
                a0q, a0k = Aq[:, r, :], Ak[:, r, :]
                def sgn(z: np.ndarray) -> np.ndarray:  # the reference's: sign(0) -> -1 here
                    out: np.ndarray = np.where(z > 0.0, 1.0, -1.0)
                    return out

                hq0 = sgn(np.einsum("bhnm,hm->bhn", Kq, a0q))
                hk0 = hq0 if shared else sgn(np.einsum("bhnm,hm->bhn", Kk, a0k))
                hq1 = sgn(np.einsum("bhnm,hm->bhn", Kq, aq))
                hk1 = hq1 if shared else sgn(np.einsum("bhnm,hm->bhn", Kk, ak))
                l0 = loss_per_head(hq0, hk0)
                l1 = loss_per_head(hq1, hk1)
                acc = l1 < l0
                accepted[:, r] = acc
                Aq[acc, r, :] = aq[acc]
                if not shared:
                    Ak[acc, r, :] = ak[acc]
                hq = np.where(acc[None, :, None], hq1, hq0)
                hk = hq if shared else np.where(acc[None, :, None], hk1, hk0)
                bit_loss[:, r] = np.where(acc, l1, l0)
                R -= np.einsum("bhi,bhj->bhij", hq, hk)
                logger.info("KSH bit %d/%d: loss %.6g (accepted %d/%d heads)", r + 1, b,
                            float(bit_loss[:, r].mean()), int(acc.sum()), H)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        # Interrupted fits (Ctrl-C) leave the previous state untouched: assign only now.
        self.anchors_, self.sigma_, self.mvec_, self.A_init_ = anchors, sigma_h, mvec, A0
        self.A_ = Aq
        self.A_key_ = None if shared else Ak
        self.shared = shared
        self.bit_loss_ = bit_loss
        self.accepted_ = accepted
        self.fitted = True
        return self

    # -- encode ---------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("KernelHash: call fit() (or load a fitted state) first")

    def project(self, x: Any, role: Literal["query", "key"] = "query") -> np.ndarray:
        """The real-valued pre-sign codes ``A k̄(x)`` (float64), shape x.shape[:-1] + (bits,)."""
        self._check_fitted()
        if role not in ("query", "key"):
            raise ValueError(f"argument 'role' must be 'query' or 'key', got {role!r}")
        x4, shape = _as4d(x, "x")
        assert self.A_ is not None and self.anchors_ is not None
        H = self.A_.shape[0]
        if x4.shape[1] != H or x4.shape[3] != self.anchors_.shape[2]:
            raise ValueError(f"argument 'x' must be (..., {H}, n, {self.anchors_.shape[2]}) "
                             f"(heads, n, d of the fit), got {shape}")
        A = self.A_ if (role == "query" or self.A_key_ is None) else self.A_key_
        z: np.ndarray = np.einsum("bhnm,hkm->bhnk", self._features(x4), A)
        return z.reshape(tuple(shape[:-1]) + (self.bits,))

    def encode(self, x: Any, role: Literal["query", "key"] = "query") -> np.ndarray:
        """Packed codes (x.shape[:-1], dtype :func:`word_dtype` (bits)) of tokens x."""
        return pack(self.project(x, role), self.bits)

    # -- state ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The configuration and fitted arrays (numpy) as a flat dict (``from_dict`` inverts)."""
        d: dict[str, Any] = {"bits": self.bits, "anchors": self.anchors, "topk": self.topk,
                             "seed": self.seed, "sigma": self.sigma, "normalize": self.normalize,
                             "iterations": self.iterations, "lr": self.lr,
                             "momentum": self.momentum, "fitted": self.fitted,
                             "shared": self.shared}
        for key in ("anchors_", "sigma_", "mvec_", "A_", "A_key_", "A_init_", "bit_loss_",
                    "accepted_"):
            val = getattr(self, key)
            if val is not None:
                d[key] = np.array(val)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KernelHash:
        def scalar(key: str) -> Any:
            val = d[key]
            return val.item() if isinstance(val, np.ndarray) else val

        kh = cls(bits=int(scalar("bits")), anchors=int(scalar("anchors")),
                 topk=int(scalar("topk")), seed=int(scalar("seed")), sigma=str(scalar("sigma")),  # type: ignore[arg-type]
                 normalize=bool(scalar("normalize")), iterations=int(scalar("iterations")),
                 lr=float(scalar("lr")), momentum=float(scalar("momentum")))
        kh.fitted = bool(scalar("fitted"))
        kh.shared = bool(scalar("shared"))
        for key in ("anchors_", "sigma_", "mvec_", "A_", "A_key_", "A_init_", "bit_loss_",
                    "accepted_"):
            if key in d:
                setattr(kh, key, np.array(d[key]))
        if kh.fitted and (kh.A_ is None or kh.anchors_ is None or kh.mvec_ is None
                          or kh.sigma_ is None):
            raise ValueError("KernelHash.from_dict: a fitted state needs anchors_, sigma_, mvec_ and A_")
        return kh

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save to a .npz file (no pickles)."""
        d = self.to_dict()
        arrays: dict[str, Any] = {k: np.asarray(v) for k, v in d.items()}
        np.savez(path, **arrays)

    def __repr__(self) -> str:
        state = "fitted" if self.fitted else "unfitted"
        return (f"KernelHash(bits={self.bits}, anchors={self.anchors}, topk={self.topk}, "
                f"seed={self.seed}, sigma={self.sigma!r}, {state})")


def load(path: str | os.PathLike[str]) -> KernelHash:
    """A :class:`KernelHash` saved with :meth:`KernelHash.save` (``path`` with or without the
    ``.npz`` suffix that numpy's savez adds)."""
    with np.load(_dispatch.npz_path(path), allow_pickle=False) as z:
        return KernelHash.from_dict({k: z[k] for k in z.files})


KernelHash.load = staticmethod(load)  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------------------------
# energy model
# ----------------------------------------------------------------------------------------------

PJ_PER_MUL = 3.7
PJ_PER_ADD = 0.9
UM2_PER_MUL = 7700
UM2_PER_ADD = 4184


def energy_model(kind: Literal["softmax", "linear", "hashed"], n: int, dim: int, heads: int,
                 bits: int = 16, anchors: int = 25, nb_features: int | None = None
                 ) -> dict[str, float]:
    """Multiplications, additions and 45 nm energy of one attention layer, counted as the
    EcoFormer reference does (ziplab/EcoFormer ``pvt/get_energy.py``: 3.7 pJ per float32
    multiply and 0.9 pJ per add, Horowitz ISSCC 2014; area 7700 / 4184 um^2 per multiplier /
    adder, reported as their ``muls*7700 + adds*4184``).

    n tokens, ``dim`` the embedding dimension (all heads), C = dim / heads per head:

    * ``"softmax"`` (``msa_flops``): muls = 2 n^2 dim + heads n^2 (q k^T, attn v, scale),
      adds = 2 n^2 dim (the softmax exponentials are not counted, as in the reference).
    * ``"hashed"`` (``fast_attn_ecoformer_flops``): RBF kernel adds 2 H n m C and muls 2 H n m;
      hashing muls and adds H n m b; key sum adds H n b; normaliser muls H n b + H n and adds
      H n b; context adds H n b C; output adds H n b C + H n C; final scaling muls H n C.
    * ``"linear"`` (Performer, ``FastAttention.compute_macs`` in ``pvt/performer.py``, with
      muls = adds = MACs as get_energy counts the backbone): feature maps of q and k
      2 (H n F C + 2 H n C + 2 H n F), key sum H n F, normaliser H n F, context H n F C, output
      2 H n F C, with F = ``nb_features`` (default int(C ln C), the reference's).

    Returns ``{"muls", "adds", "energy_pj", "area_um2"}``.
    """
    if kind not in ("softmax", "linear", "hashed"):
        raise ValueError(f"argument 'kind' must be 'softmax', 'linear' or 'hashed', got {kind!r}")
    for name, val in (("n", n), ("dim", dim), ("heads", heads)):
        if int(val) < 1:
            raise ValueError(f"argument {name!r} must be >= 1, got {val}")
    if dim % heads:
        raise ValueError(f"argument 'dim' ({dim}) must be divisible by 'heads' ({heads})")
    N, H, C = int(n), int(heads), int(dim) // int(heads)
    muls = adds = 0
    if kind == "softmax":
        muls = 2 * N * N * dim + H * N * N
        adds = 2 * N * N * dim
    elif kind == "hashed":
        Nh, m = _check_bits(bits), int(anchors)
        adds += 2 * H * N * m * C
        muls += H * N * m * 2
        muls += H * N * m * Nh
        adds += H * N * m * Nh
        adds += H * N * Nh
        muls += H * N * Nh + H * N
        adds += H * N * Nh
        adds += H * N * Nh * C
        adds += H * N * Nh * C + H * N * C
        muls += H * N * C
    else:
        F = int(C * math.log(C)) if nb_features is None else int(nb_features)
        macs = 2 * (H * N * F * C + 2 * H * N * C + 2 * H * N * F)
        macs += H * N * F + H * N * F + H * N * F * C + 2 * H * N * F * C
        muls = adds = macs
    return {"muls": float(muls), "adds": float(adds),
            "energy_pj": PJ_PER_MUL * muls + PJ_PER_ADD * adds,
            "area_um2": float(UM2_PER_MUL * muls + UM2_PER_ADD * adds)}
