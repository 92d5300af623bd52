"""Kernelized attention with relative positional encoding (Luo et al. 2021): the FFT/Toeplitz and
scan paths against the dense O(n^2) formula in float64 numpy (written here from the math, with no
stabilizer), hand-written gradients against finite differences and float64 torch autograd of the
dense formula, the random projection, masks, NaN, bad input, and the CUDA path when there is one."""

from __future__ import annotations

import math

import numpy as np
import pytest

import kernkit
from kernkit import rpe as _rpe

NS = (1, 2, 17, 257)


# ---- float64 references straight from the formula ------------------------------------------

def ref_phi(x, W, normalize=False):
    """exp(w.x~ - |x~|^2/2) / sqrt(m), x~ = d^(-1/4) x (no stabilizer: it cancels in the ratio)."""
    x = np.asarray(x, np.float64)
    if normalize:
        x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    x = x * x.shape[-1] ** -0.25
    return np.exp(x @ W.T - 0.5 * (x * x).sum(-1, keepdims=True)) / math.sqrt(W.shape[0])


def ref_coef(b, n, causal):
    """C[h, i, j] = exp(b[h, (j - i) + n - 1]) (zero above the diagonal when causal)."""
    b = np.atleast_2d(np.asarray(b, np.float64))
    i = np.arange(n)
    t = i[None, :] - i[:, None]
    C = np.exp(b[:, t + n - 1])
    return C * (t <= 0) if causal else C


def ref_attention(q, k, v, C, W, mask=None, normalize=False):
    """sum_j C_ij phi(q_i).phi(k_j) v_j / sum_j C_ij phi(q_i).phi(k_j), explicit (n, n) matrices."""
    A, B = ref_phi(q, W, normalize), ref_phi(k, W, normalize)
    M = (A @ np.swapaxes(B, -1, -2)) * C[None]
    if mask is not None:
        M = M * mask[:, None, None, :]
    return (M @ np.asarray(v, np.float64)) / M.sum(-1)[..., None]


def relerr(out, ref):
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    return float(np.abs(out - ref).max() / np.abs(ref).max())


def inputs(rng, Bt, H, n, d, dv=None, scale=1.0):
    q = scale * rng.standard_normal((Bt, H, n, d))
    k = scale * rng.standard_normal((Bt, H, n, d))
    v = rng.standard_normal((Bt, H, n, dv or d))
    return q, k, v


# ---- random projection ----------------------------------------------------------------------

def test_random_projection_blocks_orthogonal_and_deterministic():
    d, m = 8, 20
    W = kernkit.random_projection(d, m, seed=3)
    assert W.shape == (m, d) and W.dtype == np.float64
    np.testing.assert_array_equal(W, kernkit.random_projection(d, m, seed=3))
    assert not np.allclose(W, kernkit.random_projection(d, m, seed=4))
    for start in range(0, m, d):
        blk = W[start:start + d]
        U = blk / np.linalg.norm(blk, axis=1, keepdims=True)
        np.testing.assert_allclose(U @ U.T, np.eye(len(blk)), atol=1e-12)


def test_random_projection_row_norms_are_chi_d():
    d, m = 16, 4096
    W = kernkit.random_projection(d, m, seed=0)
    sq = (W ** 2).sum(1)  # chi^2(d): mean d, variance 2d
    assert abs(sq.mean() - d) < 4 * math.sqrt(2 * d / m)
    assert abs(sq.var() - 2 * d) < 0.25 * 2 * d


@pytest.mark.parametrize("args, name", [((0, 4), "d"), ((4, 0), "m")])
def test_random_projection_bad(args, name):
    with pytest.raises(ValueError, match=name):
        kernkit.random_projection(*args, seed=0)


# ---- forward against the dense formula ------------------------------------------------------

@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("method", ["fft", "dense"])
def test_forward_matches_dense_float64(n, causal, method):
    rng = np.random.default_rng(n + 10 * causal)
    Bt, H, d, dv, m = 2, 3, 8, 6, 16
    q, k, v = inputs(rng, Bt, H, n, d, dv)
    b = rng.standard_normal((H, 2 * n - 1))
    W = kernkit.random_projection(d, m, seed=1)
    out = kernkit.rpe_attention(q, k, v, b, projection=W, causal=causal, method=method)
    assert out.shape == (Bt, H, n, dv) and out.dtype == np.float64
    assert relerr(out, ref_attention(q, k, v, ref_coef(b, n, causal), W)) < 1e-12


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("method", ["fft", "dense"])
def test_forward_float32(n, causal, method):
    rng = np.random.default_rng(100 + n)
    Bt, H, d, m = 1, 2, 8, 16
    q, k, v = (a.astype(np.float32) for a in inputs(rng, Bt, H, n, d))
    b = rng.standard_normal((H, 2 * n - 1)).astype(np.float32)
    W = kernkit.random_projection(d, m, seed=1)
    out = kernkit.rpe_attention(q, k, v, b, projection=W, causal=causal, method=method)
    assert out.dtype == np.float32
    assert relerr(out, ref_attention(q, k, v, ref_coef(b, n, causal), W)) < 1e-5


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("method", ["fft", "dense"])
def test_forward_padding_mask_and_normalize(causal, normalize, method):
    rng = np.random.default_rng(7)
    Bt, H, n, d, m = 3, 2, 33, 4, 9
    q, k, v = inputs(rng, Bt, H, n, d)
    b = rng.standard_normal((H, 2 * n - 1))
    mask = rng.random((Bt, n)) < 0.7
    mask[:, 0] = True
    W = kernkit.random_projection(d, m, seed=2)
    out = kernkit.rpe_attention(q, k, v, b, projection=W, causal=causal, key_padding_mask=mask,
                                normalize_qk=normalize, method=method)
    ref = ref_attention(q, k, v, ref_coef(b, n, causal), W, mask, normalize)
    assert relerr(out, ref) < 1e-12
    # masked keys and values contribute nothing, even NaN and inf
    k2, v2 = k.copy(), v.copy()
    bi, ji = np.nonzero(~mask)
    k2[bi, :, ji] = np.nan
    v2[bi, :, ji] = np.inf
    out2 = kernkit.rpe_attention(q, k2, v2, b, projection=W, causal=causal, key_padding_mask=mask,
                                 normalize_qk=normalize, method=method)
    outd = kernkit.rpe_attention_decay(q, k2, v2, 0.9, projection=W, causal=causal,
                                       key_padding_mask=mask, normalize_qk=normalize,
                                       method="scan" if method == "fft" else "dense")
    assert np.all(np.isfinite(outd))
    assert relerr(out2, ref) < 1e-12


@pytest.mark.parametrize("method", ["fft", "dense"])
def test_query_that_sees_no_key_gets_zero(method):
    rng = np.random.default_rng(8)
    q, k, v = inputs(rng, 2, 1, 5, 4)
    b = np.zeros((1, 9))
    mask = np.ones((2, 5), bool)
    mask[1] = False                     # batch 1: no key at all
    mask[0, :2] = False                 # causal rows 0, 1 of batch 0 see no key
    out = kernkit.rpe_attention(q, k, v, b, num_features=8, causal=True, key_padding_mask=mask,
                                method=method)
    assert np.all(out[1] == 0) and np.all(out[0, :, :2] == 0)
    assert np.all(np.isfinite(out)) and np.any(out[0, :, 2:] != 0)


@pytest.mark.parametrize("causal, slope", [(False, 0.2), (False, -0.5), (True, -0.2), (True, 0.5)])
def test_fft_path_with_a_steep_bias(causal, slope):
    """A bias far larger at offsets a row does not see (b_t = slope * t, n = 256: rows see at most
    e^-50 of the largest coefficient) left those rows' FFT sums at the rounding level: outputs ~100x
    max|v| before. Such rows are now computed directly (forward and backward), float32 products
    in float64 (exp of the bias underflowed float32 past ~87)."""
    rng = np.random.default_rng(21)
    n, d = 256, 8
    q, k, v = inputs(rng, 1, 2, n, d)
    b = slope * np.arange(-(n - 1), n) * np.array([[1.0], [0.5]])
    W = kernkit.random_projection(d, 16, seed=0)
    ref = ref_attention(q, k, v, ref_coef(b, n, causal), W)
    out = kernkit.rpe_attention(q, k, v, b, projection=W, causal=causal, method="fft")
    assert relerr(out, ref) <= 1e-12
    a32 = [a.astype(np.float32) for a in (q, k, v, b)]
    out32 = kernkit.rpe_attention(*a32, projection=W, causal=causal, method="fft")
    assert out32.dtype == np.float32 and relerr(out32, ref) <= 1e-5
    g = rng.standard_normal(v.shape)
    fast = kernkit.rpe_attention_backward(g, q, k, v, b, projection=W, causal=causal, method="fft")
    dense = kernkit.rpe_attention_backward(g, q, k, v, b, projection=W, causal=causal, method="dense")
    for x, y in zip(fast, dense):
        assert relerr(x, y) <= 1e-12
    fast32 = kernkit.rpe_attention_backward(g.astype(np.float32), *a32, projection=W, causal=causal,
                                            method="fft")
    for x, y in zip(fast32, dense):
        assert x.dtype == np.float32 and relerr(x, y) <= 1e-5


def test_fft_path_rows_that_see_no_key_are_zero():
    """Rows whose every coefficient is 0 (a -inf bias) come out exactly 0, not FFT noise / noise."""
    rng = np.random.default_rng(22)
    n = 300  # (at n = 64 the FFT happened to leave those rows exactly 0)
    q, k, v = inputs(rng, 1, 2, n, 8)
    b = np.full((2, 2 * n - 1), -np.inf)
    b[:, -1] = 0.0          # offset n - 1: only row 0 sees a key (key n - 1)
    b[1, n - 1] = 0.0       # head 1 also sees its own key
    W = kernkit.random_projection(8, 16, seed=0)
    out = kernkit.rpe_attention(q, k, v, b, projection=W, method="fft")
    assert np.all(out[0, 0, 1:] == 0)
    assert np.allclose(out[0, 0, 0], v[0, 0, -1], rtol=1e-13, atol=0)
    assert np.allclose(out[0, 1, 1:], v[0, 1, 1:], rtol=1e-13, atol=1e-15)


def test_shared_bias_feature_chunks_and_bias_shift():
    rng = np.random.default_rng(9)
    Bt, H, n, d, m = 2, 3, 40, 8, 12
    q, k, v = inputs(rng, Bt, H, n, d)
    b1 = rng.standard_normal(2 * n - 1)
    W = kernkit.random_projection(d, m, seed=0)
    base = kernkit.rpe_attention(q, k, v, np.tile(b1, (H, 1)), projection=W)
    for kw in ({"feature_chunk": 1}, {"feature_chunk": 5}, {"feature_chunk": 100}):
        np.testing.assert_allclose(kernkit.rpe_attention(q, k, v, b1, projection=W, **kw), base,
                                   rtol=0, atol=1e-13)
    # the shift exp(b - max b) cancels: adding a constant to a head's bias changes nothing
    np.testing.assert_allclose(kernkit.rpe_attention(q, k, v, b1 + 50.0, projection=W), base,
                               rtol=0, atol=1e-13)
    # -inf offsets are allowed (a local window)
    bw = np.where(np.abs(np.arange(-(n - 1), n)) <= 3, b1, -np.inf)
    out = kernkit.rpe_attention(q, k, v, bw, projection=W, causal=True)
    assert relerr(out, ref_attention(q, k, v, ref_coef(bw, n, True), W)) < 1e-12


def test_num_features_seed_and_projection_agree():
    rng = np.random.default_rng(10)
    q, k, v = inputs(rng, 1, 2, 20, 8)
    b = rng.standard_normal((2, 39))
    a = kernkit.rpe_attention(q, k, v, b, num_features=24, seed=5)
    c = kernkit.rpe_attention(q, k, v, b, projection=kernkit.random_projection(8, 24, 5))
    np.testing.assert_array_equal(a, c)
    assert not np.allclose(a, kernkit.rpe_attention(q, k, v, b, num_features=24, seed=6))
    default = kernkit.rpe_attention(q, k, v, b)  # m = int(d ln d) = 16
    np.testing.assert_array_equal(default, kernkit.rpe_attention(q, k, v, b, num_features=16))


def test_rpe_features_reproduce_the_kernel():
    rng = np.random.default_rng(11)
    q, k, _ = inputs(rng, 1, 1, 6, 4)
    W = kernkit.random_projection(4, 32, seed=0)
    A = kernkit.rpe_features(q, W, is_query=True)
    B = kernkit.rpe_features(k, W, is_query=False)
    K = A[0, 0] @ B[0, 0].T
    R = ref_phi(q, W)[0, 0] @ ref_phi(k, W)[0, 0].T
    np.testing.assert_allclose(K / K.sum(1, keepdims=True), R / R.sum(1, keepdims=True), rtol=1e-12)


def test_large_norms_stay_finite():
    # |q|, |k| ~ 50: exp(w.x) alone overflows float32; the max-stabilizer keeps it finite
    rng = np.random.default_rng(12)
    q, k, v = (a.astype(np.float32) for a in inputs(rng, 1, 2, 64, 16, scale=12.0))
    b = rng.standard_normal((2, 127)).astype(np.float32)
    out = kernkit.rpe_attention(q, k, v, b, num_features=32)
    assert np.all(np.isfinite(out))
    assert np.abs(out).max() <= np.abs(v).max() * (1 + 1e-5)  # a convex combination of values


def test_non_contiguous_inputs():
    rng = np.random.default_rng(13)
    q, k, v = (np.asfortranarray(a) for a in inputs(rng, 2, 2, 30, 8))
    b = rng.standard_normal((2, 59 * 2))[:, ::2]
    W = kernkit.random_projection(8, 10, seed=0)
    out = kernkit.rpe_attention(q, k, v, b, projection=W)
    assert relerr(out, ref_attention(q, k, v, ref_coef(b, 30, False), W)) < 1e-12


def test_nan_propagates():
    rng = np.random.default_rng(14)
    q, k, v = inputs(rng, 1, 2, 10, 4)
    b = rng.standard_normal((2, 19))
    q[0, 0, 3, 1] = np.nan
    out = kernkit.rpe_attention(q, k, v, b, num_features=8)
    assert np.all(np.isnan(out[0, 0, 3])) and np.all(np.isfinite(out[0, 1]))
    assert np.isfinite(np.delete(out[0, 0], 3, axis=0)).all()
    q[0, 0, 3, 1] = 0.0
    v[0, 1, 4, 0] = np.nan
    out = kernkit.rpe_attention(q, k, v, b, num_features=8)
    assert np.all(np.isnan(out[0, 1, :, 0])) and np.all(np.isfinite(out[0, 0]))
    b[1, 5] = np.nan
    v[0, 1, 4, 0] = 0.0
    out = kernkit.rpe_attention(q, k, v, b, num_features=8)
    assert np.all(np.isnan(out[0, 1])) and np.all(np.isfinite(out[0, 0]))


def test_empty():
    rng = np.random.default_rng(15)
    q, k, v = inputs(rng, 2, 3, 0, 4, 5)
    out = kernkit.rpe_attention(q, k, v, np.zeros((3, 0)), num_features=4)
    assert out.shape == (2, 3, 0, 5)
    q, k, v = inputs(rng, 0, 3, 6, 4)
    assert kernkit.rpe_attention(q, k, v, np.zeros((3, 11)), num_features=4).shape == (0, 3, 6, 4)
    g = kernkit.rpe_attention_backward(np.zeros((0, 3, 6, 4)), q, k, v, np.zeros((3, 11)), num_features=4)
    assert g[0].shape == (0, 3, 6, 4) and g[3].shape == (3, 11) and not g[3].any()


def test_n1_is_the_value():
    rng = np.random.default_rng(16)
    q, k, v = inputs(rng, 2, 2, 1, 4)
    for causal in (False, True):
        out = kernkit.rpe_attention(q, k, v, rng.standard_normal((2, 1)), num_features=3, causal=causal)
        np.testing.assert_allclose(out, v, rtol=1e-15)


# ---- bad input ------------------------------------------------------------------------------

def _good(rng=None):
    rng = rng or np.random.default_rng(0)
    q, k, v = inputs(rng, 1, 2, 5, 4)
    return q, k, v, np.zeros((2, 9))


@pytest.mark.parametrize("change, exc, name", [
    (lambda a: {**a, "rpe_bias": np.zeros((2, 10))}, ValueError, "rpe_bias"),
    (lambda a: {**a, "rpe_bias": np.zeros((2, 5))}, ValueError, "rpe_bias"),
    (lambda a: {**a, "rpe_bias": np.zeros((3, 9))}, ValueError, "rpe_bias"),
    (lambda a: {**a, "rpe_bias": np.zeros((2, 9), np.int64)}, TypeError, "rpe_bias"),
    (lambda a: {**a, "q": a["q"][0]}, ValueError, "'q'"),
    (lambda a: {**a, "k": a["k"][:, :, :4]}, ValueError, "'k'"),
    (lambda a: {**a, "v": a["v"][:, :1]}, ValueError, "'v'"),
    (lambda a: {**a, "q": a["q"].astype(np.int32)}, TypeError, "'q'"),
    (lambda a: {**a, "v": a["v"].astype(np.float32)}, TypeError, "'v'"),
    (lambda a: {**a, "num_features": 0}, ValueError, "num_features"),
    (lambda a: {**a, "num_features": -3}, ValueError, "num_features"),
    (lambda a: {**a, "projection": np.zeros((6, 3))}, ValueError, "projection"),
    (lambda a: {**a, "projection": np.zeros((6, 4)), "num_features": 5}, ValueError, "num_features"),
    (lambda a: {**a, "key_padding_mask": np.ones((1, 4), bool)}, ValueError, "key_padding_mask"),
    (lambda a: {**a, "key_padding_mask": np.ones((1, 5))}, TypeError, "key_padding_mask"),
    (lambda a: {**a, "feature_chunk": 0, "method": "fft"}, ValueError, "feature_chunk"),
    (lambda a: {**a, "method": "scan"}, ValueError, "method"),
])
def test_bad_input_names_the_argument(change, exc, name):
    q, k, v, b = _good()
    args = change({"q": q, "k": k, "v": v, "rpe_bias": b})
    with pytest.raises(exc, match=name):
        kernkit.rpe_attention(**args)


def test_bad_decay():
    q, k, v, _ = _good()
    for lam in (1.5, -0.1, np.array([0.5, 0.5, 0.5])):
        with pytest.raises(ValueError, match="lam"):
            kernkit.rpe_attention_decay(q, k, v, lam, num_features=4)


def test_decay_range_check_reads_back_except_under_capture(monkeypatch):
    """A lambda array on the GPU is read back for the [0, 1] check, which is skipped under CUDA
    graph capture (no read-back permitted there); host values are always checked."""
    torch = pytest.importorskip("torch")
    lib = _rpe._Lib(torch.zeros(1))
    lib.on_gpu = True  # as for a CUDA tensor (the check's only device-dependent step)
    lam = torch.tensor([0.5, 1.5])
    monkeypatch.setattr(kernkit._dispatch, "capturing", lambda a: False)
    with pytest.raises(ValueError, match="lam"):
        _rpe._lam_coef(lib, lam, 1, 2)
    monkeypatch.setattr(kernkit._dispatch, "capturing", lambda a: True)
    with pytest.raises(ValueError, match="lam"):
        _rpe._lam_coef(lib, 1.5, 1, 2)  # a host value: checked without any read-back

    def no_readback(self, *args):
        raise AssertionError("a device value was read back to the host under capture")

    for attr in ("__bool__", "item", "cpu", "numpy", "tolist"):
        monkeypatch.setattr(torch.Tensor, attr, no_readback)
    coef, scalar = _rpe._lam_coef(lib, lam, 1, 2)
    monkeypatch.undo()
    assert not scalar and coef.tolist() == [0.5, 1.5]


# ---- the O(n) exponential-decay path --------------------------------------------------------

@pytest.mark.parametrize("n", (1, 2, 17, 257, 700))
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("method", ["scan", "dense"])
def test_decay_matches_dense(n, causal, method):
    rng = np.random.default_rng(200 + n)
    Bt, H, d, m = 2, 3, 4, 8
    q, k, v = inputs(rng, Bt, H, n, d)
    lam = np.array([0.0, 0.9, 1.0])
    W = kernkit.random_projection(d, m, seed=0)
    t = np.abs(np.arange(-(n - 1), n))
    C = np.stack([lam_h ** np.abs(np.arange(n)[None, :] - np.arange(n)[:, None]) for lam_h in lam])
    if causal:
        C = np.tril(C)
    out = kernkit.rpe_attention_decay(q, k, v, lam, projection=W, causal=causal, method=method)
    assert relerr(out, ref_attention(q, k, v, C, W)) < 1e-12
    # the same as the general path with b_t = |t| log(lam)
    with np.errstate(divide="ignore"):
        b = np.stack([t * math.log(x) if x > 0 else np.where(t == 0, 0.0, -np.inf) for x in lam])
    gen = kernkit.rpe_attention(q, k, v, b, projection=W, causal=causal)
    assert relerr(out, gen) < 1e-12
    out32 = kernkit.rpe_attention_decay(*(a.astype(np.float32) for a in (q, k, v)),
                                        lam.astype(np.float32), projection=W, causal=causal,
                                        method=method)
    assert out32.dtype == np.float32 and relerr(out32, out) < 1e-5


def test_scan_is_the_recurrence():
    rng = np.random.default_rng(17)
    lib = _rpe._Lib(np.zeros(1))
    for n in (1, 63, 64, 65, 64 * 64 + 3):
        Y = rng.standard_normal((2, n, 3))
        lam = np.array([0.5, 0.999])
        S = _rpe._scan(lib, Y, lam)
        ref = np.empty_like(Y)
        acc = np.zeros((2, 3))
        for i in range(n):
            acc = lam[:, None] * acc + Y[:, i]
            ref[:, i] = acc
        np.testing.assert_allclose(S, ref, rtol=1e-11, atol=1e-11)


# ---- the Toeplitz product (stand-in until kernkit.toeplitz_matmul lands) ----------------------

@pytest.mark.parametrize("n", (1, 2, 3, 17, 97, 256))
def test_toeplitz_product(n):
    rng = np.random.default_rng(n)
    c, r, X = rng.standard_normal((3, n)), rng.standard_normal((3, n)), rng.standard_normal((3, n, 4))
    r[:, 0] = c[:, 0]
    i = np.arange(n)
    e = i[:, None] - i[None, :]
    T = np.where(e >= 0, c[:, np.clip(e, 0, None)], r[:, np.clip(-e, 0, None)])
    fns = [_rpe._toeplitz_matmul] + ([kernkit.toeplitz_matmul] if hasattr(kernkit, "toeplitz_matmul") else [])
    for f in fns:
        assert relerr(f(c, r, X), T @ X) < 1e-12
        assert relerr(f(c, None, X, causal=True), np.tril(T) @ X) < 1e-12


# ---- gradients ------------------------------------------------------------------------------

def _loss(g, **kw):
    return float((g * kernkit.rpe_attention(**kw)).sum())


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("method", ["fft", "dense"])
def test_backward_finite_differences(causal, method):
    rng = np.random.default_rng(18)
    Bt, H, n, d, m = 1, 2, 7, 3, 5
    q, k, v = inputs(rng, Bt, H, n, d)
    b = rng.standard_normal((H, 2 * n - 1))
    mask = np.ones((Bt, n), bool)
    mask[0, 2] = False
    g = rng.standard_normal((Bt, H, n, d))
    W = kernkit.random_projection(d, m, seed=0)
    kw = dict(q=q, k=k, v=v, rpe_bias=b, projection=W, causal=causal, key_padding_mask=mask,
              normalize_qk=True, method=method)
    grads = kernkit.rpe_attention_backward(g, **kw)
    h = 1e-6
    for name, grad in zip(("q", "k", "v", "rpe_bias"), grads):
        x = kw[name]
        num = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            old = x[idx]
            x[idx] = old + h
            up = _loss(g, **kw)
            x[idx] = old - h
            dn = _loss(g, **kw)
            x[idx] = old
            num[idx] = (up - dn) / (2 * h)
        assert grad.shape == x.shape
        np.testing.assert_allclose(grad, num, rtol=0, atol=1e-7 * max(1.0, np.abs(num).max()),
                                   err_msg=name)
    assert not grads[3][:, n:].any() if causal else True  # unused offsets get no gradient


torch = None


def _torch():
    return pytest.importorskip("torch")


def torch_dense(torch, q, k, v, W, b=None, lam=None, causal=False, mask=None, normalize=False):
    """The dense formula in torch float64, differentiated by autograd (stabilizer included)."""
    n, d, m = q.shape[2], q.shape[3], W.shape[0]
    W = torch.as_tensor(W, dtype=q.dtype)

    def phi(x, is_query):
        if normalize:
            x = x / torch.linalg.norm(x, dim=-1, keepdim=True)
        x = x * d ** -0.25
        e = x @ W.T - 0.5 * (x * x).sum(-1, keepdim=True)
        s = e.amax(-1, keepdim=True) if is_query else e.amax((-2, -1), keepdim=True)
        return torch.exp(e - s) / math.sqrt(m)

    i = torch.arange(n)
    t = i[None, :] - i[:, None]
    C = lam.reshape(-1, 1, 1) ** t.abs() if lam is not None else torch.exp(b[:, t + n - 1] - b.amax())
    if causal:
        C = C * (t <= 0)
    M = (phi(q, True) @ phi(k, False).transpose(-1, -2)) * C[None]
    if mask is not None:
        M = M * torch.as_tensor(mask)[:, None, None, :]
    return (M @ v) / M.sum(-1)[..., None]


@pytest.mark.parametrize("n", (2, 17, 130))
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("fast", [True, False])
def test_torch_autograd_matches_dense_autograd(n, causal, fast):
    torch = _torch()
    import kernkit.torch as kt

    rng = np.random.default_rng(300 + n)
    Bt, H, d, dv, m = 2, 3, 5, 4, 7
    q, k = (torch.tensor(a, requires_grad=True) for a in inputs(rng, Bt, H, n, d)[:2])
    v = torch.tensor(rng.standard_normal((Bt, H, n, dv)), requires_grad=True)
    b = torch.tensor(rng.standard_normal((H, 2 * n - 1)), requires_grad=True)
    lam = torch.tensor(rng.uniform(0.3, 0.99, H), requires_grad=True)
    mask = rng.random((Bt, n)) < 0.8
    mask[:, 0] = True
    g = torch.tensor(rng.standard_normal((Bt, H, n, dv)))
    W = kernkit.random_projection(d, m, seed=0)
    kw = dict(projection=W, causal=causal, key_padding_mask=torch.tensor(mask))
    out = kt.rpe_attention(q, k, v, b, method="fft" if fast else "dense", **kw)
    ref = torch_dense(torch, q, k, v, W, b=b, causal=causal, mask=mask)
    assert relerr(out.detach(), ref.detach()) < 1e-12
    ours = torch.autograd.grad((out * g).sum(), (q, k, v, b))
    theirs = torch.autograd.grad((ref * g).sum(), (q, k, v, b))
    for name, o, t in zip("qkvb", ours, theirs):
        assert relerr(o, t) < 1e-10, name
    out = kt.rpe_attention_decay(q, k, v, lam, method="scan" if fast else "dense", **kw)
    ref = torch_dense(torch, q, k, v, W, lam=lam, causal=causal, mask=mask)
    assert relerr(out.detach(), ref.detach()) < 1e-12
    ours = torch.autograd.grad((out * g).sum(), (q, k, v, lam))
    theirs = torch.autograd.grad((ref * g).sum(), (q, k, v, lam))
    for name, o, t in zip(("q", "k", "v", "lam"), ours, theirs):
        assert relerr(o, t) < 1e-10, name


def test_torch_cpu_matches_numpy_and_scalar_lam_grad():
    torch = _torch()
    import kernkit.torch as kt

    rng = np.random.default_rng(19)
    q, k, v = inputs(rng, 1, 2, 50, 8)
    b = rng.standard_normal((2, 99))
    ref = kernkit.rpe_attention(q, k, v, b, num_features=12, causal=True)
    out = kernkit.rpe_attention(*(torch.tensor(a) for a in (q, k, v, b)), num_features=12, causal=True)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-14)
    # a tensor that requires grad: the plain function is kernkit.torch.rpe_attention (numpy
    # arguments beside it are made tensors)
    qg = torch.tensor(q, requires_grad=True)
    out = kernkit.rpe_attention(qg, torch.tensor(k), v, torch.tensor(b), num_features=12, causal=True)
    assert out.grad_fn is not None
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=0, atol=1e-14)
    out.sum().backward()
    assert qg.grad.shape == qg.shape and torch.isfinite(qg.grad).all()
    lam = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    qt = torch.tensor(q, requires_grad=True)
    y = kt.rpe_attention_decay(qt, torch.tensor(k), torch.tensor(v), lam, num_features=12)
    y.sum().backward()
    assert lam.grad.shape == () and torch.isfinite(lam.grad) and qt.grad.shape == qt.shape
    # lam as a Python float: no grad for it, the others still flow
    y = kt.rpe_attention_decay(qt, torch.tensor(k), torch.tensor(v), 0.8, num_features=12)
    assert y.requires_grad


def test_numpy_decay_backward_shapes():
    rng = np.random.default_rng(20)
    q, k, v = inputs(rng, 2, 3, 9, 4)
    g = rng.standard_normal(v.shape)
    for lam in (0.7, np.array([0.5, 0.6, 0.9])):
        dq, dk, dv, dl = kernkit.rpe_attention_decay_backward(g, q, k, v, lam, num_features=5)
        assert dq.shape == q.shape and dv.shape == v.shape
        assert np.shape(dl) == np.shape(lam) and np.all(np.isfinite(dl))


# ---- CUDA -----------------------------------------------------------------------------------

def _cuda_torch():
    """torch with a CUDA device. The CUDA path needs no CUDA build of kernkit: its Toeplitz
    products use kernkit's cuFFT path when kernkit.cuda_available(), else torch.fft (bench/gpu/
    run.sh picks this file because it mentions cuda_available)."""
    torch = _torch()
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("fast", [True, False])
def test_cuda_matches_float64(causal, fast):
    torch = _cuda_torch()
    import kernkit.torch as kt

    rng = np.random.default_rng(21)
    Bt, H, n, d, m = 2, 4, 300, 16, 32
    q, k, v = inputs(rng, Bt, H, n, d)
    b = rng.standard_normal((H, 2 * n - 1))
    mask = rng.random((Bt, n)) < 0.9
    mask[:, 0] = True
    W = kernkit.random_projection(d, m, seed=0)
    ref = ref_attention(q, k, v, ref_coef(b, n, causal), W, mask)
    meth, dmeth = ("fft", "scan") if fast else ("dense", "dense")
    refd = kernkit.rpe_attention_decay(q, k, v, 0.95, projection=W, causal=causal, key_padding_mask=mask)
    for dt, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        args = [torch.tensor(a, dtype=dt, device="cuda") for a in (q, k, v, b)]
        maskc = torch.tensor(mask, device="cuda")
        out = kernkit.rpe_attention(*args, projection=W, causal=causal, key_padding_mask=maskc, method=meth)
        assert out.device.type == "cuda" and out.dtype == dt
        assert relerr(out.cpu(), ref) < tol
        outd = kernkit.rpe_attention_decay(*args[:3], 0.95, projection=W, causal=causal,
                                           key_padding_mask=maskc, method=dmeth)
        assert outd.device.type == "cuda" and relerr(outd.cpu(), refd) < tol
    # gradients on the GPU equal the CPU's (float64)
    lam = np.array([0.5, 0.8, 0.9, 0.99])
    grads = []
    for device in ("cuda", "cpu"):
        leaves = [torch.tensor(a, device=device, requires_grad=True) for a in (q, k, v, b, lam)]
        out = kt.rpe_attention(*leaves[:4], projection=W, causal=causal, method=meth)
        outd = kt.rpe_attention_decay(*leaves[:3], leaves[4], projection=W, causal=causal, method=dmeth)
        grads.append(torch.autograd.grad(out.square().sum() + outd.square().sum(), leaves))
    for a, c in zip(*grads):
        assert relerr(a.cpu(), c) < 1e-11


def test_shared_bias_gradient_shapes():
    rng = np.random.default_rng(22)
    q, k, v = inputs(rng, 2, 3, 11, 4)
    g = rng.standard_normal(v.shape)
    b1 = rng.standard_normal(21)
    full = kernkit.rpe_attention_backward(g, q, k, v, np.tile(b1, (3, 1)), num_features=6)[3]
    for b, want in ((b1, (21,)), (b1[None], (1, 21))):
        db = kernkit.rpe_attention_backward(g, q, k, v, b, num_features=6)[3]
        assert db.shape == want
        np.testing.assert_allclose(db.reshape(-1), full.sum(0), rtol=1e-12, atol=1e-15)


def test_torch_low_precision_and_mixed_bias_dtype():
    torch = _torch()
    import kernkit.torch as kt

    rng = np.random.default_rng(23)
    q, k, v = (torch.tensor(a, dtype=torch.float32) for a in inputs(rng, 1, 2, 40, 8))
    b = torch.tensor(rng.standard_normal((2, 79)), dtype=torch.float64, requires_grad=True)
    ref = kt.rpe_attention(q, k, v, b.detach().float(), num_features=16)
    leaves = [x.bfloat16().requires_grad_() for x in (q, k, v)]
    out = kt.rpe_attention(*leaves, b, num_features=16)
    assert out.dtype == torch.bfloat16
    assert float((out.detach().float() - ref).abs().max() / ref.abs().max()) < 0.05
    out.float().sum().backward()
    assert all(x.grad is not None and x.grad.dtype == torch.bfloat16 for x in leaves)
    assert b.grad is not None and b.grad.dtype == torch.float64
    out = kt.rpe_attention_decay(*(x.detach().half() for x in leaves), 0.9, num_features=16)
    assert out.dtype == torch.float16 and torch.isfinite(out).all()


@pytest.mark.parametrize("causal", [False, True])
def test_torch_float32_fft_path_matches_numpy(causal):
    """float32 through the FFT path with torch tensors: the products run in float64 and the
    contraction mixes them with float32 features (torch's einsum takes one dtype)."""
    torch = _torch()
    import kernkit.torch as kt

    rng = np.random.default_rng(29)
    q, k, v = (a.astype(np.float32) for a in inputs(rng, 1, 2, 70, 8))
    b = rng.standard_normal((2, 139)).astype(np.float32)
    W = kernkit.random_projection(8, 16, seed=1)
    ref = kernkit.rpe_attention(q, k, v, b, projection=W, causal=causal, method="fft")
    assert ref.dtype == np.float32
    leaves = [torch.tensor(a, requires_grad=True) for a in (q, k, v, b)]
    out = kt.rpe_attention(*leaves, projection=W, causal=causal, method="fft")
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=0, atol=1e-6 * np.abs(ref).max())
    out.sum().backward()
    l64 = [torch.tensor(a.astype(np.float64), requires_grad=True) for a in (q, k, v, b)]
    kt.rpe_attention(*l64, projection=W, causal=causal, method="fft").sum().backward()
    for name, a, e in zip("qkvb", leaves, l64):
        assert a.grad.dtype == torch.float32, name
        assert relerr(a.grad.double(), e.grad) < 1e-4, name


def test_plain_calls_on_tensors_that_require_grad():
    """kernkit.rpe_attention / rpe_attention_decay on torch tensors that require grad are the
    differentiable kernkit.torch forms (same values and gradients)."""
    torch = pytest.importorskip("torch")
    import kernkit.torch as kt

    rng = np.random.default_rng(22)
    q0, k0, v0 = (rng.standard_normal((1, 2, 12, 4)) for _ in range(3))
    b0, lam0 = rng.standard_normal((2, 23)), np.array([0.8, 0.95])
    for plain, tf, c0 in ((kernkit.rpe_attention, kt.rpe_attention, b0),
                          (kernkit.rpe_attention_decay, kt.rpe_attention_decay, lam0)):
        res = []
        for f in (plain, tf):
            q, k, v, c = (torch.tensor(t, requires_grad=True) for t in (q0, k0, v0, c0))
            out = f(q, k, v, c, num_features=6, seed=3)
            assert out.grad_fn is not None
            res.append((out.detach(),) + torch.autograd.grad((out * out).sum(), (q, k, v, c)))
        for u, w in zip(*res):
            assert torch.equal(u, w)
