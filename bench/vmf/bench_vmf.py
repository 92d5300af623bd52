#!/usr/bin/env python3
"""kernkit.vmf side by side with scipy.stats.vonmises_fisher, and its accuracy against Arb.

Run::

    python bench/vmf/bench_vmf.py [--quick] [--out bench/results]

What it measures (one process, single-threaded BLAS is not forced; both libraries share it):

* **accuracy of kernkit.vmf** against high-precision references computed with python-flint
  (Arb): the fitted kappa of sampled data vs the exact maximum-likelihood kappa of the same
  data (its mean resultant length summed in long double, the equation A_p(kappa) = rbar
  solved in Arb) for p in {3, 384, 2048, 32768, 100000} and kappa over 1e-1..1e8;
  ``kappa_mle`` alone on exact inputs over 1e-10..1e10; ``log_normalizer`` on a p x kappa grid;
* **side by side with SciPy** (``scipy.stats.vonmises_fisher``, SciPy >= 1.11) for
  p in {3, 100, 1000, 10000, 32768} and kappa in {1, 10, ..., 1e6}: on one data set per cell
  (drawn with kernkit's sampler), the relative error of each library's fitted kappa against the
  exact MLE, whether SciPy's fit returned its bracket end 1e-8 or 1e9, the logpdf error at the
  data against Arb, and the time of fit, logpdf (at the n points) and sampling (n points).

Writes ``vmf.json``, ``vmf.md`` and ``vmf_kappa_error.png`` (fitted-kappa error vs p for both
libraries) into --out.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import platform
import sys
import time
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np

import kernkit.vmf as kvmf
from kernkit import _bench

try:
    import flint
except ImportError:  # pragma: no cover
    sys.exit("bench_vmf needs python-flint (pip install python-flint) for its references")

flint.ctx.prec = 192
arb = flint.arb

FAIL = float("nan")


# ---------------------------------------------------------------------------------------------
# references (Arb)
# ---------------------------------------------------------------------------------------------


def arb_of(x) -> "flint.arb":
    fr = x if isinstance(x, Fraction) else Fraction(float(x))
    return arb(fr.numerator) / arb(fr.denominator)


def ref_log_c(p: int, kappa: float) -> "flint.arb":
    if kappa == 0:
        return (arb(p) / 2).lgamma() - arb(2).log() - arb(p) / 2 * arb.pi().log()
    nu = arb_of(Fraction(p, 2) - 1)
    k = arb_of(kappa)
    return nu * k.log() - arb(p) / 2 * (2 * arb.pi()).log() - (k.bessel_i(nu, scaled=True).log() + k)


def ref_A(p: int, k: "flint.arb") -> "flint.arb":
    nu = arb(p) / 2 - 1
    return k.bessel_i(nu + 1, scaled=True) / k.bessel_i(nu, scaled=True)


def ref_kappa(p: int, R: "flint.arb", start: float) -> float:
    """Root of A_p(kappa) = R: Newton in Arb from `start`, then a rigorous bracket check."""
    k = arb_of(start)
    for _ in range(30):
        a = ref_A(p, k)
        da = 1 - a * a - (p - 1) * a / k
        step = (a - R) / da
        k = arb((k - step).mid())  # drop the error ball: the bracket check below is rigorous
        if not k.is_finite() or abs(float((step / k).mid())) < 1e-40:
            break
    km = float(k.mid()) if k.is_finite() else start
    lo, hi = ref_A(p, arb_of(km) * (1 - arb(1e-30))) - R, ref_A(p, arb_of(km) * (1 + arb(1e-30))) - R
    if not (lo < 0 and hi > 0):  # fall back to bisection from a wide bracket
        a, b = arb_of(max(km * 0.5, 1e-300)), arb_of(km * 2 + 1)
        for _ in range(400):
            m = (a * b).sqrt()
            if (ref_A(p, m) - R).mid() > 0:
                b = m
            else:
                a = m
            if float(((b - a) / a).mid()) < 1e-30:
                break
        km = float(((a + b) / 2).mid())
    return km


def data_R(X: np.ndarray) -> "flint.arb":
    """Mean resultant length of the (exactly normalized) rows, long double sums."""
    n = X.shape[0]
    Xl = X.astype(np.longdouble)
    Xl /= np.sqrt(np.sum(Xl * Xl, axis=1))[:, None]
    S = Xl.sum(axis=0)
    nS = np.sqrt(np.sum(S * S))
    rbar = nS / n
    if rbar <= 0.5:
        return arb_of(Fraction(*rbar.as_integer_ratio()))
    d = np.sum((Xl - S / nS) ** 2) / (2 * n)
    return 1 - arb_of(Fraction(*d.as_integer_ratio()))


def ref_logpdf(p: int, kappa: float, mu: np.ndarray, X: np.ndarray) -> np.ndarray:
    lc = ref_log_c(p, kappa)
    Xl = X.astype(np.longdouble)
    Xl /= np.sqrt(np.sum(Xl * Xl, axis=1))[:, None]
    om = np.sum((Xl - mu.astype(np.longdouble)) ** 2, axis=1) / 2  # 1 - mu^T x
    out = []
    for o in om:
        out.append(float((lc + arb_of(kappa) * (1 - arb_of(Fraction(*o.as_integer_ratio())))).mid()))
    return np.array(out)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def best_time(f, repeat: int = 3, budget: float = 20.0) -> float:
    """Best of `repeat` single runs after a warm-up, fewer once `budget` seconds are spent."""
    return _bench.best_time(f, repeat=repeat, min_time=0.0, budget=budget)


def unit(rng, p):
    v = rng.standard_normal(p)
    return v / np.linalg.norm(v)


def rel(a: float, b: float) -> float:
    if not np.isfinite(a):
        return FAIL
    return abs(a - b) / abs(b)


def n_for(p: int) -> int:
    return 2000 if p <= 1000 else (500 if p <= 10000 else 200)


def fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "fail"
    if x == 0:
        return "0"
    return f"{x:.1e}"


def fmt_t(x: float) -> str:
    if x is None:
        return "not run"
    if isinstance(x, float) and math.isnan(x):
        return "fail"
    return f"{x * 1e3:.3g} ms" if x < 1 else f"{x:.3g} s"


# ---------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------


def accuracy_section(quick: bool) -> dict:
    out: dict = {"fit": [], "solver": {}, "log_normalizer": {}}
    rng = np.random.default_rng(0)
    kappas = [0.1, 10.0, 1e3, 1e5, 1e8] if not quick else [10.0, 1e5, 1e8]
    for p in [3, 384, 2048, 32768, 100000]:
        n = {3: 2000, 384: 1000, 2048: 400, 32768: 60, 100000: 30}[p]
        for kappa in kappas:
            X = kvmf.VonMisesFisher(unit(rng, p), kappa).sample(n, rng)
            fit = kvmf.VonMisesFisher.fit(X)
            ref = ref_kappa(p, data_R(X), fit.kappa)
            out["fit"].append({"p": p, "kappa_true": kappa, "n": n, "kappa_hat": fit.kappa, "kappa_mle_arb": ref,
                               "rel_err": rel(fit.kappa, ref)})
    # the solver alone, exact inputs
    for p in [2, 3, 384, 2048, 32768, 100000]:
        errs = []
        for kappa in 10.0 ** np.arange(-10, 10.5, 1.0):
            a = ref_A(p, arb_of(kappa))
            rbar, delta = float(a.mid()), float((1 - a).mid())
            got = kvmf.kappa_mle(p, rbar, delta)
            R = arb_of(rbar) if rbar <= 0.5 else 1 - arb_of(delta)
            errs.append(rel(got, ref_kappa(p, R, got)))
        out["solver"][p] = {"max": float(np.max(errs)), "median": float(np.median(errs))}
    # log normalizer
    ks = np.concatenate([[0.0, 1e-300, 1e-10], 10.0 ** np.arange(-3, 8.01, 0.25)])
    for p in [2, 3, 10, 384, 2048, 8192, 32768, 100000]:
        got = kvmf.log_normalizer(p, ks)
        errs = np.array([rel(g, float(ref_log_c(p, k).mid())) for g, k in zip(got, ks)])
        cond_errs = []
        for g, k in zip(got, ks):  # error relative to the size of the terms (see notes)
            ref = float(ref_log_c(p, k).mid())
            nu = p / 2 - 1
            scale = abs(ref)
            if k > 0:  # |nu log k| + (p/2) log 2 pi + |log I_nu(k)|
                log_i = nu * math.log(k) - p / 2 * math.log(2 * math.pi) - ref
                scale = max(scale, abs(nu * math.log(k)) + p / 2 * math.log(2 * math.pi) + abs(log_i))
            cond_errs.append(abs(g - ref) / scale)
        out["log_normalizer"][p] = {"max": float(np.max(errs)), "median": float(np.median(errs)),
                                    "max_vs_terms": float(np.max(cond_errs)), "n_points": int(ks.size)}
    return out


def scipy_section(quick: bool) -> dict:
    try:
        import scipy
        from scipy.stats import vonmises_fisher
    except ImportError:
        return {"scipy": None, "rows": []}
    ps = [3, 100, 1000, 10000, 32768]
    kappas = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6]
    if quick:
        ps, kappas = [3, 1000, 32768], [10.0, 1e3, 1e5]
    rows = []
    rng = np.random.default_rng(1)
    for p in ps:
        n = n_for(p)
        for kappa in kappas:
            mu = unit(rng, p)
            d = kvmf.VonMisesFisher(mu, kappa)
            X = d.sample(n, rng)
            row: dict = {"p": p, "kappa": kappa, "n": n}
            # kernkit
            fit = kvmf.VonMisesFisher.fit(X)
            ref = ref_kappa(p, data_R(X), fit.kappa)
            row["kappa_mle_arb"] = ref
            row["kk_err"] = rel(fit.kappa, ref)
            row["kk_t_fit"] = best_time(lambda: kvmf.VonMisesFisher.fit(X))
            row["kk_t_logpdf"] = best_time(lambda: d.logpdf(X))
            row["kk_t_sample"] = best_time(lambda: d.sample(n, 2))
            m = min(n, 8)
            lref = ref_logpdf(p, kappa, mu, X[:m])
            row["kk_logpdf_err"] = float(np.max(np.abs(d.logpdf(X[:m]) - lref) / np.abs(lref)))
            # scipy
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    sfit = vonmises_fisher.fit(X)
                    sk = float(sfit[1])
                    row["sp_kappa"] = sk
                    row["sp_sentinel"] = bool(sk in (1e-8, 1e9))
                    row["sp_err"] = FAIL if row["sp_sentinel"] else rel(sk, ref)
                    row["sp_t_fit"] = best_time(lambda: vonmises_fisher.fit(X))
                except Exception as e:  # noqa: BLE001
                    row["sp_kappa"], row["sp_err"], row["sp_error"] = FAIL, FAIL, repr(e)[:120]
                    row["sp_t_fit"] = FAIL
                sd = vonmises_fisher(mu, kappa)
                try:
                    lp = sd.logpdf(X[:m])
                    e = np.abs(lp - lref) / np.abs(lref)
                    row["sp_logpdf_err"] = float(np.max(e)) if np.all(np.isfinite(lp)) else FAIL
                    row["sp_t_logpdf"] = best_time(lambda: sd.logpdf(X))
                except Exception as e:  # noqa: BLE001
                    row["sp_logpdf_err"], row["sp_t_logpdf"] = FAIL, FAIL
                # SciPy rotates its samples with the Q of a QR decomposition of a (p, p) matrix:
                # O(p^3) time and 16 p^2 bytes (17 GB at p = 32768). Time it up to p = 1000, and
                # once at p = 10000; skip it above.
                if p <= 1000 or (p <= 10000 and kappa == kappas[0] and not quick):
                    try:
                        t0 = time.perf_counter()
                        S = sd.rvs(n, random_state=3)
                        t1 = time.perf_counter() - t0
                        ok = bool(np.all(np.isfinite(S)))
                        row["sp_sample_ok"] = ok
                        if not ok:
                            row["sp_t_sample"] = FAIL
                        elif p <= 1000:
                            row["sp_t_sample"] = best_time(lambda: sd.rvs(n, random_state=3), repeat=2, budget=10)
                        else:
                            row["sp_t_sample"] = t1
                    except Exception:  # noqa: BLE001
                        row["sp_sample_ok"], row["sp_t_sample"] = False, FAIL
                else:
                    row["sp_sample_ok"], row["sp_t_sample"] = None, None
            print(f"p={p:6d} kappa={kappa:8.0e}: kernkit err {fmt(row['kk_err'])}, scipy err {fmt(row.get('sp_err'))}",
                  file=sys.stderr, flush=True)
            rows.append(row)
    return {"scipy": scipy.__version__, "rows": rows}


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------


def markdown(res: dict) -> str:
    L = []
    L.append("# kernkit.vmf — accuracy, and side by side with scipy.stats.vonmises_fisher\n")
    L.append(f"{res['date']} · {res['machine']} · numpy {res['numpy']} · SciPy {res['sides']['scipy']} · "
             f"python-flint {res['flint']}. Produced by `bench/vmf/bench_vmf.py`"
             + (" --quick" if res["quick"] else "") + ".\n")
    acc = res["accuracy"]
    L.append("## Accuracy against Arb\n")
    L.append("Fitted κ̂ of sampled data vs the exact MLE of the same data (mean resultant length in long "
             "double, A_p(κ) = R̄ solved in Arb). Relative error:\n")
    ks = sorted({r["kappa_true"] for r in acc["fit"]})
    L.append("| p | n | " + " | ".join(f"κ = {k:g}" for k in ks) + " |")
    L.append("|---|---|" + "---|" * len(ks))
    for p in sorted({r["p"] for r in acc["fit"]}):
        rs = {r["kappa_true"]: r for r in acc["fit"] if r["p"] == p}
        n = next(iter(rs.values()))["n"]
        L.append(f"| {p} | {n} | " + " | ".join(fmt(rs[k]["rel_err"]) if k in rs else "" for k in ks) + " |")
    L.append("\n`kappa_mle(p, rbar, 1 - rbar)` on exact inputs A_p(κ), κ = 1e-10 … 1e10 (21 decades): "
             "relative error of κ̂, max (median):\n")
    L.append("| p | " + " | ".join(str(p) for p in acc["solver"]) + " |")
    L.append("|---|" + "---|" * len(acc["solver"]))
    L.append("| error | " + " | ".join(f"{fmt(v['max'])} ({fmt(v['median'])})" for v in acc["solver"].values()) + " |")
    L.append("\n`log_normalizer(p, κ)` on κ ∈ {0, 1e-300, 1e-10} ∪ 10^[-3, 8] (step 10^0.25), relative error "
             "max (median); last row: error relative to the size of the terms (p/2−1)|log κ| + … "
             "(large only where log C_p(κ) crosses 0):\n")
    L.append("| p | " + " | ".join(str(p) for p in acc["log_normalizer"]) + " |")
    L.append("|---|" + "---|" * len(acc["log_normalizer"]))
    L.append("| rel. error | " + " | ".join(f"{fmt(v['max'])} ({fmt(v['median'])})" for v in acc["log_normalizer"].values()) + " |")
    L.append("| vs terms | " + " | ".join(fmt(v["max_vs_terms"]) for v in acc["log_normalizer"].values()) + " |")
    rows = res["sides"]["rows"]
    if rows:
        L.append("\n## Side by side with scipy.stats.vonmises_fisher\n")
        L.append("Per cell: one data set of n points drawn with kernkit's sampler. *err* = relative error of the "
                 "fitted κ against the exact MLE of that data (Arb); *fail* = SciPy returned its bracket end "
                 "(1e-8 or 1e9), raised, or a non-finite value. logpdf error: max over 8 data points against Arb. "
                 f"Times: best of 3, the same n points, BLAS threads: {res.get('blas_threads')}. SciPy's sampler is *not run* above p = 1000 "
                 "(except once at p = 10000): it builds a (p, p) rotation by QR, O(p^3) time and 16 p^2 bytes "
                 "(17 GB at p = 32768, more than this machine has).\n")
        L.append("| p | κ | n | κ̂ err kernkit | κ̂ err SciPy | SciPy κ̂ | logpdf err kernkit | logpdf err SciPy | "
                 "fit kernkit | fit SciPy | logpdf kernkit | logpdf SciPy | sample kernkit | sample SciPy |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            L.append(f"| {r['p']} | {r['kappa']:g} | {r['n']} | {fmt(r['kk_err'])} | {fmt(r.get('sp_err'))} | "
                     f"{r.get('sp_kappa', float('nan')):.6g} | {fmt(r['kk_logpdf_err'])} | {fmt(r.get('sp_logpdf_err'))} | "
                     f"{fmt_t(r['kk_t_fit'])} | {fmt_t(r.get('sp_t_fit'))} | {fmt_t(r['kk_t_logpdf'])} | "
                     f"{fmt_t(r.get('sp_t_logpdf'))} | {fmt_t(r['kk_t_sample'])} | {fmt_t(r.get('sp_t_sample'))} |")
        nf = sum(1 for r in rows if not np.isfinite(r.get("sp_err", FAIL)))
        L.append(f"\nSciPy's fit failed in {nf} of {len(rows)} cells; kernkit's in "
                 f"{sum(1 for r in rows if not np.isfinite(r['kk_err']))}. Max kernkit κ̂ error: "
                 f"{fmt(max(r['kk_err'] for r in rows))}.\n")
        L.append("![fitted-kappa error vs p](vmf_kappa_error.png)\n")
    return "\n".join(L) + "\n"


def plot(res: dict, path: Path) -> None:
    rows = res["sides"]["rows"]
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    ks = sorted({r["kappa"] for r in rows})
    cmap = plt.get_cmap("viridis")
    FAIL_Y = 3.0
    for i, k in enumerate(ks):
        rs = sorted((r for r in rows if r["kappa"] == k), key=lambda r: r["p"])
        ps = [r["p"] for r in rs]
        c = cmap(i / max(1, len(ks) - 1))
        kk = np.maximum([r["kk_err"] for r in rs], 1e-17)  # an exact result (0) is drawn at 1e-17
        ax.plot(ps, kk, "o-", color=c, ms=4, lw=1, label=f"κ = {k:g}")
        sp = np.array([r.get("sp_err", FAIL) for r in rs], dtype=float)
        ax.plot(ps, np.maximum(sp, 1e-17), "x--", color=c, ms=7, lw=1)  # NaN (failure) breaks the line
        bad = ~np.isfinite(sp)
        ax.plot(np.array(ps)[bad], np.full(bad.sum(), FAIL_Y * (1 + 0.25 * i)), "x", color=c, ms=7, mew=1.5)
    ax.axhline(FAIL_Y, color="red", lw=0.6)
    ax.text(2.2, FAIL_Y * 0.25, "above: SciPy's fit failed (returned its bracket end 1e-8)", color="red", fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(3e-18, 60)
    ax.set_xlabel("dimension p")
    ax.set_ylabel("relative error of fitted κ vs exact MLE (Arb)")
    ax.set_title("vMF fit: kernkit (o, solid) vs scipy.stats.vonmises_fisher (x, dashed)")
    ax.legend(fontsize=7, ncol=2, loc="center right", title="kernkit (o) / SciPy (x)", title_fontsize=7)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer cells (a smoke run)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results"))
    ap.add_argument("--replot", action="store_true", help="rewrite vmf.md and the PNG from vmf.json")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        res = json.loads((out / "vmf.json").read_text())
        (out / "vmf.md").write_text(markdown(res))
        plot(res, out / "vmf_kappa_error.png")
        return
    t0 = time.perf_counter()
    res = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {platform.processor() or ''} ({platform.system()}), python {platform.python_version()}".replace("  ", " "),
        "numpy": np.__version__,
        "flint": getattr(flint, "__version__", "?"),
        "quick": args.quick,
    }
    try:  # one BLAS thread for both libraries: stable timings on a shared machine
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(1)
        res["blas_threads"] = 1
    except ImportError:
        limiter = None
        res["blas_threads"] = "default"
    res["accuracy"] = accuracy_section(args.quick)
    res["sides"] = scipy_section(args.quick)
    if limiter is not None:
        limiter.restore_original_limits()
    res["seconds"] = time.perf_counter() - t0
    (out / "vmf.json").write_text(json.dumps(res, indent=1, default=float))
    (out / "vmf.md").write_text(markdown(res))
    plot(res, out / "vmf_kappa_error.png")
    print(markdown(res))


if __name__ == "__main__":
    main()
