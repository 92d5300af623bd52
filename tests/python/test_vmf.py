"""Tests for kernkit.vmf: von Mises-Fisher distributions and mixtures in any dimension.

References are computed with python-flint (Arb, rigorous error balls) where a special
function is involved; these tests skip without it (``pip install python-flint``). The Dask
tests skip without dask (``pip install "dask[array]"``).
"""

from __future__ import annotations

import logging
import math
import os
from fractions import Fraction

import numpy as np
import pytest

vmf = pytest.importorskip("kernkit.vmf")

P_ACCURACY = [3, 384, 2048, 32768, 100000]


# ---------------------------------------------------------------------------------------------
# high-precision references (Arb)
# ---------------------------------------------------------------------------------------------

PREC = 192


@pytest.fixture(scope="module")
def arb():
    flint = pytest.importorskip("flint")
    flint.ctx.prec = PREC
    return flint.arb


def _arb_of(arb, x):
    fr = x if isinstance(x, Fraction) else Fraction(float(x))
    return arb(fr.numerator) / arb(fr.denominator)


def _ref_log_iv(arb, nu, x):
    a = _arb_of(arb, x)
    return a.bessel_i(_arb_of(arb, nu), scaled=True).log() + a


def _ref_log_c(arb, p, kappa):
    """log C_p(kappa) in Arb."""
    if kappa == 0:
        return (arb(p) / 2).lgamma() - arb(2).log() - arb(p) / 2 * arb.pi().log()
    nu = Fraction(p, 2) - 1
    k = _arb_of(arb, kappa)
    return _arb_of(arb, nu) * k.log() - arb(p) / 2 * (2 * arb.pi()).log() - _ref_log_iv(arb, nu, kappa)


def _ref_A(arb, p, k):
    nu = arb(p) / 2 - 1
    return k.bessel_i(nu + 1, scaled=True) / k.bessel_i(nu, scaled=True)


def _assert_root_within(arb, p, R, kappa, rtol):
    """Assert (rigorously, with Arb's error balls) that the root of A_p(k) = R lies within
    kappa * (1 -+ rtol): A_p is increasing, so A_p - R must change sign across that interval."""
    k = _arb_of(arb, kappa)
    lo = _ref_A(arb, p, k * (1 - arb(rtol))) - R
    hi = _ref_A(arb, p, k * (1 + arb(rtol))) - R
    assert lo < 0 and hi > 0, (p, kappa, rtol, lo, hi)


def _rel(a, b):
    return abs(a - b) / abs(b)


# ---------------------------------------------------------------------------------------------
# log C_p, A_p, kappa_mle
# ---------------------------------------------------------------------------------------------

LOGC_P = [2, 3, 4, 5, 10, 384, 2048, 32768, 100000]
LOGC_K = [0.0, 1e-300, 1e-10, 1e-3, 0.1, 1.0, 1.9, 2.1, 10.0, 30.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e8]


@pytest.mark.parametrize("p", LOGC_P)
def test_log_normalizer_matches_arb(arb, p):
    got = vmf.log_normalizer(p, np.array(LOGC_K))
    assert got.shape == (len(LOGC_K),)
    for k, g in zip(LOGC_K, got):
        ref = float(_ref_log_c(arb, p, k).mid())
        assert _rel(g, ref) < 1e-13, (p, k, g, ref)


def test_log_normalizer_uniform_limit_and_shapes():
    for p in (2, 3, 7, 1000, 100000):
        c0 = math.lgamma(p / 2) - math.log(2) - p / 2 * math.log(math.pi)
        assert vmf.log_normalizer(p, 0.0) == pytest.approx(c0, rel=1e-15)
        # continuous and decreasing as kappa -> 0
        ks = np.array([0.0, 1e-200, 1e-20, 1e-8, 1e-4, 1e-2])
        v = vmf.log_normalizer(p, ks)
        assert np.all(np.diff(v) <= 0) and v[1] == v[0]
    assert isinstance(vmf.log_normalizer(3, 1.0), float)
    assert vmf.log_normalizer(5, np.ones((2, 3))).shape == (2, 3)
    out = vmf.log_normalizer(5, [-1.0, np.nan, np.inf])
    assert np.isnan(out[0]) and np.isnan(out[1]) and out[2] == -np.inf
    # p = 3 in closed form: C_3 = kappa / (4 pi sinh kappa)
    for k in (1e-5, 0.5, 3.0, 50.0, 1e8):
        ref = math.log(k) - math.log(4 * math.pi) - (k + math.log1p(-math.exp(-2 * k)) - math.log(2))
        assert vmf.log_normalizer(3, k) == pytest.approx(ref, rel=1e-14)
    with pytest.raises(ValueError, match="p must be >= 2"):
        vmf.log_normalizer(1, 1.0)
    with pytest.raises(TypeError):
        vmf.log_normalizer(2.5, 1.0)


KAPPAS = [1e-10, 1e-3, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e8]


@pytest.mark.parametrize("p", [2, 3, 10] + P_ACCURACY[1:])
def test_kappa_mle_matches_arb(arb, p):
    """kappa_mle solves A_p(kappa) = rbar to ~1e-15 for kappa over 18 decades."""
    for kappa in KAPPAS:
        a = _ref_A(arb, p, _arb_of(arb, kappa))
        rbar, delta = float(a.mid()), float((1 - a).mid())
        # mean_resultant_length, and 1 - A to full relative precision
        A, u, _ = vmf._A_u_dA(p, np.array([kappa]))
        assert _rel(A[0], rbar) < 1e-15 and _rel(u[0], delta) < 2e-14, (p, kappa)
        got = vmf.kappa_mle(p, rbar, delta)
        R = _arb_of(arb, rbar) if rbar <= 0.5 else 1 - _arb_of(arb, delta)
        _assert_root_within(arb, p, R, got, 1e-14)


def test_kappa_mle_newton_stops_at_the_rounding_noise():
    """Newton ends within a few evaluations of A_p everywhere: it used to cycle between two
    neighbours of the root until its 100-step cap (p = 3 at kappa ~ 20 and ~ 1e5, p = 384 at
    kappa ~ 0.05 and ~ 6300, ...) where f's rounding noise exceeded the fixed 1e-15 step test."""
    for p in (2, 3, 10, 384, 32768):
        kappas = np.logspace(-3, 10, 131)
        A, u, _ = vmf._A_u_dA(p, kappas)
        evals = np.zeros(kappas.size, dtype=np.int32)
        got = vmf._newton_kappa(p, A, u, evals)
        assert evals.min() >= 1 and evals.max() <= 8, (p, kappas[evals.argmax()], evals.max())
        np.testing.assert_allclose(got, kappas, rtol=1e-13, atol=0)
        assert np.array_equal(got, vmf.kappa_mle(p, A, u))  # the public call takes this path


def test_kappa_mle_edges():
    assert vmf.kappa_mle(5, 0.0) == 0.0
    assert vmf.kappa_mle(5, 1.0) == np.inf
    assert vmf.kappa_mle(5, 0.3, 0.0) == np.inf
    assert vmf.kappa_mle(100, 1e-12) == pytest.approx(1e-10, rel=1e-15)
    out = vmf.kappa_mle(3, [-0.1, 1.1, np.nan])
    assert np.all(np.isnan(out))
    r = np.linspace(0.01, 0.99, 7).reshape(7, 1)
    k = vmf.kappa_mle(50, r)
    assert k.shape == (7, 1) and np.all(np.diff(k[:, 0]) > 0)
    np.testing.assert_allclose(vmf.mean_resultant_length(50, k), r, rtol=1e-14)
    assert vmf.mean_resultant_length(7, 0.0) == 0.0


# ---------------------------------------------------------------------------------------------
# fitting from data, against the high-precision MLE of the same data
# ---------------------------------------------------------------------------------------------


def _unit(rng, p):
    v = rng.standard_normal(p)
    return v / np.linalg.norm(v)


def _ref_fit_R(arb, X):
    """The mean resultant length of the rows of X (each normalized exactly), as an Arb number,
    computed in long double (1 - rbar from sum ||x_i - mu||^2 / 2n where rbar > 1/2)."""
    n, p = X.shape
    Xl = X.astype(np.longdouble)
    Xl /= np.sqrt(np.sum(Xl * Xl, axis=1))[:, None]
    S = Xl.sum(axis=0)
    nS = np.sqrt(np.sum(S * S))
    rbar = nS / n
    if rbar <= 0.5:
        return _arb_of(arb, Fraction(*rbar.as_integer_ratio()))
    d = np.sum((Xl - S / nS) ** 2) / (2 * n)
    return 1 - _arb_of(arb, Fraction(*d.as_integer_ratio()))


FIT_CASES = [(3, 1.0, 2000), (3, 1e8, 2000), (384, 384.0, 1000), (2048, 20.0, 400), (2048, 2048.0, 400),
             (32768, 32768.0, 60), (100000, 1e5, 30), (100000, 1e8, 30)]


@pytest.mark.parametrize("p,kappa,n", FIT_CASES)
def test_fit_matches_high_precision_mle(arb, p, kappa, n):
    if np.finfo(np.longdouble).eps > 1e-18:
        pytest.skip("needs an extended-precision long double for the reference sums")
    rng = np.random.default_rng(p + int(math.log10(kappa)))
    mu = _unit(rng, p)
    X = vmf.VonMisesFisher(mu, kappa).sample(n, rng)
    fit = vmf.VonMisesFisher.fit(X)
    _assert_root_within(arb, p, _ref_fit_R(arb, X), fit.kappa, 1e-12)
    assert fit.dim == p
    if kappa >= p:  # and where the data determine it, the MLE is near the truth
        assert abs(fit.kappa / kappa - 1) < 0.2 and fit.mu @ mu > 0.5


def test_fit_weights_and_duplicates_agree():
    rng = np.random.default_rng(1)
    X = vmf.VonMisesFisher(_unit(rng, 20), 30.0).sample(300, rng)
    w = rng.integers(0, 4, 300).astype(float)
    a = vmf.VonMisesFisher.fit(X, weights=w)
    b = vmf.VonMisesFisher.fit(np.repeat(X, w.astype(int), axis=0))
    assert a.kappa == pytest.approx(b.kappa, rel=1e-12)
    np.testing.assert_allclose(a.mu, b.mu, atol=1e-13)


def test_fit_float32_and_normalize():
    rng = np.random.default_rng(2)
    X = vmf.VonMisesFisher(_unit(rng, 64), 200.0).sample(500, rng)
    a = vmf.VonMisesFisher.fit(X)
    b = vmf.VonMisesFisher.fit(X.astype(np.float32))
    assert b.kappa == pytest.approx(a.kappa, rel=1e-4)
    scale = rng.uniform(0.5, 3.0, size=(500, 1))
    c = vmf.VonMisesFisher.fit(X * scale, normalize=True)
    assert c.kappa == pytest.approx(a.kappa, rel=1e-12)
    with pytest.raises(ValueError, match="not unit vectors.*normalize=True"):
        vmf.VonMisesFisher.fit(X * scale)


def test_fit_uniform_and_degenerate():
    X = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    d = vmf.VonMisesFisher.fit(X)
    assert d.kappa == 0.0
    with pytest.raises(ValueError, match="infinite"):
        vmf.VonMisesFisher.fit(np.array([[0.0, 1.0], [0.0, 1.0]]))
    # identical rows whose norm is 1 only to within rounding: the deviation from mu that is left
    # is rounding (kappa was 8e31), in float64 and float32
    rng = np.random.default_rng(3)
    for dt in (np.float64, np.float32):
        for row in (np.array([0.6, 0.8]), _unit(rng, 384)):
            x = row.astype(dt)
            with pytest.raises(ValueError, match="coincide.*infinite"):
                vmf.VonMisesFisher.fit(np.tile(x, (10, 1)))
    # a real spread far below float32's resolution still fits in float64 (kappa ~ 1e20)
    mu = _unit(rng, 3)
    X = vmf.VonMisesFisher(mu, 1e20).sample(200, rng)
    assert vmf.VonMisesFisher.fit(X).kappa == pytest.approx(1e20, rel=0.3)


# ---------------------------------------------------------------------------------------------
# sampling: goodness of fit
# ---------------------------------------------------------------------------------------------


def _theta_cdf(p, kappa):
    """Exact CDF of theta = angle(mu, x): density prop. to exp(-2 kappa sin^2(theta/2)) sin^(p-2) theta."""
    c = (p - 2) / kappa if kappa > 0 else np.inf
    cos_star = 2.0 / (c + math.sqrt(c * c + 4.0)) if kappa > 0 else 0.0
    th_star = math.acos(min(cos_star, 1.0))
    curv = kappa * cos_star + ((p - 2) / math.sin(th_star) ** 2 if p > 2 else 0.0)
    sig = 1.0 / math.sqrt(max(curv, 1e-300)) if curv > 0 else math.pi
    lo, hi = max(0.0, th_star - 60 * sig), min(math.pi, th_star + 60 * sig)
    th = np.linspace(lo, hi, 200001)
    lg = -2.0 * kappa * np.sin(th / 2) ** 2
    if p > 2:
        with np.errstate(divide="ignore"):
            lg = lg + (p - 2) * np.log(np.sin(th))
    g = np.exp(lg - lg[np.isfinite(lg)].max())
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (g[1:] + g[:-1]) * np.diff(th))])
    cdf /= cdf[-1]
    return lambda t: np.interp(t, th, cdf)


def _ks_pvalue(samples, cdf):
    x = np.sort(samples)
    n = x.size
    F = cdf(x)
    i = np.arange(1, n + 1)
    D = max(np.max(i / n - F), np.max(F - (i - 1) / n))
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * D  # Stephens (1970)
    k = np.arange(1, 101)
    return float(np.clip(2 * np.sum((-1.0) ** (k - 1) * np.exp(-2 * k * k * lam * lam)), 0, 1))


SAMPLE_CASES = [(2, 0.5), (2, 50.0), (3, 1e-3), (3, 5.0), (3, 1e8), (10, 0.0), (10, 3.0),
                (384, 384.0), (2048, 20480.0), (32768, 500.0), (100000, 1e5), (100000, 1e8)]


@pytest.mark.parametrize("p,kappa", SAMPLE_CASES)
def test_sample_marginal_ks(p, kappa):
    """mu^T x has the exact marginal density prop. to exp(kappa w) (1 - w^2)^((p-3)/2)."""
    rng = np.random.default_rng(int(p + 10 * kappa) % 2**32)
    d = vmf.VonMisesFisher(_unit(rng, p), kappa)
    n = 4000
    if kappa == 0:
        X = d.sample(n, rng)
        w = X @ d.mu
        om = 1 - w
    else:
        w, om, op = d._sample_w(n, rng)
        np.testing.assert_allclose(om + op, 2.0, rtol=1e-13)
    theta = 2 * np.arcsin(np.sqrt(np.clip(om, 0, 2) / 2))
    assert _ks_pvalue(theta, _theta_cdf(p, kappa)) > 1e-3
    A = vmf.mean_resultant_length(p, kappa)
    var = max(vmf._A_u_dA(p, np.array([kappa]))[2][0], 0.0) if kappa > 0 else 1.0 / p
    assert abs(w.mean() - A) < 5 * math.sqrt(var / n) + 1e-15


@pytest.mark.parametrize("p,kappa,n", [(2, 3.0, 3000), (3, 10.0, 3000), (50, 1e6, 500), (2048, 2048.0, 300),
                                       (100000, 1e8, 20)])
def test_sample_full_vectors(p, kappa, n):
    rng = np.random.default_rng(7)
    mu = _unit(rng, p)
    d = vmf.VonMisesFisher(mu, kappa)
    X = d.sample(n, rng)
    assert X.shape == (n, p) and np.all(np.isfinite(X))
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-14)
    w = X @ mu
    A = d.mean_resultant_length()
    var = vmf._A_u_dA(p, np.array([kappa]))[2][0]
    assert abs(w.mean() - A) < 5 * math.sqrt(var / n) + 1e-12
    # the tangent part is isotropic: its mean is ~0 (each coordinate ~ N(0, (1 - E w^2)/((p-1) n)))
    perp = X - w[:, None] * mu
    tang_var = max(1 - A * A, 0.0) / (p - 1)
    assert np.abs(perp.mean(axis=0)).max() < 6 * math.sqrt(tang_var / n) + 1e-15
    # reproducible with seeds
    np.testing.assert_array_equal(d.sample(5, rng=3), d.sample(5, rng=np.random.default_rng(3)))


def test_sample_mu_negative_first_coordinate_and_uniform():
    rng = np.random.default_rng(3)
    mu = -np.eye(6)[0]
    X = vmf.VonMisesFisher(mu, 40.0).sample(2000, rng)
    assert (X @ mu).mean() == pytest.approx(vmf.mean_resultant_length(6, 40.0), abs=0.01)
    U = vmf.VonMisesFisher(np.eye(4)[1], 0.0).sample(4000, rng)
    assert np.abs(U.mean(axis=0)).max() < 0.05
    assert vmf.VonMisesFisher(np.eye(4)[1], 1.0).sample(0).shape == (0, 4)


# ---------------------------------------------------------------------------------------------
# density, entropy, KL
# ---------------------------------------------------------------------------------------------


def test_logpdf_matches_arb_and_is_finite_in_high_dim(arb):
    for p, kappa in [(3, 2.0), (8192, 8192.0), (32768, 1e5), (100000, 1e8), (5, 0.0)]:
        mu = np.zeros(p)
        mu[0] = 1.0
        t = np.array([0.0, 1e-6, 0.3, 2.0, math.pi])
        X = np.zeros((t.size, p))
        X[:, 0], X[:, 1] = np.cos(t), np.sin(t)
        d = vmf.VonMisesFisher(mu, kappa)
        got = d.logpdf(X)
        assert got.shape == (5,) and np.all(np.isfinite(got))
        lc = _ref_log_c(arb, p, kappa)
        for ti, g in zip(t, got):
            # kappa mu^T x = kappa - 2 kappa sin^2(t/2)
            ref = float((lc + _arb_of(arb, kappa) * (1 - 2 * _arb_of(arb, math.sin(ti / 2)) ** 2)).mid())
            assert abs(g - ref) <= 1e-13 * max(abs(ref), 1.0), (p, kappa, ti, g, ref)
    d = vmf.VonMisesFisher(np.eye(3)[2], 1.5)
    assert d.pdf(np.eye(3)[2]) == pytest.approx(math.exp(d.logpdf(np.eye(3)[2])))
    assert d.logpdf(np.ones((2, 4, 3)) / math.sqrt(3)).shape == (2, 4)
    assert isinstance(d.logpdf(np.eye(3)[0]), float)


def test_row_stats_one_pass_against_exact_sums():
    """|x|^2, mu^T x and |x - mu|^2 from the one-pass C++ loop against exact rational sums,
    with rows next to mu (where 1 - mu^T x cancels) and a tail shorter than 8 columns."""
    from kernkit import _vmf_data

    rng = np.random.default_rng(3)
    for n, p in [(0, 5), (1, 1), (3, 8), (5, 203)]:
        mu = _unit(rng, p)
        for A in (rng.standard_normal((n, p)), mu + 1e-9 * rng.standard_normal((n, p))):
            n2, dot, d2 = _vmf_data.row_stats(A, mu)
            assert n2.shape == dot.shape == d2.shape == (n,)
            tol = (p / 8 + 4) * 2.0**-52  # 8 partial sums of p/8 terms, then 3 additions
            for i in range(n):
                fx, fm = [Fraction(a) for a in A[i]], [Fraction(m) for m in mu]
                ref_n2 = sum(a * a for a in fx)
                ref_dot = sum(a * m for a, m in zip(fx, fm))
                ref_d2 = sum((a - m) ** 2 for a, m in zip(fx, fm))
                size_dot = sum(abs(a * m) for a, m in zip(fx, fm))
                assert abs(Fraction(n2[i]) - ref_n2) <= tol * ref_n2
                assert abs(Fraction(dot[i]) - ref_dot) <= tol * size_dot
                assert abs(Fraction(d2[i]) - ref_d2) <= tol * ref_d2, (n, p, float(ref_d2))
    with pytest.raises(ValueError, match="mu"):
        vmf._data.row_stats(np.zeros((2, 3)), np.zeros(4))


def test_row_stats_same_bits_on_every_instruction_set():
    """The partial sums are the same on every vector width: the ISA variants agree bitwise."""
    import subprocess
    import sys

    import kernkit

    order = ["baseline", "avx2", "avx512"]
    facts = kernkit.info()
    isas = [i for i in order[: order.index(facts["simd"]) + 1] if i in facts["simd_built"].split(",")]
    code = (
        "import numpy as np, hashlib; from kernkit import _vmf_data as d\n"
        "r = np.random.default_rng(1); X = r.standard_normal((300, 1001)); mu = r.standard_normal(1001)\n"
        "print(hashlib.sha1(np.concatenate(d.row_stats(X, mu)).tobytes()).hexdigest())"
    )
    out = {
        isa: subprocess.run([sys.executable, "-c", code], env={**os.environ, "KERNKIT_SIMD": isa},
                            capture_output=True, text=True, check=True).stdout
        for isa in isas
    }
    assert len(set(out.values())) == 1, out


def test_logpdf_follows_a_reassigned_kappa():
    """The distribution keeps its normalizer between calls; assigning kappa must not reuse it."""
    mu = np.array([0.0, 0.6, 0.8])
    d = vmf.VonMisesFisher(mu, 1.0)
    x = d.sample(5, np.random.default_rng(3))
    first = d.logpdf(x)
    for k in (5.0, 0.0, 1e6, 1.0):
        d.kappa = k
        assert np.array_equal(d.logpdf(x), vmf.VonMisesFisher(mu, k).logpdf(x)), k
    assert np.array_equal(d.logpdf(x), first)


def test_logpdf_of_rows_off_unit_length_near_the_mode(arb):
    """Rows within the unit tolerance but not unit are scaled in the closed form
    |u - mu|^2 = (|x - mu|^2 - d^2)/(1 + d): at large kappa near the mode the result is that
    of the exactly scaled row."""
    p, kappa = 64, 1e7
    mu = np.zeros(p)
    mu[0] = 1.0
    t = np.array([1e-5, 3e-4, 1e-3])
    X = np.zeros((t.size, p))
    X[:, 0], X[:, 1] = np.cos(t), np.sin(t)
    d = vmf.VonMisesFisher(mu, kappa)
    lc = _ref_log_c(arb, p, kappa)
    for scale in (1.0, 1 + 3e-7, 1 - 5e-8):
        got = d.logpdf(X * scale)
        for ti, g in zip(t, got):
            ref = float((lc + _arb_of(arb, kappa) * (1 - 2 * _arb_of(arb, math.sin(ti / 2)) ** 2)).mid())
            assert abs(g - ref) <= 1e-12 * max(abs(ref), 1.0), (scale, ti, g, ref)
    with pytest.raises(ValueError, match="unit"):
        d.logpdf(X * 1.01)
    np.testing.assert_allclose(d.logpdf(X * 1.01, normalize=True), d.logpdf(X), rtol=1e-13)
    # far from unit length (normalize=True) and very concentrated: |x - mu|^2 - d^2 would cancel
    d12 = vmf.VonMisesFisher(mu, 1e12)
    lc12 = _ref_log_c(arb, p, 1e12)
    got = d12.logpdf(np.vstack([X * 3.0, X * 0.2]), normalize=True)
    for ti, g in zip(np.concatenate([t, t]), got):
        ref = float((lc12 + _arb_of(arb, 1e12) * (1 - 2 * _arb_of(arb, math.sin(ti / 2)) ** 2)).mid())
        assert abs(g - ref) <= 1e-12 * max(abs(ref), 1.0), (ti, g, ref)


def test_entropy_mean_kl(arb):
    for p, k1, k2 in [(3, 2.0, 5.0), (384, 100.0, 400.0), (32768, 1e4, 4e4), (100000, 1e8, 2e7), (10, 0.0, 3.0)]:
        rng = np.random.default_rng(p)
        m1, m2 = _unit(rng, p), _unit(rng, p)
        m2 = (m1 + 0.3 * m2) / np.linalg.norm(m1 + 0.3 * m2)
        d1, d2 = vmf.VonMisesFisher(m1, k1), vmf.VonMisesFisher(m2, k2)
        a1 = _ref_A(arb, p, _arb_of(arb, k1)) if k1 > 0 else arb(0)
        lc1, lc2 = _ref_log_c(arb, p, k1), _ref_log_c(arb, p, k2)
        H = float((-lc1 - _arb_of(arb, k1) * a1).mid())
        assert abs(d1.entropy() - H) <= 1e-13 * max(abs(H), 1), (p, d1.entropy(), H)
        wl = np.sum(m1.astype(np.longdouble) * m2.astype(np.longdouble))
        w = _arb_of(arb, Fraction(*wl.as_integer_ratio()))
        KL = float((lc1 - lc2 + a1 * (_arb_of(arb, k1) - _arb_of(arb, k2) * w)).mid())
        assert abs(d1.kl_divergence(d2) - KL) <= 1e-12 * max(abs(KL), 1), (p, d1.kl_divergence(d2), KL)
        assert d1.kl_divergence(d1) == 0.0
        np.testing.assert_allclose(d1.mean(), float(a1.mid()) * m1, rtol=1e-14, atol=1e-300)
    log_area = math.log(2) + 2.5 * math.log(math.pi) - math.lgamma(2.5)  # log |S^4|
    assert vmf.VonMisesFisher(np.eye(5)[0], 0.0).entropy() == pytest.approx(log_area, rel=1e-15)


def test_kl_against_monte_carlo():
    rng = np.random.default_rng(11)
    d1 = vmf.VonMisesFisher(_unit(rng, 5), 8.0)
    d2 = vmf.VonMisesFisher(_unit(rng, 5), 3.0)
    X = d1.sample(200000, rng)
    mc = np.mean(d1.logpdf(X) - d2.logpdf(X))
    assert d1.kl_divergence(d2) == pytest.approx(mc, rel=0.02)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


def test_bad_input_messages():
    F = vmf.VonMisesFisher
    good = np.eye(4)[:3]
    with pytest.raises(ValueError, match="not unit vectors"):
        F.fit(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]))
    with pytest.raises(ValueError, match="all-zero row.*row 1"):
        F.fit(np.array([[1.0, 0.0], [0.0, 0.0]]), normalize=True)
    with pytest.raises(ValueError, match="NaN or infinite.*row 0"):
        F.fit(np.array([[np.nan, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="p = 1"):
        F.fit(np.ones((5, 1)))
    with pytest.raises(ValueError, match="2-D"):
        F.fit(np.ones(5))
    with pytest.raises(ValueError, match="no rows"):
        F.fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="weights must have shape"):
        F.fit(good, weights=np.ones(2))
    with pytest.raises(ValueError, match="negative"):
        F.fit(good, weights=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="sum to 0"):
        F.fit(good, weights=np.zeros(3))
    with pytest.raises(TypeError):
        F.fit(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="unit vector"):
        F(np.array([1.0, 1.0]), 1.0)
    assert F(np.array([3.0, 4.0]), 1.0, normalize=True).mu == pytest.approx([0.6, 0.8])
    with pytest.raises(ValueError, match="zero vector"):
        F(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="p must be >= 2"):
        F(np.array([1.0]), 1.0)
    with pytest.raises(ValueError, match="kappa must be finite and >= 0"):
        F(np.eye(3)[0], -1.0)
    with pytest.raises(ValueError, match="kappa must be finite"):
        F(np.eye(3)[0], np.inf)
    d = F(np.eye(3)[0], 2.0)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        d.logpdf(np.eye(4)[0])
    with pytest.raises(ValueError, match="not unit"):
        d.logpdf(np.array([1.0, 1.0, 0.0]))
    assert d.logpdf(np.array([2.0, 0.0, 0.0]), normalize=True) == pytest.approx(d.logpdf(np.eye(3)[0]))
    with pytest.raises(ValueError, match="dimensions differ"):
        d.kl_divergence(F(np.eye(4)[0], 1.0))
    with pytest.raises(ValueError, match="non-negative integer"):
        d.sample(-1)


# ---------------------------------------------------------------------------------------------
# mixtures
# ---------------------------------------------------------------------------------------------


def _mixture_data(rng, p=30, n_per=(400, 300, 200), kappas=(80.0, 150.0, 300.0)):
    mus = np.linalg.qr(rng.standard_normal((p, len(n_per))))[0].T  # orthogonal means
    Xs, labels = [], []
    for k, (m, kap, n) in enumerate(zip(mus, kappas, n_per)):
        Xs.append(vmf.VonMisesFisher(m, kap).sample(n, rng))
        labels.append(np.full(n, k))
    X, y = np.concatenate(Xs), np.concatenate(labels)
    perm = rng.permutation(len(y))
    return X[perm], y[perm], mus, np.array(kappas)


def _match(means, true_means):
    return np.argmax(means @ true_means.T, axis=1)


def test_mixture_recovers_components(caplog):
    rng = np.random.default_rng(5)
    X, y, mus, kappas = _mixture_data(rng)
    with caplog.at_level(logging.INFO, logger="kernkit.vmf"):
        mm = vmf.VonMisesFisherMixture(3, n_init=2, random_state=0).fit(X)
    assert any("init 2/2" in r.getMessage() for r in caplog.records)
    perm = _match(mm.means_, mus)
    assert sorted(perm) == [0, 1, 2]
    assert np.mean(perm[mm.predict(X)] == y) > 0.99
    np.testing.assert_allclose(mm.kappas_[np.argsort(perm)], kappas, rtol=0.15)
    np.testing.assert_allclose(mm.weights_[np.argsort(perm)], [4 / 9, 3 / 9, 2 / 9], atol=0.02)
    P = mm.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    s = mm.score_samples(X)
    assert mm.score(X) == pytest.approx(s.mean(), rel=1e-12)
    assert mm.log_likelihood_ == pytest.approx(s.sum(), rel=1e-6)
    K, p, n = 3, X.shape[1], X.shape[0]
    assert mm.bic(X) == pytest.approx(-2 * s.sum() + (K * (p - 1) + K + K - 1) * math.log(n), rel=1e-12)
    assert mm.converged_ and mm.n_iter_ >= 2
    comps = mm.components_
    assert len(comps) == 3 and comps[0].dim == p
    Xs, labs = mm.sample(50, rng=1)
    assert Xs.shape == (50, p) and labs.shape == (50,)
    # BIC prefers the true number of components
    b = [vmf.VonMisesFisherMixture(k, n_init=1, random_state=0).fit(X).bic(X) for k in (1, 3)]
    assert b[1] < b[0]


def test_mixture_hard_and_spherical_kmeans():
    rng = np.random.default_rng(6)
    X, y, mus, _ = _mixture_data(rng)
    hm = vmf.VonMisesFisherMixture(3, posterior="hard", random_state=1).fit(X)
    perm = _match(hm.means_, mus)
    assert np.mean(perm[hm.predict(X)] == y) > 0.99
    c, labels, inertia = vmf.spherical_kmeans(X, 3, random_state=2)
    perm = _match(c, mus)
    assert np.mean(perm[labels] == y) > 0.99
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, rtol=1e-14)
    assert inertia == pytest.approx(np.sum(1 - np.max(X @ c.T, axis=1)), rel=1e-9)


def test_mixture_high_dim_and_given_init():
    rng = np.random.default_rng(8)
    p = 4096
    X, y, mus, kappas = _mixture_data(rng, p=p, n_per=(150, 100), kappas=(2 * p, 4 * p))
    mm = vmf.VonMisesFisherMixture(2, init=mus, n_init=1, random_state=0).fit(X)
    assert np.mean(mm.predict(X) == y) == 1.0
    np.testing.assert_allclose(mm.kappas_, kappas, rtol=0.1)
    assert np.all(np.isfinite(mm.score_samples(X)))


def test_mixture_tight_clusters_keep_full_precision():
    """kappa ~ 1e9: the M-step gets 1 - rbar without cancellation, as the single fit does."""
    rng = np.random.default_rng(14)
    X, y, mus, kappas = _mixture_data(rng, p=5, n_per=(300, 200), kappas=(1e9, 3e8))
    mm = vmf.VonMisesFisherMixture(2, random_state=0, n_init=1, max_kappa=1e12).fit(X)
    perm = _match(mm.means_, mus)
    for k in range(2):
        single = vmf.VonMisesFisher.fit(X[y == perm[k]])
        assert mm.kappas_[k] == pytest.approx(single.kappa, rel=1e-9)
        assert 1 - mm.means_[k] @ single.mu < 1e-15


def test_mixture_interrupt_leaves_no_half_state(monkeypatch):
    rng = np.random.default_rng(9)
    X, _, _, _ = _mixture_data(rng, p=10)
    mm = vmf.VonMisesFisherMixture(3, n_init=1, random_state=0).fit(X)
    before = (mm.means_.copy(), mm.kappas_.copy(), mm.weights_.copy(), mm.n_iter_)
    from kernkit import _vmf_data

    calls = {"n": 0}
    real = _vmf_data.map_reduce

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(_vmf_data, "map_reduce", flaky)
    with pytest.raises(KeyboardInterrupt):
        vmf.VonMisesFisherMixture.fit(mm, X[::-1].copy())
    np.testing.assert_array_equal(mm.means_, before[0])
    np.testing.assert_array_equal(mm.kappas_, before[1])
    np.testing.assert_array_equal(mm.weights_, before[2])
    assert mm.n_iter_ == before[3]


def test_mixture_progress_bar_and_errors():
    pytest.importorskip("tqdm")
    rng = np.random.default_rng(10)
    X, _, _, _ = _mixture_data(rng, p=8, n_per=(50, 50, 50))
    vmf.VonMisesFisherMixture(2, n_init=1, progress=True, random_state=0).fit(X)
    with pytest.raises(RuntimeError, match="not fitted"):
        vmf.VonMisesFisherMixture(2).predict(X)
    with pytest.raises(ValueError, match="n_components"):
        vmf.VonMisesFisherMixture(0)
    with pytest.raises(ValueError, match="posterior"):
        vmf.VonMisesFisherMixture(2, posterior="fuzzy")
    mm = vmf.VonMisesFisherMixture(2, n_init=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="columns"):
        mm.predict(np.eye(9))
    with pytest.raises(ValueError, match="exceeds"):
        vmf.VonMisesFisherMixture(5).fit(X[:3])


# ---------------------------------------------------------------------------------------------
# Dask: distributed sufficient statistics give the in-memory result
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def dask_array():
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    with dask.config.set(scheduler="synchronous"):
        yield da


def test_dask_fit_equals_in_memory(dask_array):
    da = dask_array
    rng = np.random.default_rng(12)
    for p, kappa in [(16, 40.0), (512, 1e6)]:
        X = vmf.VonMisesFisher(_unit(rng, p), kappa).sample(1000, rng)
        w = rng.uniform(0, 2, 1000)
        a = vmf.VonMisesFisher.fit(X, weights=w)
        b = vmf.VonMisesFisher.fit(da.from_array(X, chunks=(137, p // 2)), weights=da.from_array(w, chunks=250))
        c = vmf.VonMisesFisher.fit(da.from_array(X, chunks=(100, p)), weights=w)
        for f in (b, c):
            assert f.kappa == pytest.approx(a.kappa, rel=1e-12)
            np.testing.assert_allclose(f.mu, a.mu, atol=1e-14)
    with pytest.raises(ValueError, match="not unit"):
        vmf.VonMisesFisher.fit(da.from_array(2 * X, chunks=(100, p)))
    f = vmf.VonMisesFisher.fit(da.from_array(2 * X, chunks=(100, p)), normalize=True)
    assert f.kappa == pytest.approx(vmf.VonMisesFisher.fit(X).kappa, rel=1e-12)


def test_dask_mixture_equals_in_memory(dask_array):
    da = dask_array
    rng = np.random.default_rng(13)
    X, y, _, _ = _mixture_data(rng, p=20)
    kw = dict(n_init=2, random_state=4)
    a = vmf.VonMisesFisherMixture(3, **kw).fit(X)
    Xd = da.from_array(X, chunks=(200, 20))
    b = vmf.VonMisesFisherMixture(3, **kw).fit(Xd)
    np.testing.assert_allclose(b.means_, a.means_, atol=1e-10)
    np.testing.assert_allclose(b.kappas_, a.kappas_, rtol=1e-9)
    np.testing.assert_allclose(b.weights_, a.weights_, rtol=1e-9)
    assert b.score(Xd) == pytest.approx(a.score(X), rel=1e-12)
    np.testing.assert_array_equal(b.predict(Xd).compute(), a.predict(X))
    np.testing.assert_allclose(b.predict_proba(Xd).compute(), a.predict_proba(X), atol=1e-9)
    c, labels, _ = vmf.spherical_kmeans(Xd, 3, random_state=1)
    c2, labels2, _ = vmf.spherical_kmeans(X, 3, random_state=1)
    np.testing.assert_allclose(c, c2, atol=1e-12)
    np.testing.assert_array_equal(labels, labels2)


def test_mixture_estimator_protocol():
    """get_params / set_params (scikit-learn's protocol): parameters round-trip, set_params checks
    as the constructor does and keeps a fit."""
    rng = np.random.default_rng(9)
    X = np.vstack([vmf.VonMisesFisher(_unit(rng, 5), 80.0).sample(150, rng) for _ in range(3)])
    mm = vmf.VonMisesFisherMixture(2, n_init=1, random_state=0)
    params = mm.get_params()
    assert params["n_components"] == 2 and params["n_init"] == 1 and set(params) == set(mm._PARAMS)
    assert vmf.VonMisesFisherMixture(**params).get_params() == params
    mm.fit(X)
    means = mm.means_.copy()
    assert mm.set_params(n_components=3, tol=1e-8) is mm and mm.n_components == 3 and mm.tol == 1e-8
    np.testing.assert_array_equal(mm.means_, means)  # the fit stays until the next fit
    with pytest.raises(ValueError, match="n_components"):
        mm.set_params(n_components=0)
    with pytest.raises(ValueError, match="unknown parameters"):
        mm.set_params(n_clusters=3)


def test_mixture_sklearn_clone():
    """sklearn.base.clone (where scikit-learn is installed): the parameters, not the fit."""
    pytest.importorskip("sklearn")
    from sklearn.base import clone

    rng = np.random.default_rng(10)
    mm = vmf.VonMisesFisherMixture(2, n_init=1, tol=1e-8, random_state=0)
    mm.fit(vmf.VonMisesFisher(_unit(rng, 4), 50.0).sample(100, rng))
    c = clone(mm)
    assert c.get_params() == mm.get_params() and not hasattr(c, "means_")
