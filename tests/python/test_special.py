"""Tests of kernkit's log-Bessel ufuncs: log_iv, log_kv, log_ive, log_kve, bessel_iv_ratio,
dlog_iv and dlog_kv.

Accuracy is checked against ``tests/data/bessel_reference.npz`` (python-flint / Arb values
stored as double-doubles, made by ``tests/data/make_bessel_reference.py``), so that errors
below one float64 ulp are measurable. The other tests check mathematical identities,
exact limits, scipy's conventions where the function is not real, and ufunc behaviour.
Nothing here compares kernkit with a hard-coded output of its own.

Bounds (float64):

* logs: relative error <= 1e-14 where |log f| >= 1, absolute error <= 1e-15 where
  |log f| < 1 (the absolute error of log f is the relative error of f itself);
* ratio I_{v+1}/I_v and d/dx log I_v, d/dx log K_v: relative error <= 1e-14 (about
  45 ulps).  These are O(1)-conditioned quantities (no subtraction of like terms for
  v >= 0: ratio + v/x is a sum of positives, and for log K the two terms of
  v/x - K_{v+1}/K_v differ by at least a factor of two), so a direct evaluation
  reaches a few ulps; 1e-14 leaves room for the continued fractions / expansions
  but rejects the shortcut exp(log I_{v+1} - log I_v), whose error grows like
  eps * |log I| (1e-11 at |log I| ~ 1e5).  For negative orders the same
  bound is applied to |error| / (|I_{v+1}/I_v| + |v/x|), i.e. relative to the
  condition of the sum, since d/dx log I_v has zeros there.

float32: the points of the reference whose v and x are exactly float32 (region
``f32`` and others), relative error <= 1e-6 where |f| >= 1, absolute <= 1e-6 below.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.special as sc

import kernkit

REF_PATH = Path(__file__).resolve().parents[1] / "data" / "bessel_reference.npz"

FUNCS = {
    "logiv": "log_iv",
    "logive": "log_ive",
    "logkv": "log_kv",
    "logkve": "log_kve",
    "ratio": "bessel_iv_ratio",
    "dlogiv": "dlog_iv",
    "dlogkv": "dlog_kv",
}
LOGS = ("logiv", "logive", "logkv", "logkve")
ALL_NAMES = tuple(FUNCS.values())

LOG_REL = 1e-14
LOG_ABS = 1e-15
RAT_REL = 1e-14
F32_TOL = 1e-6
F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = float(np.finfo(np.float32).tiny)


def fn(name):
    return getattr(kernkit, name)


# The accuracy tests run on the CPU, and on the GPU (PyTorch CUDA tensors) where there is one.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not kernkit.cuda_available(), reason="no CUDA build or no GPU"))]


def evaluate(name, v, x, device):
    if device == "cpu":
        return fn(name)(v, x)
    torch = pytest.importorskip("torch")
    return fn(name)(torch.from_numpy(v).cuda(), torch.from_numpy(x).cuda()).cpu().numpy()


# --------------------------------------------------------------------------- reference

@pytest.fixture(scope="module")
def ref():
    d = np.load(REF_PATH)
    out = {k: d[k] for k in d.files}
    out["region_names"] = [str(s) for s in d["region_names"]]
    return out


def _errors(q, got, hi, lo, v, x):
    """(error measure, bound-normalised error) for quantity q; both arrays."""
    with np.errstate(all="ignore"):
        diff = np.abs((got.astype(np.float64) - hi) - lo)  # exact when got ~ hi
        if q in LOGS:
            scale = np.maximum(1.0, np.abs(hi))
            bound = np.where(np.abs(hi) >= 1, LOG_REL * np.abs(hi), LOG_ABS)
        else:
            scale = np.abs(hi)
            bound = RAT_REL * scale
        if q in ("ratio", "dlogiv", "dlogkv"):
            # negative orders: relative to the size of the terms of the sum
            neg = v < 0
            if neg.any():
                if q == "dlogkv":
                    terms = np.abs(v / x) + np.abs(v / x - hi)
                elif q == "dlogiv":
                    terms = np.abs(hi - v / x) + np.abs(v / x)
                else:
                    terms = np.abs(hi)
                scale = np.where(neg, np.maximum(terms, np.abs(hi)), scale)
                bound = np.where(neg, RAT_REL * scale, bound)
        rel = diff / scale
        return diff, rel, diff / bound


def _report(q, name, mask, got, ref, norm, rel, limit_text, nshow=12):
    v, x, reg = ref["v"], ref["x"], ref["region"]
    names = ref["region_names"]
    hi = ref[q + "_hi"]
    bad = mask & ~(norm <= 1.0)
    lines = [f"{name}: {bad.sum()} of {mask.sum()} reference points miss {limit_text}"]
    lines.append("  per region: max error (relative to max(1,|ref|) for logs, |ref| otherwise)"
                 ", failures")
    for k, rn in enumerate(names):
        m = mask & (reg == k)
        if m.any():
            r = rel[m]
            mx = np.nanmax(np.where(np.isfinite(r), r, np.inf))
            lines.append(f"    {rn:9s} n={m.sum():5d} max={mx:.3g} median={np.nanmedian(r):.3g}"
                         f" fail={int((bad & (reg == k)).sum())}")
    order = np.flatnonzero(bad)
    order = order[np.argsort(-np.nan_to_num(norm[order], nan=np.inf))][:nshow]
    if order.size:
        lines.append("  worst points (v, x, region, expected, got, error):")
    for i in order:
        lines.append(f"    v={float(v[i])!r} x={float(x[i])!r} {names[reg[i]]}"
                     f" expected={float(hi[i])!r} got={float(got[i])!r} err={rel[i]:.3g}")
    return "\n".join(lines)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("q", list(FUNCS))
def test_accuracy_float64(ref, q, device):
    name = FUNCS[q]
    v, x = ref["v"], ref["x"]
    hi, lo = ref[q + "_hi"], ref[q + "_lo"]
    got = evaluate(name, v, x, device)
    assert got.dtype == np.float64
    finite_ref = np.isfinite(hi)
    # where the reference is finite the result must be finite and within the bound
    _, rel, norm = _errors(q, got, hi, lo, v, x)
    mask = finite_ref
    ok = norm[mask] <= 1.0
    msg = _report(q, name, mask, got, ref, norm, rel,
                  "rel 1e-14 (|log|>=1) / abs 1e-15" if q in LOGS else "rel 1e-14")
    if not ok.all():
        pytest.fail(msg, pytrace=False)
    # where the reference is NaN (log of I_v < 0 at negative non-integer orders) it is NaN
    nanref = ~finite_ref
    assert np.isnan(got[nanref]).all(), (
        f"{name}: expected NaN (I_v(x) < 0) at v={v[nanref][~np.isnan(got[nanref])][:5]}, "
        f"x={x[nanref][~np.isnan(got[nanref])][:5]}, got {got[nanref][~np.isnan(got[nanref])][:5]}")


def _f32_mask(ref, q):
    v, x = ref["v"], ref["x"]
    hi = ref[q + "_hi"]
    with np.errstate(all="ignore"):
        exact = ((v.astype(np.float32).astype(np.float64) == v)
                 & (x.astype(np.float32).astype(np.float64) == x))
        rep = np.isfinite(hi) & (np.abs(hi) <= F32_MAX) & ((np.abs(hi) >= F32_TINY) | (hi == 0))
        if q in ("dlogiv", "dlogkv"):  # the terms v/x must be representable too
            rep &= np.abs(v / x) <= F32_MAX
    return exact & rep


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("q", list(FUNCS))
def test_accuracy_float32(ref, q, device):
    name = FUNCS[q]
    m = _f32_mask(ref, q)
    assert m.sum() >= 500
    v32 = ref["v"][m].astype(np.float32)
    x32 = ref["x"][m].astype(np.float32)
    got = evaluate(name, v32, x32, device)
    assert got.dtype == np.float32
    hi = ref[q + "_hi"][m]
    with np.errstate(all="ignore"):
        err = np.abs(got.astype(np.float64) - hi)
        if q in LOGS:
            scale = np.maximum(1.0, np.abs(hi))
        else:
            scale = np.where(ref["v"][m] < 0, np.maximum(np.abs(hi), np.abs(ref["v"][m] / ref["x"][m])),
                             np.abs(hi))
        rel = err / scale
    bad = ~(rel <= F32_TOL)
    worst = np.argsort(-np.nan_to_num(rel, nan=np.inf))[:10]
    msg = (f"{name} float32: {bad.sum()} of {m.sum()} points above {F32_TOL:g}; max error "
           f"{np.max(np.where(np.isnan(rel), np.inf, rel)):.3g} (NaN counted as inf); worst:\n" + "\n".join(
               f"   v={float(v32[i])!r} x={float(x32[i])!r} expected={hi[i]!r} got={float(got[i])!r}"
               f" err={rel[i]:.3g}" for i in worst if bad[i]))
    if bad.any():
        pytest.fail(msg, pytrace=False)


def test_reference_regions_present(ref):
    """The reference covers every region the tests rely on, and is certified."""
    names = ref["region_names"]
    for rn in ("box", "wide", "v0", "int", "half", "turning", "vmf", "x709", "bigx", "cusf",
               "mu20", "negative", "f32", "smallbox"):
        assert (ref["region"] == names.index(rn)).sum() >= 50, rn
    pos = ref["v"] >= 0
    for q in FUNCS:
        assert np.isfinite(ref[q + "_hi"][pos]).all(), q


def test_negative_orders_reflection(ref):
    """Negative orders against the reference (also part of the full accuracy tests), and the
    reflection identities K_{-v} = K_v, I_{-n} = I_n on their own."""
    k = ref["region_names"].index("negative")
    m = ref["region"] == k
    v, x = ref["v"][m], ref["x"][m]
    for q in ("logiv", "logkv", "ratio", "dlogkv"):
        hi, lo = ref[q + "_hi"][m], ref[q + "_lo"][m]
        got = fn(FUNCS[q])(v, x)
        fin = np.isfinite(hi)
        _, rel, norm = _errors(q, got, hi, lo, v, x)
        j = np.argmax(np.nan_to_num(norm[fin], nan=np.inf))
        assert (norm[fin] <= 1).all(), (
            f"{FUNCS[q]} negative orders: error {rel[fin][j]:.3g} at v={float(v[fin][j])!r}"
            f" x={float(x[fin][j])!r}")
        assert np.isnan(got[~fin]).all()
    rng = np.random.default_rng(11)
    va = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), 500))
    xa = np.exp(rng.uniform(np.log(1e-3), np.log(1e4), 500))
    np.testing.assert_array_equal(kernkit.log_kv(-va, xa), kernkit.log_kv(va, xa))
    n = np.round(va)
    np.testing.assert_allclose(kernkit.log_iv(-n, xa), kernkit.log_iv(n, xa), rtol=2e-15, atol=1e-15)


# --------------------------------------------------------------------------- identities

def _box(n, vlo, vhi, xlo, xhi, seed):
    rng = np.random.default_rng(seed)
    v = np.exp(rng.uniform(np.log(vlo), np.log(vhi), n))
    x = np.exp(rng.uniform(np.log(xlo), np.log(xhi), n))
    return v, x


def test_kernel_class_edges_against_arb():
    """Points on and next to the edges between the branch-free kernels (the Debye circle
    v^2 + x^2 = 25.5^2, the box series' x classes 1e-3, 1, 4, 10 and v = 4.5, 12.5, K's x = 0.1,
    1, 1.7, 3, 8 and v = 1/2, 4.5) agree with Arb, in one array call (block loop) and one by one
    (scalar); log I, log K, the ratio and d/dx log K."""
    flint = pytest.importorskip("flint")
    flint.ctx.prec = 256
    rng = np.random.default_rng(21)
    t = rng.uniform(0.0, np.pi / 2, 300)
    r = 25.5 * (1.0 + rng.choice([-1.0, 1.0], t.size) * 10.0 ** rng.uniform(-15, -3, t.size))
    v = np.concatenate([r * np.cos(t), [25.49, 25.499999, 25.4, 25.5, 25.45]])
    x = np.concatenate([r * np.sin(t), [1.0, 0.999, 1.0, 1e-3, 0.9]])
    for e in (1e-3, 0.1, 1.0, 1.7, 3.0, 4.0, 8.0, 10.0):
        xs = e * (1.0 + np.array([-1e-15, 0.0, 1e-15, -1e-9, 1e-9]))
        ve = [0.5, 4.5, 4.5 - 1e-15, 0.5 + 1e-16, 12.5, 12.5 - 1e-15, 4.5 + 1e-15, 25.0]
        v = np.concatenate([v, rng.uniform(0.0, 20.0, xs.size), ve])
        x = np.concatenate([x, xs, np.full(len(ve), e)])
    arb = flint.arb
    A, B = [arb(a) for a in v], [arb(b) for b in x]
    ref = {"log_iv": np.array([float(b.bessel_i(a).log().mid()) for a, b in zip(A, B)]),
           "log_kv": np.array([float(b.bessel_k(a).log().mid()) for a, b in zip(A, B)]),
           # the ratios: Debye kernels outside the circle, the box's series / Temme kernels inside
           "bessel_iv_ratio": np.array([float((b.bessel_i(a + 1) / b.bessel_i(a)).mid()) for a, b in zip(A, B)]),
           "dlog_kv": np.array([float((-b.bessel_k(a - 1) / b.bessel_k(a) - a / b).mid()) for a, b in zip(A, B)])}
    for name, want in ref.items():
        f = fn(name)
        for got in (f(v, x), np.array([f(a, b) for a, b in zip(v, x)])):
            err = np.abs(got - want)
            if not name.startswith("log"):
                bound = RAT_REL * np.abs(want)
            else:
                bound = np.where(np.abs(want) >= 1, LOG_REL * np.abs(want), LOG_ABS)
            bad = ~(err <= bound)
            assert not bad.any(), (f"{name}: {bad.sum()} points off, e.g. v={v[bad][:3]!r} x={x[bad][:3]!r} "
                                   f"got {got[bad][:3]!r} want {want[bad][:3]!r}")


def test_box_series_in_log_space_against_arb():
    """The box series forms its prefactor in log space also for 1e-3 <= x < 1 from v = 4.5 on
    (bessel/series_fast.hpp: both terms of log I are negative there); log I and log I e^-x
    within LOG_REL / LOG_ABS of Arb in that region and on its edges, array and scalar."""
    flint = pytest.importorskip("flint")
    flint.ctx.prec = 200
    rng = np.random.default_rng(41)
    v = np.concatenate([np.exp(rng.uniform(np.log(4.5), np.log(25.5), 400)), rng.uniform(4.0, 5.0, 100),
                        [4.5, 4.5 + 1e-15, 4.5 - 1e-15, 12.5, 12.5 - 1e-15, 25.49, 24.0]])
    x = np.concatenate([np.exp(rng.uniform(np.log(1e-3), np.log(1.0), 400)), rng.uniform(0.5, 1.5, 100),
                        [1e-3, 0.999999, 0.5, 1e-3 * (1 - 1e-15), 0.999999999, 1e-3, 0.9999]])
    keep = v * v + x * x < 650.25
    v, x = v[keep], x[keep]
    li = np.array([float(flint.arb(b).bessel_i(flint.arb(a)).log().mid()) for a, b in zip(v, x)])
    for name, want in (("log_iv", li), ("log_ive", li - x)):
        f = fn(name)
        for got in (f(v, x), np.array([f(a, b) for a, b in zip(v, x)])):
            bound = np.where(np.abs(want) >= 1, LOG_REL * np.abs(want), LOG_ABS)
            bad = ~(np.abs(got - want) <= bound)
            assert not bad.any(), f"{name}: v={v[bad][:3]!r} x={x[bad][:3]!r} got {got[bad][:3]!r} want {want[bad][:3]!r}"


def _box_sample(rng, n):
    """2n points over the small box's square [0, 25.5]^2, half uniform, half log-uniform (v down
    to 1e-6, x to 1e-30), x shuffled against v; the caller keeps those inside the circle."""
    v = np.concatenate([rng.uniform(0.0, 25.5, n), np.exp(rng.uniform(np.log(1e-6), np.log(25.5), n))])
    x = np.concatenate([rng.uniform(0.0, 25.5, n), np.exp(rng.uniform(np.log(1e-30), np.log(25.5), n))])
    return v, rng.permutation(x)


def test_float32_below_debye_against_arb():
    """float32 takes shorter branch-free kernels below the Debye region (fewer terms and nodes,
    log-space prefactor): still within F32_TOL of Arb, relative to max(1, |log|)."""
    flint = pytest.importorskip("flint")
    flint.ctx.prec = 128
    v, x = _box_sample(np.random.default_rng(22), 600)
    v, x = v.astype(np.float32), x.astype(np.float32)
    keep = (v.astype(np.float64) ** 2 + x.astype(np.float64) ** 2 < 25.5 ** 2) & (x > 0)
    v, x = v[keep], x[keep]
    arb = flint.arb
    pairs = list(zip(v.astype(np.float64), x.astype(np.float64)))
    li = np.array([float(arb(b).bessel_i(arb(a)).log().mid()) for a, b in pairs])
    lk = np.array([float(arb(b).bessel_k(arb(a)).log().mid()) for a, b in pairs])
    xd = x.astype(np.float64)
    for name, want in (("log_iv", li), ("log_ive", li - xd), ("log_kv", lk), ("log_kve", lk + xd)):
        got = fn(name)(v, x)
        assert got.dtype == np.float32
        err = np.abs(got.astype(np.float64) - want) / np.maximum(1.0, np.abs(want))
        assert err.max() <= F32_TOL, f"{name}: {err.max():.3g} at v={v[err.argmax()]!r} x={x[err.argmax()]!r}"


def _float_class_sample(rng, n):
    """float32 points of the float kernels' classes (bessel/debye_float.hpp) and next to their
    edges: kind F (v <= x) and G (x <= 0.3 v) over hyp in [25.5, 1e19], the edges x = 0.3 v and
    x = v and the band between (the ratios' float classes), the Debye circle hyp = 25.5, v or x
    near 1e19 and x down to v / 1e36."""
    h = np.exp(rng.uniform(np.log(25.5), np.log(1e19), n))
    zf = np.exp(rng.uniform(0.0, np.log(1e8), n))          # x / v for kind F
    zg = np.exp(rng.uniform(np.log(1e-35), np.log(0.3), n))  # x / v for kind G
    parts = [(h / np.hypot(1, zf), h * zf / np.hypot(1, zf)), (h / np.hypot(1, zg), h * zg / np.hypot(1, zg))]
    vv = np.exp(rng.uniform(np.log(30.0), np.log(1e6), n))
    for z in (0.3, 1.0):
        parts.append((vv, vv * z * (1 + rng.uniform(-1e-3, 1e-3, n))))
    parts.append((vv, vv * rng.uniform(0.3, 1.0, n)))  # kinds G and E (the ratios' float classes)
    t = rng.uniform(0, np.pi / 2, n)
    parts.append((25.5 * np.cos(t) * (1 + 1e-6), 25.5 * np.sin(t) * (1 + 1e-6)))
    big = np.exp(rng.uniform(np.log(1e17), np.log(1e19), n))
    parts += [(big, big * np.exp(rng.uniform(0, 2, n))), (big, big * 10.0 ** rng.uniform(-30, -1, n))]
    v = np.concatenate([a for a, _ in parts]).astype(np.float32)
    x = np.concatenate([b for _, b in parts]).astype(np.float32)
    return v, x


def _check_float32_against_float64(names, v, x, rng):
    """Each function on float32 (v, x) within F32_TOL of its float64 values at the same inputs
    (relative to max(1, |log|) for the logs, to the value otherwise), and on 400 of them the
    block loop's bits equal the scalar function's."""
    vd, xd = v.astype(np.float64), x.astype(np.float64)
    for name in names:
        f = fn(name)
        got, want = f(v, x), f(vd, xd)
        assert got.dtype == np.float32
        scale = np.maximum(1.0, np.abs(want)) if name.startswith("log") else np.abs(want)
        err = np.abs(got.astype(np.float64) - want) / scale
        assert err.max() <= F32_TOL, f"{name}: {err.max():.3g} at v={v[err.argmax()]!r} x={x[err.argmax()]!r}"
        pick = rng.choice(v.size, 400, replace=False)
        single = np.array([f(v[i], x[i]) for i in pick], dtype=np.float32)
        np.testing.assert_array_equal(got[pick], single, err_msg=f"{name}: array vs per-element")


def test_float32_debye_kernels_in_float():
    """The float32 functions evaluate log I, log K, their scaled forms and the ratios in float
    arithmetic on part of the Debye region (bessel/debye_float.hpp). There, relative to
    max(1, |log|) for the logs and to the value for the ratios: within F32_TOL of Arb on a sample
    (the logs, I_{v+1}/I_v and I_v'/I_v), within F32_TOL of the float64 functions at the same
    inputs on 10^5 points (the float64 ones are within 1e-14 of Arb, test_accuracy_float64), and
    the block loop gives the scalar function's bits."""
    flint = pytest.importorskip("flint")
    flint.ctx.prec = 128
    rng = np.random.default_rng(31)
    v, x = _float_class_sample(rng, 15000)
    vd, xd = v.astype(np.float64), x.astype(np.float64)
    _check_float32_against_float64(("log_iv", "log_ive", "log_kv", "log_kve", "bessel_iv_ratio", "dlog_iv",
                                    "dlog_kv"), v, x, rng)
    def arb_log(kind, a, b):  # log I_a(b) or log K_a(b), the precision raised until the ball is tight
        for prec in (128, 512, 2048):
            flint.ctx.prec = prec
            r = getattr(flint.arb(b), kind)(flint.arb(a)).log()
            if r.is_finite() and r.rad() <= 1e-20 * max(1.0, abs(float(r.mid()))):
                return float(r.mid())
        raise AssertionError(f"Arb: no tight {kind} at v={a!r} x={b!r}")

    # (Arb's Bessel functions do not converge at orders and arguments ~1e18, nor for K at large
    # orders and tiny arguments: the sample for Arb stays in v, x <= 1e5, x >= 1e-10; the
    # comparison with float64 above covers the rest)
    pick = rng.choice(np.flatnonzero((np.maximum(vd, xd) <= 1e5) & (xd >= 1e-10)), 300, replace=False)
    pairs = [(float(vd[i]), float(xd[i])) for i in pick]
    li = np.array([arb_log("bessel_i", a, b) for a, b in pairs])
    lk = np.array([arb_log("bessel_k", a, b) for a, b in pairs])
    li1 = np.array([arb_log("bessel_i", a + 1, b) for a, b in pairs])
    ratio = np.exp(li1 - li)  # I_{v+1}/I_v, to ~1e-16 relative (the logs to 1e-20 relative)
    for name, want in (("log_iv", li), ("log_ive", li - xd[pick]), ("log_kv", lk), ("log_kve", lk + xd[pick]),
                       ("bessel_iv_ratio", ratio), ("dlog_iv", vd[pick] / xd[pick] + ratio)):
        got = fn(name)(v[pick], x[pick]).astype(np.float64)
        scale = np.maximum(1.0, np.abs(want)) if name.startswith("log") else np.abs(want)
        err = np.abs(got - want) / scale
        assert err.max() <= F32_TOL, f"{name} vs Arb: {err.max():.3g} at v={v[pick][err.argmax()]!r}"


def test_float32_temme_quadrature_in_float():
    """log K, log K e^x and K'/K in float32 on K's quadrature classes of the box (x > 1,
    v^2 + x^2 < 25.5^2: bessel/temme_float.hpp, float arithmetic): within F32_TOL of the float64
    functions (relative to max(1, |log|), to the value for K'/K) on 2 10^5 points with the class
    edges, half-integer and integer orders; against Arb on a sample; the block loop gives the
    scalar function's bits."""
    flint = pytest.importorskip("flint")
    rng = np.random.default_rng(32)
    n = 200_000
    v = np.concatenate([rng.uniform(0, 25.5, n), rng.integers(0, 25, n // 8) + 0.5, rng.integers(0, 25, n // 8) + 0.0])
    x = np.concatenate([rng.uniform(1.0, 25.5, n), rng.uniform(1.0, 25.5, n // 4)])
    x[: n // 10] = rng.choice([1.0, 1.7, 3.0, 8.0], n // 10) * (1 + rng.uniform(-1e-6, 1e-6, n // 10))
    v, x = v.astype(np.float32), x.astype(np.float32)
    keep = (v.astype(np.float64) ** 2 + x.astype(np.float64) ** 2 < 650.25) & (x > 1)
    v, x = v[keep], x[keep]
    vd, xd = v.astype(np.float64), x.astype(np.float64)
    _check_float32_against_float64(("log_kv", "log_kve", "dlog_kv"), v, x, rng)
    flint.ctx.prec = 128
    pick = rng.choice(v.size, 200, replace=False)
    want = np.array([float(flint.arb(b).bessel_k(flint.arb(a)).log().mid()) for a, b in zip(vd[pick], xd[pick])])
    err = np.abs(fn("log_kv")(v[pick], x[pick]).astype(np.float64) - want) / np.maximum(1.0, np.abs(want))
    assert err.max() <= F32_TOL


def test_float32_box_series_in_float():
    """log I and log I e^-x in float32 where the box's power series has x < 4 (its sum S in float,
    bessel/series_fast.hpp series_sum<float>; the prefactor stays double): within F32_TOL of float64,
    with tiny x, the class edges 1e-3, 1 and 4, half-integer orders; the block loop gives the
    scalar function's bits."""
    rng = np.random.default_rng(33)
    n = 200_000
    v = np.concatenate([rng.uniform(0, 25.5, n), rng.integers(0, 25, n // 4) + 0.5])
    x = np.concatenate([np.exp(rng.uniform(np.log(1e-30), np.log(4.0), n)), rng.uniform(0, 4.0, n // 4)])
    x[: n // 10] = rng.choice([1e-3, 1.0, 4.0], n // 10) * (1 + rng.uniform(-1e-6, 1e-6, n // 10))
    v, x = v.astype(np.float32), x.astype(np.float32)
    keep = (v.astype(np.float64) ** 2 + x.astype(np.float64) ** 2 < 650.25) & (x < 4) & (x > 0)
    _check_float32_against_float64(("log_iv", "log_ive"), v[keep], x[keep], rng)


def test_float32_simd_levels_agree():
    """The float32 functions (float kernels included) give the same bits on every x86 SIMD level
    this machine and build have (KERNKIT_SIMD caps the level)."""
    order = ["baseline", "avx2", "avx512"]
    facts = kernkit.info()
    isas = [i for i in order[: order.index(facts["simd"]) + 1] if i in facts["simd_built"].split(",")]
    code = ("import hashlib, numpy as np, kernkit\n"
            "rng = np.random.default_rng(5)\n"
            "v = np.exp(rng.uniform(np.log(1e-2), np.log(1e7), 200000)).astype(np.float32)\n"
            "x = np.exp(rng.uniform(np.log(1e-3), np.log(1e8), 200000)).astype(np.float32)\n"
            "r = [getattr(kernkit, n)(v, x) for n in ('log_iv', 'log_ive', 'log_kv', 'log_kve')]\n"
            "print(kernkit.info()['simd'], hashlib.sha1(np.concatenate(r).tobytes()).hexdigest())")
    out = {}
    for isa in isas:
        level, digest = subprocess.run([sys.executable, "-c", code], env={**os.environ, "KERNKIT_SIMD": isa},
                                       capture_output=True, text=True, check=True).stdout.split()
        assert level == isa
        out[isa] = digest
    assert len(set(out.values())) == 1, out


def test_ratios_below_debye_against_arb():
    """The ratio and both log-derivatives in the small box, v >= 0 (branch-free series and Temme
    kernels; K's below x = 1e-3 the looped code) against Arb: float64 within RAT_REL, float32
    within F32_TOL, relative. (Negative orders: test_negative_orders_reflection; the ratio can
    cross zero there.)"""
    flint = pytest.importorskip("flint")
    flint.ctx.prec = 200
    v, x = _box_sample(np.random.default_rng(23), 400)
    keep = (v ** 2 + x ** 2 < 25.5 ** 2) & (x > 0)
    for dt in (np.float64, np.float32):
        vd, xd = v[keep].astype(dt).astype(np.float64), x[keep].astype(dt).astype(np.float64)
        arb = flint.arb
        A, B = [arb(a) for a in vd], [arb(b) for b in xd]
        ri = np.array([float((b.bessel_i(a + 1) / b.bessel_i(a)).mid()) for a, b in zip(A, B)])
        dk = np.array([float((-b.bessel_k(a - 1) / b.bessel_k(a) - a / b).mid()) for a, b in zip(A, B)])
        tol = RAT_REL if dt == np.float64 else F32_TOL
        for name, want in (("bessel_iv_ratio", ri), ("dlog_iv", ri + vd / xd), ("dlog_kv", dk)):
            got = fn(name)(vd.astype(dt), xd.astype(dt))
            assert got.dtype == dt
            ok = np.isfinite(want) & (want != 0) & (np.abs(want) < (3e38 if dt == np.float32 else np.inf))
            err = np.abs(got[ok].astype(np.float64) / want[ok] - 1)
            assert err.max() <= tol, f"{name} {dt.__name__}: {err.max():.3g} at v={vd[ok][err.argmax()]!r} " \
                f"x={xd[ok][err.argmax()]!r}"


def test_wronskian():
    """I_v K_{v+1} + I_{v+1} K_v = 1/x, on the scaled logs (the e^{+-x} cancel)."""
    v, x = _box(3000, 1e-3, 1e4, 1e-3, 1e6, 1)
    i0, i1 = kernkit.log_ive(v, x), kernkit.log_ive(v + 1, x)
    k0, k1 = kernkit.log_kve(v, x), kernkit.log_kve(v + 1, x)
    a = i0 + k1
    b = i1 + k0
    lhs = np.logaddexp(a, b)
    rhs = -np.log(x)
    # each log is accurate to 1e-14 relative (1e-15 absolute below 1): the residual is
    # bounded by the sizes of the four logs (a and b themselves may cancel to O(1))
    tol = 2e-14 * (np.abs(i0) + np.abs(i1) + np.abs(k0) + np.abs(k1) + np.abs(rhs) + 1)
    res = np.abs(lhs - rhs)
    i = np.argmax(res / tol)
    assert (res <= tol).all(), f"Wronskian residual {res[i]:.3g} > {tol[i]:.3g} at v={v[i]!r} x={x[i]!r}"


def test_recurrence_i():
    """I_{v-1} - I_{v+1} = (2v/x) I_v  <=>  I_{v-1} = I_{v+1} + (2v/x) I_v (all positive)."""
    v, x = _box(3000, 1.0, 1e4, 1e-3, 1e6, 2)
    lm = kernkit.log_ive(v - 1, x)
    lp = kernkit.log_ive(v + 1, x)
    l0 = kernkit.log_ive(v, x)
    rhs = np.logaddexp(lp, np.log(2 * v / x) + l0)
    tol = 4e-14 * (np.abs(lm) + np.abs(lp) + np.abs(l0) + np.abs(np.log(2 * v / x)) + 1)
    res = np.abs(lm - rhs)
    i = np.argmax(res / tol)
    assert (res <= tol).all(), f"I recurrence residual {res[i]:.3g} at v={v[i]!r} x={x[i]!r}"


def test_recurrence_k():
    """K_{v+1} - K_{v-1} = (2v/x) K_v  <=>  K_{v+1} = K_{v-1} + (2v/x) K_v."""
    v, x = _box(3000, 1e-2, 1e4, 1e-3, 1e6, 3)
    lm = kernkit.log_kve(v - 1, x)  # K_{v-1} = K_{1-v} for v < 1
    lp = kernkit.log_kve(v + 1, x)
    l0 = kernkit.log_kve(v, x)
    rhs = np.logaddexp(lm, np.log(2 * v / x) + l0)
    tol = 4e-14 * (np.abs(lm) + np.abs(lp) + np.abs(l0) + np.abs(np.log(2 * v / x)) + 1)
    res = np.abs(lp - rhs)
    i = np.argmax(res / tol)
    assert (res <= tol).all(), f"K recurrence residual {res[i]:.3g} at v={v[i]!r} x={x[i]!r}"


def test_ratio_consistent_with_log_iv():
    """ratio = exp(log I_{v+1} - log I_v) where the logs are moderate (|log I| <= ~300)."""
    v, x = _box(3000, 1e-3, 200, 1e-2, 300, 4)
    a, b = kernkit.log_iv(v + 1, x), kernkit.log_iv(v, x)
    r = kernkit.bessel_iv_ratio(v, x)
    # from the 1e-14 bounds on the logs: |d(a - b)| <= 1e-14 (|a| + |b| + 2)
    tol = 1e-14 * (np.abs(a) + np.abs(b) + 2) + 4e-16
    rel = np.abs(r / np.exp(a - b) - 1)
    i = np.argmax(rel / tol)
    assert (rel <= tol).all(), f"ratio vs exp(dlog): {rel[i]:.3g} at v={v[i]!r} x={x[i]!r}"


def test_dlog_iv_is_ratio_plus_v_over_x():
    v, x = _box(3000, 1e-3, 1e5, 1e-3, 1e6, 5)
    d = kernkit.dlog_iv(v, x)
    s = kernkit.bessel_iv_ratio(v, x) + v / x
    np.testing.assert_allclose(d, s, rtol=3e-14, atol=0)


def test_dlog_kv_consistent_with_log_kv():
    """dlog_kv against a centred finite difference of log_kv and against
    v/x - exp(log K_{v+1} - log K_v), at moderate sizes."""
    v, x = _box(2000, 1e-2, 30, 0.05, 100, 6)
    h = 1e-4 * x
    fd = (kernkit.log_kv(v, x + h) - kernkit.log_kv(v, x - h)) / (2 * h)
    d = kernkit.dlog_kv(v, x)
    np.testing.assert_allclose(d, fd, rtol=1e-6)
    alt = v / x - np.exp(kernkit.log_kv(v + 1, x) - kernkit.log_kv(v, x))
    np.testing.assert_allclose(d, alt, rtol=1e-12)
    fdi = (kernkit.log_iv(v, x + h) - kernkit.log_iv(v, x - h)) / (2 * h)
    np.testing.assert_allclose(kernkit.dlog_iv(v, x), fdi, rtol=1e-6)


def test_scaled_forms_consistent():
    v, x = _box(2000, 1e-3, 1e3, 1e-3, 1e3, 7)
    np.testing.assert_allclose(kernkit.log_ive(v, x), kernkit.log_iv(v, x) - x, rtol=0,
                               atol=1e-14 * (1 + x.max()))
    np.testing.assert_allclose(kernkit.log_kve(v, x), kernkit.log_kv(v, x) + x, rtol=0,
                               atol=1e-14 * (1 + x.max()))


# --------------------------------------------------------------------------- scipy agreement

def test_agrees_with_scipy_moderate_box():
    """Where scipy's scaled functions are finite, normal and accurate (|v| <= 50, moderate x)."""
    v, x = _box(4000, 1e-3, 50, 1e-2, 500, 8)
    with np.errstate(all="ignore"):
        ive, kve = sc.ive(v, x), sc.kve(v, x)
        si = np.log(ive) + x
        sk = np.log(kve) - x
        sr = sc.ive(v + 1, x) / ive
    ok = (ive > 1e-300) & (kve > 1e-300) & (kve < 1e300)
    assert ok.mean() > 0.95
    for name, s in (("log_iv", si), ("log_kv", sk)):
        got = fn(name)(v, x)
        err = np.abs(got - s)[ok] / np.maximum(1, np.abs(s[ok]))
        i = np.argmax(err)
        assert err.max() <= 1e-13, f"{name} vs scipy: {err[i]:.3g} at v={v[ok][i]!r} x={x[ok][i]!r}"
    got = kernkit.bessel_iv_ratio(v, x)
    np.testing.assert_allclose(got[ok], sr[ok], rtol=1e-13)


# --------------------------------------------------------------------------- edges

def test_exact_limits_at_zero():
    vs = np.array([0.0, 1e-300, 1e-8, 0.5, 1.0, 2.5, 10.0, 1e3, 1e5, 1e300])
    z = np.zeros_like(vs)
    li = kernkit.log_iv(vs, z)
    assert li[0] == 0.0
    assert (li[1:] == -np.inf).all(), li
    assert kernkit.log_ive(0.0, 0.0) == 0.0
    assert (kernkit.log_ive(vs[1:], z[1:]) == -np.inf).all()
    assert (kernkit.log_kv(vs, z) == np.inf).all()
    assert (kernkit.log_kve(vs, z) == np.inf).all()
    assert (kernkit.log_kv(-vs[1:], z[1:]) == np.inf).all()
    # I_{v+1}(x)/I_v(x) ~ x / (2v + 2) -> 0; d/dx log I_0 = I_1/I_0 -> 0; d/dx log K_v -> -inf
    assert (kernkit.bessel_iv_ratio(vs, z) == 0).all()
    assert kernkit.dlog_iv(0.0, 0.0) == 0.0
    assert (kernkit.dlog_iv(vs[1:], z[1:]) == np.inf).all()
    assert (kernkit.dlog_kv(vs, z) == -np.inf).all()


def test_infinite_argument():
    """Limits as x -> inf (finite v): log I, log K -> +-inf, scaled logs -> -inf
    (like -log(2 pi x)/2), ratio -> 1, dlog_iv -> 1, dlog_kv -> -1."""
    vs = np.array([0.0, 0.5, 1.0, 10.0, 1e3, 1e5])
    inf = np.full_like(vs, np.inf)
    assert (kernkit.log_iv(vs, inf) == np.inf).all()
    assert (kernkit.log_kv(vs, inf) == -np.inf).all()
    assert (kernkit.log_ive(vs, inf) == -np.inf).all()
    assert (kernkit.log_kve(vs, inf) == -np.inf).all()
    assert (kernkit.bessel_iv_ratio(vs, inf) == 1).all()
    assert (kernkit.dlog_iv(vs, inf) == 1).all()
    assert (kernkit.dlog_kv(vs, inf) == -1).all()


def test_nan_propagation():
    nan = np.nan
    v = np.array([nan, 1.0, nan, 0.0, -2.5])
    x = np.array([1.0, nan, nan, nan, nan])
    for name in ALL_NAMES:
        for dt in (np.float64, np.float32):
            r = fn(name)(v.astype(dt), x.astype(dt))
            assert np.isnan(r).all(), (name, dt, r)
        assert np.isnan(fn(name)(nan, 0.0)), name


def test_negative_x_follows_scipy():
    """x < 0: I_v(-x) = (-1)^n I_n(x) for integer n, not real for non-integer v;
    K_v(x) is not real. Compared with np.log(scipy.special.iv(v, x)) etc."""
    v = np.array([0.0, 1.0, 2.0, 3.0, 4.0, -1.0, -2.0, -3.0, 0.5, 1.5, 2.3, -0.7, 7.0, 8.0, 100.0])
    x = -np.array([0.1, 1.0, 5.0, 30.0, 200.0])
    V, X = np.broadcast_arrays(v[:, None], x[None, :])
    with np.errstate(all="ignore"):
        iv = sc.iv(V, X)
        exp_li = np.log(iv)
        exp_lie = np.log(sc.ive(V, X))
        exp_lk = np.log(sc.kv(V, X))
        exp_rat = sc.iv(V + 1, X) / iv
    li = kernkit.log_iv(V, X)
    np.testing.assert_array_equal(np.isnan(li), np.isnan(exp_li))
    fin = np.isfinite(exp_li)
    assert fin.sum() > 10
    np.testing.assert_allclose(li[fin], exp_li[fin], rtol=1e-13, atol=1e-13)
    lie = kernkit.log_ive(V, X)
    np.testing.assert_array_equal(np.isnan(lie), np.isnan(exp_lie))
    fin = np.isfinite(exp_lie)
    np.testing.assert_allclose(lie[fin], exp_lie[fin], rtol=1e-13, atol=1e-13)
    assert np.isnan(exp_lk).all()
    assert np.isnan(kernkit.log_kv(V, X)).all()
    assert np.isnan(kernkit.log_kve(V, X)).all()
    assert np.isnan(kernkit.dlog_kv(V, X)).all()
    rat = kernkit.bessel_iv_ratio(V, X)
    np.testing.assert_array_equal(np.isnan(rat), np.isnan(exp_rat))
    fin = np.isfinite(exp_rat)
    np.testing.assert_allclose(rat[fin], exp_rat[fin], rtol=1e-11)  # scipy itself ~1e-13
    # the derivative of log|I_n| is odd in x for integer n
    ints = (V == np.round(V)) & np.isfinite(exp_li)
    np.testing.assert_allclose(kernkit.dlog_iv(V, X)[ints], -kernkit.dlog_iv(V, -X)[ints], rtol=1e-13)
    assert np.isnan(kernkit.dlog_iv(V, X)[V != np.round(V)]).all()


_EXTREME_SCRIPT = textwrap.dedent("""
    import json, sys, numpy as np, kernkit
    vs = [0.0, 1e-300, 0.5, 1.0, 1e10, 1e100, 1e300]
    xs = [5e-324, 1e-300, 1e-10, 1.0, 1e10, 1e100, 1e300]
    V, X = np.meshgrid(vs, xs, indexing="ij")
    out = {n: getattr(kernkit, n)(V, X).tolist() for n in sys.argv[1:]}
    out.update({n + "_32": getattr(kernkit, n)(V.astype(np.float32), X.astype(np.float32)).tolist()
                for n in sys.argv[1:]})
    print(json.dumps({"v": V.tolist(), "x": X.tolist(), "out": out}))
""")


def _leading_logs(v, x):
    """Leading-order log I_v(x), log K_v(x) where that is accurate to ~1e-10 relative
    to max(1, |value|); None where no simple form applies."""
    v, x = float(v), float(x)
    lx = math.log(x)
    if v == 0.5:  # closed forms
        li = 0.5 * (math.log(2 / math.pi) - lx) + (
            lx if x < 1e-8 else x - math.log(2) + math.log1p(-math.exp(-2 * x)))
        return li, 0.5 * (math.log(math.pi / 2) - lx) - x
    if x * x < 1e-12 * (v + 1) and (v == 0 or v >= 1):  # small x: series leading terms
        li = v * (lx - math.log(2)) - math.lgamma(v + 1)
        lk = (math.log(-lx + math.log(2) - 0.5772156649015329) if v == 0 else
              math.lgamma(v) - v * (lx - math.log(2)) - math.log(2))
        return li, lk
    if x > 1e12 * (v * v + 1):  # large x
        return x - 0.5 * math.log(2 * math.pi * x), -x + 0.5 * math.log(math.pi / (2 * x))
    if v >= 1e10:  # uniform large order (Debye), leading terms
        lz = lx - math.log(v)
        z = math.exp(lz) if lz < 700 else math.inf
        r = math.hypot(1.0, z)
        eta = r + lz - math.log1p(r)
        tail = 0.5 * math.log(2 * math.pi * v) + 0.5 * (math.log(r) if math.isfinite(r) else lz)
        return v * eta - tail, -v * eta - tail + math.log(math.pi)
    return None


def test_extreme_arguments_finite_and_no_hang():
    """v and x up to 1e300, x down to 5e-324: finite where the truth is finite, close to the
    leading asymptotics, and returns promptly (run in a child process with a time limit)."""
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", _EXTREME_SCRIPT, *ALL_NAMES],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    V, X, out = np.array(data["v"]), np.array(data["x"]), data["out"]
    with np.errstate(all="ignore"):
        deriv_ok = (V + 1) / X < 1e300  # |d/dx log| <~ (2v + 1)/x: beyond this it overflows
    for name in ALL_NAMES:
        r = np.array(out[name], dtype=float)
        m = deriv_ok if name.startswith("dlog") else np.ones(V.shape, bool)
        bad = m & ~np.isfinite(r)
        assert not bad.any(), (name, V[bad], X[bad], r[bad])
    li, lk = np.array(out["log_iv"]), np.array(out["log_kv"])
    checked = 0
    for idx in np.ndindex(V.shape):
        lead = _leading_logs(V[idx], X[idx])
        if lead is None:
            continue
        checked += 1
        for got, exp, nm in ((li[idx], lead[0], "log_iv"), (lk[idx], lead[1], "log_kv")):
            assert math.isfinite(exp), (nm, V[idx], X[idx], exp)
            assert abs(got - exp) <= 1e-10 * max(1.0, abs(exp)), (nm, V[idx], X[idx], exp, got)
    assert checked >= 25
    # float32: finite where the true value (float64 result) fits in float32
    for name in ALL_NAMES:
        r64 = np.array(out[name], dtype=float)
        r32 = np.array(out[name + "_32"], dtype=float)
        with np.errstate(over="ignore"):
            V32 = V.astype(np.float32).astype(float)
            X32 = X.astype(np.float32).astype(float)
        same = (V32 == V) & (X32 == X) & (np.abs(r64) < 1e38) & (np.abs(r64) > 1e-37)
        assert np.isfinite(r32[same]).all(), (name, V[same][~np.isfinite(r32[same])],
                                               X[same][~np.isfinite(r32[same])])


# --------------------------------------------------------------------------- ufunc behaviour

def test_is_numpy_ufunc():
    for name in ALL_NAMES:
        f = fn(name)
        assert isinstance(f.ufunc, np.ufunc)
        assert f.ufunc.nin == 2 and f.ufunc.nout == 1
        assert callable(f)


def test_broadcasting():
    x = np.linspace(0.1, 50, 7)
    v = np.array([[0.0], [1.5], [30.0]])
    for name in ALL_NAMES:
        f = fn(name)
        r = f(2.5, x)
        assert r.shape == (7,)
        np.testing.assert_array_equal(r, [f(2.5, xi) for xi in x])
        r2 = f(v, x)
        assert r2.shape == (3, 7)
        for i in range(3):
            for j in range(7):
                assert r2[i, j] == f(v[i, 0], x[j])
    with pytest.raises(ValueError):
        kernkit.log_iv(np.ones(3), np.ones(4))
    with pytest.raises(ValueError):
        kernkit.log_kv(np.ones((2, 3)), np.ones((3, 2)))


def test_out_and_where():
    v, x = _box(100, 1e-2, 1e3, 1e-2, 1e3, 9)
    for name in ALL_NAMES:
        f = fn(name)
        full = f(v, x)
        out = np.empty_like(x)
        r = f(v, x, out=out)
        assert r is out
        np.testing.assert_array_equal(out, full)
        out2 = np.full_like(x, -12345.0)
        mask = np.arange(x.size) % 3 == 0
        f(v, x, out=out2, where=mask)
        np.testing.assert_array_equal(out2[mask], full[mask])
        assert (out2[~mask] == -12345.0).all()
        out3 = np.empty(x.shape, np.float32)
        f(v.astype(np.float32), x.astype(np.float32), out=(out3,))
        np.testing.assert_array_equal(out3, f(v.astype(np.float32), x.astype(np.float32)))


def test_dtype_rules():
    v = np.array([0.5, 2.0, 10.0])
    x = np.array([0.5, 3.0, 20.0])
    f32, f64 = np.float32, np.float64
    cases = [
        (v.astype(f32), x.astype(f32)),
        (v.astype(f32), x.astype(f64)),
        (v.astype(f64), x.astype(f32)),
        (v.astype(f64), x.astype(f64)),
        (v.astype(np.int64), x.astype(np.int64)),
        (v.astype(np.int32), x.astype(f32)),
        (v.astype(np.int64), x),
        (2, x.astype(f32)),
        (2.5, x.astype(f32)),
        (np.float64(2.5), x.astype(f32)),
    ]
    for name in ALL_NAMES:
        f = fn(name)
        for a, b in cases:
            r = f(a, b)
            expect = sc.ive(a, b).dtype  # scipy.special's own dtype resolution
            assert r.dtype == expect, (name, getattr(a, "dtype", type(a)), b.dtype, r.dtype, expect)
        assert f(v.astype(f32), x.astype(f32)).dtype == f32
        assert f(v.astype(f32), x).dtype == f64
        ri = f(np.array([1, 2, 3]), np.array([1, 4, 9]))
        assert ri.dtype == f64
        np.testing.assert_array_equal(ri, f(np.array([1.0, 2.0, 3.0]), np.array([1.0, 4.0, 9.0])))
        with pytest.raises(TypeError):
            f(v.astype(np.complex128), x)
        with pytest.raises(TypeError):
            f(v, x + 1j)


def test_empty_and_scalars():
    for name in ALL_NAMES:
        f = fn(name)
        assert f(np.empty(0), np.empty(0)).shape == (0,)
        assert f(1.0, np.empty((3, 0))).shape == (3, 0)
        s = f(1.5, 2.0)
        assert np.ndim(s) == 0 and isinstance(s, (float, np.floating))
        z = f(np.array(1.5), np.array(2.0))
        assert np.ndim(z) == 0
        assert float(s) == float(z) == float(f(np.array([1.5]), np.array([2.0]))[0])


def test_noncontiguous_and_readonly():
    v, x = _box(3000, 1e-2, 1e4, 1e-3, 1e5, 10)
    M = np.stack([v, x]).reshape(2, 60, 50)
    for name in ALL_NAMES:
        f = fn(name)
        ref = f(v, x)
        np.testing.assert_array_equal(f(v[::3], x[::3]), ref[::3])
        vt, xt = M[0].T, M[1].T  # Fortran-ordered views
        np.testing.assert_array_equal(f(vt, xt), ref.reshape(60, 50).T)
        vr, xr = v.copy(), x.copy()
        vr.setflags(write=False)
        xr.setflags(write=False)
        np.testing.assert_array_equal(f(vr, xr), ref)
        rec = np.zeros(200, dtype=[("v", np.float64), ("pad", np.int8), ("x", np.float64)])
        rec["v"], rec["x"] = v[:200], x[:200]  # byte strides not a multiple of 8
        np.testing.assert_array_equal(f(rec["v"], rec["x"]), ref[:200])


def _ulps(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    with np.errstate(all="ignore"):
        u = np.abs(a - b) / np.spacing(np.maximum(np.abs(a), np.abs(b)))
    return np.where(same, 0.0, u)


@pytest.fixture
def restore_threads():
    n = kernkit.get_num_threads()
    yield
    kernkit.set_num_threads(n)


def test_large_array_and_threads(restore_threads):
    """2^20 elements at once (threads and SIMD paths) agree with per-element calls, and
    1 and 2 threads give identical results."""
    n = 1 << 20
    v, x = _box(n, 1e-2, 1e5, 1e-3, 1e6, 12)
    rng = np.random.default_rng(13)
    pick = rng.choice(n, 300, replace=False)
    assert kernkit.get_num_threads() >= 1
    for name in ALL_NAMES:
        f = fn(name)
        kernkit.set_num_threads(1)
        assert kernkit.get_num_threads() == 1
        r1 = f(v, x)
        kernkit.set_num_threads(2)
        assert kernkit.get_num_threads() == 2
        r2 = f(v, x)
        np.testing.assert_array_equal(r1, r2, err_msg=f"{name}: 1 vs 2 threads differ")
        # the block loop and the scalar function run the same kernels: the same bits
        single = np.array([f(v[i], x[i]) for i in pick])
        u = _ulps(r2[pick], single)
        assert u.max() == 0, f"{name}: array vs per-element differ by {u.max()} ulp at " \
            f"v={v[pick][np.argmax(u)]!r} x={x[pick][np.argmax(u)]!r}"
        chunks = np.concatenate([f(v[i:i + 1000], x[i:i + 1000]) for i in range(0, 1 << 16, 1000)])
        assert _ulps(r2[:chunks.size], chunks).max() == 0
        kernkit.set_num_threads(1)
        r32_1 = f(v[: 1 << 18].astype(np.float32), x[: 1 << 18].astype(np.float32))
        kernkit.set_num_threads(2)
        r32_2 = f(v[: 1 << 18].astype(np.float32), x[: 1 << 18].astype(np.float32))
        np.testing.assert_array_equal(r32_1, r32_2)


def test_cuda_compact_kernels_match_the_per_class_ones(tmp_path: Path) -> None:
    """The CUDA build evaluates each class by one compact instantiation with run-time term counts
    (kernel size: the instruction cache); tests/cpp/special_compact_main.cpp checks it against the
    CPU's per-class instantiations bit for bit, on the host without FMA contraction."""
    import shutil

    cxx = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("needs a C++17 compiler")
    root = Path(__file__).resolve().parents[2]
    exe = tmp_path / "special_compact"
    build = subprocess.run([cxx, "-std=c++17", "-O1", "-ffp-contract=off", f"-I{root / 'cpp' / 'include'}",
                            str(root / "tests" / "cpp" / "special_compact_main.cpp"), "-o", str(exe)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    res = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "all ok" in res.stdout, res.stdout[-4000:] + res.stderr[-2000:]


def test_cuda_glue_passes_addresses(monkeypatch: pytest.MonkeyPatch, fake_cuda: dict) -> None:
    """The Python side of a CUDA call without a GPU (torch CPU tensors dressed as CUDA ones): a
    stand-in for the address binding finds the arrays by address, checks the element count and
    dtype flag it is given and computes with the CPU ufunc; same dtypes and shapes go straight
    through, scalars, mixed dtypes and broadcasting are converted first."""
    torch = pytest.importorskip("torch")
    from kernkit import _core

    calls = []

    def fake_ptr_call(fn, n, v, x, out, f64, stream):
        a, b, o = (fake_cuda[p] for p in (v, x, out))
        assert a.numel() == b.numel() == o.numel() == n and all(t.is_contiguous() for t in (a, b, o))
        assert {a.dtype, b.dtype, o.dtype} == {torch.float64 if f64 else torch.float32}
        ufunc = next(u for u, i in _core.special_ufuncs.values() if i == fn)
        o.numpy()[...] = ufunc(a.numpy(), b.numpy())
        calls.append((fn, stream))

    monkeypatch.setattr(_core, "special_cuda_ptr", fake_ptr_call)
    rng = np.random.default_rng(17)
    v32 = rng.uniform(0, 20, (3, 5)).astype(np.float32)
    x32 = rng.uniform(0, 50, (3, 5)).astype(np.float32)
    cases = [(v32, x32), (v32.astype(np.float64), x32.astype(np.float64)), (v32, x32.astype(np.float64)),
             (2.5, x32), (v32[:, :1], x32[0]), (v32.T, x32.T)]  # (the last non-contiguous)
    for v, x in cases:
        tv = v if isinstance(v, float) else torch.from_numpy(np.asarray(v))
        got = kernkit.log_kv(tv, torch.from_numpy(np.asarray(x)))
        want = kernkit.log_kv(v, x)
        assert isinstance(got, torch.Tensor) and got.shape == want.shape
        assert str(got.dtype) == f"torch.{want.dtype}"
        np.testing.assert_array_equal(got.numpy(), want)
    assert len(calls) == len(cases) and {s for _, s in calls} == {1234}
    # autograd on CUDA tensors: the forward and its derivative (dlog_kv) both through the binding
    xg = torch.from_numpy(x32.astype(np.float64)).requires_grad_()
    (gx,) = torch.autograd.grad(kernkit.log_kv(2.5, xg).sum(), xg)
    np.testing.assert_array_equal(gx.numpy(), kernkit.dlog_kv(2.5, x32.astype(np.float64)))
    assert len(calls) == len(cases) + 2


def test_torch_cpu_tensors() -> None:
    """torch CPU tensors go through zero-copy numpy views (no DeprecationWarning from numpy's
    __array_wrap__ handling of tensors): tensor results, out= tensors written and returned."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    v, x = rng.uniform(0, 20, (3, 4)), rng.uniform(0, 50, (3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = kernkit.log_iv(torch.from_numpy(v), torch.from_numpy(x).T.contiguous().T)
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
        np.testing.assert_array_equal(got.numpy(), kernkit.log_iv(v, x))
        out = torch.empty(3, 4, dtype=torch.float32)
        assert kernkit.log_kv(torch.from_numpy(v).float(), 2.0, out=out) is out
        np.testing.assert_array_equal(out.numpy(), kernkit.log_kv(v.astype(np.float32), np.float32(2.0)))
        assert kernkit.bessel_iv_ratio(v, torch.from_numpy(x)).dtype == torch.float64


SPECIAL_NAMES = ["log_iv", "log_ive", "log_kv", "log_kve", "bessel_iv_ratio", "dlog_iv", "dlog_kv"]


@pytest.mark.parametrize("name", SPECIAL_NAMES)
def test_torch_autograd_in_x(name: str) -> None:
    """On torch tensors that require grad the functions are differentiable in x: gradcheck in
    float64 with v broadcast against x, and with a Python-scalar order; float32 keeps its dtype."""
    torch = pytest.importorskip("torch")
    f = getattr(kernkit, name)
    g = torch.Generator().manual_seed(3)
    v = torch.rand(3, 1, dtype=torch.float64, generator=g) * 10
    x = (torch.rand(4, dtype=torch.float64, generator=g) * 50 + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: f(v, t), (x,), eps=1e-6, atol=1e-8, rtol=1e-6)
    xs = (torch.rand(5, dtype=torch.float64, generator=g) * 3 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: f(2.5, t), (xs,), eps=1e-6, atol=1e-8, rtol=1e-6)
    x32 = x.detach().float().requires_grad_()
    y32 = f(v.float(), x32)
    assert y32.dtype == torch.float32 and y32.grad_fn is not None
    (gx32,) = torch.autograd.grad(y32.sum(), x32)
    (gx64,) = torch.autograd.grad(f(v, x).sum(), x)
    assert gx32.dtype == torch.float32
    np.testing.assert_allclose(gx32.numpy(), gx64.numpy(), rtol=2e-5, atol=1e-6)


def test_torch_autograd_ratio_derivative_at_large_x() -> None:
    """d/dx I_{v+1}/I_v from the Bessel equation, whose terms cancel (to ~1/x^2 at large x):
    against the same identity R' = 1 - R^2 - (2v+1) R/x evaluated in Arb at 256 bits, to the
    documented absolute error ~1e-16 T, T the largest term."""
    torch = pytest.importorskip("torch")
    flint = pytest.importorskip("flint")
    flint.ctx.prec = 256
    for v, xv in ((63.0, 1.0), (63.0, 150.0), (0.5, 1e4), (191.0, 2e3)):
        x = torch.tensor([xv], dtype=torch.float64, requires_grad=True)
        (got,) = torch.autograd.grad(kernkit.bessel_iv_ratio(v, x).sum(), x)
        a, b = flint.arb(v), flint.arb(xv)
        r = b.bessel_i(a + 1) / b.bessel_i(a)
        want = float((1 - r * r - (2 * a + 1) * r / b).mid())
        terms = max(1.0, float(((2 * a + 1) * r / b).mid()))
        assert abs(float(got[0]) - want) <= 4e-16 * terms


def test_torch_autograd_refusals() -> None:
    """The order v is not differentiated (an error at backward, never a silent zero); out= with
    tensors that require grad is refused; under no_grad the plain path runs."""
    torch = pytest.importorskip("torch")
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    v = torch.tensor([0.5, 3.0], dtype=torch.float64, requires_grad=True)
    y = kernkit.log_kv(v, x)
    with pytest.raises(NotImplementedError, match="order v"):
        y.sum().backward()
    with pytest.raises(TypeError, match="out"):
        kernkit.log_iv(1.0, x, out=torch.empty(2, dtype=torch.float64))
    with torch.no_grad():
        assert kernkit.log_iv(1.0, x).grad_fn is None
    (gx,) = torch.autograd.grad(kernkit.log_iv(v.detach(), x).sum(), x)
    np.testing.assert_allclose(gx.numpy(), kernkit.dlog_iv(v.detach().numpy(), x.detach().numpy()), rtol=1e-15)
