"""Kernelized attention with relative positional encoding (Luo et al. 2021), by Toeplitz products.

Softmax attention with a relative-position bias ``b`` (one scalar per offset and head),

    z_i = sum_j exp(q_i.k_j / sqrt(d) + b_{j-i}) v_j / sum_j exp(q_i.k_j / sqrt(d) + b_{j-i}),

is approximated by replacing ``exp(q.k / sqrt(d))`` with ``phi(q) . phi(k)`` (FAVOR+ positive
orthogonal random features, Choromanski et al. 2021) while the bias stays exact, as the Toeplitz
matrix ``T[i, j] = c_{j-i} = exp(b_{j-i} - max b)``:

    z_i = sum_l phi_l(q_i) [T (phi_l(K) * V)]_i / sum_l phi_l(q_i) [T phi(K)]_{i,l}.

Every product with ``T`` is a Toeplitz matrix product, O(n log n) by FFT, so a head costs
O(m d n log n) time and, with the features processed in chunks, O(n (m + d)) memory. With
m (d + 1) FFT columns per head that beats the direct O(n^2 (m + d)) evaluation only at large n,
so ``method="auto"`` uses the direct formula in row blocks (same memory bound, exact, no FFT
rounding) up to the crossover the benchmarks measured, and the FFT above it. The
exponential-decay bias ``c_t = lam^|t|`` has an O(n) path by a chunkwise state scan
(`rpe_attention_decay`). Gradients are hand-derived (`rpe_attention_backward`; the torch
autograd functions are in `kernkit.torch`).

Reference: S. Luo, S. Li, T. Cai, D. He, D. Peng, S. Zheng, G. Ke, L. Wang, T.-Y. Liu, "Stable,
Fast and Accurate: Kernelized Attention with Relative Positional Encoding", NeurIPS 2021
(arXiv:2106.12566), Algorithm 1; K. Choromanski et al., "Rethinking Attention with Performers",
ICLR 2021 (arXiv:2009.14794) for the features.
"""

from __future__ import annotations

import functools
import math
import sys
from typing import Any

import numpy as np

from . import _core, _dispatch

__all__ = [
    "random_projection",
    "rpe_features",
    "rpe_attention",
    "rpe_attention_backward",
    "rpe_attention_decay",
    "rpe_attention_decay_backward",
]

# Elements of one feature chunk's right-hand side (rows x columns, all heads of the group) that
# the CPU path aims for; the GPU path uses a larger one. Memory per head is O(n (m + d)) anyway.
_WORKSPACE_CPU = 1 << 22
_WORKSPACE_GPU = 1 << 26
_SCAN_CHUNK = 64
_NORM_EPS = 1e-30
_DIRECT_ROWS = 64
# method="auto": the dense O(n^2) path up to these n (crossovers measured by bench/toeplitz/bench_rpe.py
# on the CPU and bench/gpu/bench_rpe_gpu.py on an H100, bench/results/gpu/rpe_gpu.md: dense beat
# the FFT path at every n it ran, up to 16384 (41 vs 105 ms); the decay scan beat dense from
# n = 4096 on (2.6 vs 2.4 ms there, 4.2 vs 41 ms at 16384))
_DENSE_MAX_N = {("fft", False): 12288, ("scan", False): 256, ("fft", True): 16384, ("scan", True): 4096}


# --------------------------------------------------------------------------------------------
# array-library shim (numpy, torch, cupy): the few calls the array API spells differently
# --------------------------------------------------------------------------------------------
class _Lib:
    def __init__(self, like: Any) -> None:
        mod = type(like).__module__.split(".")[0]
        self.kind = mod if mod in ("torch", "cupy") else "numpy"
        if self.kind == "torch":
            import torch

            self.lib: Any = torch
            self.device = like.device
            self.on_gpu = like.device.type == "cuda"
        elif self.kind == "cupy":
            import cupy

            self.lib = cupy
            self.device = None
            self.on_gpu = True
        else:
            self.lib = np
            self.device = None
            self.on_gpu = False
        self.dtype = like.dtype

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        dtype = self.dtype if dtype is None else dtype
        if self.kind == "torch":
            if isinstance(a, self.lib.Tensor):
                a = a.detach()  # the hand-written backward, not autograd, differentiates this
            elif isinstance(a, np.ndarray):
                a = self.lib.from_numpy(np.array(a) if not a.flags.writeable else np.ascontiguousarray(a))
            return self.lib.as_tensor(a, dtype=dtype, device=self.device)
        return self.lib.asarray(a, dtype=dtype)

    def index(self, a: np.ndarray) -> Any:
        """An integer index array on the device (built there for torch: no host copy per call)."""
        if self.kind == "torch":
            return self.lib.as_tensor(a, device=self.device)
        return self.lib.asarray(a)

    def arange(self, start: int, stop: int) -> Any:
        if self.kind == "torch":
            return self.lib.arange(start, stop, device=self.device)
        return self.lib.arange(start, stop)

    def empty(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        dtype = self.dtype if dtype is None else dtype
        if self.kind == "torch":
            return self.lib.empty(shape, dtype=dtype, device=self.device)
        return self.lib.empty(shape, dtype=dtype)

    def zeros(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        dtype = self.dtype if dtype is None else dtype
        if self.kind == "torch":
            return self.lib.zeros(shape, dtype=dtype, device=self.device)
        return self.lib.zeros(shape, dtype=dtype)

    def rfft(self, x: Any, n: int, axis: int) -> Any:
        if self.kind == "torch":
            return self.lib.fft.rfft(x, n=n, dim=axis)
        return self.lib.fft.rfft(x, n=n, axis=axis)

    def irfft(self, x: Any, n: int, axis: int) -> Any:
        if self.kind == "torch":
            return self.lib.fft.irfft(x, n=n, dim=axis)
        return self.lib.fft.irfft(x, n=n, axis=axis)

    def concat(self, arrays: list[Any], axis: int) -> Any:
        if self.kind == "torch":
            return self.lib.cat(arrays, dim=axis)
        return self.lib.concatenate(arrays, axis=axis)

    def flip(self, x: Any, axis: int) -> Any:
        if self.kind == "torch":
            return self.lib.flip(x, dims=(axis,))
        return self.lib.flip(x, axis=axis)

    def amax(self, x: Any, axis: Any, keepdims: bool = False) -> Any:
        if self.kind == "torch":
            return self.lib.amax(x, dim=axis, keepdim=keepdims)
        return self.lib.max(x, axis=axis, keepdims=keepdims)

    def sum(self, x: Any, axis: Any, keepdims: bool = False) -> Any:
        if self.kind == "torch":
            return self.lib.sum(x, dim=axis, keepdim=keepdims)
        return self.lib.sum(x, axis=axis, keepdims=keepdims)

    def pad_rows(self, x: Any, rows: int) -> Any:
        """x (..., n, K) with `rows` zero rows appended on axis -2."""
        if rows == 0:
            return x
        z = self.zeros(tuple(x.shape[:-2]) + (rows, x.shape[-1]), dtype=x.dtype)
        return self.concat([x, z], axis=-2)

    def workspace(self) -> int:
        return _WORKSPACE_GPU if self.on_gpu else _WORKSPACE_CPU


_dtype_name = _dispatch.dtype_name


def _fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (FFT-friendly for pocketfft, cuFFT and kernkit's own FFT)."""
    if n <= 1:
        return 1
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


# --------------------------------------------------------------------------------------------
# Toeplitz products. The stand-in below is replaced by kernkit.toeplitz_matmul (issue #5 part A)
# as soon as that exists; delete `_toeplitz_matmul` once it has landed everywhere.
# --------------------------------------------------------------------------------------------
def _toeplitz_matmul(c: Any, r: Any, X: Any, causal: bool = False) -> Any:
    """Stand-in for ``kernkit.toeplitz_matmul``: T(c, r) @ X by zero-padded real FFTs.

    ``T[i, j] = c[i-j]`` for ``i >= j`` and ``r[j-i]`` for ``j > i`` (scipy.linalg.toeplitz);
    X (..., n, k); c, r (..., n) broadcast over X's batch dims; ``causal`` drops r.
    """
    lib = _Lib(X)
    n = X.shape[-2]
    if n == 0:
        return X * 0
    L = _fast_len(2 * n - 1)
    h = lib.zeros(tuple(c.shape[:-1]) + (L,), dtype=X.dtype)
    h[..., :n] = c
    if not causal and n > 1:
        h[..., L - n + 1:] = lib.flip(r[..., 1:], axis=-1)
    H = lib.rfft(h, L, -1)
    Y = lib.irfft(lib.rfft(X, L, -2) * H[..., None], L, -2)
    return Y[..., :n, :]


def _toeplitz() -> Any:
    return getattr(sys.modules.get("kernkit"), "toeplitz_matmul", None) or _toeplitz_matmul


def _tmatmul(lib: _Lib, c: Any, r: Any, X: Any, causal: bool) -> Any:
    """T(c, r) @ X through kernkit.toeplitz_matmul when it exists, else the stand-in.

    torch CPU tensors go through numpy views (no copy) since kernkit's CPU path takes numpy.
    """
    f = _toeplitz()
    if lib.on_gpu and f is not _toeplitz_matmul and not _core.cuda_built():
        f = _toeplitz_matmul  # a CPU-only kernkit build: the array library's own FFT on the GPU
    if f is _toeplitz_matmul or lib.kind == "numpy" or lib.on_gpu:
        return f(c, None if causal else r, X, causal=causal)
    out = f(c.numpy(), None if causal else r.numpy(), X.numpy(), causal=causal)
    return lib.lib.from_numpy(out)


# --------------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------------
def random_projection(d: int, m: int, seed: int = 0) -> np.ndarray:
    """FAVOR+ positive orthogonal random features projection W of shape (m, d), float64.

    Rows come in blocks of ``d`` mutually orthogonal directions (QR of a d x d standard Gaussian
    matrix, signs fixed by diag(R) so each block is Haar-distributed), the last block truncated
    to ``m mod d`` rows; each row is rescaled to the norm of an independent d-dimensional
    standard Gaussian vector (a chi(d) length), so every row is marginally N(0, I_d) while rows
    within a block stay orthogonal (Choromanski et al. 2021, "orthogonal random features").
    Deterministic for a given ``seed`` (numpy PCG64).

    Parameters
    ----------
    d : int
        Head dimension (>= 1).
    m : int
        Number of random features (>= 1).
    seed : int
        Seed of ``numpy.random.default_rng``.
    """
    d, m = _check_int("d", d, 1), _check_int("m", m, 1)
    rng = np.random.default_rng(seed)
    blocks = []
    for start in range(0, m, d):
        g = rng.standard_normal((d, d))
        qm, rm = np.linalg.qr(g)
        qm = qm * np.where(np.diag(rm) < 0, -1.0, 1.0)[None, :]
        blocks.append(qm.T[: min(d, m - start)])
    W = np.concatenate(blocks, axis=0)
    norms = np.linalg.norm(rng.standard_normal((m, d)), axis=1)
    return np.ascontiguousarray(W * norms[:, None])


@functools.lru_cache(maxsize=32)
def _projection_cached(d: int, m: int, seed: int) -> np.ndarray:
    W = random_projection(d, m, seed)
    W.setflags(write=False)
    return W


def _check_int(name: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"argument {name!r} must be an integer, got {type(v).__name__}")
    if v < lo:
        raise ValueError(f"argument {name!r} must be >= {lo}, got {v}")
    return int(v)


def _scaled(lib: _Lib, x: Any, normalize: bool) -> tuple[Any, Any]:
    """x~ = d^(-1/4) x (or d^(-1/4) x / |x|); returns (x~, |x| or None)."""
    d = x.shape[-1]
    alpha = d ** -0.25
    if not normalize:
        return x * alpha, None
    norm = lib.sum(x * x, -1, keepdims=True) ** 0.5
    norm = lib.lib.where(norm < _NORM_EPS, _NORM_EPS, norm)     # a zero vector stays zero
    return x * (alpha / norm), norm


def _features(lib: _Lib, xs: Any, W: Any, is_query: bool, mask: Any | None) -> Any:
    """phi(x~) = exp(w.x~ - |x~|^2/2 - s) / sqrt(m), s the max-stabilizer (see rpe_attention)."""
    m = W.shape[0]
    U = xs @ W.T                                           # (G, n, m)
    if is_query:
        E = U - lib.amax(U, -1, keepdims=True)             # |x~|^2/2 cancels against the row max
        return lib.lib.exp(E) * (1.0 / math.sqrt(m))
    E = U - 0.5 * lib.sum(xs * xs, -1, keepdims=True)
    if mask is not None:
        E = lib.lib.where(mask[..., None], E, -math.inf)
    if E.shape[-2] == 0:
        return E
    s = lib.amax(E, (-2, -1), keepdims=True)               # one per (batch, head)
    s = lib.lib.where(s == -math.inf, 0.0, s)              # no real key: keep 0 (NaN stays NaN)
    B = lib.lib.exp(E - s) * (1.0 / math.sqrt(m))
    if mask is not None:
        B = lib.lib.where(mask[..., None], B, 0.0)
    return B


def rpe_features(x: Any, projection: Any, *, is_query: bool, normalize_qk: bool = False,
                 key_padding_mask: Any | None = None) -> Any:
    """The feature map phi that `rpe_attention` uses, for reproducing its kernel.

    ``phi(x)_l = exp(w_l . x~ - |x~|^2 / 2 - s) / sqrt(m)`` with ``x~ = d^(-1/4) x`` (or
    ``d^(-1/4) x / |x|`` with ``normalize_qk``), W = ``projection`` (m, d). The stabilizer s is
    the max over l of the exponent per query row (``is_query=True``) and the max over all rows
    and l per (batch, head) for keys; it cancels in the attention ratio. x: (batch, heads, n, d).
    """
    lib = _Lib(x)
    W = lib.asarray(projection)
    mask = None if key_padding_mask is None else lib.asarray(key_padding_mask, dtype=_bool(lib))[:, None, :]
    xs, _ = _scaled(lib, x, normalize_qk)
    return _features(lib, xs, W, is_query, mask)


def _bool(lib: _Lib) -> Any:
    return lib.lib.bool if lib.kind == "torch" else bool


# --------------------------------------------------------------------------------------------
# Toeplitz operators: general bias (FFT) and exponential decay (scan)
# --------------------------------------------------------------------------------------------
class _BiasOp:
    """T with T[i, j] = c_{j-i}, c (G, 2n-1) over offsets -(n-1)..n-1; causal keeps j <= i.

    float32 products run in float64 (CPU and GPU): an FFT product's rounding error is relative to
    the whole output, so rows whose sums are small (the first rows of causal attention, which
    see few keys) would lose digits (float32 cuFFT gave 1.4e-5 causal on an H100, above the 1e-5
    bound; float64 products are cheap next to the rest on data-centre GPUs). The first rows of a causal product are also recomputed
    directly (a small lower-triangular matrix), for the same reason. So are the rows whose
    coefficients are all small (below _WEAK_COEF, c being at most 1): a bias far larger at
    offsets that a row does not see (b_t = 0.2 t at n = 256: rows from ~100 on see at most
    e^-20 of the largest coefficient) leaves such a row's sums at the FFT's rounding level, and
    their ratio was garbage (~100x max|v|). ``weak`` (T's rows) and ``weak_t`` (T^T's): host
    index arrays, found from the per-head coefficients ``heads``.
    """

    def __init__(self, lib: _Lib, coef: Any, causal: bool, heads: Any = None) -> None:
        self.lib, self.causal = lib, causal
        self.work = lib.dtype
        if _dtype_name(lib) == "float32":
            self.work = lib.lib.float64
            coef = coef.to(self.work) if lib.kind == "torch" else coef.astype(np.float64)
        n = (coef.shape[-1] + 1) // 2
        self.n, self.coef = n, coef
        # scipy convention: col[s] = c_{-s} (i - j = s >= 0), row[s] = c_{s} (j - i = s >= 0)
        self.col = lib.flip(coef[..., :n], axis=-1)
        self.row = coef[..., n - 1:]
        self.weak, self.weak_t = _weak_rows(lib, coef if heads is None else heads, n)

    def rows(self, sl: slice) -> "_BiasOp":
        op = _BiasOp.__new__(_BiasOp)
        op.lib, op.causal, op.n, op.work = self.lib, self.causal, self.n, self.work
        op.coef, op.col, op.row = self.coef[sl], self.col[sl], self.row[sl]
        op.weak, op.weak_t = self.weak, self.weak_t
        return op

    def _in(self, Y: Any) -> Any:
        if Y.dtype == self.work:
            return Y
        return Y.to(self.work) if self.lib.kind == "torch" else Y.astype(self.work)

    def _out(self, Z: Any) -> Any:
        if Z.dtype == self.lib.dtype:
            return Z
        return Z.to(self.lib.dtype) if self.lib.kind == "torch" else Z.astype(self.lib.dtype)

    def _causal_head(self, Y: Any, Z: Any) -> Any:
        """Rows 0..w-1 of a causal product, directly (they see only the first w rows of Y)."""
        lib = self.lib
        w = min(self.n, _DIRECT_ROWS)
        i = np.arange(w)
        e = i[:, None] - i[None, :]
        Tw = self.col[..., lib.index(np.clip(e, 0, None))]             # (g, w, w)
        Tw = lib.lib.where(lib.asarray(e >= 0, dtype=_bool(lib)), Tw, 0.0)
        Z[..., :w, :] = Tw @ Y[..., :w, :]
        return Z

    def _direct_rows(self, coef: Any, rows: np.ndarray, Y: Any, Z: Any) -> Any:
        """Z[:, i] = sum_j coef[:, j - i + n - 1] Y[:, j] for i in rows, in blocks of rows."""
        if len(rows) == 0:
            return Z
        lib, n = self.lib, self.n
        Wd = _windows(lib, coef, n)  # row i is window n - 1 - i
        w = _dense_rows(lib, coef.shape[0], n)
        for a in range(0, len(rows), w):
            r = rows[a:a + w]
            Z[..., lib.index(r), :] = Wd[:, lib.index(n - 1 - r), :] @ Y
        return Z

    def mm(self, Y: Any, keep: bool = False) -> Any:
        """T Y, in Y's dtype; keep=True: in the working dtype (float64 for float32 inputs)."""
        Y = self._in(Y)
        Z = _tmatmul(self.lib, self.col, self.row, Y, self.causal)
        if self.causal and self.n > 1:
            Z = self._causal_head(Y, Z)
        Z = self._direct_rows(self.coef, self.weak, Y, Z)
        return Z if keep else self._out(Z)

    def _split_weak(self, X: Any) -> tuple[Any, Any]:
        """X with T's weak rows zeroed, and those rows (the backward's X carries 1 / den there,
        e^d larger than elsewhere: inside an FFT product their terms would swamp the rest)."""
        if len(self.weak) == 0:
            return X, None
        w = self.lib.index(self.weak)
        Xw = X[..., w, :]
        Xs = X.clone() if self.lib.kind == "torch" else X.copy()
        Xs[..., w, :] = 0
        return Xs, Xw

    def mmT(self, X: Any, keep: bool = False) -> Any:
        """T^T X: T's weak rows of X directly (Wd rows transposed), the rest by FFT; keep as in mm."""
        lib = self.lib
        X, Xw = self._split_weak(self._in(X))
        if self.causal:  # T^T = J T J (J reverses the rows)
            Jx = lib.flip(X, -2)
            Z = lib.flip(self._causal_head(Jx, _tmatmul(lib, self.col, self.row, Jx, True)), -2)
        else:
            Z = _tmatmul(lib, self.row, self.col, X, False)
            Z = self._direct_rows(lib.flip(self.coef, -1), self.weak_t, X, Z)
        if Xw is not None:
            Wd = _windows(lib, self.coef, self.n)
            w = _dense_rows(lib, self.coef.shape[0], self.n)
            for a in range(0, len(self.weak), w):
                r = self.weak[a:a + w]
                Z = Z + _tr(lib, Wd[:, lib.index(self.n - 1 - r), :]) @ Xw[..., a:a + len(r), :]
        return Z if keep else self._out(Z)

    def dense_coef(self) -> Any:
        return self._out(self.coef)

    def dense_grad(self, dc: Any) -> Any:
        return dc

    def grad(self, X: Any, Y: Any) -> Any:
        """dc_t = sum_cols sum_i X[i] Y[i + t] for t = -(n-1)..n-1, by FFT cross-correlation; in
        the working dtype (the caller multiplies by c: dc can exceed float32 where c is tiny)."""
        lib, n = self.lib, self.n
        L = _fast_len(2 * n - 1)
        X, Xw = self._split_weak(self._in(X))
        Y = self._in(Y)
        S = lib.sum(lib.rfft(X, L, -2).conj() * lib.rfft(Y, L, -2), -1)
        corr = lib.irfft(S, L, -1)                          # corr[t mod L]
        dc = lib.concat([corr[..., L - n + 1:], corr[..., :n]], axis=-1)
        if Xw is not None:  # T's weak rows i directly: dc[j - i + n - 1] += X[i] . Y[j]
            w = _dense_rows(lib, X.shape[0], n)
            for a in range(0, len(self.weak), w):
                r = self.weak[a:a + w]
                P = Xw[..., a:a + len(r), :] @ _tr(lib, Y)                   # (g, len(r), n)
                idx = (n - 1 - r)[:, None] + np.arange(n)[None, :]
                _add_at(lib, dc, idx.reshape(-1), P.reshape(P.shape[0], -1))
        if self.causal:
            dc[..., n:] = 0
        return dc


def _add_at(lib: _Lib, a: Any, idx: np.ndarray, vals: Any) -> None:
    """a[:, idx] += vals (g, len(idx)), repeated indices summed."""
    if lib.kind == "torch":
        i = lib.index(idx)[None, :].expand(vals.shape[0], -1)
        a.scatter_add_(-1, i, vals)
    elif lib.kind == "cupy":
        import cupyx

        cupyx.scatter_add(a, (slice(None), lib.index(idx)), vals)
    else:
        np.add.at(a, (slice(None), idx), vals)  # type: ignore[arg-type]  # (numpy's stubs: no slices)


# A row of a Toeplitz product whose coefficients are all below this (the largest in use being 1)
# is recomputed directly (_BiasOp): the FFT's rounding is relative to the whole product, and such
# a row's error grows as eps / its largest coefficient (linear biases at n = 256: thresholds 1e-4,
# 1e-3, 1e-2 left 1e-11, 5e-13, 5e-14 relative in float64, against 1e-15 for flat biases).
_WEAK_COEF = 1e-2


def _weak_rows(lib: _Lib, c: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows i of T (T[i, j] = c[:, j - i + n - 1]) and of T^T whose largest coefficient, over
    every head of c (h, 2n-1), is below _WEAK_COEF (or zero: a row that sees no key must come out
    exactly 0, not FFT noise). Found on the host; none while a CUDA graph is being captured (the
    copy would break it), where such rows keep the FFT's accuracy."""
    none = np.zeros(0, dtype=np.int64)
    if n == 0 or (lib.on_gpu and _dispatch.capturing(c)):
        return none, none
    if lib.kind == "torch":
        h = c.detach().to("cpu", copy=False).numpy()
    elif lib.kind == "cupy":
        h = c.get()
    else:
        h = np.asarray(c)
    h = h.reshape(-1, 2 * n - 1).astype(np.float64, copy=False)

    def weak(a: np.ndarray) -> np.ndarray:
        # row i sees a[:, s .. s + n - 1], s = n - 1 - i: the max of a suffix of the first n
        # entries and a prefix of the rest
        suf = np.maximum.accumulate(a[:, :n][:, ::-1], axis=1)[:, ::-1]
        pre = np.maximum.accumulate(a[:, n:], axis=1)
        wmax = suf.copy()
        wmax[:, 1:] = np.maximum(suf[:, 1:], pre)
        low = np.any(wmax < _WEAK_COEF, axis=0)    # by window s; NaN is not weak
        return np.flatnonzero(low[::-1]).astype(np.int64)  # s = n - 1 - i

    return weak(h), weak(h[:, ::-1])


def _scan(lib: _Lib, Y: Any, lam: Any) -> Any:
    """S_i = lam S_{i-1} + Y_i along axis -2 of Y (G, n, K), lam (G,): O(n) by chunks.

    Inside a chunk of C rows the scan is a (C x C) lower-triangular matrix of powers of lam;
    the chunk totals form a scan of length n / C with factor lam^C, done the same way.
    """
    G, n, K = Y.shape
    C = _SCAN_CHUNK
    lam = lam.reshape(G, 1, 1)
    if n <= C:
        a = lib.asarray(np.arange(n))
        e = a[:, None] - a[None, :]
        P = lib.lib.where(e >= 0, lam ** lib.lib.where(e >= 0, e, 0.0), 0.0)
        return P @ Y
    nc = -(-n // C)
    Yc = lib.pad_rows(Y, nc * C - n).reshape(G, nc, C, K)
    a = lib.asarray(np.arange(C))
    e = a[:, None] - a[None, :]
    P = lib.lib.where(e >= 0, lam ** lib.lib.where(e >= 0, e, 0.0), 0.0)            # (G, C, C)
    intra = P[:, None] @ Yc                                                          # (G, nc, C, K)
    totals = _scan(lib, intra[:, :, C - 1, :], lam.reshape(G) ** C)                  # (G, nc, K)
    carry = lib.concat([lib.zeros((G, 1, K), dtype=Y.dtype), totals[:, :-1]], axis=1)
    up = lam ** (a + 1)                                                              # (G, 1, C)
    out = intra + up.reshape(G, 1, C, 1) * carry[:, :, None, :]
    return out.reshape(G, nc * C, K)[:, :n]


class _DecayOp:
    """T[i, j] = lam^|i-j| (lower triangle only when causal), lam (G,)."""

    def __init__(self, lib: _Lib, lam: Any, causal: bool, n: int) -> None:
        self.lib, self.lam, self.causal, self.n = lib, lam, causal, n

    def _abs_t(self) -> Any:
        return self.lib.asarray(np.abs(np.arange(-(self.n - 1), self.n)))

    def dense_coef(self) -> Any:
        """c_t = lam^|t| over t = -(n-1)..n-1 (zero for t > 0 when causal)."""
        c = self.lam[:, None] ** self._abs_t()[None, :]
        if self.causal:
            c = self.lib.concat([c[:, : self.n], self.lib.zeros((c.shape[0], self.n - 1))], -1)
        return c

    def dense_grad(self, dc: Any) -> Any:
        """dlam = sum_t dc_t |t| lam^(|t|-1)."""
        t = self._abs_t()[None, :]
        dcdl = self.lib.lib.where(t >= 1, t * self.lam[:, None] ** self.lib.lib.where(t >= 1, t - 1, 0.0), 0.0)
        return self.lib.sum(dc * dcdl, -1)


def _tr(lib: _Lib, x: Any) -> Any:
    """Swap the last two axes."""
    return x.transpose(-1, -2) if lib.kind == "torch" else lib.lib.swapaxes(x, -1, -2)


def _chunked(lib: _Lib, X: Any, C: int) -> Any:
    G, n, p = X.shape
    nc = -(-n // C)
    return lib.pad_rows(X, nc * C - n).reshape(G, nc, C, p)


def _powers(lib: _Lib, lam: Any, e: Any, shift: int = 0) -> Any:
    """lam^(e - shift) where e >= shift, else 0; lam (G,), e integer array -> (G, *e.shape)."""
    lam = lam.reshape((-1,) + (1,) * e.ndim)
    ok = lib.asarray(e >= shift, dtype=_bool(lib))
    ex = lib.asarray(np.where(e >= shift, e - shift, 0))
    return lib.lib.where(ok, lam ** ex, 0.0)


def _decay_states(lib: _Lib, Kc: Any, Vc: Any, lam: Any, C: int) -> tuple[Any, Any, Any]:
    """Chunk states S_c = sum_{j <= end of chunk c} lam^(end_c - j) K_j V_j^T: (G, nc, p, r).

    Returns (S_{c-1} with S_{-1} = 0, the chunk totals E_c, the inclusive S_c)."""
    G, nc, _, p = Kc.shape
    r = Vc.shape[-1]
    a = np.arange(C)
    wK = _powers(lib, lam, C - 1 - a)                                  # lam^(C-1-b): (G, C)
    E = _tr(lib, Kc * wK[:, None, :, None]) @ Vc                        # (G, nc, p, r)
    S = _scan(lib, E.reshape(G, nc, p * r), lam ** C).reshape(G, nc, p, r)
    Sprev = lib.concat([lib.zeros((G, 1, p, r)), S[:, :-1]], 1)
    return Sprev, E, S


def _decay_F(lib: _Lib, Q: Any, K: Any, V: Any, lam: Any) -> Any:
    """Y_i = sum_{j <= i} lam^(i-j) (Q_i . K_j) V_j, chunkwise: Q, K (G, n, p), V (G, n, r).

    Inside a chunk of C rows: ((Q K^T) * D) V with D[a, b] = lam^(a-b); across chunks the state
    S_c (p x r) follows the scan S_c = lam^C S_{c-1} + E_c (O(n (C (p + r) + p r)) in all)."""
    G, n, _ = Q.shape
    C = min(n, _SCAN_CHUNK)
    Qc, Kc, Vc = _chunked(lib, Q, C), _chunked(lib, K, C), _chunked(lib, V, C)
    a = np.arange(C)
    D = _powers(lib, lam, a[:, None] - a[None, :])                      # (G, C, C)
    Y = ((Qc @ _tr(lib, Kc)) * D[:, None]) @ Vc                          # (G, nc, C, r)
    if Qc.shape[1] > 1:
        Sprev, _, _ = _decay_states(lib, Kc, Vc, lam, C)
        Y = Y + (Qc @ Sprev) * _powers(lib, lam, a + 1)[:, None, :, None]
    return Y.reshape(G, -1, V.shape[-1])[:, :n]


def _decay_dlam(lib: _Lib, Q: Any, K: Any, V: Any, dY: Any, lam: Any) -> Any:
    """sum_i dY_i . dY_i/dlam for Y = _decay_F(Q, K, V, lam): (G,), chunkwise like the forward.

    Inside chunks D'[a, b] = (a-b) lam^(a-b-1); across chunks d/dlam [lam^(a+1) Q_a S_{c-1}] with
    S'_c = C lam^(C-1) S_{c-1} + lam^C S'_{c-1} + E'_c, E'_c the chunk totals weighted by
    (C-1-b) lam^(C-2-b): one more scan."""
    G, n, _ = Q.shape
    C = min(n, _SCAN_CHUNK)
    Qc, Kc, Vc, dYc = (_chunked(lib, X, C) for X in (Q, K, V, dY))
    a = np.arange(C)
    e = a[:, None] - a[None, :]
    Dp = lib.asarray(np.where(e >= 1, e, 0))[None] * _powers(lib, lam, e, 1)     # (G, C, C)
    total = lib.sum(((Qc @ _tr(lib, Kc)) * Dp[:, None] * (dYc @ _tr(lib, Vc))).reshape(G, -1), -1)
    nc = Qc.shape[1]
    if nc == 1:
        return total
    Sprev, _, _ = _decay_states(lib, Kc, Vc, lam, C)
    wp = lib.asarray(np.maximum(C - 1 - a, 0))[None] * _powers(lib, lam, C - 2 - a)   # (G, C)
    Ep = _tr(lib, Kc * wp[:, None, :, None]) @ Vc                                  # (G, nc, p, r)
    p, r = Ep.shape[-2], Ep.shape[-1]
    lamC1 = (C * _powers(lib, lam, np.array([C - 1])))[:, :, None, None]          # (G, 1, 1, 1)
    Sp = _scan(lib, (Ep + lamC1 * Sprev).reshape(G, nc, p * r), lam ** C).reshape(G, nc, p, r)
    Spprev = lib.concat([lib.zeros((G, 1, p, r)), Sp[:, :-1]], 1)
    w1 = lib.asarray(a + 1)[None] * _powers(lib, lam, a)                           # (a+1) lam^a
    w2 = _powers(lib, lam, a + 1)                                                  # lam^(a+1)
    inter = (Qc @ Sprev) * w1[:, None, :, None] + (Qc @ Spprev) * w2[:, None, :, None]
    return total + lib.sum((inter * dYc).reshape(G, -1), -1)


def _flipF(lib: _Lib, Q: Any, K: Any, V: Any, lam: Any) -> Any:
    """Y_i = sum_{j >= i} lam^(j-i) (Q_i . K_j) V_j (the anti-causal direction)."""
    f = lib.flip
    return f(_decay_F(lib, f(Q, 1), f(K, 1), f(V, 1), lam), 1)


def _attend_decay(lib: _Lib, A: Any, B: Any, Vm: Any, op: _DecayOp) -> tuple[Any, Any]:
    """num, den for c_t = lam^|t| in O(n): chunkwise decayed linear attention, both directions."""
    G, n, _ = A.shape
    Vt = lib.concat([Vm, lib.zeros((G, n, 1)) + 1.0], -1)              # [V, 1]: numerator and den
    Y = _decay_F(lib, A, B, Vt, op.lam)
    if not op.causal:
        Y = Y + _flipF(lib, A, B, Vt, op.lam) - lib.sum(A * B, -1, keepdims=True) * Vt
    return Y[..., :-1], Y[..., -1]


def _attend_decay_backward(lib: _Lib, Gn: Any, gd: Any, A: Any, B: Any, Vm: Any, op: _DecayOp
                           ) -> tuple[Any, Any, Any, Any]:
    """dA, dB, dV, dlam for `_attend_decay` (dY = [Gn, gd] the gradient of [num, den])."""
    G, n, _ = A.shape
    lam = op.lam
    Vt = lib.concat([Vm, lib.zeros((G, n, 1)) + 1.0], -1)
    dY = lib.concat([Gn, gd[..., None]], -1)
    dA = _decay_F(lib, dY, Vt, B, lam)                                   # sum_{j<=i} (dY_i.Vt_j) B_j
    dB = _flipF(lib, Vt, dY, A, lam)                                     # sum_{i>=j} (dY_i.Vt_j) A_i
    dVt = _flipF(lib, B, A, dY, lam)                                     # sum_{i>=j} (A_i.B_j) dY_i
    dlam = _decay_dlam(lib, A, B, Vt, dY, lam)
    if not op.causal:
        f = lib.flip
        dA = dA + _flipF(lib, dY, Vt, B, lam) - lib.sum(dY * Vt, -1, keepdims=True) * B
        dB = dB + _decay_F(lib, Vt, dY, A, lam) - lib.sum(dY * Vt, -1, keepdims=True) * A
        dVt = dVt + _decay_F(lib, B, A, dY, lam) - lib.sum(A * B, -1, keepdims=True) * dY
        dlam = dlam + _decay_dlam(lib, f(A, 1), f(B, 1), f(Vt, 1), f(dY, 1), lam)
    return dA, dB, dVt[..., :-1], dlam


# --------------------------------------------------------------------------------------------
# the attention core (all on flattened (batch*heads, n, .) arrays)
# --------------------------------------------------------------------------------------------
def _chunks(lib: _Lib, G: int, n: int, m: int, dv: int, feature_chunk: int | None) -> tuple[int, int]:
    """(heads per group, features per chunk) so one right-hand side holds ~O(n (m + dv)) per head."""
    if feature_chunk is None:
        # about (m + dv) / (dv + 1) features, so a chunk holds ~n (m + dv) numbers per head; on a
        # GPU 4x that (fewer, larger launches; still O(n (m + dv)) per head)
        mc = max(1, min(m, (4 if lib.on_gpu else 1) * -(-(m + dv) // (dv + 1))))
    else:
        mc = min(m, _check_int("feature_chunk", feature_chunk, 1))
    per_head = max(1, n * mc * (dv + 1))
    g = max(1, min(G, lib.workspace() // per_head))
    return g, mc


def _rhs(lib: _Lib, P: Any, Vm: Any, dtype: Any) -> Any:
    """[P_l * V (each l), P] as (g, n, mc*dv + mc), written straight into the Toeplitz product's
    dtype (no concatenated copy, then a converted one)."""
    g, n, mc = P.shape
    k = mc * Vm.shape[-1]
    Z = lib.empty((g, n, k + mc), dtype)
    Z[..., :k] = (P[..., :, None] * Vm[..., None, :]).reshape(g, n, k)
    Z[..., k:] = P
    return Z


def _split(Z: Any, mc: int, dv: int) -> tuple[Any, Any]:
    g, n = Z.shape[0], Z.shape[1]
    return Z[..., : mc * dv].reshape(g, n, mc, dv), Z[..., mc * dv:]


def _einsum(lib: _Lib, spec: str, *ops: Any) -> Any:
    return lib.lib.einsum(spec, *ops)


def _attend(lib: _Lib, A: Any, B: Any, Vm: Any, op: Any, feature_chunk: int | None,
            method: str) -> tuple[Any, Any]:
    """num (G, n, dv), den (G, n): sum_l A_l * T (B_l V) and sum_l A_l * T B_l."""
    if method == "dense":
        return _attend_dense(lib, A, B, Vm, op)
    if method == "scan":
        return _attend_decay(lib, A, B, Vm, op)
    G, n, m = A.shape
    dv = Vm.shape[-1]
    # in the products' dtype: float32 sums of rows that see only tiny coefficients underflow
    num = lib.zeros((G, n, dv), dtype=op.work)
    den = lib.zeros((G, n), dtype=op.work)
    g, mc = _chunks(lib, G, n, m, dv, feature_chunk)
    for g0 in range(0, G, g):
        hs = slice(g0, min(G, g0 + g))
        sub = op.rows(hs)
        for l0 in range(0, m, mc):
            ls = slice(l0, min(m, l0 + mc))
            Bl, Al = B[hs, :, ls], A[hs, :, ls]
            N, D = _split(sub.mm(_rhs(lib, Bl, Vm[hs], op.work), keep=True), Bl.shape[-1], dv)
            Aw = sub._in(Al)  # the product's working dtype (torch's einsum takes one dtype)
            num[hs] += _einsum(lib, "gnl,gnle->gne", Aw, N)
            den[hs] += lib.sum(Aw * D, -1)
    return num, den


def _dense_rows(lib: _Lib, g: int, n: int) -> int:
    """Query rows per block of the dense path: one (g, w, n) block within the workspace."""
    return max(1, min(n, lib.workspace() // max(1, g * n)))


def _windows(lib: _Lib, c: Any, n: int) -> Any:
    """Wd[:, s, j] = c[:, s + j] for s, j < n: a strided (g, n, n) view of c (no copy, no index).

    Row i of the coefficient matrix C[i, j] = c[j - i + n - 1] is window s = n - 1 - i, so a
    block of query rows i0..i1-1 *in reverse order* is the contiguous slice Wd[:, n-i1:n-i0]."""
    if lib.kind == "torch":
        return c.unfold(-1, n, 1)
    return lib.lib.lib.stride_tricks.sliding_window_view(c, n, axis=-1)


def _attend_dense(lib: _Lib, A: Any, B: Any, Vm: Any, op: Any) -> tuple[Any, Any]:
    """num, den by the O(n^2 (m + dv)) formula in row blocks (memory O(w n) per head).

    Each block runs over its rows in reverse order so that its coefficients are a view."""
    G, n, m = A.shape
    dv = Vm.shape[-1]
    num = lib.zeros((G, n, dv))
    den = lib.zeros((G, n))
    Wd = _windows(lib, op.dense_coef(), n)
    w = _dense_rows(lib, G, n)
    Bt = _tr(lib, B)
    f = lib.flip
    for i0 in range(0, n, w):
        i1 = min(n, i0 + w)
        j1 = i1 if op.causal else n          # causal: rows i0..i1-1 see keys < i1 only
        M = (f(A[:, i0:i1], 1) @ Bt[..., :j1]) * Wd[:, n - i1: n - i0, :j1]
        num[:, i0:i1] = f(M @ Vm[:, :j1], 1)
        den[:, i0:i1] = f(lib.sum(M, -1), 1)
    return num, den


def _diag_sums(lib: _Lib, Xr: Any) -> Any:
    """S[:, k] = sum_{j - i = k - (w - 1)} X[:, i, j] over the diagonals of a (g, w, n) block X
    given with its rows in reverse order (Xr[:, r] = X[:, w - 1 - r])."""
    g, w, n = Xr.shape
    Xr = lib.concat([Xr, lib.zeros((g, w, w), dtype=Xr.dtype)], -1)                # (g, w, n + w)
    sk = Xr.reshape(g, w * (n + w))[:, : w * (n + w - 1)].reshape(g, w, n + w - 1)
    return lib.sum(sk, 1)


def _attend_dense_backward(lib: _Lib, Gn: Any, gd: Any, A: Any, B: Any, Vm: Any, op: Any
                           ) -> tuple[Any, Any, Any, Any]:
    G, n, m = A.shape
    dv = Vm.shape[-1]
    dA = lib.zeros((G, n, m))
    dB = lib.zeros((G, n, m))
    dV = lib.zeros((G, n, dv))
    dc = lib.zeros((G, 2 * n - 1))
    Wd = _windows(lib, op.dense_coef(), n)
    w = _dense_rows(lib, G, n)
    f = lib.flip
    for i0 in range(0, n, w):
        i1 = min(n, i0 + w)
        j1 = i1 if op.causal else n
        Ar, Gr, gr = f(A[:, i0:i1], 1), f(Gn[:, i0:i1], 1), f(gd[:, i0:i1], 1)    # rows reversed
        Bj = B[:, :j1]
        K = Ar @ _tr(lib, Bj)                                              # (g, w, j1)
        C = Wd[:, n - i1: n - i0, :j1]
        P = Gr @ _tr(lib, Vm[:, :j1]) + gr[..., None]                      # dL/dM
        PC = P * C
        dA[:, i0:i1] = f(PC @ Bj, 1)
        dB[:, :j1] += _tr(lib, PC) @ Ar
        dV[:, :j1] += _tr(lib, K * C) @ Gr
        S = _diag_sums(lib, P * K)                         # offsets t = -(w-1)-i0 .. j1-1-i0
        wb = i1 - i0
        start = (n - 1) - (wb - 1) - i0
        dc[:, start: start + S.shape[-1]] += S
    if op.causal:
        dc[:, n:] = 0                                    # offsets j > i are not in the model
    return dA, dB, dV, op.dense_grad(dc)


def _ratio(lib: _Lib, num: Any, den: Any) -> Any:
    """num / den, 0 where den == 0 (a query that sees no key); NaN stays NaN."""
    safe = lib.lib.where(den == 0, 1.0, den)
    return lib.lib.where((den == 0)[..., None], 0.0, num / safe[..., None])


def _attend_backward(lib: _Lib, gout: Any, A: Any, B: Any, Vm: Any, op: Any, out: Any, den: Any,
                     feature_chunk: int | None, method: str) -> tuple[Any, Any, Any, Any]:
    """dA, dB, dV and the coefficient gradient (op.grad summed over chunks)."""
    G, n, m = A.shape
    dv = Vm.shape[-1]
    zero = den == 0
    safe = lib.lib.where(zero, 1.0, den)
    Gn = lib.lib.where(zero[..., None], 0.0, gout / safe[..., None])           # dL/dnum
    gd = -lib.sum(Gn * out, -1)                                                      # dL/dden
    if method == "dense":
        return _attend_dense_backward(lib, Gn, gd, A, B, Vm, op)
    if method == "scan":
        return _attend_decay_backward(lib, Gn, gd, A, B, Vm, op)
    dA = lib.zeros((G, n, m))
    dB = lib.zeros((G, n, m))
    dV = lib.zeros((G, n, dv))
    dcoef = None
    g, mc = _chunks(lib, G, n, m, dv, feature_chunk)
    grads = []
    # in the products' dtype (float64 for float32 inputs): Gn carries 1 / den, and den is tiny on
    # rows that see only tiny coefficients
    Gn, gd, A, B, Vm = (op._in(a) for a in (Gn, gd, A, B, Vm))
    for g0 in range(0, G, g):
        hs = slice(g0, min(G, g0 + g))
        sub = op.rows(hs)
        acc = None
        for l0 in range(0, m, mc):
            ls = slice(l0, min(m, l0 + mc))
            Al, Bl = A[hs, :, ls], B[hs, :, ls]
            k = Bl.shape[-1]
            Y = _rhs(lib, Bl, Vm[hs], op.work)
            N, D = _split(sub.mm(Y, keep=True), k, dv)
            dA[hs, :, ls] = _einsum(lib, "gne,gnle->gnl", Gn[hs], N) + gd[hs][..., None] * D
            X = lib.concat([(Al[..., :, None] * Gn[hs][..., None, :]).reshape(Al.shape[0], n, k * dv),
                            Al * gd[hs][..., None]], -1)
            U, u = _split(sub.mmT(X, keep=True), k, dv)
            dV[hs] += _einsum(lib, "gnl,gnle->gne", Bl, U)
            dB[hs, :, ls] = _einsum(lib, "gne,gnle->gnl", Vm[hs], U) + u
            gc = sub.grad(X, Y)
            acc = gc if acc is None else acc + gc
        grads.append(acc)
    dcoef = lib.concat(grads, axis=0) if len(grads) > 1 else grads[0]
    return dA, dB, dV, dcoef


def _features_backward(lib: _Lib, dF: Any, F: Any, xs: Any, norm: Any, W: Any, is_query: bool) -> Any:
    """Gradient w.r.t. the raw input x of phi(x~) (the stabilizer cancels in the output)."""
    P = dF * F                                                        # (G, n, m)
    dxs = P @ W
    if not is_query:
        dxs = dxs - lib.sum(P, -1, keepdims=True) * xs
    d = xs.shape[-1]
    alpha = d ** -0.25
    if norm is None:
        return dxs * alpha
    xhat = xs / alpha                                                  # x / max(|x|, eps)
    dxhat = dxs * alpha
    radial = lib.lib.where(norm > _NORM_EPS, lib.sum(dxhat * xhat, -1, keepdims=True), 0.0)
    return (dxhat - radial * xhat) / norm


# --------------------------------------------------------------------------------------------
# validation and set-up shared by the public functions
# --------------------------------------------------------------------------------------------
def _prepare(q: Any, k: Any, v: Any, extra: dict[str, Any], num_features: int | None, seed: int,
             projection: Any, key_padding_mask: Any, grad_out: Any = None) -> dict[str, Any]:
    named = {"q": q, "k": k, "v": v, **extra}
    if key_padding_mask is not None:
        named["key_padding_mask"] = key_padding_mask
    if grad_out is not None:
        named["grad_out"] = grad_out
    _dispatch.common_device(named)  # never across devices
    if type(q).__module__.split(".")[0] not in ("torch", "cupy"):
        q, k, v = np.asarray(q), np.asarray(k), np.asarray(v)
        if grad_out is not None:
            grad_out = np.asarray(grad_out)
    elif type(q).__module__.split(".")[0] == "torch":
        import torch

        def as_t(x: Any) -> Any:  # detached (the backward is hand-written); numpy joins q's library
            return x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), device=q.device)

        q, k, v = as_t(q), as_t(k), as_t(v)
        if grad_out is not None:
            grad_out = as_t(grad_out)
    for name, a in (("q", q), ("k", k), ("v", v)):
        _dispatch.check_float_dtype(name, a)
        if len(a.shape) != 4:
            raise ValueError(f"argument {name!r} must have shape (batch, heads, n, d), got {tuple(a.shape)}")
    for name, a in (("k", k), ("v", v), ("grad_out", grad_out)):
        if a is not None and _dtype_name(a) != _dtype_name(q):
            raise TypeError(f"argument {name!r} must have the dtype of 'q' ({_dtype_name(q)}), "
                            f"got {_dtype_name(a)}")
    Bt, H, n, d = q.shape
    if tuple(k.shape) != (Bt, H, n, d):
        raise ValueError(f"argument 'k' must have the shape of 'q' {tuple(q.shape)}, got {tuple(k.shape)}")
    if tuple(v.shape[:3]) != (Bt, H, n):
        raise ValueError(f"argument 'v' must have shape ({Bt}, {H}, {n}, dv) like 'q', got {tuple(v.shape)}")
    dv = v.shape[3]
    if grad_out is not None and tuple(grad_out.shape) != (Bt, H, n, dv):
        raise ValueError(f"argument 'grad_out' must have shape {(Bt, H, n, dv)}, got {tuple(grad_out.shape)}")
    lib = _Lib(q)
    if projection is None:
        if num_features is None:
            m = int(d * math.log(d)) if d > 2 else d
        else:
            m = _check_int("num_features", num_features, 1)
        W = _projection_cached(d, m, seed)
    else:
        if _dispatch.device_of(projection) not in (None, _dispatch.CPU) and not lib.on_gpu:
            raise ValueError("argument 'projection' is on a GPU but 'q' is on the CPU")
        if len(projection.shape) != 2 or projection.shape[1] != d or projection.shape[0] < 1:
            raise ValueError(f"argument 'projection' must have shape (m, {d}) with m >= 1, "
                             f"got {tuple(projection.shape)}")
        if num_features is not None and _check_int("num_features", num_features, 1) != projection.shape[0]:
            raise ValueError(f"argument 'num_features' ({num_features}) differs from the rows of "
                             f"'projection' ({projection.shape[0]})")
        W = projection
    W = lib.asarray(W)
    mask = None
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (Bt, n):
            raise ValueError(f"argument 'key_padding_mask' must have shape (batch, n) = {(Bt, n)}, "
                             f"got {tuple(key_padding_mask.shape)}")
        if "bool" not in _dtype_name(key_padding_mask):
            raise TypeError("argument 'key_padding_mask' must be boolean (True = real key), "
                            f"got {_dtype_name(key_padding_mask)}")
        mask = lib.asarray(key_padding_mask, dtype=_bool(lib))
        mask = mask[:, None, :].expand(Bt, H, n) if lib.kind == "torch" else \
            lib.lib.broadcast_to(mask[:, None, :], (Bt, H, n))
        mask = mask.reshape(Bt * H, n)
    return {"lib": lib, "q": q, "k": k, "v": v, "W": W, "mask": mask, "shape": (Bt, H, n, d, dv),
            "grad_out": grad_out}


def _flat(x: Any) -> Any:
    s = x.shape
    return x.reshape(s[0] * s[1], s[2], s[3])


def _prepared_features(P: dict[str, Any], normalize_qk: bool) -> tuple[Any, ...]:
    lib, mask = P["lib"], P["mask"]
    qs, qn = _scaled(lib, _flat(P["q"]), normalize_qk)
    ks, kn = _scaled(lib, _flat(P["k"]), normalize_qk)
    A = _features(lib, qs, P["W"], True, None)
    B = _features(lib, ks, P["W"], False, mask)
    Vm = _flat(P["v"])
    if mask is not None:
        Vm = lib.lib.where(mask[..., None], Vm, 0.0)
    return A, B, Vm, qs, qn, ks, kn


def _bias_coef(lib: _Lib, rpe_bias: Any, Bt: int, H: int, n: int, causal: bool) -> tuple[Any, Any]:
    """c = exp(b - max b) per head (max over the offsets in use), expanded to (Bt*H, 2n-1)."""
    if type(rpe_bias).__module__.split(".")[0] not in ("torch", "cupy"):
        rpe_bias = np.asarray(rpe_bias)
    _dispatch.check_float_dtype("rpe_bias", rpe_bias)
    want = max(2 * n - 1, 0)
    shape = tuple(rpe_bias.shape)
    if len(shape) == 1:
        shape = (1,) + shape
    if len(shape) != 2 or shape[0] not in (1, H) or shape[1] != want:
        raise ValueError(f"argument 'rpe_bias' must have shape (heads, 2n-1) = ({H}, {want}) "
                         f"(offsets -(n-1)..n-1), got {tuple(rpe_bias.shape)}")
    # float32 biases in float64 (the products' working dtype): exp(b - max b) of a row that sees
    # only offsets ~90 below the max would underflow float32 to 0, and that row to no keys
    b = lib.asarray(rpe_bias, dtype=lib.lib.float64 if _dtype_name(lib) == "float32" else None).reshape(shape)
    used = b[:, :n] if causal else b
    if n == 0:
        return b, b
    mx = lib.amax(used, -1, keepdims=True)
    mx = lib.lib.where(mx == -math.inf, 0.0, mx)
    if causal:  # (exp of the unused offsets t > 0 could overflow)
        c = lib.concat([lib.lib.exp(used - mx), lib.zeros((b.shape[0], n - 1), dtype=b.dtype)], -1)
    else:
        c = lib.lib.exp(b - mx)
    cH = c if shape[0] == H else lib.concat([c] * H, 0)
    cG = lib.concat([cH] * Bt, 0) if Bt > 0 else cH[:0]
    return cG, c


def _lam_coef(lib: _Lib, lam: Any, Bt: int, H: int) -> tuple[Any, bool]:
    scalar = isinstance(lam, (int, float, np.floating, np.integer)) or len(getattr(lam, "shape", ())) == 0
    la = lib.asarray(lam).reshape(-1)
    if la.shape[0] not in (1, H):
        raise ValueError(f"argument 'lam' must be a scalar or have shape (heads,) = ({H},), "
                         f"got {tuple(getattr(lam, 'shape', ()))}")
    # the range check on the host: a device array is read back, except under CUDA graph capture
    lh = None
    if isinstance(lam, (int, float, np.ndarray, np.floating, np.integer)):
        lh = np.asarray(lam, dtype=np.float64)
    elif not (lib.on_gpu and _dispatch.capturing(la)):
        lh = np.asarray(la.cpu() if lib.kind == "torch" else (la.get() if lib.kind == "cupy" else la),
                        dtype=np.float64)
    if lh is not None and not np.all((lh >= 0) & (lh <= 1) | np.isnan(lh)):
        raise ValueError(f"argument 'lam' must lie in [0, 1], got {lh.reshape(-1)}")
    if la.shape[0] == 1:
        la = lib.concat([la] * H, 0)
    return (lib.concat([la] * Bt, 0) if Bt > 0 else la[:0]), scalar


def _unflat(x: Any, Bt: int, H: int) -> Any:
    return x.reshape((Bt, H) + tuple(x.shape[1:]))


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------
_COMMON_DOC = """
    Parameters
    ----------
    q, k : array (batch, heads, n, d), float32 or float64
        Queries and keys (unscaled: the feature map applies the 1/sqrt(d) of softmax attention).
    v : array (batch, heads, n, dv), same dtype
    num_features : int, optional
        m, the number of random features (default int(d ln d), Performer's choice; >= 1).
    causal : bool
        Only keys j <= i are seen.
    normalize_qk : bool
        Use q/|q| and k/|k| (the "stable" recipe of Luo et al. 2021).
    seed : int
        Seed of `random_projection` (ignored with ``projection``).
    projection : array (m, d), optional
        The random feature projection W (e.g. from `random_projection`), float64 or the dtype of q.
    key_padding_mask : bool array (batch, n), optional
        True on real keys; masked keys (and their values, even NaN) contribute nothing.
    feature_chunk : int, optional
        FFT path: features per Toeplitz product (default about (m + dv) / (dv + 1), so that one
        product holds O(n (m + dv)) numbers per head).
    method : str
        "auto" (default), "dense" or the fast path ("fft" for `rpe_attention`, "scan" for
        `rpe_attention_decay`). "dense" evaluates sum_j C_ij phi(q_i).phi(k_j) [v_j, 1] in blocks
        of query rows (O(n^2 (m + dv)) time, O(w n) memory per head, no FFT rounding); "auto"
        takes it up to the crossover n measured by the benchmarks (CPU: 12288 for fft, with
        kernkit.toeplitz_matmul; 256 for scan; CUDA: 4096 and 512) and the fast path above.

    The feature map (FAVOR+ positive random features with the max-stabilizer) is
    ``phi(x)_l = exp(w_l . x~ - |x~|^2 / 2 - s) / sqrt(m)``, ``x~ = d^(-1/4) x``, with s the max of
    the exponent over l per query row, and over all keys and l per (batch, head) for keys; both
    cancel in the ratio. A query that sees no key (all masked) gets 0. Arrays may be numpy
    (CPU) or torch tensors (CPU or CUDA; CUDA work runs on the current stream via torch.fft);
    see `kernkit.torch.rpe_attention` for autograd.
"""


def _method(methods: tuple[str, str], n: int, lib: _Lib) -> str:
    """'dense' or the fast path ('fft' / 'scan'); 'auto' picks dense up to the measured crossover."""
    fast, method = methods
    if method not in ("auto", "dense", fast):
        raise ValueError(f"argument 'method' must be 'auto', 'dense' or {fast!r}, got {method!r}")
    if method != "auto":
        return method
    limit = _DENSE_MAX_N[(fast, lib.on_gpu)]
    return "dense" if n <= limit else fast


def _forward(q: Any, k: Any, v: Any, coef_fn: Any, causal: bool, normalize_qk: bool,
             num_features: int | None, seed: int, projection: Any, key_padding_mask: Any,
             feature_chunk: int | None, extra: dict[str, Any], methods: tuple[str, str]
             ) -> tuple[Any, Any]:
    P = _prepare(q, k, v, extra, num_features, seed, projection, key_padding_mask)
    lib = P["lib"]
    Bt, H, n, d, dv = P["shape"]
    method = _method(methods, n, lib)
    op = coef_fn(lib, Bt, H, n)
    if Bt * H * n == 0:
        return lib.zeros((Bt, H, n, dv)), lib.zeros((Bt, H, n))
    A, B, Vm, *_ = _prepared_features(P, normalize_qk)
    num, den = _attend(lib, A, B, Vm, op, feature_chunk, method)
    return _unflat(lib.asarray(_ratio(lib, num, den)), Bt, H), _unflat(den, Bt, H)


def rpe_attention(q: Any, k: Any, v: Any, rpe_bias: Any, num_features: int | None = None,
                  causal: bool = False, normalize_qk: bool = False, seed: int = 0,
                  projection: Any = None, key_padding_mask: Any = None,
                  feature_chunk: int | None = None, method: str = "auto") -> Any:
    """Kernelized attention with relative positional encoding (Luo et al. 2021, Algorithm 1).

    ``z_i = sum_j c_{j-i} phi(q_i).phi(k_j) v_j / sum_j c_{j-i} phi(q_i).phi(k_j)`` with
    ``c_t = exp(b_t - max b)`` from ``rpe_bias`` (the max over the offsets in use; it cancels),
    computed as ``sum_l phi_l(Q) [T (phi_l(K) * V)] / sum_l phi_l(Q) [T phi(K)]_l`` with Toeplitz
    products ``T[i, j] = c_{j-i}`` (FFT, O(n log n) per column, m (dv + 1) columns per head,
    the features in chunks), or by the dense formula in row blocks where that is faster
    (``method``). The Toeplitz products of float32 inputs run in float64 (an FFT's
    rounding error is relative to the largest row of the product, and rows that see few keys,
    such as the first rows of causal attention, would otherwise lose digits). For the same
    reason the FFT path computes directly the rows whose coefficients are all below 1e-2 of the
    largest in use (a bias much larger at offsets those rows do not see, such as a steep
    linear one), in the forward and the backward: O(n (m + dv)) more work per such row.

    rpe_bias : array (heads, 2n-1) or (2n-1,) (shared by all heads)
        b_t for offsets t = j - i = -(n-1), ..., n-1 in that order; with ``causal`` only
        t <= 0 is used. -inf is allowed (c_t = 0).
    """ + _COMMON_DOC + """
    Returns
    -------
    array (batch, heads, n, dv) in the library, device and dtype of q; differentiable (autograd,
    `kernkit.torch.rpe_attention`) when q, k, v or rpe_bias is a tensor that requires grad.
    """
    if _dispatch.wants_grad(q, k, v, rpe_bias):
        from .torch import rpe_attention as differentiable

        q, k, v, rpe_bias = _dispatch.as_tensors(q, k, v, rpe_bias)
        return differentiable(q, k, v, rpe_bias, num_features, causal, normalize_qk, seed, projection,
                              key_padding_mask, feature_chunk, method)
    return _forward_bias(q, k, v, rpe_bias, num_features, causal, normalize_qk, seed, projection,
                         key_padding_mask, feature_chunk, method)[0]


def _forward_bias(q: Any, k: Any, v: Any, rpe_bias: Any, num_features: int | None = None,
                  causal: bool = False, normalize_qk: bool = False, seed: int = 0,
                  projection: Any = None, key_padding_mask: Any = None,
                  feature_chunk: int | None = None, method: str = "auto") -> tuple[Any, Any]:
    def coef(lib: _Lib, Bt: int, H: int, n: int) -> _BiasOp:
        cG, ch = _bias_coef(lib, rpe_bias, Bt, H, n, causal)
        return _BiasOp(lib, cG, causal, ch)

    return _forward(q, k, v, coef, causal, normalize_qk, num_features, seed, projection,
                    key_padding_mask, feature_chunk, {"rpe_bias": rpe_bias}, ("fft", method))


def _backward(grad_out: Any, q: Any, k: Any, v: Any, make_op: Any, causal: bool, normalize_qk: bool,
              num_features: int | None, seed: int, projection: Any, key_padding_mask: Any,
              feature_chunk: int | None, extra: dict[str, Any], saved: tuple[Any, Any] | None,
              methods: tuple[str, str]) -> tuple[Any, Any, Any, Any, Any]:
    P = _prepare(q, k, v, extra, num_features, seed, projection, key_padding_mask, grad_out)
    lib = P["lib"]
    Bt, H, n, d, dv = P["shape"]
    method = _method(methods, n, lib)
    op = make_op(lib, Bt, H, n)
    if Bt * H * n == 0:
        return (lib.zeros((Bt, H, n, d)), lib.zeros((Bt, H, n, d)), lib.zeros((Bt, H, n, dv)), None, lib)
    A, B, Vm, qs, qn, ks, kn = _prepared_features(P, normalize_qk)
    if saved is None:
        num, den = _attend(lib, A, B, Vm, op, feature_chunk, method)
        out = _ratio(lib, num, den)
    else:
        out, den = _flat(saved[0]), saved[1].reshape(Bt * H, n)
    gout = _flat(P["grad_out"])
    dA, dB, dV, dcoef = _attend_backward(lib, gout, A, B, Vm, op, out, den, feature_chunk, method)
    dq = _features_backward(lib, dA, A, qs, qn, P["W"], True)
    dk = _features_backward(lib, dB, B, ks, kn, P["W"], False)
    return _unflat(dq, Bt, H), _unflat(dk, Bt, H), _unflat(dV, Bt, H), dcoef, lib


def rpe_attention_backward(grad_out: Any, q: Any, k: Any, v: Any, rpe_bias: Any,
                           num_features: int | None = None, causal: bool = False,
                           normalize_qk: bool = False, seed: int = 0, projection: Any = None,
                           key_padding_mask: Any = None, feature_chunk: int | None = None, method: str = "auto",
                           saved: tuple[Any, Any] | None = None) -> tuple[Any, Any, Any, Any]:
    """Gradients (dq, dk, dv, d rpe_bias) of ``sum(grad_out * rpe_attention(...))``.

    With ``M_ij = c_{j-i} phi(q_i).phi(k_j)``, ``out = (M V) / (M 1)``, G = grad_out,
    ``Gn_i = G_i / den_i`` and ``gd_i = -G_i . out_i / den_i``:

    * dphi(Q)_il = Gn_i . [T (phi_l(K) V)]_i + gd_i [T phi(K)]_il (the forward products again),
    * dphi(K)_jl = V_j . [T^T (phi_l(Q) Gn)]_j + [T^T (phi_l(Q) gd)]_j, dV_j = sum_l phi_l(k_j) [T^T (phi_l(Q) Gn)]_j,
    * dc_t = sum_{j-i=t} sum_l phi_l(q_i) phi_l(k_j) (Gn_i . v_j + gd_i), a cross-correlation
      summed over columns, by FFT (O(n log n)); db_t = c_t dc_t (summed over the batch),
    * dq, dk through the features (the stabilizers cancel in the output, so they carry none).

    Same arguments as `rpe_attention`, plus ``grad_out`` (batch, heads, n, dv) and optionally
    ``saved = (out, den)`` from the forward to skip recomputing it. Returns dq, dk, dv in the
    library of q and d rpe_bias with the shape of ``rpe_bias`` (zero at t > 0 when causal).
    """
    def make(lib: _Lib, Bt: int, H: int, n: int) -> _BiasOp:
        cG, ch = _bias_coef(lib, rpe_bias, Bt, H, n, causal)
        return _BiasOp(lib, cG, causal, ch)

    dq, dk, dv_, dcoef, lib = _backward(grad_out, q, k, v, make, causal, normalize_qk, num_features,
                                        seed, projection, key_padding_mask, feature_chunk,
                                        {"rpe_bias": rpe_bias}, saved, ("fft", method))
    Bt, H = q.shape[0], q.shape[1]
    n = q.shape[2]
    bshape = tuple(rpe_bias.shape)
    if dcoef is None:
        return dq, dk, dv_, lib.zeros(bshape)
    cG, _ = _bias_coef(lib, rpe_bias, Bt, H, n, causal)
    db = lib.sum((cG * dcoef).reshape(Bt, H, 2 * n - 1), 0)             # (H, 2n-1)
    if len(bshape) == 1 or bshape[0] != H:
        db = lib.sum(db, 0, keepdims=len(bshape) == 2)
    return dq, dk, dv_, lib.asarray(db)  # (in q's dtype: cG is float64 for float32 inputs)


def rpe_attention_decay(q: Any, k: Any, v: Any, lam: Any, num_features: int | None = None,
                        causal: bool = False, normalize_qk: bool = False, seed: int = 0,
                        projection: Any = None, key_padding_mask: Any = None,
                        feature_chunk: int | None = None, method: str = "auto") -> Any:
    """`rpe_attention` with the exponential-decay bias ``c_t = lam^|t|`` in O(n) by scans.

    Equals ``rpe_attention(q, k, v, rpe_bias=|t| * log(lam), ...)`` (same features), but the
    Toeplitz products are the scan ``S_i = lam S_{i-1} + phi(k_i) [v_i, 1]^T`` (an m x (dv+1)
    state) read out by ``phi(q_i)``: forward (causal), plus the backward scan minus the
    diagonal (not causal). It runs chunkwise (as RetNet / gated linear attention do): inside a
    chunk of 64 rows a small masked (64 x 64) kernel matrix with the powers lam^(a-b), across
    chunks the state scan with factor lam^64, itself done by chunks, so there is no Python loop
    over positions: O(n (64 (m + dv) + m dv)) time, O(n (m + dv)) memory per head.

    lam : float or array (heads,)
        Decay per head in [0, 1] (0: each query sees only its own position). A CUDA array is
        read back to check the range (that waits for the device), except under CUDA graph
        capture, where it is used unchecked.
    """ + _COMMON_DOC + """
    Returns
    -------
    array (batch, heads, n, dv) in the library, device and dtype of q; differentiable (autograd,
    `kernkit.torch.rpe_attention_decay`) when q, k, v or lam is a tensor that requires grad.
    """
    if _dispatch.wants_grad(q, k, v, lam):
        from .torch import rpe_attention_decay as differentiable

        q, k, v = _dispatch.as_tensors(q, k, v)
        return differentiable(q, k, v, lam, num_features, causal, normalize_qk, seed, projection,
                              key_padding_mask, feature_chunk, method)
    return _forward_decay(q, k, v, lam, num_features, causal, normalize_qk, seed, projection,
                          key_padding_mask, feature_chunk, method)[0]


def _forward_decay(q: Any, k: Any, v: Any, lam: Any, num_features: int | None = None,
                   causal: bool = False, normalize_qk: bool = False, seed: int = 0,
                   projection: Any = None, key_padding_mask: Any = None,
                   feature_chunk: int | None = None, method: str = "auto") -> tuple[Any, Any]:
    def coef(lib: _Lib, Bt: int, H: int, n: int) -> _DecayOp:
        return _DecayOp(lib, _lam_coef(lib, lam, Bt, H)[0], causal, n)

    extra = {} if isinstance(lam, (int, float)) else {"lam": lam}
    return _forward(q, k, v, coef, causal, normalize_qk, num_features, seed, projection,
                    key_padding_mask, feature_chunk, extra, ("scan", method))


def rpe_attention_decay_backward(grad_out: Any, q: Any, k: Any, v: Any, lam: Any,
                                 num_features: int | None = None, causal: bool = False,
                                 normalize_qk: bool = False, seed: int = 0, projection: Any = None,
                                 key_padding_mask: Any = None, feature_chunk: int | None = None, method: str = "auto",
                                 saved: tuple[Any, Any] | None = None) -> tuple[Any, Any, Any, Any]:
    """Gradients (dq, dk, dv, dlam) of ``sum(grad_out * rpe_attention_decay(...))``, all O(n).

    With dY = [dL/dnum, dL/dden] and V~ = [V, 1], each gradient is again a decayed linear
    attention, in the opposite direction where T^T appears: dphi(Q) = F(dY, V~, phi(K)),
    dphi(K) = F^T(V~, dY, phi(Q)), dV~ = F^T(phi(K), phi(Q), dY) (plus the other direction minus
    the diagonal when not causal), and dlam = sum_{j<=i} (i-j) lam^(i-j-1) (phi(q_i).phi(k_j))
    (dY_i . v~_j) chunkwise with the derivative of the chunk state, S'_c = C lam^(C-1) S_{c-1} +
    lam^C S'_{c-1} + E'_c (one more scan). dlam has the shape of ``lam``.
    """
    def make(lib: _Lib, Bt: int, H: int, n: int) -> _DecayOp:
        return _DecayOp(lib, _lam_coef(lib, lam, Bt, H)[0], causal, n)

    extra = {} if isinstance(lam, (int, float)) else {"lam": lam}
    dq, dk, dv_, dlam, lib = _backward(grad_out, q, k, v, make, causal, normalize_qk, num_features,
                                       seed, projection, key_padding_mask, feature_chunk, extra, saved,
                                       ("scan", method))
    Bt, H = q.shape[0], q.shape[1]
    lam_shape = tuple(getattr(lam, "shape", ()))
    if dlam is None:
        return dq, dk, dv_, lib.zeros(lam_shape)
    dl = lib.sum(dlam.reshape(Bt, H), 0)
    if lam_shape == () or lam_shape == (1,) and H != 1:
        dl = lib.sum(dl, 0).reshape(lam_shape)
    return dq, dk, dv_, dl
