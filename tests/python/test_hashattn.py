"""Binary-hash (EcoFormer) attention: exactness against the dense O(n^2) formula, the KSH fit
against a float64 transcription of its objective, packing, gradients, energy counts, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import kernkit
from kernkit import hashattn as ha

WORD = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def word_of(bits: int) -> type:
    return WORD[1 if bits <= 8 else 2 if bits <= 16 else 4 if bits <= 32 else 8]


def pack_ref(s: np.ndarray) -> np.ndarray:
    """Words from ±1 codes (..., bits): bit r set iff s[..., r] = +1 (written from the layout)."""
    bits = s.shape[-1]
    w = np.zeros(s.shape[:-1], dtype=np.uint64)
    for r in range(bits):
        w |= (s[..., r] > 0).astype(np.uint64) << np.uint64(r)
    return w.astype(word_of(bits))


def dense_ref(sq: np.ndarray, sk: np.ndarray, v: np.ndarray, c: float, causal: bool,
              mode: str) -> np.ndarray:
    """The O(n^2) formula in float64: weights h_i^T h_j (+ c), explicit sums."""
    sq, sk, v = sq.astype(np.float64), sk.astype(np.float64), v.astype(np.float64)
    G = np.matmul(sq, np.swapaxes(sk, -1, -2))  # h_i^T h_j
    nq, nk = G.shape[-2], G.shape[-1]
    mask = np.tril(np.ones((nq, nk))) if causal else np.ones((nq, nk))
    if mode == "consistent":
        W = (G + c) * mask
        return (W @ v) / W.sum(-1, keepdims=True)
    Wm = G * mask
    N = mask.sum(-1)[:, None]
    return (Wm @ v + c * v) / (Wm.sum(-1, keepdims=True) + N * c)


def rel_err(out: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(out.astype(np.float64) - ref)) / max(np.max(np.abs(ref)), 1e-300))


def random_codes(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.where(rng.random(shape) < 0.5, 1, -1).astype(np.int8)


# ----------------------------------------------------------------------------------------------
# exactness
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [1, 3, 8, 13, 16, 32, 33, 64])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mode", ["consistent", "ecoformer"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_dense(bits: int, causal: bool, mode: str, dtype: type) -> None:
    rng = np.random.default_rng(bits * 7 + causal * 3 + (mode == "ecoformer"))
    B, H, n, d = 2, 3, 257, 24
    sq = random_codes(rng, (B, H, n, bits))
    sk = random_codes(rng, (B, H, n, bits))
    v = (rng.standard_normal((B, H, n, d)) + 0.3).astype(dtype)
    out = kernkit.hashed_attention(pack_ref(sq), pack_ref(sk), v, bits, causal=causal, mode=mode)
    assert out.dtype == dtype and out.shape == v.shape
    ref = dense_ref(sq, sk, v, bits + 1.0, causal, mode)
    assert rel_err(out, ref) <= (1e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("d", [32, 64, 128])
@pytest.mark.parametrize("bits", [5, 16, 64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_dense_vector_widths(d: int, bits: int, dtype: type) -> None:
    """The compile-time-width loops (d = 32, 64, 128), both modes, causal and not; n spans
    several 256-row scatter blocks."""
    rng = np.random.default_rng(d + bits)
    sq = random_codes(rng, (2, 700, bits))
    sk = random_codes(rng, (2, 700, bits))
    v = (rng.standard_normal((2, 700, d)) - 0.4).astype(dtype)
    for causal in (False, True):
        for mode in ("consistent", "ecoformer"):
            out = kernkit.hashed_attention(pack_ref(sq), pack_ref(sk), v, bits, causal=causal,
                                           mode=mode)
            ref = dense_ref(sq, sk, v, bits + 1.0, causal, mode)
            assert rel_err(out, ref) <= (1e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_attention_and_offset(dtype: type) -> None:
    rng = np.random.default_rng(5)
    bits, nq, nk = 20, 37, 300
    sq = random_codes(rng, (4, nq, bits))
    sk = random_codes(rng, (4, nk, bits))
    for d, c in ((9, 21.0), (9, 100.5), (9, 3.3), (64, 21.0), (64, 3.3)):
        v = rng.standard_normal((4, nk, d)).astype(dtype)
        out = kernkit.hashed_attention(pack_ref(sq), pack_ref(sk), v, bits, offset=c)
        ref = dense_ref(sq, sk, v, c, False, "consistent")
        # c < b + 1 has weights of both signs (cancellation): a looser bound.
        tol = (1e-6 if dtype == np.float32 else 1e-13) * (1 if c > bits else 1e3)
        assert rel_err(out, ref) <= tol


def test_long_sequence_float32() -> None:
    rng = np.random.default_rng(11)
    bits, n, d = 16, 6000, 16
    sq = random_codes(rng, (1, n, bits))
    v = (rng.standard_normal((1, n, d)) * 3 + 1).astype(np.float32)
    h = pack_ref(sq)
    for causal in (False, True):
        out = kernkit.hashed_attention(h, h, v, bits, causal=causal)
        assert rel_err(out, dense_ref(sq, sq, v, bits + 1.0, causal, "consistent")) <= 1e-6


@pytest.mark.parametrize("bits", [16, 64])
def test_long_sequence_float64(bits: int) -> None:
    """Running sums over thousands of rows: the causal slice reads S_r as 2 P_r - V through
    4 A - 2 U - m V; values with a mean make those terms large against the result."""
    rng = np.random.default_rng(12 + bits)
    n, d = 4000, 16
    sq = random_codes(rng, (1, n, bits))
    sk = random_codes(rng, (1, n, bits))
    v = rng.standard_normal((1, n, d)) * 3 + 5
    for causal in (False, True):
        for mode in ("consistent", "ecoformer"):
            out = kernkit.hashed_attention(pack_ref(sq), pack_ref(sk), v, bits, causal=causal, mode=mode)
            assert rel_err(out, dense_ref(sq, sk, v, bits + 1.0, causal, mode)) <= 1e-13


def test_adversarial_values_and_codes() -> None:
    rng = np.random.default_rng(2)
    bits, n, d = 16, 50, 5
    # identical codes, all -1 and all +1 codes
    for s in (np.ones((n, bits), np.int8), -np.ones((n, bits), np.int8),
              np.tile(random_codes(rng, (1, bits)), (n, 1))):
        v = rng.standard_normal((n, d))
        out = kernkit.hashed_attention(pack_ref(s), pack_ref(s), v, bits)
        np.testing.assert_allclose(out, dense_ref(s, s, v, bits + 1.0, False, "consistent"),
                                   rtol=1e-13, atol=1e-15)
        # identical codes: every weight equal -> the mean of v
        np.testing.assert_allclose(out, np.broadcast_to(v.mean(0), v.shape), rtol=1e-12, atol=1e-15)
    s = random_codes(rng, (n, bits))
    h = pack_ref(s)
    for scale in (0.0, 1e-30, 1e30):
        v = (rng.standard_normal((n, d)) * scale).astype(np.float32)
        out = kernkit.hashed_attention(h, h, v, bits)
        ref = dense_ref(s, s, v, bits + 1.0, False, "consistent")
        if scale == 0.0:
            assert np.all(out == 0)
        else:
            assert rel_err(out, ref) <= 1e-6
    # high word bits beyond `bits` are ignored
    h12 = pack_ref(s[:, :12])
    noisy = (h12.astype(np.uint16) | np.uint16(0xF000)).astype(np.uint16)
    v = rng.standard_normal((n, d))
    np.testing.assert_array_equal(kernkit.hashed_attention(noisy, noisy, v, 12),
                                  kernkit.hashed_attention(h12, h12, v, 12))


def test_shapes_layouts_and_empty() -> None:
    rng = np.random.default_rng(3)
    bits, n, d = 8, 40, 6
    s = random_codes(rng, (n, bits))
    h = pack_ref(s)
    v = rng.standard_normal((d, n)).T  # non-contiguous
    out = kernkit.hashed_attention(h, h, v, bits)
    np.testing.assert_allclose(out, dense_ref(s, s, v, 9.0, False, "consistent"), rtol=1e-13)
    # d = 0 and n_q = 0
    assert kernkit.hashed_attention(h, h, np.zeros((n, 0)), bits).shape == (n, 0)
    assert kernkit.hashed_attention(h[:0], h, v, bits).shape == (0, d)
    # batch of zero slices
    assert kernkit.hashed_attention(np.zeros((0, n), np.uint8), np.zeros((0, n), np.uint8),
                                    np.zeros((0, n, d)), bits).shape == (0, n, d)


@pytest.mark.parametrize("d", [7, 64])
@pytest.mark.parametrize("mode", ["consistent", "ecoformer"])
def test_key_lengths_mask_padding(d: int, mode: str) -> None:
    rng = np.random.default_rng(d)
    B, H, n, bits = 3, 2, 300, 16
    sq = random_codes(rng, (B, H, n, bits))
    sk = random_codes(rng, (B, H, n, bits))
    v = rng.standard_normal((B, H, n, d)).astype(np.float32)
    lens = np.array([300, 17, 1])  # per batch element, broadcast over heads
    out = kernkit.hashed_attention(pack_ref(sq), pack_ref(sk), v, bits, mode=mode,
                                   key_lengths=lens[:, None])
    for b in range(B):
        L = lens[b]
        # the reference on the truncated keys; ecoformer's c v_i is the query's own value
        if mode == "consistent":
            ref = dense_ref(sq[b], sk[b, :, :L], v[b, :, :L], bits + 1.0, False, mode)
        else:
            G = np.matmul(sq[b].astype(np.float64), np.swapaxes(sk[b, :, :L], -1, -2).astype(np.float64))
            ref = (G @ v[b, :, :L].astype(np.float64) + 17.0 * v[b]) / (G.sum(-1, keepdims=True) + L * 17.0)
        assert rel_err(out[b], ref) <= 1e-6
    # padding keys' values do not matter (for the valid queries: ecoformer's c v_i term reads
    # the query row's own value)
    v2 = v.copy()
    v2[1, :, 17:] = 1e6
    out2 = kernkit.hashed_attention(pack_ref(sq), pack_ref(sk), v2, bits, mode=mode,
                                    key_lengths=lens[:, None])
    rows = slice(None) if mode == "consistent" else slice(0, 17)
    np.testing.assert_array_equal(out2[1, :, rows], out[1, :, rows])
    h = pack_ref(sq)
    with pytest.raises(ValueError, match="key_lengths"):
        kernkit.hashed_attention(h, h, v, bits, key_lengths=0)
    with pytest.raises(ValueError, match="key_lengths"):
        kernkit.hashed_attention(h, h, v, bits, key_lengths=301)
    with pytest.raises(ValueError, match="key_lengths"):
        kernkit.hashed_attention(h, h, v, bits, key_lengths=np.ones(4, np.int64))
    with pytest.raises(ValueError, match="causal"):
        kernkit.hashed_attention(h, h, v, bits, causal=True, key_lengths=5)
    with pytest.raises(TypeError, match="key_lengths"):
        kernkit.hashed_attention(h, h, v, bits, key_lengths=5.0)


def test_out_argument() -> None:
    rng = np.random.default_rng(9)
    s = random_codes(rng, (2, 30, 8))
    h = pack_ref(s)
    v = rng.standard_normal((2, 30, 5)).astype(np.float32)
    out = np.full((2, 30, 5), np.nan, dtype=np.float32)
    res = kernkit.hashed_attention(h, h, v, 8, out=out)
    assert res is out
    np.testing.assert_array_equal(out, kernkit.hashed_attention(h, h, v, 8))
    with pytest.raises(ValueError, match="'out'"):
        kernkit.hashed_attention(h, h, v, 8, out=np.empty((2, 30, 5)))
    with pytest.raises(ValueError, match="'out'"):
        kernkit.hashed_attention(h, h, v, 8, out=np.empty((2, 5, 30), np.float32).transpose(0, 2, 1))


def test_nan_propagates() -> None:
    rng = np.random.default_rng(4)
    bits, n, d = 16, 30, 4
    s = random_codes(rng, (2, n, bits))
    h = pack_ref(s)
    v = rng.standard_normal((2, n, d))
    v[0, 10, 1] = np.nan
    out = kernkit.hashed_attention(h, h, v, bits)
    assert np.isnan(out[0, :, 1]).all() and np.isfinite(out[0, :, [0, 2, 3]]).all()
    assert np.isfinite(out[1]).all()
    outc = kernkit.hashed_attention(h, h, v, bits, causal=True)
    assert np.isfinite(outc[0, :10]).all() and np.isnan(outc[0, 10:, 1]).all()


def test_thread_count_does_not_change_bits() -> None:
    rng = np.random.default_rng(6)
    bits, d = 16, 32
    s = random_codes(rng, (8, 500, bits))
    h = pack_ref(s)
    v = rng.standard_normal((8, 500, d)).astype(np.float32)
    old = kernkit.get_num_threads()
    try:
        kernkit.set_num_threads(1)
        a = [kernkit.hashed_attention(h, h, v, bits, causal=c) for c in (False, True)]
        kernkit.set_num_threads(2)
        b = [kernkit.hashed_attention(h, h, v, bits, causal=c) for c in (False, True)]
    finally:
        kernkit.set_num_threads(old)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_bad_input() -> None:
    rng = np.random.default_rng(7)
    n, d = 10, 3
    h16 = pack_ref(random_codes(rng, (n, 16)))
    v = rng.standard_normal((n, d))
    for bad in (0, 65, -1):
        with pytest.raises(ValueError, match="bits"):
            kernkit.hashed_attention(h16, h16, v, bad)
    with pytest.raises(TypeError, match="bits"):
        kernkit.hashed_attention(h16, h16, v, 16.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'hq'.*uint16"):
        kernkit.hashed_attention(h16.astype(np.uint32), h16, v, 16)
    with pytest.raises(ValueError, match="'hk'.*uint16"):
        kernkit.hashed_attention(h16, h16.astype(np.uint8), v, 16)
    with pytest.raises(ValueError, match="'hk'"):
        kernkit.hashed_attention(h16, h16[:5], v, 16)
    with pytest.raises(ValueError, match="n = 0"):
        kernkit.hashed_attention(h16[:0], h16[:0], v[:0], 16)
    with pytest.raises(ValueError, match="causal"):
        kernkit.hashed_attention(h16[:4], h16, v, 16, causal=True)
    with pytest.raises(ValueError, match="ecoformer"):
        kernkit.hashed_attention(h16[:4], h16, v, 16, mode="ecoformer")
    with pytest.raises(ValueError, match="mode"):
        kernkit.hashed_attention(h16, h16, v, 16, mode="softmax")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="offset"):
        kernkit.hashed_attention(h16, h16, v, 16, offset=math.inf)
    with pytest.raises(TypeError, match="'v'"):
        kernkit.hashed_attention(h16, h16, v.astype(np.int32), 16)
    with pytest.raises(ValueError, match="'v'"):
        kernkit.hashed_attention(h16, h16, v[:, 0], 16)


# ----------------------------------------------------------------------------------------------
# packing
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [1, 7, 8, 9, 16, 17, 32, 40, 64])
def test_pack_unpack_roundtrip(bits: int) -> None:
    rng = np.random.default_rng(bits)
    z = rng.standard_normal((3, 5, bits))
    z[0, 0, 0] = 0.0  # sign(0) = +1
    w = ha.pack(z)
    assert w.dtype == word_of(bits) and w.shape == (3, 5)
    s = np.where(z >= 0, 1, -1).astype(np.int8)
    np.testing.assert_array_equal(w, pack_ref(s))
    u = ha.unpack(w, bits)
    assert u.dtype == np.int8 and u.shape == (3, 5, bits)
    np.testing.assert_array_equal(u, s)
    assert u[0, 0, 0] == 1


def test_pack_errors() -> None:
    with pytest.raises(ValueError, match="NaN"):
        ha.pack(np.array([[0.5, np.nan]]))
    with pytest.raises(ValueError, match="bits"):
        ha.pack(np.zeros((2, 65)))
    with pytest.raises(ValueError, match="uint8"):
        ha.unpack(np.zeros(3, np.uint16), 8)
    with pytest.raises(ValueError, match="bits"):
        ha.unpack(np.zeros(3, np.uint8), 0)
    assert ha.word_dtype(33) is np.uint64


# ----------------------------------------------------------------------------------------------
# KernelHash against a float64 transcription of the KSH objective
# ----------------------------------------------------------------------------------------------

def ksh_transcription(x: np.ndarray, kh: kernkit.KernelHash) -> tuple[np.ndarray, np.ndarray]:
    """Greedy KSH (shared q/k) written from the math, loop by loop, on the fitted anchors and
    the recorded initial A: returns (A, per-head binarised bit losses)."""
    B, H, N, d = x.shape
    b, m = kh.bits, kh.anchors
    xn = x / np.linalg.norm(x, axis=-1, keepdims=True)
    anchors = kh.anchors_
    # features: k_t(x) = exp(-||x - a_t||^2 / (2 sigma)), sigma = mean squared distance (per head)
    Kr = np.empty((B, H, N, m))
    for h in range(H):
        D = ((xn[:, h, :, None, :] - anchors[h][None, None]) ** 2).sum(-1)  # (B, N, m)
        sigma = D.mean()
        Kr[:, h] = np.exp(-D / (2 * sigma))
    mvec = Kr.mean(axis=(0, 2))
    Kb = Kr - mvec[None, :, None, :]
    # targets: +1 for the topk most cosine-similar, -1 for the topk least similar
    S = np.zeros((B, H, N, N))
    for bb in range(B):
        for h in range(H):
            cos = xn[bb, h] @ xn[bb, h].T
            for i in range(N):
                order = np.argsort(-cos[i], kind="stable")
                S[bb, h, i, order[:kh.topk]] = 1
                S[bb, h, i, order[N - kh.topk:]] = -1
    R = b * S
    A = kh.A_init_.copy()
    losses = np.zeros((H, b))
    phi = lambda z: 2.0 / (1.0 + np.exp(-z)) - 1.0  # noqa: E731

    def relaxed_loss(a: np.ndarray) -> float:  # a (H, m); mean over batch and heads
        tot = 0.0
        for bb in range(B):
            for h in range(H):
                y = phi(Kb[bb, h] @ a[h])
                tot += -(y @ R[bb, h] @ y) / (N * b)
        return tot / (B * H)

    def grad(a: np.ndarray) -> np.ndarray:
        g = np.zeros_like(a)
        for bb in range(B):
            for h in range(H):
                z = Kb[bb, h] @ a[h]
                y = phi(z)
                dphi = 2.0 * np.exp(-z) / (1.0 + np.exp(-z)) ** 2
                g[h] += -(Kb[bb, h].T @ (dphi * ((R[bb, h] + R[bb, h].T) @ y))) / (N * b * B * H)
        return g

    for r in range(b):
        a0 = A[:, r, :].copy()
        if r == 0:  # the hand-derived gradient against central differences
            eps = 1e-6
            e = np.zeros_like(a0)
            e[0, 3] = eps
            fd = (relaxed_loss(a0 + e) - relaxed_loss(a0 - e)) / (2 * eps)
            assert abs(fd - grad(a0)[0, 3]) <= 1e-6 * max(1.0, abs(fd))
        a, buf = a0.copy(), np.zeros_like(a0)
        for it in range(kh.iterations):  # SGD, Nesterov momentum (PyTorch's update rule)
            g = grad(a)
            buf = g if it == 0 else kh.momentum * buf + g
            a = a - kh.lr * (g + kh.momentum * buf)
        for h in range(H):
            def bin_loss(col: np.ndarray) -> float:
                tot = 0.0
                for bb in range(B):
                    y = np.where(Kb[bb, h] @ col > 0, 1.0, -1.0)
                    tot += -(y @ R[bb, h] @ y) / (N * b)
                return tot / B
            l0, l1 = bin_loss(a0[h]), bin_loss(a[h])
            keep = a[h] if l1 < l0 else a0[h]
            A[h, r] = keep
            losses[h, r] = min(l0, l1) if l1 < l0 else l0
            for bb in range(B):
                y = np.where(Kb[bb, h] @ keep > 0, 1.0, -1.0)
                R[bb, h] -= np.outer(y, y)
    return A, losses


def test_kernel_hash_matches_transcription() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 40, 6))
    kh = kernkit.KernelHash(bits=6, anchors=7, topk=4, seed=3, iterations=12, lr=0.5)
    kh.fit(x)
    A, losses = ksh_transcription(x, kh)
    np.testing.assert_allclose(kh.A_, A, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(kh.bit_loss_, losses, rtol=1e-9, atol=1e-12)
    assert kh.accepted_.any()  # lr 0.5: the optimiser moves enough to win sometimes


def test_kernel_hash_objective_identity() -> None:
    """||b S - H H^T||_F^2 of the encoded training codes = ||b S||^2 + sum_r (2 N b B L_r + B N^2)
    (the greedy deflation), with L_r the recorded bit losses."""
    rng = np.random.default_rng(1)
    B, H, N, d = 2, 3, 48, 8
    x = rng.standard_normal((B, H, N, d))
    kh = kernkit.KernelHash(bits=10, anchors=9, topk=5, seed=0, iterations=30, lr=0.2).fit(x)
    Hc = ha.unpack(kh.encode(x), 10).astype(np.float64)  # (B, H, N, b)
    xn = x / np.linalg.norm(x, axis=-1, keepdims=True)
    for h in range(H):
        lhs = rhs = 0.0
        for bb in range(B):
            cos = xn[bb, h] @ xn[bb, h].T
            S = np.zeros((N, N))
            for i in range(N):
                o = np.argsort(-cos[i], kind="stable")
                S[i, o[:5]], S[i, o[N - 5:]] = 1, -1
            lhs += np.sum((10 * S - Hc[bb, h] @ Hc[bb, h].T) ** 2)
            rhs += np.sum((10 * S) ** 2)
        rhs += np.sum(2 * N * 10 * B * kh.bit_loss_[h] + B * N * N)
        assert lhs == pytest.approx(rhs, rel=1e-12)


def test_kernel_hash_determinism_state_and_roles(tmp_path: object) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 60, 8))
    a = kernkit.KernelHash(bits=16, seed=5, iterations=10).fit(x)
    b = kernkit.KernelHash(bits=16, seed=5, iterations=10).fit(x)
    c = kernkit.KernelHash(bits=16, seed=6, iterations=10).fit(x)
    np.testing.assert_array_equal(a.A_, b.A_)
    np.testing.assert_array_equal(a.encode(x), b.encode(x))
    assert not np.array_equal(a.A_, c.A_)
    # state round trips
    d2 = kernkit.KernelHash.from_dict(a.to_dict())
    np.testing.assert_array_equal(d2.encode(x), a.encode(x))
    path = f"{tmp_path}/kh.npz"
    a.save(path)
    e = ha.load(path)
    np.testing.assert_array_equal(e.encode(x), a.encode(x))
    assert e.bits == 16 and e.sigma == "fixed" and e.shared
    a.save(f"{tmp_path}/bare")  # numpy adds .npz; load takes the path as given to save
    np.testing.assert_array_equal(ha.load(f"{tmp_path}/bare").encode(x), a.encode(x))
    # encoding other tokens (frozen sigma) and the batch-sigma option
    y = rng.standard_normal((3, 2, 17, 8))
    assert a.encode(y).shape == (3, 2, 17) and a.encode(y).dtype == np.uint16
    f = kernkit.KernelHash(bits=16, seed=5, iterations=10, sigma="batch").fit(x)
    assert f.encode(y).shape == (3, 2, 17)
    # separate q/k hashes
    q, k = x, x * 0.5 + 0.3 * rng.standard_normal(x.shape)
    s = kernkit.KernelHash(bits=12, seed=1, iterations=10).fit(q, k)
    assert not s.shared and s.A_key_ is not None
    hq, hk = s.encode(q, role="query"), s.encode(k, role="key")
    assert hq.dtype == np.uint16 and hk.shape == hq.shape
    s2 = ha.KernelHash.from_dict(s.to_dict())
    np.testing.assert_array_equal(s2.encode(k, role="key"), hk)
    # a 2-D input is one head
    kh2 = kernkit.KernelHash(bits=8, anchors=5, topk=3, iterations=5).fit(x[0, 0])
    assert kh2.encode(x[0, 0]).shape == (60,)


def test_kernel_hash_bad_input() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 30, 4))
    for bits in (0, 65):
        with pytest.raises(ValueError, match="bits"):
            kernkit.KernelHash(bits=bits)
    with pytest.raises(ValueError, match="anchors"):
        kernkit.KernelHash(anchors=31).fit(x)
    with pytest.raises(ValueError, match="topk"):
        kernkit.KernelHash(anchors=5, topk=16).fit(x)
    with pytest.raises(ValueError, match="n = 0"):
        kernkit.KernelHash().fit(x[:, :, :0])
    xn = x.copy()
    xn[0, 1, 3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        kernkit.KernelHash(anchors=5).fit(xn)
    kh = kernkit.KernelHash(anchors=5, iterations=2)
    with pytest.raises(RuntimeError, match="fit"):
        kh.encode(x)
    kh.fit(x)
    with pytest.raises(ValueError, match="NaN"):
        kh.encode(xn)
    with pytest.raises(ValueError, match="heads"):
        kh.encode(rng.standard_normal((1, 3, 30, 4)))
    with pytest.raises(ValueError, match="sigma"):
        kernkit.KernelHash(sigma="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'k'"):
        kernkit.KernelHash(anchors=5).fit(x, x[:, :, :10])


def test_fit_then_attention_end_to_end() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 64, 8))
    v = rng.standard_normal((2, 2, 64, 16)).astype(np.float32)
    kh = kernkit.KernelHash(bits=16, iterations=5).fit(x)
    h = kh.encode(x)
    s = ha.unpack(h, 16)
    for mode in ("consistent", "ecoformer"):
        out = kernkit.hashed_attention(h, h, v, 16, mode=mode)
        assert rel_err(out, dense_ref(s, s, v, 17.0, False, mode)) <= 1e-6


# ----------------------------------------------------------------------------------------------
# energy model
# ----------------------------------------------------------------------------------------------

def test_energy_model() -> None:
    # PVTv2-B0 stage 1: 56x56 tokens, dim 32, 1 head (get_energy.py msa_flops)
    n, dim, H = 56 * 56, 32, 1
    e = ha.energy_model("softmax", n, dim, H)
    assert e["muls"] == 2 * n * n * dim + H * n * n and e["adds"] == 2 * n * n * dim
    assert e["energy_pj"] == pytest.approx(3.7 * e["muls"] + 0.9 * e["adds"])
    h = ha.energy_model("hashed", n, dim, H, bits=16, anchors=25)
    C, b, m = dim // H, 16, 25
    assert h["adds"] == 2 * H * n * m * C + H * n * m * b + 2 * H * n * b + 2 * H * n * b * C + H * n * C
    assert h["muls"] == 2 * H * n * m + H * n * m * b + H * n * b + H * n + H * n * C
    h2 = ha.energy_model("hashed", 2 * n, dim, H)
    assert h2["energy_pj"] == pytest.approx(2 * h["energy_pj"])  # linear in n
    lin = ha.energy_model("linear", n, dim, H)
    assert lin["muls"] == lin["adds"] > 0
    assert h["energy_pj"] < lin["energy_pj"] < e["energy_pj"]
    with pytest.raises(ValueError, match="kind"):
        ha.energy_model("flash", n, dim, H)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="divisible"):
        ha.energy_model("hashed", n, 30, 4)


# ----------------------------------------------------------------------------------------------
# PyTorch: the trainable layer
# ----------------------------------------------------------------------------------------------

def _ste_sign(torch: object, z: object) -> object:
    """sign with the reference's straight-through gradient (1 where |z| < 1), from the math."""
    zc = z.clamp(-1, 1)  # type: ignore[attr-defined]
    s = torch.where(z >= 0, 1.0, -1.0).to(z.dtype)  # type: ignore[attr-defined]
    return zc + (s - zc).detach()


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mode", ["consistent", "ecoformer"])
def test_torch_gradients_against_dense(causal: bool, mode: str) -> None:
    torch = pytest.importorskip("torch")
    from kernkit.torch import hashed_attention

    g = torch.Generator().manual_seed(0)
    B, H, n, b, d = 2, 2, 33, 12, 5
    zq = (torch.randn(B, H, n, b, generator=g, dtype=torch.float64) * 1.5).requires_grad_()
    zk = (torch.randn(B, H, n, b, generator=g, dtype=torch.float64) * 1.5).requires_grad_()
    v = torch.randn(B, H, n, d, generator=g, dtype=torch.float64).requires_grad_()
    w = torch.randn(B, H, n, d, generator=g, dtype=torch.float64)
    out = hashed_attention(zq, zk, v, causal=causal, mode=mode)
    grads = torch.autograd.grad((out * w).sum(), (zq, zk, v))
    sq, sk = _ste_sign(torch, zq), _ste_sign(torch, zk)
    G = sq @ sk.transpose(-1, -2)
    c = b + 1.0
    mask = torch.tril(torch.ones(n, n, dtype=torch.float64)) if causal else torch.ones(n, n, dtype=torch.float64)
    if mode == "consistent":
        W = (G + c) * mask
        ref = (W @ v) / W.sum(-1, keepdim=True)
    else:
        W = G * mask
        ref = (W @ v + c * v) / (W.sum(-1, keepdim=True) + mask.sum(-1)[:, None] * c)
    torch.testing.assert_close(out, ref.detach(), rtol=1e-12, atol=1e-13)
    rgrads = torch.autograd.grad((ref * w).sum(), (zq, zk, v))
    for a, r in zip(grads, rgrads):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["consistent", "ecoformer"])
def test_torch_key_lengths_gradients(mode: str) -> None:
    torch = pytest.importorskip("torch")
    from kernkit.torch import hashed_attention

    g = torch.Generator().manual_seed(3)
    B, H, n, b, d = 3, 2, 25, 8, 4
    zq = (torch.randn(B, H, n, b, generator=g, dtype=torch.float64) * 1.5).requires_grad_()
    zk = (torch.randn(B, H, n, b, generator=g, dtype=torch.float64) * 1.5).requires_grad_()
    v = torch.randn(B, H, n, d, generator=g, dtype=torch.float64).requires_grad_()
    w = torch.randn(B, H, n, d, generator=g, dtype=torch.float64)
    lens = np.array([[25], [9], [1]])
    out = hashed_attention(zq, zk, v, mode=mode, key_lengths=lens)
    grads = torch.autograd.grad((out * w).sum(), (zq, zk, v))
    sq, sk = _ste_sign(torch, zq), _ste_sign(torch, zk)
    mask = (torch.arange(n)[None, None, None, :] < torch.from_numpy(lens)[:, :, None, None]).double()
    G = sq @ sk.transpose(-1, -2)
    c = b + 1.0
    if mode == "consistent":
        W = (G + c) * mask
        ref = (W @ v) / W.sum(-1, keepdim=True)
    else:
        W = G * mask
        ref = (W @ v + c * v) / (W.sum(-1, keepdim=True) + mask.sum(-1, keepdim=True) * c)
    torch.testing.assert_close(out, ref.detach(), rtol=1e-12, atol=1e-13)
    for a, r in zip(grads, torch.autograd.grad((ref * w).sum(), (zq, zk, v))):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)


def test_torch_shared_hash_and_projection() -> None:
    torch = pytest.importorskip("torch")
    from kernkit.torch import hashed_attention, kernel_hash_project, pack_codes

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 40, 8))
    kh = kernkit.KernelHash(bits=16, iterations=5).fit(x)
    xt = torch.tensor(x, requires_grad=True)
    z = kernel_hash_project(kh, xt)
    np.testing.assert_allclose(z.detach().numpy(), kh.project(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(pack_codes(z.detach()).numpy().view(np.uint16), kh.encode(x))
    v = torch.randn(2, 2, 40, 4, dtype=torch.float64)
    out = hashed_attention(z, z, v)
    out.sum().backward()
    assert xt.grad is not None and torch.isfinite(xt.grad).all()
    # float32 forward through the kernel, the codes shared
    out32 = hashed_attention(z.detach().float(), z.detach().float(), v.float())
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out.detach(), rtol=1e-5, atol=1e-6)
    for bits in (8, 16, 32, 64):
        zz = torch.randn(3, 7, bits, dtype=torch.float64)
        np.testing.assert_array_equal(pack_codes(zz).numpy().view(ha.word_dtype(bits)),
                                      ha.pack(zz.numpy()))


# ----------------------------------------------------------------------------------------------
# CUDA (skipped without a GPU)
# ----------------------------------------------------------------------------------------------

cuda = pytest.mark.skipif(not kernkit.cuda_available(), reason="no CUDA device")


@cuda
@pytest.mark.parametrize("bits", [8, 16, 33, 64])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mode", ["consistent", "ecoformer"])
def test_cuda_matches_dense(bits: int, causal: bool, mode: str) -> None:
    torch = pytest.importorskip("torch")
    from kernkit.torch import pack_codes

    rng = np.random.default_rng(bits)
    B, H, n, d = 2, 3, 1000, 72  # d spans a partial column tile; n a partial chunk
    sq = random_codes(rng, (B, H, n, bits))
    sk = random_codes(rng, (B, H, n, bits))
    v = rng.standard_normal((B, H, n, d)) + 0.2
    ref = dense_ref(sq, sk, v, bits + 1.0, causal, mode)
    hq = pack_codes(torch.tensor(sq, dtype=torch.float32)).cuda()
    hk = pack_codes(torch.tensor(sk, dtype=torch.float32)).cuda()
    for dt, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5), (torch.float16, 4e-3),
                    (torch.bfloat16, 3e-2)):
        vt = torch.tensor(v).to(device="cuda", dtype=dt)
        out = kernkit.hashed_attention(hq, hk, vt, bits, causal=causal, mode=mode)
        assert out.dtype == dt and out.device.type == "cuda"
        assert rel_err(out.double().cpu().numpy(), ref) <= tol



@cuda
def test_cuda_key_lengths() -> None:
    torch = pytest.importorskip("torch")
    from kernkit.torch import pack_codes

    rng = np.random.default_rng(2)
    sq = random_codes(rng, (3, 2, 900, 16))
    v = rng.standard_normal((3, 2, 900, 64)).astype(np.float32)
    lens = np.array([[900, 5], [300, 899], [1, 2]])
    h = pack_ref(sq)
    ref = kernkit.hashed_attention(h, h, v, 16, key_lengths=lens)
    hc = pack_codes(torch.tensor(sq, dtype=torch.float32)).cuda()
    vc = torch.from_numpy(v).cuda()
    for kl in (lens, torch.from_numpy(lens).cuda()):
        out = kernkit.hashed_attention(hc, hc, vc, 16, key_lengths=kl)
        assert rel_err(out.cpu().numpy(), ref.astype(np.float64)) <= 1e-5


@cuda
def test_cuda_torch_layer_matches_cpu() -> None:
    torch = pytest.importorskip("torch")
    from kernkit.torch import hashed_attention

    g = torch.Generator().manual_seed(1)
    zq = torch.randn(2, 3, 300, 16, generator=g, dtype=torch.float64)
    zk = torch.randn(2, 3, 300, 16, generator=g, dtype=torch.float64)
    v = torch.randn(2, 3, 300, 8, generator=g, dtype=torch.float64)
    w = torch.randn(2, 3, 300, 8, generator=g, dtype=torch.float64)
    res = []
    for dev in ("cpu", "cuda"):
        a, b, c = (t.to(dev).requires_grad_() for t in (zq, zk, v))
        out = hashed_attention(a, b, c, causal=True)
        grads = torch.autograd.grad((out * w.to(dev)).sum(), (a, b, c))
        res.append([out.detach().cpu(), *(x.cpu() for x in grads)])
    for x, y in zip(*res):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


@cuda
def test_cuda_mixed_devices_refused_and_stream() -> None:
    torch = pytest.importorskip("torch")
    from kernkit.torch import pack_codes

    z = torch.randn(2, 500, 16, dtype=torch.float64)
    h = pack_codes(z)
    v = torch.randn(2, 500, 64, dtype=torch.float32)
    with pytest.raises(ValueError, match="never copies between devices"):
        kernkit.hashed_attention(h, h, v.cuda(), 16)
    ref = kernkit.hashed_attention(h.numpy().view(np.uint16), h.numpy().view(np.uint16), v.numpy(), 16)
    s = torch.cuda.Stream()
    hc, vc = h.cuda(), v.cuda()
    torch.cuda.synchronize()
    with torch.cuda.stream(s):
        out = kernkit.hashed_attention(hc, hc, vc, 16)
    s.synchronize()
    assert rel_err(out.cpu().numpy(), ref.astype(np.float64)) <= 1e-5


@cuda
def test_cuda_address_and_dlpack_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch arrays go to the kernels as addresses; the nb::ndarray (DLPack) path that other
    libraries take must give the same bits."""
    torch = pytest.importorskip("torch")
    from kernkit.torch import pack_codes

    g = torch.Generator().manual_seed(3)
    h = pack_codes(torch.randn(2, 2, 700, 16, generator=g)).cuda()
    v = torch.randn(2, 2, 700, 72, generator=g).cuda().half()
    lens = np.array([[700, 3], [50, 699]])
    cases = [dict(), dict(causal=True, mode="ecoformer"), dict(key_lengths=lens),
             dict(key_lengths=torch.from_numpy(lens).cuda(), mode="ecoformer")]
    fast = [kernkit.hashed_attention(h, h, v, 16, **kw) for kw in cases]
    monkeypatch.setattr(kernkit._dispatch, "device_pointer", lambda a: None)
    slow = [kernkit.hashed_attention(h, h, v, 16, **kw) for kw in cases]
    for a, b in zip(fast, slow):
        assert torch.equal(a, b)


@cuda
def test_cuda_many_rows_per_warp() -> None:
    """n large enough that a warp of the scatter and output kernels walks two 32-row code
    batches (chunks of more than 256 rows): against the CPU library."""
    torch = pytest.importorskip("torch")

    rng = np.random.default_rng(5)
    n = 270_000
    h = rng.integers(0, 1 << 16, size=(1, n), dtype=np.uint16)
    v = rng.standard_normal((1, n, 64)).astype(np.float32)
    hc = torch.from_numpy(h.view(np.int16)).cuda()
    for mode in ("consistent", "ecoformer"):
        ref = kernkit.hashed_attention(h, h, v.astype(np.float64), 16, mode=mode)
        out = kernkit.hashed_attention(hc, hc, torch.from_numpy(v).cuda(), 16, mode=mode)
        assert rel_err(out.cpu().numpy(), ref) <= 1e-5


def test_cuda_glue_passes_addresses(monkeypatch: pytest.MonkeyPatch, fake_cuda: dict) -> None:
    """The Python side of the CUDA call, without a GPU: torch CPU tensors dressed as CUDA ones,
    and a stand-in for the address binding that finds the arrays by address, checks every
    size and code it is given and computes with the CPU library."""
    torch = pytest.importorskip("torch")
    from kernkit import _core
    from kernkit import hashattn as ha

    seen = fake_cuda
    calls = []

    def fake_ptr_call(hq, hk, v, out, ws, ws_bytes, word_bytes, bits, dtype, bh, nq, nk, d,
                      offset, causal, mode, stream, key_lengths):
        q, k, vv, o, w = (seen[p] for p in (hq, hk, v, out, ws))
        assert tuple(q.shape) == (bh, nq) and tuple(k.shape) == (bh, nk)
        assert tuple(vv.shape) == (bh, nk, d) and tuple(o.shape) == (bh, nq, d)
        assert all(t.is_contiguous() for t in (q, k, vv, o, w))
        assert w.numel() == ws_bytes == fake_ws(bits, bh, nq, nk, d, causal, dtype)
        assert word_bytes == q.element_size() and kernkit._dispatch.CUDA_DTYPE_CODES[str(vv.dtype)[6:]] == dtype
        lens = None if key_lengths == 0 else seen[key_lengths].numpy()
        if lens is not None:
            assert lens.dtype == np.int64 and lens.shape == (bh,)
        _core.hashattn_attention(q.numpy(), k.numpy(), vv.numpy(), o.numpy(), bits, offset, causal,
                                 mode, lens)
        calls.append((bits, offset, causal, mode, stream))

    def fake_ws(bits, bh, nq, nk, d, causal, dtype):
        return 1000 + bits + bh + nq + nk + d + int(causal) + dtype

    monkeypatch.setattr(_core, "hashattn_workspace_cuda", fake_ws)
    monkeypatch.setattr(_core, "hashattn_attention_cuda_ptr", fake_ptr_call)
    monkeypatch.setattr(ha, "_lengths_to_device", lambda lens, v, xp: torch.from_numpy(lens.copy()))

    rng = np.random.default_rng(9)
    sq = random_codes(rng, (2, 3, 50, 12))
    sk = random_codes(rng, (2, 3, 50, 12))
    v = rng.standard_normal((2, 3, 50, 5)).astype(np.float32)
    hq, hk = pack_ref(sq), pack_ref(sk)
    lens = np.array([[50, 1, 7], [20, 49, 50]])
    tq, tk = torch.from_numpy(hq.view(np.int16)), torch.from_numpy(hk.view(np.int16))
    tv = torch.from_numpy(v)
    for kw in (dict(), dict(causal=True), dict(mode="ecoformer", offset=3.5),
               dict(key_lengths=lens), dict(key_lengths=torch.from_numpy(lens), mode="ecoformer")):
        want = kernkit.hashed_attention(hq, hk, v, 12, **{k: (np.asarray(x) if k == "key_lengths" else x)
                                                         for k, x in kw.items()})
        got = kernkit.hashed_attention(tq, tk, tv, 12, **kw)
        assert isinstance(got, torch.Tensor) and got.shape == (2, 3, 50, 5)
        np.testing.assert_array_equal(got.numpy(), want)
        assert calls[-1][4] == 1234
    assert [c[2:4] for c in calls] == [(False, 0), (True, 0), (False, 1), (False, 0), (False, 1)]
    assert calls[2][1] == 3.5
    # cross attention: 30 queries, 50 keys
    want = kernkit.hashed_attention(hq[:, :, :30], hk, v, 12, key_lengths=lens)
    got = kernkit.hashed_attention(tq[:, :, :30], tk, tv, 12, key_lengths=lens)
    np.testing.assert_array_equal(got.numpy(), want)


def test_torch_module() -> None:
    torch = pytest.importorskip("torch")
    from kernkit.torch import HashedAttention, hashed_attention, kernel_hash_project

    rng = np.random.default_rng(3)
    q = rng.standard_normal((2, 2, 40, 8))
    k = q + 0.3 * rng.standard_normal(q.shape)
    kh = kernkit.KernelHash(bits=16, iterations=5).fit(q, k)
    mod = HashedAttention(kh, causal=True).double()
    qt, kt = torch.tensor(q, requires_grad=True), torch.tensor(k, requires_grad=True)
    v = torch.randn(2, 2, 40, 4, dtype=torch.float64, requires_grad=True)
    out = mod(qt, kt, v)
    ref = hashed_attention(kernel_hash_project(kh, qt), kernel_hash_project(kh, kt, "key"), v, causal=True)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(
        (mod.codes(torch.tensor(k), "key") >= 0).numpy(), ha.unpack(kh.encode(k, role="key"), 16) > 0)
    out.sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in (qt, kt, v))
    mod2 = HashedAttention(kh, causal=True).double()
    mod2.load_state_dict(mod.state_dict())
    torch.testing.assert_close(mod2(qt, kt, v), out)
    assert "bits=16" in repr(mod)


def test_fit_progress_and_logging(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 1, 30, 4))
    with caplog.at_level("INFO", logger="kernkit.hashattn"):
        kh = kernkit.KernelHash(bits=3, anchors=5, topk=3, iterations=2).fit(x, progress=True)
    assert kh.fitted and sum("KSH bit" in r.getMessage() for r in caplog.records) == 3


def test_tensors_that_require_grad_are_refused():
    """hashed_attention on packed codes records no gradients: a v that requires grad is a
    TypeError naming the trainable forms, not a silently detached result (fine under no_grad)."""
    torch = pytest.importorskip("torch")
    hq = torch.randint(0, 255, (1, 2, 16), dtype=torch.uint8)
    v = torch.randn(1, 2, 16, 8, requires_grad=True)
    with pytest.raises(TypeError, match="requires grad.*kernkit.torch.hashed_attention"):
        kernkit.hashed_attention(hq, hq, v, bits=8)
    with torch.no_grad():
        out = kernkit.hashed_attention(hq, hq, v, bits=8)
    np.testing.assert_allclose(out.numpy(), kernkit.hashed_attention(hq.numpy(), hq.numpy(), v.detach().numpy(), bits=8))
