#!/usr/bin/env python3
"""Side-by-side benchmark of kernkit's log-Bessel functions.

Run::

    python bench/special/bench_special.py [--quick] [--out bench/results]

What it measures (all single-threaded unless said otherwise; scipy is single-threaded):

* throughput, in evaluations per second, of ``kernkit.log_iv`` / ``kernkit.log_kv`` (float64
  and float32) against what a user writes today, ``np.log(scipy.special.ive(v, x)) + x`` and
  ``np.log(scipy.special.kve(v, x)) - x``, on an 8 x 8 grid of log-spaced (v, x) cells over
  v in [1e-2, 1e5], x in [1e-3, 1e6] (each cell an array of random points in the cell);
  per-cell speedup, its median and maximum, and scipy's non-finite fraction per cell; the same
  for ``kernkit.bessel_iv_ratio`` and ``kernkit.dlog_kv`` (float64) against
  ``ive(v + 1, x) / ive(v, x)`` and ``-kve(v - 1, x) / kve(v, x) - v / x``;
* failure rates (non-finite results) of the scipy formulas for v, x in [0, 1000] and for
  v in [100, 1e4], x in [1, 1e4];
* thread scaling of kernkit (1 and 2 threads) on a large array;
* accuracy: on the test reference (``tests/data/bessel_reference.npz``) per region, and on a
  log-spaced grid (200 x 200, or 50 x 50 with --quick) whose reference is computed with
  python-flint (Arb) and cached (``$KERNKIT_BENCH_CACHE``, default /tmp/kernkit_bench_cache);
  heat maps ``special_error_logiv.png`` / ``special_error_logkv.png`` with one colour scale.

The paper's own algorithm (the CUSF branch table, as ported to C++ in the R package
numericals7) is included when ``KERNKIT_BENCH_NUMERICALS7`` names a shared library that
exports ``void n7_log_iv(const double* v, const double* x, double* out, long n)`` and
``n7_log_kv`` with the same signature. That library is not part of kernkit and is never
built by it; without it the output says "numericals7: absent".

Writes ``special.json`` and ``special.md`` (and the PNGs) into --out.
"""
from __future__ import annotations

import argparse
import ctypes
import datetime as _dt
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
REF_NPZ = ROOT / "tests" / "data" / "bessel_reference.npz"
V_RANGE = (1e-2, 1e5)
X_RANGE = (1e-3, 1e6)
EPS = 2.0 ** -52

# CUSF switching lines drawn on the heat maps (notes/logbessel.md 1.2)
MU_LINES = [(0.6229, -3.2318, "mu3"), (0.5113, 0.7939, "mu20")]
U_LEVELS = [163.6993, 56.9971, 20.1534, 12.6964]


# ----------------------------------------------------------------------------- helpers

def machine_info():
    import scipy

    import kernkit

    info = {
        "cpu": kernkit.info()["cpu"],
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "kernkit": getattr(kernkit, "__version__", "?"),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "load_average_at_start": " ".join(f"{a:.2f}" for a in os.getloadavg()),
    }
    try:
        ki = kernkit.info()
        info["kernkit_simd"] = ki.get("simd")
        info["kernkit_openmp"] = ki.get("openmp")
        info["kernkit_compiler"] = ki.get("compiler")
    except Exception:  # noqa: BLE001 - info() is optional for the benchmark
        pass
    return info


class Numericals7:
    """ctypes view of a shared library built (outside kernkit) from numericals7's
    src/log_bessel.cpp; see the module docstring for the expected symbols."""

    def __init__(self, path):
        self.path = path
        self.lib = ctypes.CDLL(path)
        for name in ("n7_log_iv", "n7_log_kv"):
            f = getattr(self.lib, name)
            f.restype = None
            f.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_long]

    def _call(self, f, v, x):
        v, x = np.broadcast_arrays(np.asarray(v, np.float64), np.asarray(x, np.float64))
        v = np.ascontiguousarray(v)
        x = np.ascontiguousarray(x)
        out = np.empty(v.shape)
        f(v.ctypes.data, x.ctypes.data, out.ctypes.data, v.size)
        return out

    def log_iv(self, v, x):
        return self._call(self.lib.n7_log_iv, v, x)

    def log_kv(self, v, x):
        return self._call(self.lib.n7_log_kv, v, x)


def load_n7():
    path = os.environ.get("KERNKIT_BENCH_NUMERICALS7")
    if not path:
        return None, "absent (set KERNKIT_BENCH_NUMERICALS7 to a built libn7.so)"
    try:
        return Numericals7(path), f"loaded from {path}"
    except (OSError, AttributeError) as e:
        return None, f"absent ({path}: {e})"


def scipy_log_iv(v, x):
    import scipy.special as sc

    with np.errstate(all="ignore"):
        return np.log(sc.ive(v, x)) + x


def scipy_log_kv(v, x):
    import scipy.special as sc

    with np.errstate(all="ignore"):
        return np.log(sc.kve(v, x)) - x


def scipy_ratio(v, x):  # I_{v+1}/I_v as users write it (the e^-x scaling cancels)
    import scipy.special as sc

    with np.errstate(all="ignore"):
        return sc.ive(v + 1, x) / sc.ive(v, x)


def scipy_dlog_kv(v, x):  # K_v'/K_v = -K_{v-1}/K_v - v/x
    import scipy.special as sc

    with np.errstate(all="ignore"):
        return -sc.kve(v - 1, x) / sc.kve(v, x) - v / x


def best_time(f, repeats):
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def logu(rng, lo, hi, n):
    return np.exp(rng.uniform(math.log(lo), math.log(hi), n))


def fmt_rate(r):
    return f"{r / 1e6:.2f}" if math.isfinite(r) else "-"


# ----------------------------------------------------------------------------- throughput

def bench_grid(kk, n7, npts, repeats, rng, cells=8):
    ve = np.logspace(math.log10(V_RANGE[0]), math.log10(V_RANGE[1]), cells + 1)
    xe = np.logspace(math.log10(X_RANGE[0]), math.log10(X_RANGE[1]), cells + 1)
    methods = {
        "kernkit_f64_log_iv": None, "kernkit_f64_log_kv": None,
        "kernkit_f32_log_iv": None, "kernkit_f32_log_kv": None,
        "scipy_log_iv": None, "scipy_log_kv": None,
        "kernkit_f64_ratio": None, "kernkit_f64_dlog_kv": None, "scipy_ratio": None, "scipy_dlog_kv": None,
    }
    if n7 is not None:
        methods.update({"n7_log_iv": None, "n7_log_kv": None})
    rates = {m: np.full((cells, cells), np.nan) for m in methods}
    nonfinite = {m: np.full((cells, cells), np.nan) for m in methods}
    for i in range(cells):
        for j in range(cells):
            v = logu(rng, ve[i], ve[i + 1], npts)
            x = logu(rng, xe[j], xe[j + 1], npts)
            v32, x32 = v.astype(np.float32), x.astype(np.float32)
            calls = {
                "kernkit_f64_log_iv": lambda: kk.log_iv(v, x),
                "kernkit_f64_log_kv": lambda: kk.log_kv(v, x),
                "kernkit_f32_log_iv": lambda: kk.log_iv(v32, x32),
                "kernkit_f32_log_kv": lambda: kk.log_kv(v32, x32),
                "scipy_log_iv": lambda: scipy_log_iv(v, x),
                "scipy_log_kv": lambda: scipy_log_kv(v, x),
                "kernkit_f64_ratio": lambda: kk.bessel_iv_ratio(v, x),
                "kernkit_f64_dlog_kv": lambda: kk.dlog_kv(v, x),
                "scipy_ratio": lambda: scipy_ratio(v, x),
                "scipy_dlog_kv": lambda: scipy_dlog_kv(v, x),
            }
            if n7 is not None:
                calls["n7_log_iv"] = lambda: n7.log_iv(v, x)
                calls["n7_log_kv"] = lambda: n7.log_kv(v, x)
            for m, f in calls.items():
                r = f()  # warm-up, and the values for the non-finite count
                nonfinite[m][i, j] = float(np.mean(~np.isfinite(r)))
                rates[m][i, j] = npts / best_time(f, repeats)
    return ve, xe, rates, nonfinite


def summarize_grid(rates, nonfinite):
    out = {"rates_median": {}, "rates_min": {}, "rates_max": {}, "speedup": {}, "nonfinite": {}}
    for m, r in rates.items():
        out["rates_median"][m] = float(np.median(r))
        out["rates_min"][m] = float(np.min(r))
        out["rates_max"][m] = float(np.max(r))
        out["nonfinite"][m] = float(np.mean(nonfinite[m]))
    for fn in ("log_iv", "log_kv", "ratio", "dlog_kv"):
        for base in ("scipy", "n7"):
            b = f"{base}_{fn}"
            if b not in rates:
                continue
            for prec in ("f64", "f32"):
                if f"kernkit_{prec}_{fn}" not in rates:
                    continue
                s = rates[f"kernkit_{prec}_{fn}"] / rates[b]
                out["speedup"][f"kernkit_{prec}_vs_{base}_{fn}"] = {
                    "median": float(np.median(s)), "min": float(np.min(s)), "max": float(np.max(s)),
                    "per_cell": s.tolist()}
    return out


# ----------------------------------------------------------------------------- failure rates

def failure_rates(kk, n7, n, rng):
    import scipy.special as sc

    boxes = {
        "v, x in [0, 1000]": (rng.uniform(0, 1000, n), rng.uniform(0, 1000, n)),
        "v in [100, 1e4], x in [1, 1e4]": (rng.uniform(100, 1e4, n), rng.uniform(1, 1e4, n)),
    }
    res = {}
    for name, (v, x) in boxes.items():
        with np.errstate(all="ignore"):
            row = {
                "np.log(iv(v,x))": np.log(sc.iv(v, x)),
                "np.log(kv(v,x))": np.log(sc.kv(v, x)),
                "np.log(ive(v,x))+x": scipy_log_iv(v, x),
                "np.log(kve(v,x))-x": scipy_log_kv(v, x),
                "kernkit.log_iv": kk.log_iv(v, x),
                "kernkit.log_kv": kk.log_kv(v, x),
                "kernkit.log_iv f32": kk.log_iv(v.astype(np.float32), x.astype(np.float32)),
                "kernkit.log_kv f32": kk.log_kv(v.astype(np.float32), x.astype(np.float32)),
            }
        if n7 is not None:
            row["numericals7 log I"] = n7.log_iv(v, x)
            row["numericals7 log K"] = n7.log_kv(v, x)
        res[name] = {k: float(np.mean(~np.isfinite(r))) for k, r in row.items()}
    return res


# ----------------------------------------------------------------------------- threads

def thread_scaling(kk, n, repeats, rng):
    v = logu(rng, *V_RANGE, n)
    x = logu(rng, *X_RANGE, n)
    orig = kk.get_num_threads()
    res = {"n": n}
    try:
        for fn in ("log_iv", "log_kv"):
            f = getattr(kk, fn)
            for t in (1, 2):
                kk.set_num_threads(t)
                f(v[:1000], x[:1000])
                res[f"{fn}_{t}"] = n / best_time(lambda: f(v, x), repeats)
            res[f"{fn}_speedup"] = res[f"{fn}_2"] / res[f"{fn}_1"]
    finally:
        kk.set_num_threads(orig)
    return res


# ----------------------------------------------------------------------------- accuracy

def ulp_error(got, hi, lo=None):
    """|got - ref| in units of ulp(max(1, |ref|)) (= relative error of the log / 2^-52 where
    |log| >= 1, absolute error / 2^-52 below); NaN where got is not finite."""
    with np.errstate(all="ignore"):
        d = (got - hi) - (lo if lo is not None else 0.0)
        e = np.abs(d) / (np.maximum(1.0, np.abs(hi)) * EPS)
    return np.where(np.isfinite(got), e, np.nan)


def reference_accuracy(kk, n7):
    if not REF_NPZ.exists():
        return None
    d = np.load(REF_NPZ)
    v, x, reg = d["v"], d["x"], d["region"]
    names = [str(s) for s in d["region_names"]]
    methods = {
        "kernkit": (kk.log_iv, kk.log_kv),
        "scipy": (scipy_log_iv, scipy_log_kv),
    }
    if n7 is not None:
        methods["numericals7"] = (n7.log_iv, n7.log_kv)
    out = {}
    for m, (fi, fk) in methods.items():
        out[m] = {}
        for q, f in (("logiv", fi), ("logkv", fk)):
            hi, lo = d[q + "_hi"], d[q + "_lo"]
            got = f(v, x)
            e = ulp_error(got, hi, lo)
            per = {}
            for k, rn in enumerate(names + ["all"]):
                msk = (reg == k) if rn != "all" else np.ones(v.size, bool)
                msk &= np.isfinite(hi)
                ee = e[msk]
                fin = np.isfinite(ee)
                per[rn] = {
                    "n": int(msk.sum()),
                    "nonfinite": int((~fin).sum()),
                    "median_ulp": float(np.median(ee[fin])) if fin.any() else None,
                    "max_ulp": float(np.max(ee[fin])) if fin.any() else None,
                }
            out[m][q] = per
    return out


KK_FUNCS = {"logiv": "log_iv", "logive": "log_ive", "logkv": "log_kv", "logkve": "log_kve",
            "ratio": "bessel_iv_ratio", "dlogiv": "dlog_iv", "dlogkv": "dlog_kv"}


def kernkit_all_functions(kk):
    """Every kernkit function on the test reference, float64 and float32 (points exact in
    float32): error relative to max(1,|ref|) for logs and |ref| otherwise, in units of 2^-52
    (float64) or 2^-23 (float32)."""
    if not REF_NPZ.exists():
        return None
    d = np.load(REF_NPZ)
    v, x = d["v"], d["x"]
    with np.errstate(all="ignore"):
        ex32 = (v.astype(np.float32) == v) & (x.astype(np.float32) == x)
    out = {}
    for q, name in KK_FUNCS.items():
        f = getattr(kk, name)
        hi, lo = d[q + "_hi"], d[q + "_lo"]
        row = {}
        for prec, msk, unit in (("f64", np.isfinite(hi), EPS), ("f32", np.isfinite(hi) & ex32, 2.0 ** -23)):
            if prec == "f64":
                got = f(v[msk], x[msk])
            else:
                got = f(v[msk].astype(np.float32), x[msk].astype(np.float32)).astype(np.float64)
            h, l_ = hi[msk], lo[msk]
            with np.errstate(all="ignore"):
                sc_ = np.maximum(1.0, np.abs(h)) if q.startswith("log") else np.abs(h)
                if prec == "f32":
                    keep = np.abs(h) < 3e38
                    if not q.startswith("log"):
                        keep &= (np.abs(h) > 1.2e-38) & (np.abs(v[msk] / x[msk]) < 3e38)
                else:
                    keep = np.ones(h.size, bool)
                e = np.abs((got - h) - l_) / sc_ / unit
            e = np.where(np.isfinite(got), e, np.inf)[keep]
            row[prec] = {"n": int(e.size), "max_ulp": float(np.max(e)), "median_ulp": float(np.median(e)),
                         "p99_ulp": float(np.percentile(e, 99)), "nonfinite": int(np.sum(~np.isfinite(e)))}
        out[name] = row
    return out


def _arb_logs(v, x):
    """Certified log I_v(x), log K_v(x) with python-flint (NaN where not certified)."""
    from flint import arb, ctx

    res = [math.nan, math.nan]
    for prec in (128, 256, 512, 1024, 2048):
        ctx.prec = prec
        X, V = arb(x), arb(v)
        for k in range(2):
            if not math.isnan(res[k]):
                continue
            a = X.bessel_i(V, scaled=True) if k == 0 else X.bessel_k(V, scaled=True)
            if not (a.is_finite() and a > 0):
                continue
            la = a.log() + (X if k == 0 else -X)
            m = abs(la.mid())
            if la.rad() < arb(1e-25) * (m if m > 1 else arb(1)):
                res[k] = float(la.mid())
        if not any(math.isnan(r) for r in res):
            break
    ctx.prec = 53
    return res


def grid_reference(n, cache_dir):
    lv = np.linspace(math.log10(V_RANGE[0]), math.log10(V_RANGE[1]), n)
    lx = np.linspace(math.log10(X_RANGE[0]), math.log10(X_RANGE[1]), n)
    V, X = np.meshgrid(10.0 ** lv, 10.0 ** lx, indexing="ij")
    cache = Path(cache_dir) / f"special_grid_ref_{n}.npz"
    if cache.exists():
        c = np.load(cache)
        if c["v"].shape == V.shape and np.array_equal(c["v"], V) and np.array_equal(c["x"], X):
            return V, X, c["logiv"], c["logkv"], f"cached {cache}"
    try:
        import flint  # noqa: F401
    except ImportError:
        return V, X, None, None, "python-flint not installed: no accuracy heat maps"
    t0 = time.time()
    li = np.empty(V.shape)
    lk = np.empty(V.shape)
    for idx in np.ndindex(V.shape):
        li[idx], lk[idx] = _arb_logs(float(V[idx]), float(X[idx]))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, v=V, x=X, logiv=li, logkv=lk)
    return V, X, li, lk, f"computed with python-flint in {time.time() - t0:.0f}s, cached {cache}"


def grid_errors(kk, n7, V, X, li, lk):
    out = {}
    methods = [("kernkit", kk.log_iv, kk.log_kv), ("scipy", scipy_log_iv, scipy_log_kv)]
    if n7 is not None:
        methods.append(("numericals7", n7.log_iv, n7.log_kv))
    for name, fi, fk in methods:
        out[name] = {"logiv": ulp_error(fi(V, X), li), "logkv": ulp_error(fk(V, X), lk)}
    return out


def grid_stats(errs, li, lk):
    st = {}
    for m, d in errs.items():
        st[m] = {}
        for q, e in d.items():
            ref = li if q == "logiv" else lk
            ok = np.isfinite(ref)
            ee = e[ok]
            fin = np.isfinite(ee)
            st[m][q] = {
                "points": int(ok.sum()),
                "nonfinite": int((~fin).sum()),
                "median_ulp": float(np.median(ee[fin])) if fin.any() else None,
                "p99_ulp": float(np.percentile(ee[fin], 99)) if fin.any() else None,
                "max_ulp": float(np.max(ee[fin])) if fin.any() else None,
            }
    return st


def plot_heatmaps(errs, V, X, outdir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lv = np.log10(V[:, 0])
    lx = np.log10(X[0, :])
    vals = [np.log10(np.maximum(e, 0.1)) for d in errs.values() for e in d.values()]
    finite_max = max(float(np.nanmax(a)) if np.isfinite(a).any() else 0 for a in vals)
    vmin, vmax = -1.0, max(3.0, math.ceil(finite_max))
    written = []
    for q, title in (("logiv", "log I_v(x)"), ("logkv", "log K_v(x)")):
        ms = list(errs)
        fig, axes = plt.subplots(1, len(ms), figsize=(4.6 * len(ms) + 1.2, 4.4), squeeze=False,
                                 constrained_layout=True)
        cmap = plt.get_cmap("viridis").copy()
        cmap.set_bad("magenta")
        im = None
        for ax, m in zip(axes[0], ms):
            e = errs[m][q]
            a = np.ma.masked_invalid(np.log10(np.maximum(e, 0.1)))
            im = ax.imshow(a, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax,
                           extent=(lx[0], lx[-1], lv[0], lv[-1]), interpolation="nearest")
            for a_, b_, _lab in MU_LINES:  # ln v = a ln x + b
                xx = np.linspace(lx[0], lx[-1], 50)
                yy = (a_ * xx * math.log(10) + b_) / math.log(10)
                keep = (yy >= lv[0]) & (yy <= lv[-1])
                ax.plot(xx[keep], yy[keep], "w--", lw=0.6)
            for lev in U_LEVELS:
                ax.axhline(math.log10(lev), color="w", ls=":", lw=0.5)
            nf = int(np.sum(~np.isfinite(e)))
            ax.set_title(f"{m}: {title}\nnon-finite {nf}/{e.size} (magenta)", fontsize=9)
            ax.set_xlabel("log10 x")
            ax.set_ylabel("log10 v")
        cb = fig.colorbar(im, ax=axes[0].tolist(), shrink=0.9)
        cb.set_label("log10 error in ulps of max(1,|ref|)  (floor 0.1)")
        path = Path(outdir) / f"special_error_{q}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(str(path))
    return written


def plot_speedup(ve, xe, summary, outdir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), constrained_layout=True)
    for ax, fn in zip(axes, ("log_iv", "log_kv")):
        s = np.array(summary["speedup"][f"kernkit_f64_vs_scipy_{fn}"]["per_cell"])
        im = ax.imshow(np.log10(s), origin="lower", cmap="RdBu", vmin=-2, vmax=2, aspect="auto",
                       extent=(math.log10(xe[0]), math.log10(xe[-1]),
                               math.log10(ve[0]), math.log10(ve[-1])))
        for i in range(s.shape[0]):
            for j in range(s.shape[1]):
                cx = (math.log10(xe[j]) + math.log10(xe[j + 1])) / 2
                cy = (math.log10(ve[i]) + math.log10(ve[i + 1])) / 2
                ax.text(cx, cy, f"{s[i, j]:.1f}", ha="center", va="center", fontsize=7)
        ax.set_title(f"kernkit.{fn} (float64) speedup over scipy, 1 thread")
        ax.set_xlabel("log10 x")
        ax.set_ylabel("log10 v")
    fig.colorbar(im, ax=axes.tolist(), label="log10 speedup")
    path = Path(outdir) / "special_speedup.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


# ----------------------------------------------------------------------------- report

def cell_table(ve, xe, speed, nonfin):
    hdr = "| v \\ x | " + " | ".join(f"{xe[j]:.0e}–{xe[j + 1]:.0e}" for j in range(len(xe) - 1)) + " |"
    lines = [hdr, "|" + "---|" * len(xe)]
    for i in range(len(ve) - 1):
        cells = []
        for j in range(len(xe) - 1):
            nf = nonfin[i][j]
            cells.append(f"{speed[i][j]:.1f}" + (f" ({100 * nf:.0f}%)" if nf > 0 else ""))
        lines.append(f"| {ve[i]:.0e}–{ve[i + 1]:.0e} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _u(x):
    if x is None:
        return "-"
    if x >= 1e4:
        return f"{x:.1e}"
    return f"{x:.3g}"


def write_markdown(res, path):
    L = []
    mi = res["machine"]
    L.append("# kernkit special functions: benchmark\n")
    L.append(f"Generated by `bench/special/bench_special.py{' --quick' if res['quick'] else ''}`"
             f" on {mi['date']}.\n")
    L.append("| machine | |\n|---|---|")
    for k in ("cpu", "logical_cpus", "load_average_at_start", "platform", "python", "numpy", "scipy", "kernkit",
              "kernkit_simd", "kernkit_openmp", "kernkit_compiler"):
        if k in mi:
            L.append(f"| {k} | {mi[k]} |")
    L.append(f"| numericals7 (the paper's table, C++ port) | {res['numericals7']} |\n")

    g = res["grid"]
    L.append(f"## Throughput, 1 thread ({g['cells']}×{g['cells']} cells over v ∈ [1e-2, 1e5], "
             f"x ∈ [1e-3, 1e6], {g['points_per_cell']} random points per cell, best of "
             f"{g['repeats']})\n")
    L.append("Million evaluations per second over the cells (median / min / max); non-finite is the "
             "mean fraction of non-finite results over the cells.\n")
    L.append("| method | median | min | max | non-finite |\n|---|---|---|---|---|")
    for m in g["summary"]["rates_median"]:
        s = g["summary"]
        L.append(f"| {m} | {fmt_rate(s['rates_median'][m])} | {fmt_rate(s['rates_min'][m])} | "
                 f"{fmt_rate(s['rates_max'][m])} | {100 * s['nonfinite'][m]:.1f}% |")
    L.append("")
    L.append("Speedup of kernkit over the baseline, per cell (median / min / max over cells):\n")
    L.append("| kernkit vs | median | min | max |\n|---|---|---|---|")
    for k, s in g["summary"]["speedup"].items():
        L.append(f"| {k.replace('kernkit_', '')} | {s['median']:.2f} | {s['min']:.2f} | {s['max']:.2f} |")
    L.append("")
    for fn in ("log_iv", "log_kv"):
        sp = g["summary"]["speedup"][f"kernkit_f64_vs_scipy_{fn}"]["per_cell"]
        nf = g["nonfinite"][f"scipy_{fn}"]
        L.append(f"Per-cell speedup of kernkit.{fn} (float64) over scipy; in parentheses scipy's "
                 f"non-finite fraction in the cell:\n")
        L.append(cell_table(g["v_edges"], g["x_edges"], sp, nf))
        L.append("")

    L.append("## What users do today: non-finite fraction\n")
    fr = res["failure_rates"]
    boxes = list(fr)
    L.append("| expression | " + " | ".join(boxes) + " |\n|---|" + "---|" * len(boxes))
    for k in fr[boxes[0]]:
        L.append(f"| `{k}` | " + " | ".join(f"{100 * fr[b][k]:.2f}%" for b in boxes) + " |")
    L.append(f"\n({res['failure_points']} uniform random points per box.)\n")

    t = res["threads"]
    L.append(f"## Thread scaling ({t['n']} elements, log-uniform over the box, best of "
             f"{res['thread_repeats']})\n")
    L.append("The machine's cores are shared with other work (see the load average above), so the "
             "2-thread figure is a lower bound on what two free cores give.\n")
    L.append("| function | 1 thread (M/s) | 2 threads (M/s) | speedup |\n|---|---|---|---|")
    for fn in ("log_iv", "log_kv"):
        L.append(f"| {fn} | {fmt_rate(t[fn + '_1'])} | {fmt_rate(t[fn + '_2'])} | "
                 f"{t[fn + '_speedup']:.2f} |")
    L.append("")

    ra = res.get("reference_accuracy")
    if ra:
        L.append("## Accuracy on the test reference (`tests/data/bessel_reference.npz`, Arb)\n")
        L.append("Error in ulps of max(1, |ref|) (relative error of the log / 2^-52 where |log| ≥ 1, "
                 "absolute error / 2^-52 below): max (median); `nf` = non-finite results.\n")
        regions = [r for r in next(iter(ra.values()))["logiv"]]
        ms = list(ra)
        for q, title in (("logiv", "log I"), ("logkv", "log K")):
            L.append(f"**{title}**\n")
            L.append("| region | n | " + " | ".join(ms) + " |\n|---|---|" + "---|" * len(ms))
            for rn in regions:
                cells = []
                for m in ms:
                    s = ra[m][q][rn]
                    c = f"{_u(s['max_ulp'])} ({_u(s['median_ulp'])})"
                    if s["nonfinite"]:
                        c += f", nf {s['nonfinite']}"
                    cells.append(c)
                L.append(f"| {rn} | {ra[ms[0]][q][rn]['n']} | " + " | ".join(cells) + " |")
            L.append("")

    ka = res.get("kernkit_all_functions")
    if ka:
        L.append("**kernkit, every function, on the reference** (error relative to max(1,|ref|) for "
                 "the logs and to |ref| for the ratio and derivatives; in ulps of 1 of the working "
                 "type, 2^-52 for float64 and 2^-23 for float32 (points exact in float32)):\n")
        L.append("| function | f64 n | f64 max | f64 p99 | f64 median | f32 n | f32 max | f32 p99 |"
                 "\n|---|---|---|---|---|---|---|---|")
        for name, r in ka.items():
            a, b = r["f64"], r["f32"]
            L.append(f"| {name} | {a['n']} | {_u(a['max_ulp'])} | {_u(a['p99_ulp'])} | "
                     f"{_u(a['median_ulp'])} | {b['n']} | {_u(b['max_ulp'])} | {_u(b['p99_ulp'])} |")
        L.append("\nFor negative orders (region `negative`) the ratio I_{v+1}/I_v and d/dx log I_v can "
                 "cross zero, so their relative error there is not bounded by conditioning."
                 + (" numericals7 returns NaN for log I at negative order by design."
                    if res["numericals7"].startswith("loaded") else "") + "\n")

    h = res.get("heatmap")
    if h:
        L.append(f"## Accuracy heat maps ({h['n']}×{h['n']} log grid over the box; reference "
                 f"{h['reference']})\n")
        if h.get("stats"):
            L.append("| method | function | points | non-finite | median ulp | p99 ulp | max ulp |\n"
                     "|---|---|---|---|---|---|---|")
            for m, d in h["stats"].items():
                for q, s in d.items():
                    L.append(f"| {m} | {q} | {s['points']} | {s['nonfinite']} | {_u(s['median_ulp'])} "
                             f"| {_u(s['p99_ulp'])} | {_u(s['max_ulp'])} |")
            L.append("")
            for p in h.get("pngs", []):
                L.append(f"![{Path(p).stem}]({Path(p).name})")
            L.append("")
    L.append(f"Total benchmark time: {res['seconds']:.0f} s.\n")
    Path(path).write_text("\n".join(L))


# ----------------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description="kernkit special-function benchmark")
    ap.add_argument("--quick", action="store_true", help="small sizes (well under a minute)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--grid", type=int, default=None, help="heat-map grid size (200; 50 quick)")
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args(argv)

    import kernkit as kk

    t_start = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    n7, n7_status = load_n7()
    print(f"numericals7: {n7_status}", flush=True)
    q = args.quick
    npts = 5_000 if q else 100_000
    repeats = 1 if q else 5
    nfail = 20_000 if q else 200_000
    nthr = 1 << 20 if q else 1 << 22
    thr_rep = 2 if q else 3
    ngrid = args.grid or (50 if q else 200)

    res = {"quick": q, "numericals7": n7_status, "machine": machine_info()}
    orig_threads = kk.get_num_threads()
    kk.set_num_threads(1)
    try:
        print("throughput grid ...", flush=True)
        ve, xe, rates, nonfin = bench_grid(kk, n7, npts, repeats, rng)
        summ = summarize_grid(rates, nonfin)
        res["grid"] = {
            "cells": len(ve) - 1, "points_per_cell": npts, "repeats": repeats,
            "v_edges": ve.tolist(), "x_edges": xe.tolist(),
            "rates": {m: r.tolist() for m, r in rates.items()},
            "nonfinite": {m: r.tolist() for m, r in nonfin.items()},
            "summary": summ,
        }
        print("failure rates ...", flush=True)
        res["failure_rates"] = failure_rates(kk, n7, nfail, rng)
        res["failure_points"] = nfail
        print("reference accuracy ...", flush=True)
        res["reference_accuracy"] = reference_accuracy(kk, n7)
        res["kernkit_all_functions"] = kernkit_all_functions(kk)
    finally:
        kk.set_num_threads(orig_threads)
    print("thread scaling ...", flush=True)
    res["threads"] = thread_scaling(kk, nthr, thr_rep, rng)
    res["thread_repeats"] = thr_rep

    print(f"heat maps ({ngrid}x{ngrid}) ...", flush=True)
    cache = os.environ.get("KERNKIT_BENCH_CACHE", "/tmp/kernkit_bench_cache")
    V, X, li, lk, how = grid_reference(ngrid, cache)
    heat = {"n": ngrid, "reference": how}
    if li is not None:
        kk.set_num_threads(1)
        try:
            errs = grid_errors(kk, n7, V, X, li, lk)
        finally:
            kk.set_num_threads(orig_threads)
        heat["stats"] = grid_stats(errs, li, lk)
        if not args.no_plots:
            heat["pngs"] = plot_heatmaps(errs, V, X, out)
    res["heatmap"] = heat
    if not args.no_plots:
        res["speedup_png"] = plot_speedup(ve, xe, summ, out)
    res["seconds"] = time.time() - t_start

    with open(out / "special.json", "w") as f:
        json.dump(res, f, indent=1, default=float)
    write_markdown(res, out / "special.md")
    print((out / "special.md").read_text())
    print(f"wrote {out / 'special.json'} and {out / 'special.md'} in {res['seconds']:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
