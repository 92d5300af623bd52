"""Batched Toeplitz matrix products by FFT: ``toeplitz_matmul`` and ``ToeplitzOperator``.

A Toeplitz matrix is constant along its diagonals (the convention of
:func:`scipy.linalg.toeplitz`)::

    T[i, j] = c[i - j]   (i >= j),        T[i, j] = r[j - i]   (j > i),        c[0] == r[0]

and ``causal=True`` keeps the lower triangle only (``r`` unused). ``T @ X`` is computed by
embedding ``T`` in a circulant matrix of an even length ``L = 2 * next_fast_len(n) >= 2n - 1``
(a 2^a 3^b 5^c length, not 2n - 1 itself) whose first column is
``h = (c_0, ..., c_{n-1}, 0, ..., 0, r_{n-1}, ..., r_1)``; a circulant is diagonalised by the
DFT, so ``T @ x = irfft(rfft(h) * rfft(x, L))[:n]`` for every column ``x``. On the CPU the FFT,
the product with the spectrum and the inverse FFT run fused per block of columns held in
cache (kernkit's own FFT, :mod:`kernkit.fft`; no padded copy of ``X`` is formed); small ``n``
use the direct ``O(n^2 k)`` sum instead. On CUDA, on the caller's stream: for ``n <= 4096``
(float32) / ``2048`` (float64) one fused kernel launch with ``L`` the smallest power of two
``>= 2n - 1`` (FFT, product and inverse FFT of groups of columns in shared memory), else cuFFT
(plans cached per stream); the environment variable ``KERNKIT_TOEPLITZ_CUDA=fused|cufft|auto``
forces either path (for timing).

Used for kernelized attention with relative positional encoding: S. Luo et al., "Stable, Fast
and Accurate: Kernelized Attention with Relative Positional Encoding", NeurIPS 2021, sec. 3.2.
Circulant embedding: G. Strang, "A proposal for Toeplitz matrix calculations" (1986); Golub and
Van Loan, "Matrix Computations", 4th ed., sec. 4.8.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from . import _core, _dispatch

__all__ = ["ToeplitzOperator", "toeplitz_matmul"]


def _xp_of(a: Any) -> Any:
    return np if isinstance(a, np.ndarray) else _dispatch.array_namespace(a)


def _find_cufft() -> None:
    """Point the CUDA core at a cuFFT shared library (it is loaded on first use): the one
    already loaded by torch/CuPy is found by name; else the nvidia-cufft wheel's copy."""
    if os.environ.get("KERNKIT_CUFFT_LIB"):
        return
    try:
        import nvidia
    except ImportError:
        return
    import glob

    for base in list(getattr(nvidia, "__path__", [])):
        hits = sorted(glob.glob(os.path.join(base, "*", "lib", "libcufft.so*")))
        hits = [h for h in hits if "cufftw" not in h]
        if hits:
            os.environ["KERNKIT_CUFFT_LIB"] = hits[-1]
            return


def _detach(a: Any) -> Any:
    return a.detach() if hasattr(a, "detach") else a


_dtype_name = _dispatch.dtype_name


def _result_dtype(args: dict[str, Any]) -> str:
    for name, a in args.items():
        if a is not None:
            _dispatch.check_float_dtype(name, a)
    return "float64" if any(a is not None and _dtype_name(a) == "float64" for a in args.values()) else "float32"


def _as_array(name: str, a: Any, like: Any, dtype: str) -> Any:
    """a as an array of `like`'s library and device with the given dtype (same device only)."""
    if isinstance(like, np.ndarray) or (dev := _dispatch.device_of(like)) is None or dev.kind == "cpu":
        out = np.asarray(a)
        if out.dtype != dtype:
            _dispatch.check_float_dtype(name, out)
            out = out.astype(dtype)
        return out
    xp = _dispatch.array_namespace(like)
    if _dtype_name(a) != dtype:
        a = xp.astype(a, getattr(xp, dtype))
    return a


def _check_coefficients(c: Any, r: Any, n: int, causal: bool) -> None:
    if c.ndim < 1 or c.shape[-1] != n:
        raise ValueError(f"argument 'c' must have shape (..., n) with n = {n} (X.shape[-2]), got {tuple(c.shape)}")
    if causal:
        return
    if r.ndim < 1 or r.shape[-1] != n:
        raise ValueError(f"argument 'r' must have shape (..., n) with n = {n} (X.shape[-2]), got {tuple(r.shape)}")
    if n == 0:
        return
    if not isinstance(c, np.ndarray) and _dispatch.device_of(c) != _dispatch.CPU and _dispatch.capturing(c):
        return  # CUDA graph capture: the values cannot be read back (T[0, 0] = c[0], see toeplitz_matmul)
    xp = _xp_of(c)
    c0, r0 = c[..., 0], r[..., 0]
    # (on a GPU, each operation is a launch and bool() waits for the device: the NaN-aware test
    # only where the plain one finds a difference)
    if bool(xp.any(c0 != r0)) and bool(xp.any(xp.logical_not(xp.logical_or(
            c0 == r0, xp.logical_and(xp.isnan(c0), xp.isnan(r0)))))):
        raise ValueError("arguments 'c' and 'r' disagree on the diagonal: c[..., 0] != r[..., 0] "
                         "(T[0, 0] is both c[0] and r[0], as in scipy.linalg.toeplitz)")


def _batch_rows(a: Any, batch: tuple[int, ...], n: int) -> Any:
    """Coefficients (..., n) as (1, n) when shared by every batch, else (prod(batch), n)."""
    xp = _xp_of(a)
    if a.ndim == 1:
        return _dispatch.contiguous(xp.reshape(a, (1, n)))
    full = xp.broadcast_to(a, batch + (n,))
    return _dispatch.contiguous(xp.reshape(full, (-1, n)))


def _prep_x(X: Any, batch: tuple[int, ...], n: int, k: int) -> Any:
    xp = _xp_of(X)
    if tuple(X.shape[:-2]) != batch:
        X = xp.broadcast_to(X, batch + (n, k))
    if len(batch) == 1:
        return X
    if len(batch) == 0:
        return X[None]
    try:
        return xp.reshape(X, (-1, n, k))
    except Exception:  # a view that cannot be merged: copy on its own device
        return xp.reshape(_dispatch.contiguous(X), (-1, n, k))


def _product(c: Any, r: Any, X: Any, causal: bool, spec: tuple[Any, int] | None) -> Any:
    """The shared work of toeplitz_matmul and ToeplitzOperator: validated arrays in."""
    dev = _dispatch.common_device({"c": c, "r": r, "X": X} if r is not None else {"c": c, "X": X})
    n, k = int(X.shape[-2]), int(X.shape[-1])
    cb = tuple(c.shape[:-1])
    rb = tuple(r.shape[:-1]) if r is not None and not causal else ()
    try:
        batch = tuple(np.broadcast_shapes(tuple(X.shape[:-2]), cb, rb))
    except ValueError:
        raise ValueError(f"the batch shapes of 'X' {tuple(X.shape[:-2])}, 'c' {cb} and 'r' {rb} "
                         "do not broadcast") from None
    xp = _xp_of(X)
    if dev.kind == "cpu":
        Y = np.empty(batch + (n, k), dtype=X.dtype)
    else:
        Y = xp.empty(batch + (n, k), dtype=X.dtype, device=X.device)
    if math.prod(Y.shape) == 0:
        return Y
    X3 = _prep_x(X, batch, n, k)
    Y3 = xp.reshape(Y, (-1, n, k))
    if dev.kind == "cpu":
        if spec is not None:
            s, L = spec
            _core.toeplitz_matmul_spectrum(_spec_rows(s, batch, L), L, X3, Y3)
        else:
            c2 = _batch_rows(c, batch, n)
            r2 = None if causal else _batch_rows(r, batch, n)
            _core.toeplitz_matmul(c2, r2, causal, X3, Y3)
        return Y
    _dispatch.require_cuda("X")
    _find_cufft()
    stream = _dispatch.current_stream(X)
    if spec is None:
        spec = _spectrum(c, r, causal, batch, n)
    s, L = spec
    S = _spec_rows(s, batch, L)
    addr = _dispatch.addresses(S, X3, Y3)
    if addr is None:
        _core.toeplitz_matmul_spectrum_cuda(S, L, X3, Y3, stream)
        return Y
    # torch / CuPy: addresses and element strides instead of three DLPack imports
    xs0, xs1, xs2 = _dispatch.element_strides(X3)
    with _dispatch.device_guard(X):
        _core.toeplitz_matmul_spectrum_cuda_ptr(addr[0], 0 if S.shape[0] == 1 else L + 2, L, n, addr[1],
                                                int(X3.shape[0]), k, xs0, xs1, xs2, addr[2],
                                                _dtype_name(X3) == "float64", stream)
    return Y


def _spec_rows(s: Any, batch: tuple[int, ...], L: int) -> Any:
    """A spectrum stored as (*cbatch, L + 2) as (1 | prod(batch), L + 2)."""
    xp = _xp_of(s)
    if s.ndim == 1:
        return xp.reshape(s, (1, L + 2))
    return _dispatch.contiguous(xp.reshape(xp.broadcast_to(s, batch + (L + 2,)), (-1, L + 2)))


def _spectrum(c: Any, r: Any, causal: bool, cbatch: tuple[int, ...], n: int) -> tuple[Any, int]:
    """rfft(h)/L of the circulant embedding, shape (L + 2,) if shared else (*cbatch, L + 2)."""
    if isinstance(c, np.ndarray):
        L = int(_core.toeplitz_fft_length(n))
    else:  # CUDA: a power of two where the fused kernel takes it (see toeplitz_cuda_fft_length)
        _dispatch.require_cuda("c")
        L = int(_core.toeplitz_cuda_fft_length(n, _dtype_name(c) == "float64"))
    shared = c.ndim == 1 and (causal or r.ndim == 1)
    c2 = _batch_rows(c, cbatch, n) if not shared else _batch_rows(c, (), n)
    r2 = None if causal else (_batch_rows(r, cbatch, n) if not shared else _batch_rows(r, (), n))
    rows = 1 if shared else math.prod(cbatch)
    xp = _xp_of(c)
    if isinstance(c, np.ndarray):
        s = np.empty((rows, L + 2), dtype=c.dtype)
        _core.toeplitz_spectrum(c2, r2, causal, L, s)
    else:
        _dispatch.require_cuda("c")
        _find_cufft()
        s = xp.empty((rows, L + 2), dtype=c.dtype, device=c.device)
        stream = _dispatch.current_stream(c)
        addr = _dispatch.addresses(c2, r2, s)
        if addr is None:
            _core.toeplitz_spectrum_cuda(c2, r2, causal, L, s, stream)
        else:  # torch / CuPy: addresses instead of three DLPack imports
            with _dispatch.device_guard(c):
                _core.toeplitz_spectrum_cuda_ptr(addr[0], 0 if c2.shape[0] == 1 else n, addr[1],
                                                 0 if r2 is None or r2.shape[0] == 1 else n, causal, n, rows,
                                                 L, addr[2], _dtype_name(c) == "float64", stream)
    return (xp.reshape(s, (L + 2,)) if shared else xp.reshape(s, cbatch + (L + 2,))), L


def _validate(c: Any, r: Any, X: Any, causal: bool) -> tuple[Any, Any, Any]:
    if X is None or not hasattr(X, "shape") and not isinstance(X, (list, tuple)):
        raise TypeError("argument 'X' must be an array")
    if r is None and not causal:
        raise ValueError("argument 'r' is required unless causal=True (r=None is only for causal)")
    _dispatch.refuse_grad("toeplitz_matmul", c=c, r=r, X=X)
    args = {"c": c, "r": r if not causal else None, "X": X}
    dev = _dispatch.common_device({k: v for k, v in args.items() if v is not None})
    if dev.kind == "cpu":
        X = np.asarray(X)
        c = np.asarray(c)
        r = None if causal else np.asarray(r)
    else:  # DLPack cannot export a torch tensor that requires grad; no autograd here
        X, c = _detach(X), _detach(c)
        r = None if causal else _detach(r)
    dtype = _result_dtype({"c": c, "r": r, "X": X})
    X = _as_array("X", X, X, dtype)
    c = _as_array("c", c, X, dtype)
    r = None if causal else _as_array("r", r, X, dtype)
    if X.ndim < 2:
        raise ValueError(f"argument 'X' must have shape (n, k) or (..., n, k), got {tuple(X.shape)}")
    _check_coefficients(c, r, int(X.shape[-2]), causal)
    return c, r, X


def toeplitz_matmul(c: Any, r: Any, X: Any, causal: bool = False) -> Any:
    """``T(c, r) @ X`` for a Toeplitz matrix ``T`` given by its first column and first row.

    ``T[i, j] = c[i - j]`` for ``i >= j`` and ``r[j - i]`` for ``j > i`` (as
    :func:`scipy.linalg.toeplitz`; ``c[0]`` must equal ``r[0]``). With ``causal=True`` only the
    lower triangle is used (``T[i, j] = 0`` for ``j > i``) and ``r`` may be ``None``.
    On CUDA the check of ``c[0] == r[0]`` reads the two values back to the host, which waits for
    the device; under CUDA graph capture, where that is not permitted, it is skipped and
    ``T[0, 0] = c[0]``.

    Computed as ``irfft(rfft(h) * rfft(x, L))[:n]`` per column with the circulant embedding ``h``
    of length ``L = 2 * next_fast_len(n)`` (see the module docstring), or by the direct sum for
    small ``n``. Float64 results agree with the dense product to ~1e-15 relative to ``max|T|
    max|X| n`` (the FFT spreads the rounding error of the largest terms over every entry, so
    entries much smaller than that are correct only to that absolute level); a non-finite
    coefficient or entry of a column makes that column (FFT path) all NaN, and so does a
    column whose product overflows the dtype (float32 beyond ~3e38: the direct path gives
    +-inf there; run such products in float64).

    Parameters
    ----------
    c : array, shape (n,) or (..., n)
        First column(s); batch dimensions broadcast against ``X``'s.
    r : array, shape (n,) or (..., n), or None when ``causal``
        First row(s).
    X : array, shape (n, k) or (..., n, k), float32 or float64
        numpy or torch on the CPU; CuPy / PyTorch CUDA arrays on the GPU (result in X's library).
    causal : bool
        Lower-triangular ``T``.

    Returns
    -------
    array, shape ``batch + (n, k)``, dtype float64 if any input is float64 else float32.

    References
    ----------
    S. Luo et al., "Stable, Fast and Accurate: Kernelized Attention with Relative Positional
    Encoding", NeurIPS 2021 (sec. 3.2, the FFT product of the RPE Toeplitz matrix).
    """
    fast = _fast_2d(c, r, X, causal)
    if fast is not None:
        return fast
    like = X
    c, r, X = _validate(c, r, X, causal)
    Y = _product(c, r, X, causal, None)
    return _dispatch.to_library_of(like, Y)


_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _fast_2d(c: Any, r: Any, X: Any, causal: bool) -> Any:
    """The common numpy case (1-d coefficients, 2-d X, one dtype) without the general
    broadcasting machinery; None when the general path must decide."""
    nd = np.ndarray
    if type(X) is not nd or type(c) is not nd or X.ndim != 2 or c.ndim != 1:
        return None
    dt = X.dtype
    if dt not in _FAST_DTYPES or c.dtype != dt:
        return None
    n, k = X.shape
    if c.shape[0] != n or n == 0:
        return None
    if not causal:
        if type(r) is not nd or r.ndim != 1 or r.dtype != dt or r.shape[0] != n:
            return None
        c0, r0 = float(c[0]), float(r[0])
        if c0 != r0 and not (math.isnan(c0) and math.isnan(r0)):
            return None  # the general path raises the error
        r2 = np.ascontiguousarray(r).reshape(1, n)
    else:
        r2 = None
    Y = np.empty((n, k), dtype=dt)
    if k:
        _core.toeplitz_matmul(np.ascontiguousarray(c).reshape(1, n), r2, bool(causal), X[None], Y[None])
    return Y


class ToeplitzOperator:
    """A (batch of) Toeplitz matrices ``T(c, r)`` that keeps the spectrum of its circulant
    embedding for repeated products ``T @ X`` (see :func:`toeplitz_matmul`).

    Parameters
    ----------
    c : array, shape (n,) or (..., n)
        First column(s).
    r : array, shape (n,) or (..., n), optional
        First row(s); required unless ``causal``.
    causal : bool
        Lower triangular (``r`` unused).

    Examples
    --------
    >>> T = ToeplitzOperator(c, r)
    >>> Y = T @ X           # same as toeplitz_matmul(c, r, X)
    >>> Z = T.T @ X         # the transpose: first column r, first row c
    """

    def __init__(self, c: Any, r: Any = None, causal: bool = False) -> None:
        _dispatch.refuse_grad("ToeplitzOperator", c=c, r=r)
        if r is None and not causal:
            raise ValueError("argument 'r' is required unless causal=True")
        dev = _dispatch.common_device({"c": c} if causal or r is None else {"c": c, "r": r})
        if dev.kind == "cpu":
            c = np.asarray(c)
            r = None if causal else np.asarray(r)
        else:
            c = _detach(c)
            r = None if causal else _detach(r)
        dtype = _result_dtype({"c": c, "r": None if causal else r})
        c = _as_array("c", c, c, dtype)
        if not causal:
            r = _as_array("r", r, c, dtype)
        if c.ndim < 1:
            raise ValueError("argument 'c' must be at least 1-d (n,) or (..., n)")
        n = int(c.shape[-1])
        _check_coefficients(c, r, n, causal)
        self._c, self._r, self._causal, self._n = c, (None if causal else r), bool(causal), n
        cb = tuple(c.shape[:-1])
        rb = tuple(r.shape[:-1]) if not causal else ()
        self._batch = tuple(np.broadcast_shapes(cb, rb))
        self._device = dev
        self._spec: tuple[Any, int] | None = None
        if n > 0 and (dev.kind == "cuda" or not bool(_core.toeplitz_use_direct(n, 1))):
            self._spec = _spectrum(c, self._r, self._causal, self._batch, n)

    @property
    def shape(self) -> tuple[int, ...]:
        """``batch + (n, n)``."""
        return self._batch + (self._n, self._n)

    @property
    def dtype(self) -> Any:
        return self._c.dtype

    @property
    def causal(self) -> bool:
        return self._causal

    @property
    def T(self) -> "ToeplitzOperator":
        """The transpose ``T(r, c)`` (for a causal operator: upper triangular, first row ``c``)."""
        if not self._causal:
            return ToeplitzOperator(self._r, self._c)
        xp = _xp_of(self._c)
        c = self._c
        first = xp.zeros_like(c)
        if self._n > 0:
            first[..., 0] = c[..., 0]
        return ToeplitzOperator(first, c)

    def matmul(self, X: Any) -> Any:
        """``T @ X`` for ``X`` of shape (n, k) or (..., n, k) on the operator's device (``X`` is
        converted to the operator's dtype; batch dimensions broadcast against the operator's)."""
        spec = self._spec
        if (type(X) is np.ndarray and X.ndim == 2 and X.dtype == self._c.dtype and X.shape[0] == self._n
                and spec is not None and spec[0].ndim == 1 and type(spec[0]) is np.ndarray):
            Y = np.empty(X.shape, dtype=X.dtype)  # the common case: one matrix, numpy, same dtype
            if X.shape[1]:
                _core.toeplitz_matmul_spectrum(spec[0].reshape(1, -1), spec[1], X[None], Y[None])
            return Y
        _dispatch.refuse_grad("ToeplitzOperator.matmul", X=X)
        like = X
        dev = _dispatch.common_device({"c": self._c, "X": X})
        if dev.kind == "cpu":
            X = np.asarray(X)
        else:
            X = _detach(X)
        _dispatch.check_float_dtype("X", X)
        X = _as_array("X", X, X, _dtype_name(self))
        if X.ndim < 2 or int(X.shape[-2]) != self._n:
            raise ValueError(f"argument 'X' must have shape (..., {self._n}, k), got {tuple(X.shape)}")
        Y = _product(self._c, self._r, X, self._causal, self._spec)
        return _dispatch.to_library_of(like, Y)

    def __matmul__(self, X: Any) -> Any:
        return self.matmul(X)

    def __repr__(self) -> str:
        kind = "causal " if self._causal else ""
        return f"ToeplitzOperator({kind}shape={self.shape}, dtype={self.dtype})"
