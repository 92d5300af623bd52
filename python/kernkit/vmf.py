r"""von Mises-Fisher distributions on the sphere S^{p-1}, for any dimension p >= 2.

The density of vMF(mu, kappa) with respect to the surface measure of S^{p-1} is

    f(x; mu, kappa) = C_p(kappa) exp(kappa mu^T x),
    log C_p(kappa) = (p/2 - 1) log kappa - (p/2) log(2 pi) - log I_{p/2-1}(kappa),

and its mean resultant length is A_p(kappa) = I_{p/2}(kappa) / I_{p/2-1}(kappa). Everything is
computed from kernkit's log-scale Bessel functions (:func:`kernkit.log_iv`,
:func:`kernkit.log_ive`, :func:`kernkit.bessel_iv_ratio`), so nothing overflows or underflows
for p up to 10^5 and beyond, and for kappa from 0 (the uniform distribution, exactly) to
10^8 and beyond.

Contents
--------
log_normalizer(p, kappa)            log C_p(kappa), vectorized over kappa
mean_resultant_length(p, kappa)     A_p(kappa)
kappa_mle(p, rbar)                  the solution of A_p(kappa) = rbar
VonMisesFisher(mu, kappa)           logpdf, pdf, sample, entropy, kl_divergence, fit, ...
VonMisesFisherMixture(k)            EM for mixtures (soft or hard assignments), BIC
spherical_kmeans(X, k)              the hard, equal-kappa limit of the mixture

``fit`` methods accept numpy arrays and Dask arrays (distributed sufficient statistics).

References
----------
A. T. A. Wood, "Simulation of the von Mises Fisher distribution", Commun. Stat. Simul.
Comput. 23(1), 157-164 (1994).
A. Banerjee, I. S. Dhillon, J. Ghosh, S. Sra, "Clustering on the Unit Hypersphere using von
Mises-Fisher Distributions", JMLR 6, 1345-1382 (2005).
S. Sra, "A short note on parameter approximation for von Mises-Fisher distributions",
Comput. Stat. 27, 177-190 (2012).
A. Tanabe, K. Fukumizu, S. Oba, T. Takenouchi, S. Ishii, "Parameter estimation for von
Mises-Fisher distributions", Comput. Stat. 22, 145-157 (2007).
"""

from __future__ import annotations

import functools
import logging
import math
from fractions import Fraction
from typing import Any

import numpy as np

from . import _core
from . import _vmf_data as _data
from .special import log_iv, log_ive

__all__ = [
    "VonMisesFisher",
    "VonMisesFisherMixture",
    "kappa_mle",
    "log_normalizer",
    "mean_resultant_length",
    "spherical_kmeans",
]

logger = logging.getLogger(__name__)

_LOG_2PI = math.log(2.0 * math.pi)

ArrayLike = Any


# ---------------------------------------------------------------------------------------------
# scalar functions of (p, kappa)
# ---------------------------------------------------------------------------------------------


def _check_dim(p: Any) -> int:
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer)):
        if isinstance(p, (float, np.floating)) and float(p).is_integer():
            p = int(p)
        else:
            raise TypeError(f"p (the dimension of the ambient space) must be an integer; got {p!r}")
    dim = int(p)
    if dim < 2:
        raise ValueError(
            f"p must be >= 2 (vMF lives on the sphere S^(p-1) in R^p); got p = {dim}"
            + ("; S^0 = {-1, +1} has no vMF distribution" if dim == 1 else "")
        )
    return dim


def _log_sphere_area(p: int) -> float:
    """log |S^{p-1}| = log 2 + (p/2) log pi - lgamma(p/2)."""
    return math.log(2.0) + 0.5 * p * math.log(math.pi) - math.lgamma(0.5 * p)


def _small_kappa_L(p: int, kappa: np.ndarray) -> np.ndarray:
    """L(kappa) = log( Gamma(nu+1) (2/kappa)^nu I_nu(kappa) ), nu = p/2-1, by its power series.

    L = log1p( sum_{k>=1} (kappa^2/4)^k / (k! (nu+1)_k) ); all terms are positive. Used for
    kappa^2/4 <= nu+1, where term ratios are <= 1/k (24 terms reach 1e-23).
    """
    nu = 0.5 * p - 1.0
    x = 0.25 * kappa * kappa
    t = np.ones_like(kappa)
    s = np.zeros_like(kappa)
    for k in range(1, 25):
        t = t * x / (k * (nu + k))
        s = s + t
    out: np.ndarray = np.log1p(s)
    return out


def _log_norm_parts(p: int, kappa: np.ndarray, plus_kappa: bool) -> np.ndarray:
    """log C_p(kappa) (plus_kappa=False) or log C_p(kappa) + kappa (True), elementwise."""
    kappa = np.asarray(kappa, dtype=np.float64)
    nu = 0.5 * p - 1.0
    logc0 = -_log_sphere_area(p)
    out = np.full(kappa.shape, np.nan)
    small = (kappa >= 0) & (kappa <= 2.0 * math.sqrt(nu + 1.0))
    big = (kappa > 0) & ~small & np.isfinite(kappa)
    if small.any():
        ks = kappa[small]
        out[small] = logc0 - _small_kappa_L(p, ks) + (ks if plus_kappa else 0.0)
    if big.any():
        kb = kappa[big]
        li = log_ive(nu, kb) if plus_kappa else log_iv(nu, kb)
        out[big] = nu * np.log(kb) - 0.5 * p * _LOG_2PI - li
    inf = np.isposinf(kappa)
    if inf.any():
        out[inf] = np.inf if plus_kappa else -np.inf
    return out


def log_normalizer(p: int, kappa: ArrayLike) -> np.ndarray | float:
    r"""Logarithm of the vMF normalizing constant C_p(kappa), vectorized over kappa.

    .. math::

        \log C_p(\kappa) = (p/2-1)\log\kappa - (p/2)\log(2\pi) - \log I_{p/2-1}(\kappa),

    so that f(x) = C_p(kappa) exp(kappa mu^T x) integrates to 1 over S^{p-1}. At kappa = 0
    it is exactly -log|S^{p-1}| = lgamma(p/2) - log 2 - (p/2) log pi, and for
    kappa^2 <= 2p it is computed as log C_p(0) - log1p(series) (DLMF 10.25.2), so the limit
    kappa -> 0 is continuous and free of cancellation. Elsewhere log I comes from
    :func:`kernkit.log_iv`, which has no overflow for any order and argument.

    Parameters
    ----------
    p : int
        Dimension of the ambient space (the sphere is S^{p-1}), p >= 2.
    kappa : array_like
        Concentration(s), kappa >= 0. Negative or NaN kappa gives NaN; +inf gives -inf.

    Returns
    -------
    float or ndarray
        log C_p(kappa), with kappa's shape.

    References
    ----------
    K. V. Mardia, P. E. Jupp, *Directional Statistics*, Wiley (2000), eq. (9.3.4).
    """
    p = _check_dim(p)
    k = np.asarray(kappa, dtype=np.float64)
    out = _log_norm_parts(p, k, plus_kappa=False)
    return float(out) if out.ndim == 0 else out


@functools.lru_cache(maxsize=128)
def _asym_coeffs(p: int) -> tuple[float, np.ndarray]:
    """Threshold and coefficients c_k of 1 - A_p(kappa) ~ sum_k c_k kappa^-k (kappa large).

    From the Riccati equation A' = 1 - A^2 - (p-1) A / kappa with u = 1 - A:
    c_1 = (p-1)/2, c_k = (sum_{i=1}^{k-1} c_i c_{k-i} - (p-k) c_{k-1}) / 2, in exact
    rational arithmetic. Terms behave like (0.43 p / kappa)^k; the series is used for
    kappa >= max(20 p, 40), with as many terms as reach 1e-18 relative there.
    """
    thr = float(max(20 * p, 40))
    c = [Fraction(0), Fraction(p - 1, 2)]
    c1 = float(c[1])
    small_in_a_row = 0
    for k in range(2, 80):
        ck = (sum(c[i] * c[k - i] for i in range(1, k)) - (p - k) * c[k - 1]) / 2
        c.append(ck)
        rel = abs(float(ck)) / thr ** (k - 1) / c1
        small_in_a_row = small_in_a_row + 1 if rel < 1e-19 else 0
        if small_in_a_row == 2:
            break
    else:  # pragma: no cover - never reached for p >= 2 with thr >= 20 p
        raise RuntimeError("asymptotic series for 1 - A_p did not converge")
    return thr, np.array([float(v) for v in c[1:]])


def _A_u_dA(p: int, kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A_p(kappa), u = 1 - A_p(kappa) and A_p'(kappa) (kappa >= 0), each to full relative precision.

    u is the quantity that carries the information when A is close to 1 (large kappa): there
    it comes from the large-kappa expansion (see :func:`_asym_coeffs`) rather than from 1 - A
    (kernkit::vmf_a_u_da in kernkit/math/vmf.hpp).
    """
    k = np.ascontiguousarray(kappa, dtype=np.float64)
    thr, c = _asym_coeffs(p)
    A, u, dA = np.empty(k.shape), np.empty(k.shape), np.empty(k.shape)
    _core.vmf_a_u_da(p, k.reshape(-1), thr, c, A.reshape(-1), u.reshape(-1), dA.reshape(-1))
    return A, u, dA


def mean_resultant_length(p: int, kappa: ArrayLike) -> np.ndarray | float:
    r"""Mean resultant length A_p(kappa) = I_{p/2}(kappa) / I_{p/2-1}(kappa) = ||E x||.

    Parameters
    ----------
    p : int
        Dimension, p >= 2.
    kappa : array_like
        Concentration(s) >= 0.

    Returns
    -------
    float or ndarray
        A_p(kappa) in [0, 1); A_p(0) = 0. Computed with :func:`kernkit.bessel_iv_ratio`
        (and, for kappa >= 20 p, from 1 - sum_k c_k kappa^-k, the large-kappa expansion
        that also gives 1 - A_p to full relative precision).

    References
    ----------
    Mardia & Jupp (2000), eq. (9.3.9); Sra (2012).
    """
    p = _check_dim(p)
    k = np.asarray(kappa, dtype=np.float64)
    A = np.full(k.shape, np.nan)
    ok = k >= 0
    A[ok] = _A_u_dA(p, k[ok])[0]
    return float(A) if A.ndim == 0 else A


def _newton_kappa(p: int, r: np.ndarray, d: np.ndarray, evals: np.ndarray | None = None) -> np.ndarray:
    """Safeguarded Newton for A_p(kappa) = r (0 < r < 1, d = 1 - r), in s = log kappa
    (kernkit::vmf_kappa_newton in kernkit/math/vmf.hpp, one element at a time); evals, an int32
    array of r's length, receives each element's number of A_p evaluations."""
    thr, c = _asym_coeffs(p)
    r = np.ascontiguousarray(r, dtype=np.float64).reshape(-1)
    d = np.ascontiguousarray(d, dtype=np.float64).reshape(-1)
    out = np.empty(r.shape)
    _core.vmf_kappa_mle(p, r, d, thr, c, out, evals)
    return out


def kappa_mle(p: int, rbar: ArrayLike, one_minus_rbar: ArrayLike | None = None) -> np.ndarray | float:
    r"""Maximum-likelihood concentration: the root kappa of A_p(kappa) = rbar.

    A_p(kappa) = I_{p/2}(kappa)/I_{p/2-1}(kappa) increases from 0 to 1, so the root is unique.
    It is found by Newton's method on log A_p(kappa) - log rbar (for rbar <= 1/2) or on
    log(1 - rbar) - log(1 - A_p(kappa)) (for rbar > 1/2), both nearly linear in log kappa,
    started at Banerjee et al.'s kappa_0 = rbar (p - rbar^2) / (1 - rbar^2) and kept inside
    the bracket (Tanabe et al. 2007; A_p(kappa) <= kappa/p)

        max(p rbar, rbar (p-2)/(1-rbar^2)) <= kappa <= rbar p / (1-rbar^2)

    by bisection, with A_p'(kappa) = 1 - A_p^2 - (p-1) A_p / kappa (Sra 2012). It stops
    at full double precision (relative change < 1e-15), typically after 3-6 steps.

    Parameters
    ----------
    p : int
        Dimension, p >= 2.
    rbar : array_like
        Mean resultant length(s) in [0, 1]. rbar = 0 gives kappa = 0 exactly; rbar = 1
        (all points equal) gives +inf. For rbar < 1e-8 the series
        kappa = p rbar (1 + p rbar^2/(p+2)) is used.
    one_minus_rbar : array_like, optional
        1 - rbar computed without cancellation. For rbar close to 1 (kappa large) this, not
        rbar, determines kappa: kappa ~ (p-1) / (2 (1 - rbar)). Pass it whenever you have it
        (:meth:`VonMisesFisher.fit` computes it from sum_i ||x_i - mu||^2 / 2).

    Returns
    -------
    float or ndarray
        kappa >= 0 (NaN for rbar outside [0, 1] or NaN).

    Notes
    -----
    Accuracy: the relative error of kappa is a few 1e-15 when rbar (or one_minus_rbar) is
    exact, because both A_p and 1 - A_p are evaluated to full relative precision (the latter
    by the large-kappa expansion for kappa >= 20 p). The MLE's own sensitivity to the data
    is d kappa / kappa ~ d(1 - rbar) / (1 - rbar) for large kappa.

    References
    ----------
    Banerjee et al. (2005); Sra (2012); Tanabe et al. (2007).
    """
    p = _check_dim(p)
    r = np.asarray(rbar, dtype=np.float64)
    if one_minus_rbar is None:
        d = 1.0 - r
    else:
        d = np.asarray(one_minus_rbar, dtype=np.float64)
    r, d = np.broadcast_arrays(r, d)
    out = np.full(r.shape, np.nan)
    valid = np.isfinite(r) & np.isfinite(d) & (r >= 0) & (d >= 0) & (r <= 1.0)
    zero = valid & (r == 0)
    inf = valid & ~zero & (d == 0)
    tiny = valid & ~zero & ~inf & (r < 1e-8)
    rest = valid & ~zero & ~inf & ~tiny
    out[zero] = 0.0
    out[inf] = np.inf
    if tiny.any():
        rt = r[tiny]
        out[tiny] = p * rt * (1.0 + p * rt * rt / (p + 2.0))
    if rest.any():
        out[rest] = _newton_kappa(p, r[rest].copy(), d[rest].copy())
    return float(out) if out.ndim == 0 else out


# ---------------------------------------------------------------------------------------------
# data helpers
# ---------------------------------------------------------------------------------------------


def _rng(rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.BitGenerator):
        return np.random.Generator(rng)
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator; got {type(rng).__name__}")


def _point_rows(x: ArrayLike, p: int, name: str = "x") -> tuple[np.ndarray, tuple[int, ...]]:
    """Check points of shape (..., p); return them as rows (m, p) and the batch shape."""
    a = np.asarray(x)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers; got dtype {a.dtype}")
    if a.ndim == 0 or a.shape[-1] != p:
        raise ValueError(f"{name} must have shape (..., {p}) to match the distribution's dim p = {p}; got {a.shape}")
    return a.reshape(-1, p), a.shape[:-1]


def _stats_block(Xb: Any, wb: Any, offset: int, normalize: bool) -> dict[str, Any]:
    xb, w, report = _data.prep_block(Xb, wb, offset, normalize)
    out: dict[str, Any] = {"S": w @ xb, "W": float(w.sum()), "n": xb.shape[0]}
    out.update(report)
    return out


def _dev_block(Xb: Any, wb: Any, offset: int, normalize: bool, mu: np.ndarray) -> dict[str, Any]:
    _, dist2, w, _ = _data.unit_row_stats(Xb, wb, offset, normalize, mu)
    return {"D": float(w @ (0.5 * dist2))}


# ---------------------------------------------------------------------------------------------
# the distribution
# ---------------------------------------------------------------------------------------------


class VonMisesFisher:
    r"""The von Mises-Fisher distribution vMF(mu, kappa) on the unit sphere S^{p-1} in R^p.

    .. math::

        f(x; \mu, \kappa) = C_p(\kappa)\, e^{\kappa \mu^T x}, \qquad
        C_p(\kappa) = \frac{\kappa^{p/2-1}}{(2\pi)^{p/2} I_{p/2-1}(\kappa)}.

    Valid for any p >= 2 (tested to 100,000) and 0 <= kappa < inf (tested to 1e8); kappa = 0
    is exactly the uniform distribution. All quantities are computed on a log scale with
    kernkit's Bessel functions, so there is no overflow, underflow or NaN.

    Parameters
    ----------
    mu : array_like, shape (p,)
        Mean direction, a unit vector (p >= 2).
    kappa : float
        Concentration, 0 <= kappa < inf.
    normalize : bool, default False
        Divide mu by its norm instead of rejecting a non-unit mu.

    Attributes
    ----------
    mu : ndarray, shape (p,)
    kappa : float
    dim : int
        p, the dimension of the ambient space.

    References
    ----------
    Mardia & Jupp, *Directional Statistics* (2000), §9.3; Wood (1994); Banerjee et al. (2005).

    Examples
    --------
    >>> import numpy as np, kernkit.vmf as vmf
    >>> d = vmf.VonMisesFisher(np.eye(2048)[0], kappa=2048.0)
    >>> X = d.sample(1000, rng=0)
    >>> vmf.VonMisesFisher.fit(X).kappa  # doctest: +SKIP
    2053.99...
    """

    def __init__(self, mu: ArrayLike, kappa: float, *, normalize: bool = False) -> None:
        m = np.asarray(mu)
        if m.dtype == object or not (np.issubdtype(m.dtype, np.floating) or np.issubdtype(m.dtype, np.integer)):
            raise TypeError(f"mu must hold real numbers; got dtype {m.dtype}")
        if m.ndim != 1:
            raise ValueError(f"mu must be a 1-D vector of length p >= 2; got shape {m.shape}")
        _check_dim(m.shape[0])
        m = m.astype(np.float64)
        if not np.all(np.isfinite(m)):
            raise ValueError("mu contains NaN or infinite values")
        nrm = float(np.linalg.norm(m))
        if nrm == 0.0:
            raise ValueError("mu is the zero vector; it must be a unit vector (the mean direction)")
        if abs(nrm - 1.0) > _data.UNIT_TOL and not normalize:
            raise ValueError(f"mu must be a unit vector; its norm is {nrm:.6g} (pass normalize=True to normalize it)")
        try:
            k = float(kappa)
        except (TypeError, ValueError):
            raise TypeError(f"kappa must be a real number; got {kappa!r}") from None
        if np.ndim(kappa) != 0:
            raise ValueError(f"kappa must be a scalar; got shape {np.shape(kappa)}")
        if not math.isfinite(k) or k < 0:
            raise ValueError(f"kappa must be finite and >= 0; got {k!r}")
        self.mu: np.ndarray = m / nrm
        self.mu.setflags(write=False)
        self.kappa: float = k
        self.dim: int = int(m.shape[0])
        self._lnpk: tuple[float, float] = (math.nan, math.nan)  # (kappa, log C_p(kappa) + kappa)

    def __repr__(self) -> str:
        return f"VonMisesFisher(dim={self.dim}, kappa={self.kappa:.17g})"

    # -- scalar summaries ---------------------------------------------------------------------

    def log_normalizer(self) -> float:
        """log C_p(kappa); see :func:`kernkit.vmf.log_normalizer`."""
        return float(_log_norm_parts(self.dim, np.array(self.kappa), plus_kappa=False))

    def _log_norm_plus_kappa(self) -> float:
        """log C_p(kappa) + kappa = log f(mu), from log_ive (no cancellation at large kappa);
        kept for the kappa it was computed at (logpdf calls it once per call)."""
        if self._lnpk[0] != self.kappa:
            self._lnpk = (self.kappa, float(_log_norm_parts(self.dim, np.array(self.kappa), plus_kappa=True)))
        return self._lnpk[1]

    def _A_u(self) -> tuple[float, float]:
        A, u, _ = _A_u_dA(self.dim, np.array([self.kappa]))
        return float(A[0]), float(u[0])

    def mean_resultant_length(self) -> float:
        """A_p(kappa) = I_{p/2}(kappa)/I_{p/2-1}(kappa) = ||E[x]||."""
        return self._A_u()[0]

    def mean(self) -> np.ndarray:
        """E[x] = A_p(kappa) mu (a vector inside the unit ball)."""
        return self._A_u()[0] * self.mu

    def entropy(self) -> float:
        r"""Differential entropy (nats) w.r.t. the surface measure.

        H = -log C_p(kappa) - kappa A_p(kappa), evaluated as
        -(log C_p + kappa) + kappa (1 - A_p) to avoid cancellation for large kappa;
        H(kappa = 0) = log |S^{p-1}|.
        """
        _, u = self._A_u()
        return -self._log_norm_plus_kappa() + self.kappa * u

    def kl_divergence(self, other: VonMisesFisher) -> float:
        r"""KL(self || other) in nats.

        .. math::

            KL = \log C_p(\kappa_1) - \log C_p(\kappa_2)
                 + A_p(\kappa_1)(\kappa_1 - \kappa_2 \mu_2^T\mu_1),

        evaluated as l_1 - l_2 - kappa_1 u_1 + kappa_2 ((1 - mu_2^T mu_1) + mu_2^T mu_1 u_1)
        with l = log C_p + kappa, u = 1 - A_p and 1 - mu_2^T mu_1 = ||mu_1 - mu_2||^2 / 2,
        so it is exactly 0 for equal distributions and accurate for large kappa.
        """
        if not isinstance(other, VonMisesFisher):
            raise TypeError(f"other must be a VonMisesFisher; got {type(other).__name__}")
        if other.dim != self.dim:
            raise ValueError(f"dimensions differ: self.dim = {self.dim}, other.dim = {other.dim}")
        _, u1 = self._A_u()
        l1 = self._log_norm_plus_kappa()
        l2 = other._log_norm_plus_kappa()
        diff = self.mu - other.mu
        om = 0.5 * float(diff @ diff)
        w = 1.0 - om
        kl = (l1 - l2) - self.kappa * u1 + other.kappa * (om + w * u1)
        return max(kl, 0.0)

    # -- density ------------------------------------------------------------------------------

    def logpdf(self, x: ArrayLike, *, normalize: bool = False) -> np.ndarray | float:
        r"""log f(x) = log C_p(kappa) + kappa mu^T x, for unit vectors x of shape (..., p).

        Computed as (log C_p(kappa) + kappa) - kappa (1 - mu^T x), with 1 - mu^T x taken as
        ||x - mu||^2/2 near the mode, so the result keeps its relative precision at large
        kappa (where log C_p ~ -kappa).

        Parameters
        ----------
        x : array_like, shape (..., p)
            Points on the sphere. Rows that are not unit vectors (to 1e-6) raise ValueError,
            as do zero rows and NaN, unless ``normalize=True`` (then each is divided by its norm).
        normalize : bool, default False

        Returns
        -------
        float or ndarray of shape x.shape[:-1]
        """
        rows, batch = _point_rows(x, self.dim)
        dots, dist2, _, report = _data.unit_row_stats(rows, None, 0, normalize, self.mu)
        _data.raise_if_bad(report, "x")
        ell = self._log_norm_plus_kappa()
        if self.kappa == 0.0:
            out = np.full(rows.shape[0], ell)
        else:
            om = _data.one_minus_dot(dots, dist2) if self.kappa > 1.0 else 1.0 - dots
            out = ell - self.kappa * om
        out = out.reshape(batch)
        return float(out) if out.ndim == 0 else out

    def pdf(self, x: ArrayLike, *, normalize: bool = False) -> np.ndarray | float:
        """exp(logpdf(x)); may under- or overflow where the log-density is beyond +-709."""
        with np.errstate(over="ignore", under="ignore"):
            return np.exp(self.logpdf(x, normalize=normalize))

    # -- sampling -----------------------------------------------------------------------------

    def _sample_w(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Wood's rejection step: w = mu^T x, and 1 - w and 1 + w without cancellation."""
        p, kappa = self.dim, self.kappa
        a = 0.5 * (p - 1.0)
        # b = (-2k + sqrt(4k^2 + (p-1)^2)) / (p-1), written without cancellation / overflow
        b = (p - 1.0) / (2.0 * kappa + math.hypot(2.0 * kappa, p - 1.0))
        one_m_x0 = 2.0 * b / (1.0 + b)
        x0 = (1.0 - b) / (1.0 + b)
        one_m_x0sq = 4.0 * b / (1.0 + b) ** 2
        out_om = np.empty(n)
        out_op = np.empty(n)
        filled = 0
        while filled < n:
            m = int(1.15 * (n - filled)) + 16
            g1 = rng.standard_gamma(a, m)
            g2 = rng.standard_gamma(a, m)
            gs = g1 + g2
            z, one_m_z = g1 / gs, g2 / gs  # Beta(a, a) and its complement, both accurate
            den = one_m_z + b * z  # 1 - (1 - b) z
            om = 2.0 * b * z / den  # 1 - W
            op = 2.0 * one_m_z / den  # 1 + W
            d = om - one_m_x0  # x0 - W
            with np.errstate(divide="ignore", invalid="ignore"):
                t = -kappa * d + 2.0 * a * np.log1p(x0 * d / one_m_x0sq)
            logu = np.log(rng.random(m))
            acc = np.flatnonzero(t >= logu)
            take = acc[: n - filled]
            out_om[filled:filled + take.size] = om[take]
            out_op[filled:filled + take.size] = op[take]
            filled += take.size
        w = np.where(out_om < out_op, 1.0 - out_om, out_op - 1.0)
        return w, out_om, out_op

    def sample(self, n: int, rng: Any = None) -> np.ndarray:
        r"""Draw n independent points, shape (n, p) (Wood 1994, vectorized).

        The component w = mu^T x is drawn by Wood's rejection sampler (envelope from a
        Beta((p-1)/2, (p-1)/2) variable, acceptance rate > 0.5 for every p and kappa), with
        b = (p-1) / (2 kappa + sqrt(4 kappa^2 + (p-1)^2)) and 1 - w, 1 + w formed without
        cancellation; then x = w mu + sqrt(1 - w^2) v with v uniform on the unit sphere
        orthogonal to mu, placed there by a Householder reflection mapping e_1 to mu.
        kappa = 0 gives exactly uniform points.

        Parameters
        ----------
        n : int
            Number of points (>= 0).
        rng : None, int or numpy.random.Generator
            Seed or generator (``numpy.random.default_rng(rng)``).

        Returns
        -------
        ndarray, shape (n, p)

        References
        ----------
        A. T. A. Wood, Commun. Stat. Simul. Comput. 23(1), 157-164 (1994).
        """
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative integer; got {n!r}")
        n = int(n)
        g = _rng(rng)
        p = self.dim
        if n == 0:
            return np.zeros((0, p))
        if self.kappa == 0.0:
            y = g.standard_normal((n, p))
            y /= np.linalg.norm(y, axis=1, keepdims=True)
            return y
        w, om, op = self._sample_w(n, g)
        radial = np.sqrt(om * op)  # sqrt(1 - w^2)
        # Householder reflection H' = I - 2 u u^T / (u^T u), u = e1 + sign*mu (||u||^2 >= 2),
        # maps e1 to -sign*mu; x = -sign * H' y then maps e1 to mu.
        mu = self.mu
        sign = 1.0 if mu[0] >= 0 else -1.0
        u = sign * mu
        u = u.copy()
        u[0] += 1.0
        two_over_uu = 2.0 / float(u @ u)
        y = g.standard_normal((n, p))  # column 0 is overwritten; columns 1.. give the tangent part
        step = _data.block_rows(p)
        for s in range(0, n, step):
            yb = y[s:s + step]
            t = yb[:, 1:]
            t *= (radial[s:s + step] / np.sqrt(np.einsum("ij,ij->i", t, t)))[:, None]
            yb[:, 0] = w[s:s + step]
            coef = (yb @ u) * two_over_uu
            yb -= coef[:, None] * u[None, :]
            yb *= -sign
        return y

    # -- estimation ---------------------------------------------------------------------------

    @classmethod
    def fit(cls, X: ArrayLike, weights: ArrayLike | None = None, *, normalize: bool = False) -> VonMisesFisher:
        r"""Maximum-likelihood vMF for the rows of X (optionally weighted).

        mu = S / ||S|| with S = sum_i w_i x_i; kappa solves A_p(kappa) = rbar = ||S|| / sum w_i
        (see :func:`kappa_mle`). When rbar > 1/2, 1 - rbar is computed in a second pass as
        sum_i w_i ||x_i - mu||^2 / (2 sum_i w_i) (exact for unit x_i, and free of the
        cancellation in 1 - ||S||/W), so kappa keeps full precision up to kappa ~ 1e8 and beyond.

        Parameters
        ----------
        X : array_like or dask.array.Array, shape (n, p)
            Unit vectors, one per row, p >= 2. A Dask array is reduced block by block (one
            task per row block, a tree of small combine tasks), with the same result as in memory.
        weights : array_like, shape (n,), optional
            Non-negative sample weights (numpy or Dask).
        normalize : bool, default False
            Normalize non-unit rows instead of rejecting them. Zero rows and NaN/inf are
            always rejected.

        Returns
        -------
        VonMisesFisher

        Raises
        ------
        ValueError
            Bad shape, p = 1, non-unit / zero / non-finite rows, bad weights, zero total
            weight, or all points identical, also to within the rounding of X's dtype
            (the MLE kappa is infinite).

        References
        ----------
        Banerjee et al. (2005), §4; Sra (2012).
        """
        X = _data.check_matrix(X)
        n, p = X.shape
        w = _data.check_weights(weights, n, X)
        st = _data.map_reduce(X, w, _stats_block, normalize)
        _data.raise_if_bad(st)
        S, W = np.asarray(st["S"], dtype=np.float64), float(st["W"])
        if not W > 0:
            raise ValueError("the weights sum to 0")
        ns = float(np.linalg.norm(S))
        if ns == 0.0:
            logger.info("resultant vector is exactly 0: fitted kappa = 0 (uniform); mu set to e_1")
            mu = np.zeros(p)
            mu[0] = 1.0
            return cls(mu, 0.0)
        mu = S / ns
        rbar = min(ns / W, 1.0)
        if rbar > 0.5:
            D = float(_data.map_reduce(X, w, _dev_block, normalize, mu)["D"])
            delta = D / W
            rbar = 1.0 - delta
        else:
            delta = 1.0 - rbar
        # Rows that agree to within their own rounding (||x_i - mu|| ~ u, the unit roundoff of X's
        # dtype) leave delta ~ u^2: what is left of it is rounding, and the MLE is infinite.
        u = 0.5 * float(np.finfo(X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64).eps)
        kappa = float(kappa_mle(p, rbar, delta)) if delta > 64.0 * u * u else math.inf
        if not math.isfinite(kappa):
            raise ValueError(
                "all points coincide (mean resultant length 1 to within rounding): the "
                "maximum-likelihood kappa is infinite"
            )
        return cls(mu, kappa)


# ---------------------------------------------------------------------------------------------
# mixtures
# ---------------------------------------------------------------------------------------------

from ._vmf_mixture import VonMisesFisherMixture, spherical_kmeans  # noqa: E402
