"""kernkit.quant: power-exponent quantization against float64 numpy references from the math."""

from __future__ import annotations

import numpy as np
import pytest

import kernkit
from kernkit import quant as Q

RNG = np.random.default_rng(1234)


# --------------------------------------------------------------------------------------------
# references written from the formulas (not from the code under test)
# --------------------------------------------------------------------------------------------


def ref_quantize(W, bits, a, g, full):
    """P_a(w) = sign(w)|w|^a; q = clip(rint(P/s)); w_hat = sign(sq)|sq|^(1/a). g groups a row."""
    W = np.asarray(W, dtype=np.float64)
    rows, cols = W.shape
    G = W.reshape(rows, cols // g, g)
    A = np.broadcast_to(np.asarray(a, dtype=np.float64), (rows, cols // g))[..., None]
    P = np.sign(G) * np.abs(G) ** A
    m = np.abs(P).max(-1, keepdims=True)
    h = 2 ** (bits - 1)
    if full:
        ws = np.take_along_axis(G, np.abs(G).argmax(-1)[..., None], -1)
        s = np.where(ws < 0, 1.0, -1.0) * m / h
        lo, hi = -h, h - 1
    else:
        s = m / (h - 1)
        lo, hi = -(h - 1), h - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(s != 0, np.clip(np.rint(P / np.where(s != 0, s, 1.0)), lo, hi), 0.0)
    v = s * q
    what = np.sign(v) * np.abs(v) ** (1.0 / A)
    return what.reshape(rows, cols), q.reshape(rows, cols)


def near_tie(W, bits, a, g, full):
    """Mask of weights whose P/s lies within 1e-4 of a rounding boundary (float32 may differ)."""
    W = np.asarray(W, dtype=np.float64)
    rows, cols = W.shape
    G = W.reshape(rows, cols // g, g)
    A = np.broadcast_to(np.asarray(a, dtype=np.float64), (rows, cols // g))[..., None]
    P = np.abs(G) ** A
    m = P.max(-1, keepdims=True)
    h = 2 ** (bits - 1)
    u = P / np.where(m > 0, m, 1.0) * (h if full else h - 1)
    return (np.abs(u - np.floor(u) - 0.5) < 1e-4).reshape(rows, cols)


def bell(shape, kind="gauss", dtype=np.float32, rng=RNG):
    if kind == "gauss":
        x = rng.standard_normal(shape)
    elif kind == "laplace":
        x = rng.laplace(size=shape)
    else:
        x = rng.standard_t(3, size=shape)
    return (0.02 * x).astype(dtype)


# --------------------------------------------------------------------------------------------
# operator
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", Q.SUPPORTED_BITS)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("gran", ["tensor", "channel", "group"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_operator_matches_reference(bits, full, gran, dtype):
    W = bell((24, 128), "laplace", dtype)
    a = 0.55
    qw = Q.quantize(W, bits, a=a, granularity=gran, group_size=32 if gran == "group" else None, full_range=full)
    if gran == "tensor":
        ref, q = ref_quantize(W.reshape(1, -1), bits, a, W.size, full)
        ref, q = ref.reshape(W.shape), q.reshape(W.shape)
        tie = near_tie(W.reshape(1, -1), bits, a, W.size, full).reshape(W.shape)
    else:
        g = 32 if gran == "group" else W.shape[1]
        ref, q = ref_quantize(W, bits, a, g, full)
        tie = near_tie(W, bits, a, g, full)
    assert qw.dequantize().dtype == dtype
    ok = ~tie
    assert np.array_equal(qw.codes[ok], q[ok].astype(np.int8))
    tol = 1e-6 if dtype == np.float32 else 1e-13
    err = np.abs(qw.dequantize().astype(np.float64)[ok] - ref[ok])
    assert err.max() <= tol * np.abs(W).max()
    lo = -(2 ** (bits - 1)) if full else -(2 ** (bits - 1) - 1)
    assert qw.codes.min() >= lo and qw.codes.max() <= 2 ** (bits - 1) - 1
    if full:  # the full grid really uses the extra code
        assert (qw.codes == lo).any()


@pytest.mark.parametrize("bits", [3, 4])
def test_a_one_is_uniform_round_to_nearest(bits):
    W = bell((16, 64), "gauss", np.float64)
    qw = Q.quantize(W, bits, a=1.0, granularity="group", group_size=16)
    G = W.reshape(16, 4, 16)
    s = np.abs(G).max(-1, keepdims=True) / (2 ** (bits - 1) - 1)
    ref = (np.clip(np.rint(G / s), -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1) * s).reshape(W.shape)
    np.testing.assert_allclose(qw.dequantize(), ref, rtol=1e-13, atol=1e-16)


def test_zeros_constants_and_empty():
    W = bell((6, 32), "t3", np.float64)
    W[0] = 0.0  # all-zero channel
    W[1] = 0.37  # constant channel
    W[2, ::3] = 0.0  # exact zeros inside a channel
    W[3] = -1e-30  # tiny constant
    for full in (False, True):
        qw = Q.quantize(W, 4, a=0.4, full_range=full)
        D = qw.dequantize()
        assert np.all(np.isfinite(D))
        assert np.all(D[0] == 0.0)
        np.testing.assert_allclose(D[1], 0.37, rtol=1e-14)
        assert np.all(D[2, ::3] == 0.0)
        np.testing.assert_allclose(D[3], -1e-30, rtol=1e-12)
    for a in (None,):
        qw = Q.quantize(W, 3, a=a, granularity="channel", a_granularity="channel")
        assert np.all(np.isfinite(qw.dequantize())) and np.all(np.isfinite(qw.a))
    e = Q.quantize(np.zeros((0, 8), np.float32), 4, a=0.5)
    assert e.dequantize().shape == (0, 8)
    assert Q.matmul(np.ones((2, 8), np.float32), e).shape == (2, 0)


def test_a_per_channel_and_group_given():
    W = bell((8, 64), "gauss", np.float64)
    a = np.linspace(0.3, 1.0, 8)[:, None]
    qw = Q.quantize(W, 4, a=a, granularity="group", group_size=16, a_granularity="channel")
    ref, _ = ref_quantize(W, 4, a, 16, False)
    tie = near_tie(W, 4, a, 16, False)
    np.testing.assert_allclose(qw.dequantize()[~tie], ref[~tie], rtol=1e-12)
    ag = RNG.uniform(0.3, 1.0, (8, 4))
    qw = Q.quantize(W, 3, a=ag, granularity="group", group_size=16, a_granularity="group")
    ref, _ = ref_quantize(W, 3, ag, 16, False)
    tie = near_tie(W, 3, ag, 16, False)
    np.testing.assert_allclose(qw.dequantize()[~tie], ref[~tie], rtol=1e-12)


# --------------------------------------------------------------------------------------------
# packing and persistence
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", Q.SUPPORTED_BITS)
@pytest.mark.parametrize("cols", [1, 7, 8, 13, 64, 100])
def test_pack_roundtrip(bits, cols):
    u = RNG.integers(0, 2**bits, size=(5, cols)).astype(np.uint8)
    p = Q.pack_codes(u, bits)
    if bits in (2, 3, 4):
        assert p.shape == (5, -(-cols // 8) * bits)  # dense: b bits per code (rows padded to 8 codes)
        # LSB-first bit stream: code c occupies bits [c*b, c*b + b)
        stream = np.unpackbits(p, axis=1, bitorder="little")
        for c in (0, cols - 1):
            val = (stream[:, c * bits : c * bits + bits] * (1 << np.arange(bits))).sum(1)
            assert np.array_equal(val, u[:, c])
    assert np.array_equal(Q.unpack_codes(p, bits, cols), u)


def test_save_load(tmp_path):
    W = bell((12, 64), "laplace", np.float32)
    for kw in (dict(granularity="group", group_size=16, full_range=True), dict(granularity="tensor"), dict(granularity="channel")):
        qw = Q.quantize(W, 3, a=0.6, **kw)
        f = tmp_path / "w.npz"
        qw.save(f)
        back = Q.load(f)
        assert back.bits == 3 and back.shape == qw.shape and back.granularity == qw.granularity
        assert np.array_equal(back.dequantize(), qw.dequantize())
        assert np.array_equal(back.codes, qw.codes)
        assert back == qw and back.info == qw.info == {"objective": "given"}
    assert qw.bits_per_weight < 3.6
    assert qw != Q.quantize(W, 3, a=0.7) and qw != "w" and qw == qw


def test_save_load_suffix_and_info(tmp_path):
    """numpy's savez adds .npz to a bare path; load takes the same path back. info (refine's loss
    history, the search objective) survives the round trip as JSON."""
    W = bell((8, 32), "gauss", np.float64, rng=np.random.default_rng(5))  # (not RNG: later tests' data)
    qw = Q.quantize(W, 4, granularity="group", group_size=16)
    qw.info["loss"] = [np.float64(0.5), 0.25]
    qw.save(tmp_path / "layer")
    assert (tmp_path / "layer.npz").exists()
    back = Q.load(tmp_path / "layer")
    assert back == qw and back.info == {"objective": "mse", "loss": [0.5, 0.25]}
    qw.info["bad"] = object()
    with pytest.raises(TypeError, match="info"):
        qw.save(tmp_path / "bad")


# --------------------------------------------------------------------------------------------
# LUT matmul
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", Q.SUPPORTED_BITS)
@pytest.mark.parametrize("gran,g,agran", [("group", 32, "tensor"), ("channel", None, "channel"),
                                          ("tensor", None, "tensor"), ("group", 16, "group")])
@pytest.mark.parametrize("batch", [1, 3, 17])
def test_matmul_matches_dense(bits, gran, g, agran, batch):
    W = bell((37, 96), "t3", np.float32)
    a = 0.5 if agran == "tensor" else RNG.uniform(0.3, 1.0, (37, 1) if agran == "channel" else (37, 96 // g))
    qw = Q.quantize(W, bits, a=a, granularity=gran, group_size=g, a_granularity=agran, full_range=bits % 2 == 0)
    D = exact_dequant(qw)
    np.testing.assert_allclose(qw.dequantize(), D, rtol=1e-6)  # float32 pow, 1/a up to 3.3
    for dt, tol in ((np.float32, 3e-6), (np.float64, 1e-13)):
        x = RNG.standard_normal((batch, 96)).astype(dt)
        y = Q.matmul(x, qw)
        assert y.dtype == dt and y.shape == (batch, 37)
        ref = x.astype(np.float64) @ D.T
        scale = np.abs(x).astype(np.float64) @ np.abs(D).T
        assert np.all(np.abs(y - ref) <= tol * scale + 1e-30)


@pytest.mark.parametrize("bits,cols", [(4, 512), (2, 768), (3, 1024)])
@pytest.mark.parametrize("g,agran", [(16, "tensor"), (64, "tensor"), (128, "tensor"), (256, "tensor"),
                                     (256, "group")])
@pytest.mark.parametrize("batch", [1, 2, 5, 33])
def test_matmul_vector_layouts(bits, cols, g, agran, batch):
    """Row lengths a multiple of the AVX-512 block (128 4-bit / 256 2-bit / 512 3-bit codes), so the
    in-place code kernel runs: several groups per block (permuted scales, two scales), one scale per block,
    a table per group, and the last block of the last row (read with a masked load)."""
    W = bell((29, cols), "t3", np.float32)
    a = 0.7 if agran == "tensor" else RNG.uniform(0.3, 1.0, (29, cols // g))
    qw = Q.quantize(W, bits, a=a, granularity="group", group_size=g, a_granularity=agran,
                    full_range=True)
    D = exact_dequant(qw)
    x = RNG.standard_normal((batch, cols)).astype(np.float32)
    y = Q.matmul(x, qw)
    ref = x.astype(np.float64) @ D.T
    scale = np.abs(x).astype(np.float64) @ np.abs(D).T
    assert np.all(np.abs(y - ref) <= 3e-6 * scale)
    assert np.all(np.abs(Q.matmul(x[0], qw) - ref[0]) <= 3e-6 * scale[0])  # the GEMV kernel


@pytest.mark.parametrize("bits,cols", [(4, 576), (2, 832), (3, 1280), (3, 1088)])
@pytest.mark.parametrize("g", [16, 32, 64])
@pytest.mark.parametrize("batch", [1, 2, 5, 33])
def test_matmul_partial_last_block(bits, cols, g, batch):
    """Row lengths that end in a partial AVX-512 block (4.5 / 3.25 / 2.5 / 2.125 blocks, as
    4096 x 11008 does for 3-bit codes): its codes and scales are read masked, x zero-padded."""
    W = bell((29, cols), "t3", np.float32)
    qw = Q.quantize(W, bits, a=0.7, granularity="group", group_size=g, full_range=True)
    D = exact_dequant(qw)
    x = RNG.standard_normal((batch, cols)).astype(np.float32)
    ref = x.astype(np.float64) @ D.T
    scale = np.abs(x).astype(np.float64) @ np.abs(D).T
    assert np.all(np.abs(Q.matmul(x, qw) - ref) <= 3e-6 * scale)
    assert np.all(np.abs(Q.matmul(x[0], qw) - ref[0]) <= 3e-6 * scale[0])


@pytest.mark.parametrize("bits,cols,g,agran", [(4, 11008, 64, "tensor"), (4, 11008, 256, "group"),
                                                (3, 11008, 64, "tensor"), (2, 9216, 512, "group"),
                                                (4, 8704, 128, "group"), (3, 4096, 128, "group"),
                                                (4, 11008, 11008, "tensor"), (4, 9216, 768, "group"),
                                                (3, 4608, 1536, "tensor")])
@pytest.mark.parametrize("batch", [1, 2, 3, 4, 5, 40])
def test_matmul_column_chunks(bits, cols, g, agran, batch):
    """Rows longer than L1 holds are taken in column chunks: batches of 1-3 sum the chunks' partial
    dot products, batches of 5 and more decode each chunk of a tile of rows into a buffer (40: a
    pair of 16-lane batch vectors, then one half-empty). Chunks that start mid-row on a group and
    table boundary or inside a group (groups of whole rows, longer than a chunk), a partial last
    block, rows split between threads."""
    W = bell((7, cols), "t3", np.float32)
    a = 0.7 if agran == "tensor" else RNG.uniform(0.3, 1.0, (7, cols // g))
    qw = Q.quantize(W, bits, a=a, granularity="group", group_size=g, a_granularity=agran, full_range=True)
    D = exact_dequant(qw)
    x = RNG.standard_normal((batch, cols)).astype(np.float32)
    ref = x.astype(np.float64) @ D.T
    scale = np.abs(x).astype(np.float64) @ np.abs(D).T
    old = kernkit.get_num_threads()
    try:
        out = []
        for nt in (1, 2, 3):
            kernkit.set_num_threads(nt)
            out.append(Q.matmul(x, qw))
    finally:
        kernkit.set_num_threads(old)
    assert np.all(np.abs(out[0] - ref) <= 3e-6 * scale)
    for y in out[1:]:
        assert np.array_equal(y, out[0])


def exact_dequant(qw):
    """sign(s q)|s q|^(1/a) in float64 from the stored codes, scales and exponents."""
    rows, cols = qw.shape
    q = qw.codes.astype(np.float64)
    ng = 1 if qw.granularity == "tensor" else cols // qw.group_size
    rep = cols // ng
    s = np.repeat(np.broadcast_to(qw.scales.astype(np.float64), (rows, ng)), rep, axis=1)
    a = qw.a.astype(np.float64)
    a = np.repeat(np.broadcast_to(a, (rows, a.shape[1])), cols // a.shape[1], axis=1)
    v = s * q
    return np.sign(v) * np.abs(v) ** (1.0 / a)


def test_matmul_shapes_and_odd_sizes():
    W = bell((10, 20), "gauss", np.float32)  # 20 is not a multiple of 8: portable path
    qw = Q.quantize(W, 4, a=0.7, granularity="group", group_size=5)
    x = RNG.standard_normal((2, 3, 20)).astype(np.float32)
    y = Q.matmul(x, qw)
    assert y.shape == (2, 3, 10)
    np.testing.assert_allclose(y, x @ qw.dequantize().T, rtol=1e-5, atol=1e-6)
    v = Q.matmul(x[0, 0], qw)
    assert v.shape == (10,)
    np.testing.assert_allclose(v, x[0, 0] @ qw.dequantize().T, rtol=1e-5, atol=1e-6)
    xt = np.asfortranarray(RNG.standard_normal((4, 20)).astype(np.float32))[:, ::1]
    np.testing.assert_allclose(Q.matmul(xt, qw), xt @ qw.dequantize().T, rtol=1e-5, atol=1e-6)


def test_integer_path_a_half():
    W = bell((16, 64), "gauss", np.float32)
    qw = Q.quantize(W, 4, a=0.5, granularity="group", group_size=32)
    M, d = qw.integer_weights()
    assert M.dtype == np.int8 and np.abs(M).max() <= 49
    q = qw.codes.astype(np.int64)
    assert np.array_equal(M, (np.sign(q) * q * q).astype(np.int8))  # q|q|
    rebuilt = np.repeat(d.astype(np.float64), 32, axis=1) * M
    np.testing.assert_allclose(rebuilt, qw.dequantize(), rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match="1/a"):
        Q.quantize(W, 4, a=0.6).integer_weights()


# --------------------------------------------------------------------------------------------
# exponent search
# --------------------------------------------------------------------------------------------


def ref_err(W, bits, a, g, full):
    D, _ = ref_quantize(W, bits, a, g, full)
    return ((W.astype(np.float64) - D) ** 2).reshape(W.shape[0], -1, g).sum(-1)


@pytest.mark.parametrize("kind,bits", [("gauss", 4), ("laplace", 4), ("t3", 3)])
def test_search_close_to_brute_force(kind, bits):
    W = bell((64, 256), kind, np.float32)
    grid = np.linspace(0.1, 1.0, 181)
    errs = np.array([ref_err(W, bits, a, 256, False).sum() for a in grid])
    a = Q.search_exponent(W, bits, "channel", a_granularity="tensor")
    e = ref_err(W, bits, float(a[0, 0]), 256, False).sum()
    assert e <= errs.min() * 1.005
    assert e < ref_err(W, bits, 1.0, 256, False).sum()  # beats uniform on bell-shaped weights
    # per channel: each row near its own brute-force optimum
    ac = Q.search_exponent(W, bits, "channel", a_granularity="channel")
    assert ac.shape == (64, 1)
    per_row = np.stack([ref_err(W, bits, a_, 256, False)[:, 0] for a_ in grid], 1)
    got = np.array([ref_err(W[i : i + 1], bits, float(ac[i, 0]), 256, False)[0, 0] for i in range(64)])
    # single-row error curves are jagged (few weights): near the optimum, not always at it
    ratio = got / per_row.min(1)
    assert ratio.max() <= 1.1, (ratio.max(), ac[ratio.argmax()])
    assert got.sum() <= per_row.min(1).sum() * 1.01


def test_search_group_and_full_range():
    W = bell((16, 128), "t3", np.float64)
    ag = Q.search_exponent(W, 4, "group", 32, a_granularity="group", full_range=True)
    assert ag.shape == (16, 4) and np.all((ag >= 0.1) & (ag <= 1.0))
    base = ref_err(W, 4, 1.0, 32, True)
    got = ref_err(W, 4, ag, 32, True)
    assert np.all(got <= base * 1.0001 + 1e-18)


def test_output_objective_and_nupes_refine():
    rng = np.random.default_rng(7)
    W = bell((48, 96), "t3", np.float32, rng)
    # correlated calibration inputs with a few strong directions (as real activations)
    X = (rng.standard_normal((400, 96)) @ (np.eye(96) + 0.3 * rng.standard_normal((96, 96)))).astype(np.float32)
    X[:, :4] *= 8.0

    def out_err(qw):
        E = X.astype(np.float64) @ (W.astype(np.float64) - qw.dequantize()).T
        return float((E * E).sum())

    q_mse = Q.quantize(W, 4, granularity="group", group_size=32, full_range=True)
    q_out = Q.quantize(W, 4, granularity="group", group_size=32, full_range=True, objective="output", calib=X)
    q_uni = Q.quantize(W, 4, a=1.0, granularity="group", group_size=32, full_range=True)
    # grid + local refinement on a jagged curve: close to (not always below) the MSE choice
    assert out_err(q_out) <= out_err(q_mse) * 1.01
    assert out_err(q_out) < out_err(q_uni)
    r = Q.refine(q_out, W, X, iters=3)
    assert out_err(r) < 0.9 * out_err(q_out)
    hist = r.info["loss"]
    assert all(b <= a * (1 + 1e-9) for a, b in zip(hist, hist[1:]))
    np.testing.assert_allclose(hist[-1], out_err(r), rtol=1e-3)  # stored form reproduces the loss
    assert 0.1 <= float(r.a.min()) and float(r.a.max()) <= 1.0
    # codes moved by more than one step somewhere (not only up/down rounding)
    assert np.abs(r.codes.astype(int) - q_out.codes.astype(int)).max() >= 2
    # channel exponents, exact zeros, per-channel scales
    W2 = W.copy()
    W2[:, ::5] = 0.0
    W2[3] = 0.0
    q2 = Q.quantize(W2, 3, granularity="channel", a_granularity="channel", objective="output", calib=X)
    r2 = Q.refine(q2, W2, X, iters=2)
    D2 = r2.dequantize()
    assert np.all(np.isfinite(D2)) and np.all(np.isfinite(r2.a))
    assert np.all(D2[3] == 0.0)
    assert r2.info["loss"][-1] <= r2.info["loss"][0]
    # the refined matrix still runs through the LUT kernel
    x = rng.standard_normal((2, 96)).astype(np.float32)
    np.testing.assert_allclose(Q.matmul(x, r), x @ r.dequantize().T, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


def test_bad_input():
    W = bell((4, 16), "gauss", np.float32)
    for b in (1, 7, 9, 16, 4.0, True, "4"):
        with pytest.raises(ValueError, match="bits"):
            Q.quantize(W, b, a=0.5)
    for a in (0.0, -0.5, np.nan, np.inf):
        with pytest.raises(ValueError, match="'a'"):
            Q.quantize(W, 4, a=a)
    with pytest.raises(ValueError, match="group_size"):
        Q.quantize(W, 4, a=0.5, granularity="group", group_size=5)
    with pytest.raises(ValueError, match="group_size"):
        Q.quantize(W, 4, a=0.5, granularity="group")
    with pytest.raises(ValueError, match="granularity"):
        Q.quantize(W, 4, a=0.5, granularity="row")
    with pytest.raises(ValueError, match="a_granularity"):
        Q.quantize(W, 4, granularity="channel", a_granularity="group")
    for bad in (np.nan, np.inf, -np.inf):
        W2 = W.copy()
        W2[1, 3] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            Q.quantize(W2, 4)
    for big, dt in ((1e200, np.float64), (1e20, np.float32)):  # |w|^a beyond the dtype's range
        with pytest.raises(ValueError, match="overflows"):
            Q.quantize(np.array([[big, -0.3 * big, 0.5 * big, 0.2 * big]], dt), 4, a=2.0)
    with pytest.raises(TypeError, match="'w'"):
        Q.quantize(W.astype(np.int32), 4)
    with pytest.raises(TypeError, match="'w'"):
        Q.quantize(W.astype(np.float16), 4)
    with pytest.raises(ValueError, match="'w'"):
        Q.quantize(W[0], 4)
    with pytest.raises(ValueError, match="calib"):
        Q.quantize(W, 4, objective="output")
    with pytest.raises(ValueError, match="calib"):
        Q.quantize(W, 4, objective="output", calib=np.ones((3, 5)))
    qw = Q.quantize(W, 4, a=0.5)
    with pytest.raises(ValueError, match="'x'"):
        Q.matmul(np.ones((2, 15), np.float32), qw)
    with pytest.raises(TypeError, match="'x'"):
        Q.matmul(np.ones((2, 16), np.int64), qw)
    with pytest.raises(TypeError, match="'qw'"):
        Q.matmul(np.ones((2, 16), np.float32), W)


def test_exported():
    assert kernkit.quant is Q
    assert {"quantize", "matmul", "refine", "PowerQuantized", "load"} <= set(Q.__all__)


@pytest.mark.skipif(not kernkit.cuda_available(), reason="needs a CUDA build and a GPU")
@pytest.mark.parametrize("group,batch", [(32, 3), (32, 1), (64, 1)])  # batch 1: the GEMV split over warps
@pytest.mark.parametrize("gemv_warps", ["4", "8"])  # blocks of the batch 1-4 kernel (cuda/quant.cu)
def test_cuda_matmul_matches_cpu(group, batch, gemv_warps, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("KERNKIT_QUANT_GEMV_WARPS", gemv_warps)
    W = bell((70, 128), "t3", np.float32)
    for bits in (2, 3, 4, 8):
        qw = Q.quantize(W, bits, granularity="group", group_size=group, full_range=True, a_granularity="group")
        for dt in (np.float32, np.float64):
            x = RNG.standard_normal((batch, 128)).astype(dt)
            xd = torch.from_numpy(x).cuda()
            with pytest.raises(ValueError, match="qw.to"):
                Q.matmul(xd, qw)
            y = Q.matmul(xd, qw.to(xd)).cpu().numpy()
            ref = x.astype(np.float64) @ exact_dequant(qw).T
            np.testing.assert_allclose(y, ref, rtol=1e-4 if dt == np.float32 else 1e-11,
                                       atol=1e-5 if dt == np.float32 else 1e-13)


def test_cuda_glue_passes_addresses(monkeypatch, fake_cuda):
    """The Python side of the CUDA matmul without a GPU (torch CPU tensors dressed as CUDA ones):
    a stand-in for the address binding finds the arrays by address, checks the sizes and strides
    it is given against them and computes with the CPU kernel."""
    torch = pytest.importorskip("torch")
    from kernkit import _core

    calls = []

    def fake_ptr_call(packed, row_bytes, code_bits, bits, rows, cols, group, lut, l_sr, l_sg, dscale, x,
                      batch, y, f64, stream):
        p, t, d, xx, yy = (fake_cuda[a] for a in (packed, lut, dscale, x, y))
        assert tuple(p.shape) == (rows, row_bytes) and tuple(xx.shape) == (batch, cols)
        assert tuple(yy.shape) == (batch, rows) and tuple(d.shape) == (rows, cols // group)
        assert l_sr == (0 if t.shape[0] == 1 else t.shape[1] * t.shape[2])
        assert l_sg == (0 if t.shape[1] == 1 else t.shape[2]) and t.shape[2] == 1 << bits
        assert all(a.is_contiguous() for a in (p, t, d, xx, yy))
        assert f64 == (xx.dtype == torch.float64) and all(a.dtype == xx.dtype for a in (t, d, yy))
        _core.quant_lut_matmul(p.numpy(), code_bits, bits, cols, group, t.numpy(), d.numpy(), xx.numpy(),
                               yy.numpy())
        calls.append(stream)

    monkeypatch.setattr(_core, "quant_lut_matmul_cuda_ptr", fake_ptr_call)
    W = bell((40, 96), "laplace", np.float32)
    for bits, kw in ((4, dict(granularity="group", group_size=32)), (3, dict(granularity="channel")),
                     (2, dict(granularity="group", group_size=48, a_granularity="group")),
                     (8, dict(granularity="tensor"))):
        qw = Q.quantize(W, bits, **kw)
        for dt, shape in ((np.float32, (96,)), (np.float64, (2, 3, 96)), (np.float32, (5, 96))):
            x = RNG.standard_normal(shape).astype(dt)
            tx = torch.from_numpy(x)
            with pytest.raises(ValueError, match="qw.to"):
                Q.matmul(tx, qw)
            got = Q.matmul(tx, qw.to(tx))
            assert isinstance(got, torch.Tensor) and got.shape == shape[:-1] + (40,)
            np.testing.assert_array_equal(got.numpy(), Q.matmul(x, qw))
    assert len(calls) == 12 and set(calls) == {1234}
    # (a non-contiguous x is made contiguous first)
    x = RNG.standard_normal((96, 4)).astype(np.float32)
    qd = qw.to(torch.from_numpy(x))
    np.testing.assert_array_equal(Q.matmul(torch.from_numpy(x).T, qd).numpy(), Q.matmul(x.T, qw))


def test_same_bits_for_any_thread_count():
    W = bell((256, 512), "laplace", np.float32)
    qw = Q.quantize(W, 4, a=0.6, granularity="group", group_size=64)
    x = RNG.standard_normal((3, 512)).astype(np.float32)
    old = kernkit.get_num_threads()
    try:
        out = []
        for nt in (1, 2, 3):
            kernkit.set_num_threads(nt)
            out.append((Q.matmul(x, qw), Q.matmul(x[0], qw), Q.matmul(np.tile(x, (4, 1)), qw),
                        Q.search_exponent(W, 3, "group", 64, a_granularity="group"), qw.dequantize()))
        for o in out[1:]:
            for a_, b_ in zip(out[0], o):
                assert np.array_equal(a_, b_)
    finally:
        kernkit.set_num_threads(old)



def test_torch_cpu_tensors_and_grad_refusal():
    """quant.matmul returns a torch tensor for a torch CPU x (the same values as for numpy) and
    refuses an x that requires grad (no gradients are recorded) unless grad mode is off."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(23)
    qw = Q.quantize(rng.standard_normal((32, 128)).astype(np.float32), 4, granularity="group", group_size=64)
    x = rng.standard_normal((3, 128)).astype(np.float32)
    y = Q.matmul(torch.from_numpy(x), qw)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    np.testing.assert_array_equal(y.numpy(), Q.matmul(x, qw))
    xt = torch.from_numpy(x).requires_grad_()
    with pytest.raises(TypeError, match="requires grad"):
        Q.matmul(xt, qw)
    with torch.no_grad():
        np.testing.assert_array_equal(Q.matmul(xt, qw).numpy(), Q.matmul(x, qw))
