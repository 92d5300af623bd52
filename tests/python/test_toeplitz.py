"""kernkit.fft (our own real FFT) and the Toeplitz products, against numpy.fft and dense
float64 products written from the definitions (scipy.linalg.toeplitz(c, r) @ X)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

import kernkit
from kernkit import ToeplitzOperator, toeplitz_matmul
from kernkit import fft as kfft



def _toeplitz(c: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The dense matrix from the definition T[i, j] = c[i - j] (i >= j), r[j - i] (j > i)."""
    n = len(c)
    d = np.arange(n)[:, None] - np.arange(n)[None, :]
    return np.where(d >= 0, np.asarray(c, np.float64)[np.abs(d)], np.asarray(r, np.float64)[np.abs(d)])

FFT_SIZES = list(range(1, 65)) + [97, 1009, 7919, 2 * 97, 4 * 1009, 2**16, 3**8, 5**6, 2**10 * 3**3 * 5**2,
                                  7**5, 2**12 * 13, 4 * 7 * 11 * 13, 2 * 11**3, 17 * 2**10]


def _rel(a: np.ndarray, ref: np.ndarray) -> float:
    scale = np.abs(ref).max() if ref.size else 1.0
    return float(np.abs(a - ref).max() / scale) if ref.size else 0.0


# ---- FFT ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", FFT_SIZES)
def test_rfft_float64_against_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.standard_normal((2, n))
    X = kfft.rfft(x)
    assert X.dtype == np.complex128 and X.shape == (2, n // 2 + 1)
    ref = np.fft.rfft(x)
    bound = 1e-15 * max(1.0, math.log2(n))
    assert _rel(X, ref) <= bound
    # round trip and the inverse of arbitrary (non-Hermitian-consistent) spectra
    assert _rel(kfft.irfft(ref, n), x) <= bound
    Z = rng.standard_normal((3, n // 2 + 1)) + 1j * rng.standard_normal((3, n // 2 + 1))
    assert _rel(kfft.irfft(Z, n), np.fft.irfft(Z, n)) <= bound


@pytest.mark.parametrize("n", [1, 2, 7, 16, 97, 1000, 4096, 7919, 3**8, 7**5, 2**12 * 13, 2 * 11**3])
def test_rfft_float32(n: int) -> None:
    rng = np.random.default_rng(n + 1)
    x = rng.standard_normal((2, n)).astype(np.float32)
    X = kfft.rfft(x)
    assert X.dtype == np.complex64
    ref = np.fft.rfft(x.astype(np.float64))
    bound = 1e-6 * max(1.0, math.log2(n))
    assert _rel(X, ref) <= bound
    y = kfft.irfft(X, n)
    assert y.dtype == np.float32
    assert _rel(y, x) <= bound


@pytest.mark.parametrize("n", [27, 45, 75, 81, 125, 135, 243, 625, 3 * 97, 5 * 1009, 3**5 * 5**2, 3 * 5 * 7 * 11,
                               3**10, 7**3, 11 * 13, 13**2, 7 * 11 * 13, 7**5, 11**3, 13 * 17])
def test_rfft_odd_rows_decimated(n: int) -> None:
    """A single row of odd length with a factor 3, 5, 7, 11 or 13 (n >= 27) is decimated into P
    real sub-sequences, P its least such factor (in pairs through complex transforms, the last one
    recursively; down to a Bluestein length for 3 * 97 and 13 * 17): against numpy in both
    precisions, with zero-padding and truncation of the input, and arbitrary
    (non-Hermitian-consistent) spectra for the inverse."""
    rng = np.random.default_rng(n + 11)
    x = rng.standard_normal(n)
    Z = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    for dt, cdt, eps in ((np.float64, np.complex128, 1e-15), (np.float32, np.complex64, 1e-6)):
        bound = eps * math.log2(n)
        xd = x.astype(dt)
        X = kfft.rfft(xd)
        assert X.dtype == cdt and X.shape == (n // 2 + 1,)
        assert _rel(X, np.fft.rfft(xd.astype(np.float64))) <= bound
        assert _rel(kfft.irfft(X, n), xd) <= 2 * bound
        assert _rel(kfft.irfft(Z.astype(cdt), n), np.fft.irfft(Z.astype(cdt).astype(np.complex128), n)) <= bound
        for m in (n - 7, n + 5):  # the row zero-padded or cut to n
            xm = rng.standard_normal(m).astype(dt)
            assert _rel(kfft.rfft(xm, n), np.fft.rfft(xm.astype(np.float64), n)) <= bound
            Zm = (rng.standard_normal(m // 2 + 1) + 1j * rng.standard_normal(m // 2 + 1)).astype(cdt)
            assert _rel(kfft.irfft(Zm, n), np.fft.irfft(Zm.astype(np.complex128), n)) <= bound
    y = x.copy()
    y[n // 3] = np.nan
    assert np.isnan(kfft.rfft(y)).all()


def test_fft_plan_cache_is_bounded_and_safe_under_eviction() -> None:
    """Plans beyond KERNKIT_FFT_CACHE_MB per element type are dropped least recently used first
    (they were kept for the process's life: 65 MiB per Bluestein length near 2^20), and never
    while a call uses them: threads transforming many lengths at once under a tiny budget, checked
    against numpy. A fresh process, for the environment variable."""
    code = """
import numpy as np, kernkit.fft as kf
from kernkit import _core
from concurrent.futures import ThreadPoolExecutor
most = 0
for n in range(65537, 65537 + 40, 2):  # Bluestein lengths, ~1 MiB of plans each in float64
    x = np.random.default_rng(n).standard_normal(n)
    assert np.abs(kf.rfft(x) - np.fft.rfft(x)).max() <= 1e-9 * np.abs(x).sum()
    most = max(most, _core.fft_plan_cache_bytes())
def job(n):
    x = np.random.default_rng(n).standard_normal((3, n)).astype(np.float32 if n % 2 else np.float64)
    return float(np.abs(kf.irfft(kf.rfft(x), n) - x).max())
with ThreadPoolExecutor(8) as ex:
    worst = max(ex.map(job, list(range(1001, 1801, 7)) * 2))
print(most, worst)
"""
    env = dict(os.environ, KERNKIT_FFT_CACHE_MB="2")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    most, worst = out.stdout.split()
    assert 0 < int(most) <= 2 << 20 and float(worst) < 1e-5


@pytest.mark.parametrize("n", [1, 2, 3, 8, 15, 97, 256, 1000, 2 * 1009, 4096])
def test_rfft_many_rows(n: int) -> None:
    """Rows are transformed several at a time (lanes); a remainder block has fewer."""
    rng = np.random.default_rng(n + 5)
    x = rng.standard_normal((37, n))
    bound = 1e-15 * max(1.0, math.log2(n))
    assert _rel(kfft.rfft(x), np.fft.rfft(x)) <= bound
    assert _rel(kfft.rfft(x, n + 3), np.fft.rfft(x, n + 3)) <= 2 * bound
    Z = rng.standard_normal((37, n // 2 + 1)) + 1j * rng.standard_normal((37, n // 2 + 1))
    assert _rel(kfft.irfft(Z, n), np.fft.irfft(Z, n)) <= bound
    x32 = x.astype(np.float32)
    assert _rel(kfft.rfft(x32), np.fft.rfft(x)) <= 1e-6 * max(1.0, math.log2(n))
    assert _rel(kfft.irfft(Z.astype(np.complex64), n), np.fft.irfft(Z, n)) <= 1e-6 * max(1.0, math.log2(n))
    assert np.array_equal(kfft.rfft(x)[5], kfft.rfft(x[:9])[5])  # same block position, same bits


def test_rfft_padding_truncation_and_shapes() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 10))
    for n in (1, 4, 10, 17, 30):
        assert _rel(kfft.rfft(x, n), np.fft.rfft(x, n)) <= 1e-14
    X = np.fft.rfft(x)
    for n in (1, 3, 8, 18, 25):
        assert _rel(kfft.irfft(X, n), np.fft.irfft(X, n)) <= 1e-14
    for n in (None, 5, 10, 17):  # 1-d input (a separate fast path)
        assert _rel(kfft.rfft(x[0, 0], n), np.fft.rfft(x[0, 0], n)) <= 1e-14
        assert _rel(kfft.irfft(X[0, 0], n), np.fft.irfft(X[0, 0], n)) <= 1e-14
    assert kfft.rfft(x[0, 0].astype(np.float32)).dtype == np.complex64
    assert kfft.irfft(X[0, 0].astype(np.complex64)).dtype == np.float32
    assert np.array_equal(kfft.rfft(x[:, :, ::2]), kfft.rfft(np.ascontiguousarray(x[:, :, ::2])))
    assert kfft.rfft(np.zeros((0, 8))).shape == (0, 5)
    assert np.all(kfft.rfft(np.zeros((2, 0)), 6) == 0)


def _smooth(m: int) -> bool:
    for p in (2, 3, 5):
        while m % p == 0:
            m //= p
    return m == 1


def test_next_fast_len() -> None:
    for n in range(1, 3000):
        m = kfft.next_fast_len(n)
        assert m >= n and _smooth(m) and all(not _smooth(j) for j in range(n, m))


def test_rfft_adversarial_values() -> None:
    x = np.zeros(64)
    assert np.all(kfft.rfft(x) == 0)
    x = np.full(64, 1e300)
    X = kfft.rfft(x)
    assert np.isfinite(X).all() and abs(X[0] - 64e300) <= 1e-13 * 64e300
    x = np.arange(64, dtype=float)
    x[5] = np.nan
    assert np.isnan(kfft.rfft(x)).all()
    y = np.zeros(16)
    y[0] = np.inf
    Y = kfft.rfft(y)  # inf times a twiddle with a zero part is NaN (numpy.fft gives NaNs too)
    assert np.isinf(Y[0].real) and not np.isfinite(Y).any()


def test_rfft_bad_input() -> None:
    with pytest.raises(TypeError, match="'x'"):
        kfft.rfft(np.arange(8))
    with pytest.raises(ValueError, match="'n'"):
        kfft.rfft(np.zeros(8), 0)
    with pytest.raises(ValueError, match="'x'"):
        kfft.rfft(np.float64(1.0))
    with pytest.raises(ValueError, match="'n'"):
        kfft.irfft(np.zeros(1, np.complex128))


# ---- Toeplitz products -------------------------------------------------------------------------


def _dense(c: np.ndarray, r: np.ndarray | None, causal: bool) -> np.ndarray:
    c = np.asarray(c, np.float64)
    if not len(c):
        return np.zeros((0, 0))
    if causal:
        return np.tril(_toeplitz(c, np.zeros(len(c))))
    return _toeplitz(c, np.asarray(r, np.float64))


def _coefs(rng: np.random.Generator, n: int, shape: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    c = rng.standard_normal(shape + (n,))
    r = rng.standard_normal(shape + (n,))
    if n:
        r[..., 0] = c[..., 0]
    return c, r


def _tol(dtype: type) -> float:
    return 1e-12 if dtype == np.float64 else 1e-5


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16, 17, 97, 1000, 4096])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matmul_against_dense(n: int, causal: bool, dtype: type) -> None:
    rng = np.random.default_rng(n * 7 + causal)
    k = 3 if n >= 1000 else 13
    c, r = _coefs(rng, n)
    X = rng.standard_normal((n, k))
    ref = _dense(c, r, causal) @ X
    Y = toeplitz_matmul(c.astype(dtype), None if causal else r.astype(dtype), X.astype(dtype), causal=causal)
    assert Y.dtype == dtype and Y.shape == (n, k)
    # relative to max|T X| (the FFT error is spread over all entries: see the docstring)
    assert _rel(Y, ref) <= _tol(dtype)


@pytest.mark.parametrize("n", [5, 17, 300])
def test_fft_and_direct_paths_agree(n: int) -> None:
    rng = np.random.default_rng(n)
    c, r = _coefs(rng, n, (2,))
    X = rng.standard_normal((2, n, 9))
    Yd = np.empty_like(X)
    Yf = np.empty_like(X)
    kernkit._core.toeplitz_matmul(c, r, False, X, Yd, 1)
    kernkit._core.toeplitz_matmul(c, r, False, X, Yf, 2)
    ref = np.stack([_dense(c[b], r[b], False) @ X[b] for b in range(2)])
    assert _rel(Yd, ref) <= 1e-14 and _rel(Yf, ref) <= 1e-13


def test_batches_shared_and_per_batch_coefficients() -> None:
    rng = np.random.default_rng(5)
    n, k = 70, 6
    X = rng.standard_normal((2, 3, n, k))
    c, r = _coefs(rng, n)
    Y = toeplitz_matmul(c, r, X)
    assert Y.shape == (2, 3, n, k)
    T = _dense(c, r, False)
    assert _rel(Y, T @ X) <= 1e-12
    cb, rb = _coefs(rng, n, (3,))  # per head, broadcast over the leading batch dim
    Y = toeplitz_matmul(cb, rb, X)
    Ts = np.stack([_dense(cb[h], rb[h], False) for h in range(3)])
    assert _rel(Y, Ts[None] @ X) <= 1e-12
    # coefficients with more batch dims than X: X is broadcast
    Y = toeplitz_matmul(cb, rb, X[0, 0])
    assert Y.shape == (3, n, k)
    assert _rel(Y, Ts @ X[0, 0]) <= 1e-12
    # causal, per batch
    Y = toeplitz_matmul(cb, None, X, causal=True)
    ref = np.stack([_dense(cb[h], None, True) for h in range(3)])[None] @ X
    assert _rel(Y, ref) <= 1e-12


def test_non_contiguous_x() -> None:
    rng = np.random.default_rng(6)
    n = 200
    c, r = _coefs(rng, n)
    big = rng.standard_normal((2, n, 2 * 7))
    X = big[:, :, ::2]  # strided columns
    XT = rng.standard_normal((5, n)).T  # column-major
    for A in (X, XT, big[:, ::-1, 1:8]):
        ref = _dense(c, r, False) @ np.ascontiguousarray(A)
        assert _rel(toeplitz_matmul(c, r, A), ref) <= 1e-12
    small = big[:, :20, ::3]
    c2, r2 = _coefs(rng, 20)
    assert _rel(toeplitz_matmul(c2, r2, small), _dense(c2, r2, False) @ small) <= 1e-13


def test_empty_shapes() -> None:
    assert toeplitz_matmul(np.zeros(0), np.zeros(0), np.zeros((0, 4))).shape == (0, 4)
    c, r = _coefs(np.random.default_rng(0), 50)
    assert toeplitz_matmul(c, r, np.zeros((50, 0))).shape == (50, 0)
    assert toeplitz_matmul(c, r, np.zeros((0, 50, 3))).shape == (0, 50, 3)
    Y = toeplitz_matmul(np.array([2.0]), np.array([2.0]), np.array([[3.0, -1.0]]))
    assert np.array_equal(Y, [[6.0, -2.0]])


def test_nan_propagates() -> None:
    rng = np.random.default_rng(8)
    for n in (10, 200):
        c, r = _coefs(rng, n)
        X = rng.standard_normal((n, 4))
        X[3, 1] = np.nan
        Y = toeplitz_matmul(c, r, X)
        assert np.isnan(Y[:, 1]).any() and np.isfinite(Y[:, [0, 2, 3]]).all()
        c[2] = np.nan
        Y = toeplitz_matmul(c, r, np.ones((n, 2)))
        assert np.isnan(Y).any()


def test_bad_input_names_the_argument() -> None:
    c, r = _coefs(np.random.default_rng(9), 8)
    X = np.ones((8, 2))
    with pytest.raises(ValueError, match="'c'"):
        toeplitz_matmul(c[:7], r, X)
    with pytest.raises(ValueError, match="'r'"):
        toeplitz_matmul(c, r[:7], X)
    with pytest.raises(ValueError, match="'X'"):
        toeplitz_matmul(c, r, np.ones(8))
    with pytest.raises(ValueError, match=r"c\[\.\.\., 0\] != r\[\.\.\., 0\]"):
        toeplitz_matmul(c, r + 1, X)
    with pytest.raises(ValueError, match="'r'"):
        toeplitz_matmul(c, None, X)
    with pytest.raises(TypeError, match="'X'"):
        toeplitz_matmul(c, r, X.astype(np.int64))
    with pytest.raises(TypeError, match="'c'"):
        toeplitz_matmul(c.astype(np.complex128), r, X)
    with pytest.raises(ValueError, match="batch"):
        toeplitz_matmul(np.ones((3, 8)), np.ones((3, 8)), np.ones((2, 8, 2)))
    with pytest.raises(ValueError, match="'X'"):
        ToeplitzOperator(c, r) @ np.ones((7, 2))


def test_mixed_dtypes_promote() -> None:
    rng = np.random.default_rng(10)
    c, r = _coefs(rng, 60)
    X = rng.standard_normal((60, 3)).astype(np.float32)
    assert toeplitz_matmul(c, r, X).dtype == np.float64
    assert toeplitz_matmul(c.astype(np.float32), r.astype(np.float32), X).dtype == np.float32


@pytest.mark.parametrize("n", [7, 300])
def test_operator(n: int) -> None:
    rng = np.random.default_rng(n)
    c, r = _coefs(rng, n, (2,))
    X = rng.standard_normal((2, n, 5))
    T = ToeplitzOperator(c, r)
    assert T.shape == (2, n, n) and T.dtype == np.float64
    ref = np.stack([_dense(c[b], r[b], False) for b in range(2)])
    assert _rel(T @ X, ref @ X) <= 1e-12
    assert _rel(T.matmul(X), toeplitz_matmul(c, r, X)) <= 1e-15
    assert _rel(T.T @ X, np.swapaxes(ref, -1, -2) @ X) <= 1e-12
    Tc = ToeplitzOperator(c[0], causal=True)
    refc = _dense(c[0], None, True)
    assert _rel(Tc @ X, refc @ X) <= 1e-12
    assert _rel(Tc.T @ X, refc.T @ X) <= 1e-12
    assert "ToeplitzOperator" in repr(Tc)
    T1 = ToeplitzOperator(c[0], r[0])  # one matrix, 2-d X (a separate fast path)
    assert _rel(T1 @ X[0], ref[0] @ X[0]) <= 1e-12
    assert (T1 @ X[0, :, :0]).shape == (n, 0)
    assert _rel(T1 @ X[0].astype(np.float32), ref[0] @ X[0]) <= 1e-5


def test_deterministic_across_threads() -> None:
    rng = np.random.default_rng(11)
    c, r = _coefs(rng, 1000, (3,))
    X = rng.standard_normal((3, 1000, 40))
    prev = kernkit.get_num_threads()
    try:
        rows = rng.standard_normal((300, 256))
        kernkit.set_num_threads(1)
        a = toeplitz_matmul(c, r, X)
        fa = kfft.rfft(rows)
        kernkit.set_num_threads(2)
        b = toeplitz_matmul(c, r, X)
        fb = kfft.rfft(rows)
    finally:
        kernkit.set_num_threads(prev)
    assert np.array_equal(a, b) and np.array_equal(fa, fb)


# ---- CUDA --------------------------------------------------------------------------------------

cuda = pytest.mark.skipif(not kernkit.cuda_available(), reason="no CUDA device / CUDA build")


@cuda
@pytest.mark.parametrize("path", ["auto", "cufft"])  # auto: the fused kernel (L = 256 here)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("causal", [False, True])
def test_cuda_matches_dense(dtype: str, causal: bool, path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("KERNKIT_TOEPLITZ_CUDA", path)
    rng = np.random.default_rng(12)
    n, k = 97, 33
    c, r = _coefs(rng, n, (2,))
    X = rng.standard_normal((2, n, k))
    ref = np.stack([_dense(c[b], r[b] if not causal else None, causal) for b in range(2)]) @ X
    td = getattr(torch, dtype)
    ct, rt, Xt = (torch.tensor(a, dtype=td, device="cuda") for a in (c, r, X))
    Y = toeplitz_matmul(ct, None if causal else rt, Xt, causal=causal)
    assert isinstance(Y, torch.Tensor) and Y.device.type == "cuda" and Y.dtype == td
    assert _rel(Y.cpu().double().numpy(), ref) <= _tol(np.float64 if dtype == "float64" else np.float32)
    T = ToeplitzOperator(ct, None if causal else rt, causal=causal)
    Xs = Xt.transpose(1, 2).contiguous().transpose(1, 2)  # non-contiguous
    assert _rel((T @ Xs).cpu().double().numpy(), ref) <= _tol(np.float64 if dtype == "float64" else np.float32)


@cuda
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuda_fused_at_its_largest_length(dtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fused kernel's largest L (8192 float32 with n = 4096, 4096 float64 with n = 2048; one
    block per SM of shared memory), k off its column group, forced on; beyond it, forcing it is
    an error and auto falls back to cuFFT."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(14)
    n = 4096 if dtype == "float32" else 2048
    c, r = _coefs(rng, n, ())
    X = rng.standard_normal((n, 11))
    td = getattr(torch, dtype)
    ct, rt, Xt = (torch.tensor(a, dtype=td, device="cuda") for a in (c, r, X))
    monkeypatch.setenv("KERNKIT_TOEPLITZ_CUDA", "fused")
    assert _rel(toeplitz_matmul(ct, rt, Xt).cpu().double().numpy(), _dense(c, r, False) @ X) <= _tol(
        np.float64 if dtype == "float64" else np.float32)
    big = n + 1
    cb, rb = _coefs(rng, big, ())
    Xb = rng.standard_normal((big, 3))
    cbt, rbt, Xbt = (torch.tensor(a, dtype=td, device="cuda") for a in (cb, rb, Xb))
    with pytest.raises(ValueError, match="fused"):
        toeplitz_matmul(cbt, rbt, Xbt)
    monkeypatch.setenv("KERNKIT_TOEPLITZ_CUDA", "auto")
    assert _rel(toeplitz_matmul(cbt, rbt, Xbt).cpu().double().numpy(), _dense(cb, rb, False) @ Xb) <= _tol(
        np.float64 if dtype == "float64" else np.float32)
    monkeypatch.setenv("KERNKIT_TOEPLITZ_CUDA", "fast")
    with pytest.raises(ValueError, match="KERNKIT_TOEPLITZ_CUDA"):
        toeplitz_matmul(cbt, rbt, Xbt)


@cuda
@pytest.mark.parametrize("path", ["auto", "cufft"])
def test_cuda_nan_stays_in_its_column(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """As on the CPU (test_nan_propagates): the fused kernel transforms columns in complex pairs,
    so a non-finite entry must not reach its partner column."""
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("KERNKIT_TOEPLITZ_CUDA", path)
    rng = np.random.default_rng(15)
    for n in (10, 200):
        c, r = _coefs(rng, n)
        X = rng.standard_normal((n, 4))
        X[3, 1] = np.nan
        X[0, 2] = np.inf
        Y = toeplitz_matmul(*(torch.tensor(a, device="cuda") for a in (c, r, X))).cpu().numpy()
        assert np.isnan(Y[:, 1]).any() and not np.isfinite(Y[:, 2]).all()
        assert _rel(Y[:, [0, 3]], _dense(c, r, False) @ X[:, [0, 3]]) <= 1e-12


@cuda
def test_cuda_never_copies_across_devices() -> None:
    torch = pytest.importorskip("torch")
    c = np.ones(4)
    with pytest.raises(ValueError, match="device"):
        toeplitz_matmul(c, c, torch.ones((4, 2), device="cuda", dtype=torch.float64))


def test_cuda_python_glue_with_cpu_tensors_standing_in(monkeypatch: pytest.MonkeyPatch, fake_cuda: dict) -> None:
    """The CUDA branch of kernkit.toeplitz (torch namespace, broadcasting, strides, spectra,
    detach) run on CPU tensors that pretend to live on a GPU (the fake_cuda fixture), the address
    bindings replaced by stand-ins that find the arrays by address, check the batch strides,
    lengths, element strides and dtype flag they are given against them and run the CPU kernels:
    the Python glue is checked where no GPU is (CI); the kernels by the tests above."""
    torch = pytest.importorskip("torch")
    core = kernkit._core

    def spectrum_ptr(c, cbs, r, rbs, causal, n, nb, L, spec, f64, stream):  # type: ignore[no-untyped-def]
        cc, ss = fake_cuda[c], fake_cuda[spec]
        rr = None if causal else fake_cuda[r]
        assert tuple(ss.shape) == (nb, L + 2) and ss.is_contiguous() and L >= 2 * n - 1
        for a, bs in ((cc, cbs), (rr, rbs)):
            if a is not None:
                assert a.is_contiguous() and a.shape[-1] == n and bs == (0 if a.shape[0] == 1 else n)
        assert f64 == (ss.dtype == torch.float64) and stream == 1234
        core.toeplitz_spectrum(cc.numpy(), None if rr is None else rr.numpy(), causal, L, ss.numpy())

    def matmul_ptr(spec, sbs, L, n, X, nb, k, xs0, xs1, xs2, Y, f64, stream):  # type: ignore[no-untyped-def]
        ss, xx, yy = fake_cuda[spec], fake_cuda[X], fake_cuda[Y]
        assert tuple(xx.shape) == tuple(yy.shape) == (nb, n, k) and yy.is_contiguous()
        assert (xs0, xs1, xs2) == tuple(xx.stride()) and sbs == (0 if ss.shape[0] == 1 else L + 2)
        assert f64 == (xx.dtype == torch.float64) and stream == 1234
        core.toeplitz_matmul_spectrum(ss.numpy(), L, xx.numpy(), yy.numpy())

    monkeypatch.setattr(core, "toeplitz_spectrum_cuda_ptr", spectrum_ptr)
    monkeypatch.setattr(core, "toeplitz_matmul_spectrum_cuda_ptr", matmul_ptr)
    monkeypatch.setattr(core, "toeplitz_cuda_fft_length",
                        lambda n, f64: 1 << (2 * n - 1).bit_length() if n > 1 else 2)
    rng = np.random.default_rng(13)
    n = 37
    c, r = _coefs(rng, n, (3,))
    X = rng.standard_normal((2, 3, n, 4))
    with torch.no_grad():
        for causal in (False, True):
            Ts = np.stack([_dense(c[h], None if causal else r[h], causal) for h in range(3)])
            for dt, tol in ((torch.float32, 1e-5), (torch.float64, 1e-12)):
                ct, rt, Xt = (torch.tensor(a, dtype=dt) for a in (c, r, X))
                Xt.requires_grad_(True)  # detached by the glue (under no_grad; in grad mode: refused)
                Xs = Xt.transpose(-1, -2).contiguous().transpose(-1, -2)
                Y = toeplitz_matmul(ct, None if causal else rt, Xs, causal=causal)
                assert isinstance(Y, torch.Tensor) and Y.dtype == dt and Y.shape == (2, 3, n, 4)
                assert _rel(Y.double().numpy(), Ts[None] @ X) <= tol
                T = ToeplitzOperator(ct, None if causal else rt, causal=causal)
                assert T._spec is not None and T._spec[1] == 128  # the fused kernel's power of two >= 2n - 1
                assert _rel((T @ Xt).double().numpy(), Ts[None] @ X) <= tol
                assert _rel((T.T @ Xt).double().numpy(), np.swapaxes(Ts, -1, -2)[None] @ X) <= tol
                Y1 = toeplitz_matmul(ct[0], None if causal else rt[0], Xt[0, 0], causal=causal)
                assert _rel(Y1.double().numpy(), Ts[0] @ X[0, 0]) <= tol
                Yb = T @ Xt[0, :1].detach().expand(5, 3, n, 4)  # batch stride 0
                assert _rel(Yb.double().numpy(), np.broadcast_to(Ts @ X[0, 0], (5, 3, n, 4))) <= tol
    with pytest.raises(ValueError, match="disagree"):
        toeplitz_matmul(torch.ones(4), 2 * torch.ones(4), torch.ones(4, 2))
    # Under CUDA graph capture no device value may be read back: the check is skipped, T[0, 0] = c[0]
    # (the stand-in bindings above read their arrays, as the kernels would on the device)
    monkeypatch.setattr(kernkit._dispatch, "capturing", lambda a: True)
    in_binding = [False]

    def guarded(attr):  # type: ignore[no-untyped-def]
        real = getattr(torch.Tensor, attr)

        def method(self, *args):  # type: ignore[no-untyped-def]
            assert in_binding[0], "a device value was read back to the host under capture"
            return real(self, *args)
        return method

    def binding(fn):  # type: ignore[no-untyped-def]
        def call(*args):  # type: ignore[no-untyped-def]
            in_binding[0] = True
            try:
                return fn(*args)
            finally:
                in_binding[0] = False
        return call

    for name in ("toeplitz_spectrum_cuda_ptr", "toeplitz_matmul_spectrum_cuda_ptr"):
        monkeypatch.setattr(core, name, binding(getattr(core, name)))
    for attr in ("__bool__", "item", "cpu", "numpy", "tolist"):
        monkeypatch.setattr(torch.Tensor, attr, guarded(attr))
    Xc = torch.tensor(X[0, 0])
    Yc = toeplitz_matmul(torch.tensor(c[0]), torch.tensor(np.r_[c[0, 0] + 1.0, r[0, 1:]]), Xc)
    monkeypatch.undo()
    assert _rel(Yc.numpy(), _dense(c[0], np.r_[c[0, 0], r[0, 1:]], False) @ X[0, 0]) <= 1e-12


def test_diagonal_check_batched_and_nan() -> None:
    """The general path's check of c[..., 0] == r[..., 0]: NaN on both sides agrees (the column
    becomes NaN, as any non-finite coefficient does), a difference in any batch row raises."""
    rng = np.random.default_rng(31)
    c, r = rng.standard_normal((3, 8)), rng.standard_normal((3, 8))
    r[:, 0] = c[:, 0]
    c[1, 0] = r[1, 0] = np.nan
    X = rng.standard_normal((3, 8, 2))
    Y = toeplitz_matmul(c, r, X)
    assert np.isnan(Y[1]).all() and np.isfinite(Y[[0, 2]]).all()
    r[2, 0] += 1.0
    with pytest.raises(ValueError, match="disagree"):
        toeplitz_matmul(c, r, X)
    r[2, 0], c[1, 0] = c[2, 0], 0.0  # NaN on one side only
    with pytest.raises(ValueError, match="disagree"):
        toeplitz_matmul(c, r, X)


def test_torch_cpu_tensors_and_grad_refusal() -> None:
    """torch CPU tensors: the result in X's library; tensors that require grad are refused
    (toeplitz_matmul records no gradients), in the function, the operator and its product."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(24)
    c, r = _coefs(rng, 9, ())
    X = rng.standard_normal((9, 3))
    ct, rt, Xt = (torch.from_numpy(a) for a in (c, r, X))
    want = _dense(c, r, False) @ X
    for Y in (toeplitz_matmul(ct, rt, Xt), toeplitz_matmul(c, r, Xt), ToeplitzOperator(ct, rt) @ Xt):
        assert isinstance(Y, torch.Tensor)
        assert _rel(Y.numpy(), want) <= 1e-12
    assert isinstance(toeplitz_matmul(ct, rt, X), np.ndarray)
    g = Xt.clone().requires_grad_()
    for call in (lambda: toeplitz_matmul(ct, rt, g), lambda: ToeplitzOperator(ct, rt) @ g,
                 lambda: ToeplitzOperator(g[:, 0], rt)):
        with pytest.raises(TypeError, match="requires grad"):
            call()
