#!/usr/bin/env python3
"""Generate ``bessel_reference.npz``: high-precision reference values for kernkit's
log-Bessel functions, computed with python-flint (Arb ball arithmetic).

Run (deterministic; about 10 s on one core)::

    pip install python-flint==0.9.0
    python tests/data/make_bessel_reference.py [--check] [--out tests/data/bessel_reference.npz]

``--check`` compares the Arb values with scipy where scipy is reliable (|v| <= 50) and
stops if they differ by more than 1e-12.

What is stored, for every point (v, x) -- both float64, the exact inputs Arb sees:

=============  ==========================================================
``v``, ``x``   order and argument (float64)
``region``     int8 index into ``region_names`` (which sampler made it)
``<q>_hi``     float64 nearest to the reference value of quantity ``q``
``<q>_lo``     float64 remainder, so that ``hi + lo`` is the value to
               ~2^-106 relative (a double-double): errors below 1 ulp of
               a float64 result are measurable as ``(got - hi) - lo``
``prec``       the working precision (bits) that certified the point
=============  ==========================================================

Quantities ``q``:

* ``logiv``  log I_v(x)
* ``logive`` log I_v(x) - x                      (exponentially scaled)
* ``logkv``  log K_v(x)
* ``logkve`` log K_v(x) + x                      (exponentially scaled)
* ``ratio``  I_{v+1}(x) / I_v(x)
* ``dlogiv`` d/dx log I_v(x) = I_{v+1}/I_v + v/x
* ``dlogkv`` d/dx log K_v(x) = -K_{v+1}/K_v + v/x

Certification: each value is computed at 128 bits and the precision is
doubled (up to 4096 bits) until the Arb ball radius is below
``1e-30 * max(1, |mid|)`` for the logs and ``1e-30 * |mid|`` for the ratio
and derivatives.  Where Arb's K_v(x) cannot be resolved (very large order,
tiny x: its hypergeometric-U route cancels catastrophically) K is obtained by
the forward recurrence K_{u+k+1} = 2(u+k)/x K_{u+k} + K_{u+k-1} in ball
arithmetic from the orders u = frac(|v|) and u + 1, where every term is
positive, so no cancellation occurs and the ball radius stays rigorous.  A
quantity that still cannot be certified is stored as NaN (``<q>_hi`` NaN
with ``region`` kept), and listed by ``--verbose``.  For negative
non-integer v where I_v(x) < 0 the logs of I are stored as NaN: that is
``np.log(scipy.special.iv(v, x))``'s convention.

Points (regions), all drawn from ``numpy.random.default_rng(SEED)``:

* ``box``        log-uniform v in [1e-2, 1e5], x in [1e-3, 1e6] (the paper's box)
* ``wide``       log-uniform v in [1e-6, 1e5], x in [1e-300, 1e300]
* ``v0``         v = 0, x log-uniform in [1e-300, 1e300]
* ``int``        integer orders 1 .. 1e5 (log-spread), x log-uniform
* ``half``       half-integer orders 0.5 .. 1e5 + 0.5
* ``turning``    x = v (1 + d), d = +-10^U(-6, log10 0.5), v in [1e-1, 1e5]
* ``vmf``        v = p/2 - 1, p in {3, 64, ..., 100000}, kappa in [1e-2, 1e7]
* ``x709``       x in [709, 714] (where scipy's i0/i1 overflowed early)
* ``bigx``       x > 2**30 (scipy's kve is NaN there), incl. 2**30 +- ulps
* ``cusf``       the branch boundaries of the CUSF table (notes 1.2, plus the
                 two guards numericals7 adds), on and +-1e-9 relative off them
* ``mu20``       large-order mu_20 trouble spots: v in [1e3, 1e4], x = v^2/c,
                 c in [4, 9]
* ``negative``   negative orders, non-integer and integer, x in [1e-5, 1e5]
* ``f32``        v and x exactly representable in float32 (box + wider x),
                 for the float32 tests
* ``smallbox``   v^2 + x^2 < 25.5^2 (series and Temme paths): uniform, integer,
                 half-integer and tiny orders; x uniform, log-uniform to 1e-300,
                 and x = v (0.2 .. 1.2), where log I_v(x) is small

No kernkit, scipy or mpmath code is used to make the values (mpmath's Bessel K
is silently wrong at e.g. v = 639.002, x = 441.085).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

SEED = 20240911
GENERATOR_VERSION = 1
TOL = 1e-30
PRECS = (128, 256, 512, 1024, 2048, 4096)
QUANTITIES = ("logiv", "logive", "logkv", "logkve", "ratio", "dlogiv", "dlogkv")
REGION_NAMES = ("box", "wide", "v0", "int", "half", "turning", "vmf", "x709",
                "bigx", "cusf", "mu20", "negative", "f32", "smallbox")

# CUSF switching table (notes 1.2); used only to place points on its boundaries.
CUSF_BOUNDARIES = [
    # (kind, crossing value or line, free-coordinate range)
    ("x", 1400.0, ("v", 1e-3, 3.05)),
    ("v", 3.05, ("x", 1400.0, 1e6)),
    ("v", 3.1, ("x", 1100.0, 1e6)),
    ("line", (0.6229, -3.2318), ("x", 1.2e3, 1e9)),
    ("x", 30.0, ("v", 1e-3, 15.3919)),
    ("v", 15.3919, ("x", 30.0, 1e6)),
    ("line", (0.5113, 0.7939), ("x", 59.6925, 1e9)),
    ("x", 59.6925, ("v", 1e-3, 17.9)),
    ("x", 274.2377, ("v", 0.3, 163.6993)),
    ("v", 0.3, ("x", 274.2377, 1e6)),
    ("v", 163.6993, ("x", 1e-3, 1e6)),
    ("x", 84.4153, ("v", 0.46, 56.9971)),
    ("v", 0.46, ("x", 84.4153, 1e6)),
    ("v", 56.9971, ("x", 1e-3, 84.4153)),
    ("x", 35.9074, ("v", 0.6, 20.1534)),
    ("v", 0.6, ("x", 35.9074, 1e6)),
    ("v", 20.1534, ("x", 1e-3, 35.9074)),
    ("x", 19.6931, ("v", 0.7, 12.6964)),
    ("v", 0.7, ("x", 19.6931, 1e6)),
    ("v", 12.6964, ("x", 1e-3, 19.6931)),
    # numericals7's extra guards: v^2 < 0.002 x (mu_3) and v^2 < 2 x (mu_20)
    ("sq", 0.002, ("x", 1e4, 1e9)),
    ("sq", 2.0, ("x", 60.0, 1e9)),
]


def _logu(rng, lo, hi, n):
    return np.exp(rng.uniform(math.log(lo), math.log(hi), n))


def make_points(rng, scale=1.0):
    """Return (v, x, region) float64/float64/int8 arrays."""
    pts = []

    def add(region, v, x):
        v = np.broadcast_to(np.asarray(v, dtype=np.float64), np.shape(x)).ravel()
        x = np.asarray(x, dtype=np.float64).ravel()
        for a, b in zip(v, x):
            pts.append((float(a), float(b), REGION_NAMES.index(region)))

    def n(k):
        return max(4, int(round(k * scale)))

    m = n(1500)
    add("box", _logu(rng, 1e-2, 1e5, m), _logu(rng, 1e-3, 1e6, m))
    m = n(900)
    add("wide", _logu(rng, 1e-6, 1e5, m), _logu(rng, 1e-300, 1e300, m))
    m = n(150)
    add("v0", np.zeros(m), _logu(rng, 1e-300, 1e300, m))
    add("v0", np.zeros(6), np.array([1e-3, 0.5, 1.0, 2.0, 30.0, 1400.0]))
    m = n(300)
    vi = np.unique(np.round(_logu(rng, 1.0, 1e5, m)))
    vi = np.concatenate([np.arange(1.0, 11.0), vi, [1e5]])
    xi = np.where(rng.uniform(size=vi.size) < 0.8,
                  _logu(rng, 1e-10, 1e8, vi.size), _logu(rng, 1e-300, 1e300, vi.size))
    add("int", vi, xi)
    vh = np.unique(np.floor(_logu(rng, 1.0, 1e5, m))) - 0.5
    vh = np.concatenate([np.arange(0.5, 10.0), vh, [1e5 + 0.5]])
    xh = np.where(rng.uniform(size=vh.size) < 0.8,
                  _logu(rng, 1e-10, 1e8, vh.size), _logu(rng, 1e-300, 1e300, vh.size))
    add("half", vh, xh)
    m = n(600)
    vt = _logu(rng, 1e-1, 1e5, m)
    d = rng.choice([-1.0, 1.0], m) * _logu(rng, 1e-6, 0.5, m)
    add("turning", vt, vt * (1.0 + d))
    for p in (3, 64, 256, 1024, 2048, 8192, 32768, 100000):
        m = n(40)
        add("vmf", np.full(m, p / 2.0 - 1.0), _logu(rng, 1e-2, 1e7, m))
    m = max(n(150), 10)
    vx = np.concatenate([[0.0, 0.5, 1.0, 2.0, 1.5], _logu(rng, 1e-3, 1e3, m - 5)])
    add("x709", vx, rng.uniform(709.0, 714.0, m))
    m = max(n(200), 30)
    xb = np.concatenate([_logu(rng, 2.0 ** 30, 2.0 ** 60, m - 10),
                         np.nextafter(2.0 ** 30, 0.0) - np.arange(5) * 2.0 ** -23,
                         2.0 ** 30 + np.arange(5) * 2.0 ** -22])
    vb = np.concatenate([_logu(rng, 1e-3, 1e5, m - 20), [0, 0.5, 1, 2, 10] * 4])
    add("bigx", vb, xb)
    k = max(2, int(round(6 * scale)))
    for kind, c, (free, lo, hi) in CUSF_BOUNDARIES:
        f = _logu(rng, lo, hi, k)
        for s in (-1e-9, 0.0, 1e-9):
            if kind == "x":
                add("cusf", f, np.full(k, c * (1 + s)))
            elif kind == "v":
                add("cusf", np.full(k, c * (1 + s)), f)
            elif kind == "line":
                a, b = c
                add("cusf", np.exp(a * np.log(f) + b) * (1 + s), f)
            else:  # v^2 = c x
                add("cusf", np.sqrt(c * f) * (1 + s), f)
    m = n(200)
    vm = _logu(rng, 1e3, 1e4, m)
    add("mu20", vm, vm * vm / rng.uniform(4.0, 9.0, m))
    m = n(200)
    vn = -_logu(rng, 1e-3, 1e3, m)
    vn = np.where(vn == np.round(vn), vn - 0.25, vn)
    add("negative", vn, _logu(rng, 1e-5, 1e5, m))
    m = n(100)
    vn = -np.unique(np.round(_logu(rng, 1.0, 1e3, m)))
    add("negative", vn, _logu(rng, 1e-5, 1e5, vn.size))
    m = n(500)
    add("f32", _logu(rng, 1e-2, 1e5, m).astype(np.float32),
        _logu(rng, 1e-3, 1e6, m).astype(np.float32))
    m = n(200)
    add("f32", _logu(rng, 1e-2, 1e4, m).astype(np.float32),
        _logu(rng, 1e-30, 1e30, m).astype(np.float32))
    # below the Debye region (v^2 + x^2 < 25.5^2): uniform, integer / half-integer and tiny
    # orders, x uniform or log-uniform down to 1e-300, and the band x ~ v where log I_v(x) is
    # small while v log(x/2) and log Gamma(v+1) are not
    m = n(1200)
    vs = np.concatenate([rng.uniform(0.0, 25.5, m // 2), np.round(rng.uniform(0.0, 25.0, m // 4) * 2.0) / 2.0,
                         _logu(rng, 1e-6, 25.5, m - m // 2 - m // 4)])
    xs = np.where(rng.uniform(size=m) < 0.5, rng.uniform(0.0, 25.5, m), _logu(rng, 1e-300, 25.5, m))
    vb = rng.uniform(1.0, 25.0, n(600))
    vs = np.concatenate([vs, vb])
    xs = np.concatenate([xs, vb * rng.uniform(0.2, 1.2, vb.size)])
    keep = (vs * vs + xs * xs < 25.5 ** 2) & (xs > 0.0)
    add("smallbox", vs[keep], xs[keep])
    v = np.array([p[0] for p in pts])
    x = np.array([p[1] for p in pts])
    r = np.array([p[2] for p in pts], dtype=np.int8)
    return v, x, r


# ---------------------------------------------------------------- Arb side

def _to_dd(a):
    """arb -> (hi, lo) float64 pair, hi the float nearest to mid."""
    from flint import arb
    mid = a.mid()
    hi = float(mid)
    lo = float(mid - arb(hi))
    s = hi + lo  # renormalise (fast two-sum, |hi| >= |lo|)
    return s, lo - (s - hi)


def _k_recurrence(av, x, want):
    """K_{|v|+j}(x) for j in `want` (each j with |v| + j >= 0 an offset from
    floor), by forward recurrence in ball arithmetic.  Returns dict order->arb."""
    from flint import arb
    va = abs(av)
    base = math.floor(va)
    u = arb(va - base)  # exact: va - floor(va) is exact in float64
    X = arb(x)
    top = base + max(want)
    k0, k1 = X.bessel_k(u), X.bessel_k(u + 1)
    if not (k0.is_finite() and k1.is_finite()):
        return None
    vals = {0: k0, 1: k1}
    two_x = 2 / X
    cur0, cur1 = k0, k1
    for k in range(1, top):
        cur0, cur1 = cur1, (u + k) * two_x * cur1 + cur0
        vals[k + 1] = cur1
    return {j: vals.get(base + j) for j in want}


def _certified(a, rel):
    """Ball radius below TOL*|mid| (rel) or TOL*max(1, |mid|); compared in Arb
    so that tiny values (ratios ~1e-300) do not underflow the test."""
    from flint import arb
    if a is None or not a.is_finite():
        return False
    m = abs(a.mid())
    scale = m if rel else (m if m > 1 else arb(1))
    return bool(a.rad() < arb(TOL) * scale) and bool(m > 0 or not rel)


def reference_point(v, x):
    """Return ({q: (hi, lo)}, prec) for one point; NaN where not certified."""
    from flint import arb, ctx
    out = {q: (math.nan, math.nan) for q in QUANTITIES}
    done = set()
    used = 0
    kfallback = None
    for prec in PRECS:
        ctx.prec = prec
        used = prec
        V, X = arb(v), arb(x)
        res = {}
        if not {"logiv", "logive", "ratio", "dlogiv"} <= done:
            i0 = X.bessel_i(V, scaled=True)
            i1 = X.bessel_i(V + 1, scaled=True)
            if i0.is_finite() and i1.is_finite():
                if i0 > 0:
                    li = i0.log()
                    res["logive"] = (li, False)
                    res["logiv"] = (li + X, False)
                elif i0 < 0:  # negative non-integer order: log undefined
                    for q in ("logiv", "logive"):
                        if q not in done:
                            out[q] = (math.nan, math.nan)
                            done.add(q)
                if i0 != 0 and (i0 > 0 or i0 < 0):
                    r = i1 / i0
                    res["ratio"] = (r, True)
                    res["dlogiv"] = (r + V / X, True)
        if not {"logkv", "logkve", "dlogkv"} <= done:
            k0 = X.bessel_k(V, scaled=True)
            k1 = X.bessel_k(V + 1, scaled=True)
            if not (_certified(k0, True) and _certified(k1, True)) and prec >= 1024:
                # Arb's route cancels; use the positive forward recurrence
                if kfallback is None or kfallback[0] != prec:
                    off = 1 if v >= 0 else -1
                    vals = _k_recurrence(v, x, sorted({0, off}) if v >= 0 or abs(v) >= 1
                                         else [0])
                    kfallback = (prec, vals)
                vals = kfallback[1]
                if vals is not None:
                    ex = X.exp()
                    k0 = vals[0] * ex
                    if v >= 0:
                        k1 = vals[1] * ex
                    elif abs(v) >= 1:
                        k1 = vals[-1] * ex
                    else:  # -1 < v < 0: K_{v+1} = K_{1-|v|}, Arb is fine there
                        k1 = X.bessel_k(V + 1, scaled=True)
            if k0.is_finite() and k1.is_finite() and k0 > 0 and k1 > 0:
                lk = k0.log()
                res["logkve"] = (lk, False)
                res["logkv"] = (lk - X, False)
                res["dlogkv"] = (V / X - k1 / k0, True)
        for q, (a, rel) in res.items():
            if q in done:
                continue
            if _certified(a, rel):
                out[q] = _to_dd(a)
                done.add(q)
        if len(done) == len(QUANTITIES):
            break
    return out, used


def compute(v, x, verbose=False):
    import flint
    n = v.size
    arrs = {q + s: np.full(n, np.nan) for q in QUANTITIES for s in ("_hi", "_lo")}
    prec = np.zeros(n, dtype=np.int16)
    t0 = time.time()
    for i in range(n):
        vals, used = reference_point(float(v[i]), float(x[i]))
        prec[i] = used
        for q, (hi, lo) in vals.items():
            arrs[q + "_hi"][i] = hi
            arrs[q + "_lo"][i] = lo
        if verbose and (i + 1) % 1000 == 0:
            print(f"  {i + 1}/{n}  {time.time() - t0:.1f}s", file=sys.stderr)
    flint.ctx.prec = 53
    return arrs, prec


def check_against_scipy(v, x, arrs):
    """Sanity check of the Arb values: scipy's log(ive) + x, log(kve) - x and ive ratio where
    scipy is finite and normal (|v| <= 50, x <= 1e4, it is accurate to ~1e-13 there)."""
    import scipy.special as sc

    m = (np.abs(v) <= 50) & (x > 0) & (x <= 1e4)
    vv, xx = v[m], x[m]
    with np.errstate(all="ignore"):
        ive, kve = sc.ive(vv, xx), sc.kve(vv, xx)
        cand = {
            "logiv": np.log(ive) + xx,
            "logkv": np.log(kve) - xx,
            "ratio": sc.ive(vv + 1, xx) / ive,
        }
    with np.errstate(all="ignore"):
        ive1 = sc.ive(vv + 1, xx)
    ok_i = (ive > 1e-300) & (ive < 1e300)
    ok_k = (kve > 1e-300) & (kve < 1e300)
    worst = {}
    for q, s in cand.items():
        ref = arrs[q + "_hi"][m]
        ok = (ok_k if q == "logkv" else ok_i) & np.isfinite(ref) & np.isfinite(s)
        if q == "ratio":
            ok &= (vv >= 0) & (ive1 > 1e-300)
        err = np.abs(s[ok] - ref[ok]) / np.maximum(1.0 if q != "ratio" else 0.0, np.abs(ref[ok]))
        worst[q] = (int(ok.sum()), float(err.max()))
    return worst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "bessel_reference.npz"))
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply the number of points per region (default 1)")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--check", action="store_true",
                    help="also compare the Arb values with scipy where scipy is reliable")
    args = ap.parse_args(argv)
    import flint

    rng = np.random.default_rng(SEED)
    v, x, region = make_points(rng, args.scale)
    t0 = time.time()
    arrs, prec = compute(v, x, args.verbose)
    dt = time.time() - t0
    # report what could not be certified (NaN logs of negative I_v are expected)
    for q in QUANTITIES:
        bad = np.isnan(arrs[q + "_hi"])
        if q in ("logiv", "logive"):
            bad &= v >= 0
        if bad.any():
            print(f"{q}: {bad.sum()} points not certified", file=sys.stderr)
            if args.verbose:
                for i in np.flatnonzero(bad)[:20]:
                    print(f"   v={v[i]!r} x={x[i]!r} region={REGION_NAMES[region[i]]}",
                          file=sys.stderr)
    meta = dict(generator="tests/data/make_bessel_reference.py", version=GENERATOR_VERSION,
                seed=SEED, flint=flint.__version__, tol=TOL, precs=list(PRECS),
                npoints=int(v.size))
    np.savez_compressed(args.out, v=v, x=x, region=region,
                        region_names=np.array(REGION_NAMES), prec=prec,
                        meta=np.array(json.dumps(meta)), **arrs)
    if args.check:
        for q, (n, e) in check_against_scipy(v, x, arrs).items():
            print(f"check vs scipy: {q}: {n} points, max relative difference {e:.3g}")
            if e > 1e-12:
                raise SystemExit(f"Arb and scipy disagree on {q} ({e:.3g}): do not use this file")
    counts = {name: int((region == k).sum()) for k, name in enumerate(REGION_NAMES)}
    print(f"wrote {args.out}: {v.size} points in {dt:.1f}s; {counts}; "
          f"precision used: {dict(zip(*np.unique(prec, return_counts=True)))}")


if __name__ == "__main__":
    main()
