"""kernkit's own real FFT on the CPU (numpy.fft conventions, along the last axis).

Mixed radix 2, 3, 4, 5, 7, 8, 9, 11, 13 (Stockham autosort; twiddles computed in long double,
never by repeated products), Bluestein's chirp-z for lengths with other prime factors, and real
input through the half-length complex transform (even lengths) or, for one row of odd length
with a factor 3, 5, 7, 11 or 13, through its decimated sub-sequences. Plans are cached per
(length, dtype), least recently used dropped first past KERNKIT_FFT_CACHE_MB (default 512) MiB.

Definitions (as :func:`numpy.fft.rfft` / :func:`numpy.fft.irfft`)::

    rfft(x, n)[k]  = sum_{j<n} x_j exp(-2 pi i j k / n),                 k = 0 .. n//2
    irfft(X, n)[j] = (1/n) sum_{k<n} F_k exp(+2 pi i j k / n),  F = the Hermitian extension of X

float32 gives complex64 and float64 gives complex128 (numpy.fft always computes in double).
References: J. W. Cooley and J. W. Tukey (1965); T. G. Stockham (1966); L. I. Bluestein (1970);
C. Van Loan, "Computational Frameworks for the Fast Fourier Transform" (SIAM 1992), sec. 1.7, 4.2.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core, _dispatch

__all__ = ["irfft", "next_fast_len", "rfft"]

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_C64, _C128 = np.dtype(np.complex64), np.dtype(np.complex128)


def _check_cpu(name: str, a: Any) -> None:
    dev = _dispatch.device_of(a)
    if dev is not None and dev.kind != "cpu":
        raise ValueError(f"argument {name!r} is on {dev}: kernkit.fft runs on the CPU (numpy arrays)")


def next_fast_len(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (a fast length for this FFT, as for pocketfft; 7, 11 and 13
    are radices too, other primes take Bluestein)."""
    return int(_core.fft_next_fast_len(int(n)))


def rfft(x: Any, n: int | None = None) -> np.ndarray:
    """Real-input FFT along the last axis, ``numpy.fft.rfft(x, n)``.

    Parameters
    ----------
    x : array_like, float32 or float64, at least 1-d
        Input; the last axis is truncated or zero-padded to ``n``.
    n : int, optional
        Transform length (default ``x.shape[-1]``), ``n >= 1``.

    Returns
    -------
    ndarray, complex64 or complex128, shape ``x.shape[:-1] + (n // 2 + 1,)``
    """
    if type(x) is np.ndarray and x.ndim == 1 and (x.dtype == _F64 or x.dtype == _F32) and x.shape[0] > 0:
        m = x.shape[0]
        n = m if n is None else int(n)
        if n >= 1:  # the common case without the general checks (~5 us less per call)
            out = np.empty(n // 2 + 1, dtype=_C128 if x.dtype == _F64 else _C64)
            _core.fft_rfft(np.ascontiguousarray(x).reshape(1, m), n, out.view(x.dtype).reshape(1, -1))
            return out
    _check_cpu("x", x)
    x = np.asarray(x)
    _dispatch.check_float_dtype("x", x)
    if x.ndim == 0:
        raise ValueError("argument 'x' must be at least 1-d")
    m = x.shape[-1]
    n = m if n is None else int(n)
    if n < 1:
        raise ValueError(f"argument 'n' must be >= 1, got {n}")
    cdt = np.complex64 if x.dtype == np.float32 else np.complex128
    out = np.empty(x.shape[:-1] + (n // 2 + 1,), dtype=cdt)
    if out.size == 0:
        return out
    if m == 0:
        out[...] = 0
        return out
    rows = np.ascontiguousarray(x.reshape(-1, m))
    _core.fft_rfft(rows, n, out.reshape(-1, n // 2 + 1).view(x.dtype))
    return out


def irfft(X: Any, n: int | None = None) -> np.ndarray:
    """Inverse of :func:`rfft` along the last axis, ``numpy.fft.irfft(X, n)``.

    Parameters
    ----------
    X : array_like, complex64 or complex128 (float input is taken as real spectra)
        Half spectrum; the last axis is truncated or zero-padded to ``n // 2 + 1``. The
        imaginary parts of ``X[..., 0]`` and (even ``n``) ``X[..., n // 2]`` are ignored.
    n : int, optional
        Output length (default ``2 * (X.shape[-1] - 1)``), ``n >= 1``.

    Returns
    -------
    ndarray, float32 (from complex64 / float32) or float64, shape ``X.shape[:-1] + (n,)``
    """
    if type(X) is np.ndarray and X.ndim == 1 and (X.dtype == _C128 or X.dtype == _C64) and X.shape[0] > 0:
        m = X.shape[0]
        n = 2 * (m - 1) if n is None else int(n)
        if n >= 1:
            fdt = _F64 if X.dtype == _C128 else _F32
            out = np.empty(n, dtype=fdt)
            _core.fft_irfft(np.ascontiguousarray(X).view(fdt).reshape(1, -1), n, out.reshape(1, n))
            return out
    _check_cpu("X", X)
    X = np.asarray(X)
    if X.ndim == 0:
        raise ValueError("argument 'X' must be at least 1-d")
    rdt: type[np.floating[Any]]
    cdt: type[np.complexfloating[Any, Any]]
    if X.dtype in (np.complex64, np.float32):
        rdt, cdt = np.float32, np.complex64
    elif X.dtype in (np.complex128, np.float64):
        rdt, cdt = np.float64, np.complex128
    else:
        raise TypeError(f"argument 'X' must be complex64/complex128 (or float32/float64), got {X.dtype}")
    m = X.shape[-1]
    n = 2 * (m - 1) if n is None else int(n)
    if n < 1:
        raise ValueError(f"argument 'n' must be >= 1, got {n} (give n when X has one element)")
    out = np.empty(X.shape[:-1] + (n,), dtype=rdt)
    if out.size == 0:
        return out
    if m == 0:
        return np.zeros_like(out)
    rows = np.ascontiguousarray(X.reshape(-1, m), dtype=cdt)
    _core.fft_irfft(rows.view(rdt), n, out.reshape(-1, n))
    return out
