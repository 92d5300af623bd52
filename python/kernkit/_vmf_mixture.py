"""Mixtures of von Mises-Fisher distributions (EM, soft or hard) and spherical k-means.

Part of :mod:`kernkit.vmf`; import the names from there.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from . import _vmf_data as _data
from . import vmf as _vmf

logger = logging.getLogger("kernkit.vmf")

ArrayLike = Any

#: Largest number of rows used for k-means++ seeding (a uniform random subsample above it).
INIT_SAMPLE = 20000


def _logsumexp_rows(a: np.ndarray) -> np.ndarray:
    m = np.max(a, axis=1)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore", under="ignore"):
        out: np.ndarray = m + np.log(np.sum(np.exp(a - m[:, None]), axis=1))
    return out


def _log_prob(xb: np.ndarray, mus: np.ndarray, kappas: np.ndarray, ell: np.ndarray, logpi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log pi_k + log f_k(x) = log pi_k + l_k - kappa_k (1 - mu_k^T x), and the dot products."""
    dots = xb @ mus.T
    with np.errstate(invalid="ignore"):
        logp = (ell + logpi)[None, :] - kappas[None, :] * (1.0 - dots)
    return logp, dots


def _em_block(
    Xb: Any,
    wb: Any,
    offset: int,
    normalize: bool,
    mus: np.ndarray,
    kappas: np.ndarray,
    ell: np.ndarray,
    logpi: np.ndarray,
    hard: bool,
    precise: np.ndarray,
) -> dict[str, Any]:
    """E-step on a block, and the block's share of the M-step's sufficient statistics."""
    xb, w, report = _data.prep_block(Xb, wb, offset, normalize)
    K = mus.shape[0]
    logp, dots = _log_prob(xb, mus, kappas, ell, logpi)
    lse = _logsumexp_rows(logp)
    best = np.argmax(logp, axis=1)
    if hard:
        r = np.zeros_like(logp)
        r[np.arange(xb.shape[0]), best] = 1.0
    else:
        with np.errstate(under="ignore"):
            r = np.exp(logp - lse[:, None])
    wr = r * w[:, None]
    D = np.zeros(K)
    for k in np.flatnonzero(precise):
        # sum_i w_i r_ik (1 - mu_k^T x_i) with the difference form near mu_k
        sel = np.flatnonzero(wr[:, k] > 0)
        if sel.size:
            _, _, dist2 = _data.row_stats(xb[sel], mus[k])
            D[k] = wr[sel, k] @ _data.one_minus_dot(dots[sel, k], dist2)
    out = {
        "S": wr.T @ xb,
        "W": wr.sum(axis=0),
        "D": D,
        "ll": float(w @ lse),
        "cll": float(w @ logp[np.arange(xb.shape[0]), best]),
        "n": xb.shape[0],
    }
    out.update(report)
    return out


def _kmeanspp(x: np.ndarray, w: np.ndarray, K: int, rng: np.random.Generator, random: bool) -> np.ndarray:
    """k-means++ seeding on the sphere with the distance 1 - cos (Arthur & Vassilvitskii 2007)."""
    n = x.shape[0]
    prob = w / w.sum()
    if random:
        k = min(K, int(np.count_nonzero(prob)))
        idx = rng.choice(n, size=k, replace=False, p=prob)
        return x[idx]
    centers = [x[rng.choice(n, p=prob)]]
    dist = np.maximum(1.0 - x @ centers[0], 0.0)
    for _ in range(1, K):
        q = w * dist
        tot = q.sum()
        if not tot > 0:
            break
        c = x[rng.choice(n, p=q / tot)]
        centers.append(c)
        dist = np.minimum(dist, np.maximum(1.0 - x @ c, 0.0))
    return np.array(centers)


def _fill_centers(centers: np.ndarray, K: int, p: int, rng: np.random.Generator) -> np.ndarray:
    if centers.shape[0] < K:  # fewer distinct points than components: random directions
        extra = rng.standard_normal((K - centers.shape[0], p))
        extra /= np.linalg.norm(extra, axis=1, keepdims=True)
        centers = np.vstack([centers, extra])
    return centers


class VonMisesFisherMixture:
    r"""Mixture of K von Mises-Fisher distributions, fitted by EM (Banerjee et al. 2005).

    .. math::

        p(x) = \sum_k \pi_k C_p(\kappa_k) e^{\kappa_k \mu_k^T x}

    The E-step computes responsibilities in log space (log-sum-exp), so components with very
    different or very large kappa in high dimension never overflow; the M-step sets
    mu_k = S_k/||S_k||, pi_k = W_k / W and kappa_k = :func:`kernkit.vmf.kappa_mle` of
    rbar_k = ||S_k|| / W_k, from the responsibility-weighted sums S_k = sum_i r_ik w_i x_i and
    W_k = sum_i r_ik w_i. Each EM iteration is one pass over the data, computed block by
    block (also on a Dask cluster: pass a Dask array).

    Parameters
    ----------
    n_components : int
        K, the number of components.
    posterior : {"soft", "hard"}, default "soft"
        "soft" is EM (soft-movMF); "hard" assigns each point to its most probable component
        (hard-movMF, Banerjee et al. 2005 §5), whose equal-kappa limit is spherical k-means.
    n_init : int, default 3
        Number of initialisations; the one with the highest log-likelihood is kept.
    init : {"k-means++", "random"} or array of shape (K, p), default "k-means++"
        Seeding: k-means++ on the sphere with distance 1 - cos (on a random subsample of at
        most 20,000 rows), uniformly chosen rows, or given mean directions.
    max_iter : int, default 100
    tol : float, default 1e-6
        Stop when the mean log-likelihood per (weighted) sample changes by less than
        tol * (1 + |mean log-likelihood|).
    max_kappa : float, default 1e10
        Upper limit for the kappa_k (a component that collapses onto one point has an
        infinite MLE).
    random_state : None, int or numpy.random.Generator
    progress : bool, default False
        Show a tqdm progress bar (if tqdm is installed). Progress is also logged on the
        ``kernkit.vmf`` logger.

    Attributes
    ----------
    weights_ : ndarray (K,)
        Mixing proportions pi_k.
    means_ : ndarray (K, p)
        Mean directions mu_k.
    kappas_ : ndarray (K,)
    log_likelihood_ : float
        Total (weighted) log-likelihood of the training data at the last E-step.
    converged_ : bool
    n_iter_ : int
    dim_ : int

    Notes
    -----
    Fitting assigns the attributes only once, at the end: an interrupted fit (Ctrl-C)
    leaves the object as it was.

    References
    ----------
    Banerjee, Dhillon, Ghosh, Sra, JMLR 6 (2005) 1345-1382; Arthur & Vassilvitskii,
    "k-means++", SODA 2007.
    """

    def __init__(
        self,
        n_components: int,
        *,
        posterior: str = "soft",
        n_init: int = 3,
        init: str | ArrayLike = "k-means++",
        max_iter: int = 100,
        tol: float = 1e-6,
        max_kappa: float = 1e10,
        random_state: Any = None,
        progress: bool = False,
    ) -> None:
        if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or n_components < 1:
            raise ValueError(f"n_components must be a positive integer; got {n_components!r}")
        if posterior not in ("soft", "hard"):
            raise ValueError(f"posterior must be 'soft' or 'hard'; got {posterior!r}")
        if not isinstance(n_init, (int, np.integer)) or n_init < 1:
            raise ValueError(f"n_init must be a positive integer; got {n_init!r}")
        if not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer; got {max_iter!r}")
        if not (tol >= 0):
            raise ValueError(f"tol must be >= 0; got {tol!r}")
        if not (max_kappa > 0):
            raise ValueError(f"max_kappa must be > 0; got {max_kappa!r}")
        if isinstance(init, str):
            if init not in ("k-means++", "random"):
                raise ValueError(f"init must be 'k-means++', 'random' or an array of means; got {init!r}")
        self.n_components = int(n_components)
        self.posterior = posterior
        self.n_init = int(n_init)
        self.init = init
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.max_kappa = float(max_kappa)
        self.random_state = random_state
        self.progress = progress

    _PARAMS = ("n_components", "posterior", "n_init", "init", "max_iter", "tol", "max_kappa",
               "random_state", "progress")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters (scikit-learn's get_params / set_params protocol, which
        ``sklearn.base.clone`` uses)."""
        return {k: getattr(self, k) for k in self._PARAMS}

    def set_params(self, **params: Any) -> VonMisesFisherMixture:
        """Sets constructor parameters, checked as the constructor checks them; a fit stays."""
        unknown = sorted(set(params) - set(self._PARAMS))
        if unknown:
            raise ValueError(f"unknown parameters {unknown}; VonMisesFisherMixture takes {list(self._PARAMS)}")
        merged = dict(self.get_params(), **params)
        VonMisesFisherMixture.__init__(self, merged.pop("n_components"), **merged)
        return self

    # -- fitting ------------------------------------------------------------------------------

    def _initial(self, X: Any, w: Any, rng: np.random.Generator, normalize: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, p = X.shape
        K = self.n_components
        if isinstance(self.init, str):
            idx = np.arange(n) if n <= INIT_SAMPLE else np.sort(rng.choice(n, size=INIT_SAMPLE, replace=False))
            xs = _data.take_rows(X, idx)
            ws = _data.take_items(w, idx)
            xs, ws, report = _data.prep_block(xs, ws, 0, normalize)
            _data.raise_if_bad(report)
            if not ws.sum() > 0:
                raise ValueError("the weights sum to 0")
            centers = _kmeanspp(xs, ws, K, rng, random=(self.init == "random"))
            centers = _fill_centers(centers, K, p, rng)
        else:
            xs = ws = None  # type: ignore[assignment]
            centers = np.array(self.init, dtype=np.float64)
            if centers.shape != (K, p):
                raise ValueError(f"init must have shape (n_components, p) = ({K}, {p}); got {centers.shape}")
            centers, _, report = _data.prep_block(centers, None, 0, True)
            _data.raise_if_bad(report, "init")
        if xs is None:  # start from the given means: equal weights, pooled kappa from one hard pass
            ones = np.ones(K)
            st = _data.map_reduce(X, w, _em_block, normalize, centers, ones, np.zeros(K), np.zeros(K), True, np.zeros(K, bool))
            _data.raise_if_bad(st)
            S, W = st["S"], st["W"]
        else:
            lab = np.argmax(xs @ centers.T, axis=1)
            S = np.zeros((K, p))
            assert ws is not None
            np.add.at(S, lab, ws[:, None] * xs)
            W = np.bincount(lab, weights=ws, minlength=K).astype(np.float64)
        tot = W.sum()
        rbar_pool = min(float(np.linalg.norm(S, axis=1).sum() / tot), 1.0)
        kap = float(np.nan_to_num(_vmf.kappa_mle(p, rbar_pool), nan=1.0, posinf=self.max_kappa))
        kappas = np.full(K, min(kap, self.max_kappa))
        pis = (W + 1e-3 * tot / K) / (tot * (1 + 1e-3))  # no empty component at the start
        return centers, kappas, pis

    def _mstep(
        self, p: int, st: dict[str, Any], mus: np.ndarray, kappas: np.ndarray, precise: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        S, W, D = st["S"], st["W"], st["D"]
        K = mus.shape[0]
        tot = float(W.sum())
        new_mu = mus.copy()
        new_kappa = kappas.copy()
        rbar = np.zeros(K)
        delta = np.ones(K)
        alive = np.zeros(K, dtype=bool)
        for k in range(K):
            ns = float(np.linalg.norm(S[k]))
            if not (W[k] > 1e-12 * tot) or ns == 0.0:
                continue
            alive[k] = True
            new_mu[k] = S[k] / ns
            r = min(ns / W[k], 1.0)
            d = 1.0 - r
            if precise[k]:
                # exact identity with the previous mean mu_old (unit x_i):
                # 1 - rbar^2 = dd (2 - dd) - q^2, dd = sum w r (1 - mu_old^T x)/W, q = |S_perp|/W
                dd = D[k] / W[k]
                sp = S[k] - (S[k] @ mus[k]) * mus[k]
                q2 = float(sp @ sp) / W[k] ** 2
                one_m_r2 = dd * (2.0 - dd) - q2
                if one_m_r2 > 0 and q2 < 0.5 * dd * (2.0 - dd):
                    r = math.sqrt(max(1.0 - one_m_r2, 0.0))
                    d = one_m_r2 / (1.0 + r)
                    r = 1.0 - d
            rbar[k], delta[k] = r, d
        if alive.any():
            kap = np.asarray(_vmf.kappa_mle(p, rbar[alive], delta[alive]))
            new_kappa[alive] = np.minimum(np.nan_to_num(kap, posinf=self.max_kappa), self.max_kappa)
        pis = W / tot
        if not alive.all():
            logger.warning("%d component(s) lost all their points; their weight is now ~0", int((~alive).sum()))
        return new_mu, new_kappa, pis, rbar

    def fit(self, X: ArrayLike, weights: ArrayLike | None = None, *, normalize: bool = False) -> VonMisesFisherMixture:
        """Fit the mixture by EM from ``n_init`` initialisations; keep the best.

        Parameters
        ----------
        X : array_like or dask.array.Array, shape (n, p)
            Unit vectors (rows). A Dask array is processed block by block, one distributed
            reduction per EM iteration (only K x p statistics travel); the result equals the
            in-memory fit up to rounding. Call ``X.persist()`` first on a cluster, so that the
            blocks are not re-read from their source at every iteration.
        weights : array_like, shape (n,), optional
            Non-negative sample weights.
        normalize : bool, default False
            Normalize non-unit rows instead of rejecting them.

        Returns
        -------
        self
        """
        X = _data.check_matrix(X)
        n, p = X.shape
        w = _data.check_weights(weights, n, X)
        if isinstance(self.init, str) and self.n_components > n:
            raise ValueError(f"n_components = {self.n_components} exceeds the number of rows n = {n}")
        rng = _vmf._rng(self.random_state)
        hard = self.posterior == "hard"
        bar = None
        if self.progress:
            try:
                from tqdm.auto import tqdm  # type: ignore[import-untyped,unused-ignore]
            except ImportError:
                logger.warning("progress=True needs tqdm (pip install tqdm); continuing without a bar")
            else:
                bar = tqdm(total=self.n_init * self.max_iter, desc="vMF mixture EM", unit="it")
        best: tuple[Any, ...] | None = None
        try:
            for run in range(self.n_init):
                mus, kappas, pis = self._initial(X, w, rng, normalize)
                precise = np.zeros(self.n_components, dtype=bool)
                prev = None
                converged = False
                it = 0
                ll = cll = -np.inf
                for it in range(1, self.max_iter + 1):
                    ell = _vmf._log_norm_parts(p, kappas, plus_kappa=True)
                    with np.errstate(divide="ignore"):
                        logpi = np.log(pis)
                    st = _data.map_reduce(X, w, _em_block, normalize, mus, kappas, ell, logpi, hard, precise)
                    _data.raise_if_bad(st)
                    W = float(st["W"].sum())
                    if not W > 0:
                        raise ValueError("the weights sum to 0")
                    ll, cll = float(st["ll"]), float(st["cll"])
                    obj = (cll if hard else ll) / W
                    mus, kappas, pis, rbar = self._mstep(p, st, mus, kappas, precise)
                    precise = rbar > 0.9
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(init=run + 1, loglik=f"{obj:.6g}")
                    logger.debug("init %d iter %d: mean log-likelihood %.12g", run + 1, it, obj)
                    if prev is not None and abs(obj - prev) <= self.tol * (1.0 + abs(obj)):
                        converged = True
                        break
                    prev = obj
                if bar is not None:
                    bar.update(self.max_iter - it)
                logger.info(
                    "init %d/%d: log-likelihood %.10g after %d iterations (%s)",
                    run + 1, self.n_init, ll, it, "converged" if converged else "not converged",
                )
                key = cll if hard else ll
                if best is None or key > best[0]:
                    best = (key, ll, mus, kappas, pis, converged, it)
        finally:
            if bar is not None:
                bar.close()
        assert best is not None
        _, ll, mus, kappas, pis, converged, it = best
        if not converged:
            logger.warning("EM did not converge in max_iter = %d iterations", self.max_iter)
        # assign everything at the end: an interrupted fit leaves no half state
        self.means_ = mus
        self.kappas_ = kappas
        self.weights_ = pis
        self.log_likelihood_ = ll
        self.converged_ = converged
        self.n_iter_ = it
        self.dim_ = p
        return self

    # -- using a fitted mixture ---------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "means_"):
            raise RuntimeError("this VonMisesFisherMixture is not fitted yet; call fit(X) first")

    @property
    def components_(self) -> list[_vmf.VonMisesFisher]:
        """The fitted components as :class:`VonMisesFisher` objects."""
        self._check_fitted()
        return [_vmf.VonMisesFisher(m, k) for m, k in zip(self.means_, self.kappas_)]

    def _params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        self._check_fitted()
        ell = _vmf._log_norm_parts(self.dim_, self.kappas_, plus_kappa=True)
        with np.errstate(divide="ignore"):
            logpi = np.log(self.weights_)
        return self.means_, self.kappas_, ell, logpi

    def _check_X(self, X: Any) -> Any:
        self._check_fitted()
        X = _data.check_matrix(X)
        if X.shape[1] != self.dim_:
            raise ValueError(f"X has {X.shape[1]} columns; the mixture was fitted with dim p = {self.dim_}")
        return X

    def _per_row(self, X: Any, normalize: bool, what: str) -> Any:  # ndarray, or a Dask array
        mus, kappas, ell, logpi = self._params()

        def block(xb: np.ndarray) -> Any:
            x, _, report = _data.prep_block(xb, None, 0, normalize)
            _data.raise_if_bad(report)
            logp, _ = _log_prob(x, mus, kappas, ell, logpi)
            lse = _logsumexp_rows(logp)
            if what == "proba":
                with np.errstate(under="ignore"):
                    return np.exp(logp - lse[:, None])
            if what == "label":
                return np.argmax(logp, axis=1)
            return lse

        if _data.is_dask_array(X):
            Xr = X.rechunk({1: -1})
            if what == "proba":
                return Xr.map_blocks(block, chunks=(Xr.chunks[0], (self.n_components,)), dtype=np.float64)
            return Xr.map_blocks(block, drop_axis=1, chunks=(Xr.chunks[0],), dtype=np.int64 if what == "label" else np.float64)
        n, p = X.shape
        b = _data.block_rows(p)
        parts = [block(X[s:s + b]) for s in range(0, n, b)]
        return np.concatenate(parts, axis=0)

    def predict_proba(self, X: ArrayLike, *, normalize: bool = False) -> Any:
        """Posterior probabilities (responsibilities) r_ik, shape (n, K); rows sum to 1.

        A numpy array, or a lazy Dask array when X is one.
        """
        return self._per_row(self._check_X(X), normalize, "proba")

    def predict(self, X: ArrayLike, *, normalize: bool = False) -> Any:
        """Index of the most probable component for each row, shape (n,) (Dask in, Dask out)."""
        return self._per_row(self._check_X(X), normalize, "label")

    def score_samples(self, X: ArrayLike, *, normalize: bool = False) -> Any:
        """log p(x_i) for each row, shape (n,) (Dask in, Dask out)."""
        return self._per_row(self._check_X(X), normalize, "loglik")

    def _total_ll(self, X: Any, weights: Any, normalize: bool) -> tuple[float, float]:
        X = self._check_X(X)
        w = _data.check_weights(weights, X.shape[0], X)
        mus, kappas, ell, logpi = self._params()
        st = _data.map_reduce(X, w, _em_block, normalize, mus, kappas, ell, logpi, False, np.zeros(len(kappas), bool))
        _data.raise_if_bad(st)
        return float(st["ll"]), float(st["W"].sum())

    def score(self, X: ArrayLike, weights: ArrayLike | None = None, *, normalize: bool = False) -> float:
        """Mean log-likelihood per (weighted) sample, sum_i w_i log p(x_i) / sum_i w_i."""
        ll, W = self._total_ll(X, weights, normalize)
        return ll / W

    def n_parameters(self) -> int:
        """Free parameters: K (p-1) directions + K kappas + (K-1) weights."""
        self._check_fitted()
        K, p = self.n_components, self.dim_
        return int(K * (p - 1) + K + (K - 1))

    def bic(self, X: ArrayLike, weights: ArrayLike | None = None, *, normalize: bool = False) -> float:
        """Bayesian information criterion -2 log L + n_params log n (lower is better).

        n is the number of rows (or the sum of the weights when weights are given).
        """
        ll, W = self._total_ll(X, weights, normalize)
        return -2.0 * ll + self.n_parameters() * math.log(W)

    def sample(self, n: int, rng: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw n points from the mixture; returns (X of shape (n, p), component labels)."""
        self._check_fitted()
        g = _vmf._rng(rng)
        counts = g.multinomial(int(n), self.weights_ / self.weights_.sum())
        xs, labs = [], []
        for k, c in enumerate(counts):
            if c:
                xs.append(_vmf.VonMisesFisher(self.means_[k], self.kappas_[k]).sample(int(c), g))
                labs.append(np.full(c, k))
        if not xs:
            return np.zeros((0, self.dim_)), np.zeros(0, dtype=int)
        perm = g.permutation(int(n))
        return np.concatenate(xs)[perm], np.concatenate(labs)[perm]


def spherical_kmeans(
    X: ArrayLike,
    n_clusters: int,
    *,
    weights: ArrayLike | None = None,
    n_init: int = 3,
    init: str | ArrayLike = "k-means++",
    max_iter: int = 100,
    random_state: Any = None,
    normalize: bool = False,
) -> tuple[np.ndarray, np.ndarray, float]:
    r"""Spherical k-means (Dhillon & Modha 2001): the hard, equal-kappa limit of a vMF mixture.

    Alternates x_i -> argmax_k c_k^T x_i and c_k = sum_{i in k} w_i x_i / ||...||, which
    maximises sum_i w_i c_{k(i)}^T x_i, i.e. minimises the inertia
    sum_i w_i (1 - c_{k(i)}^T x_i). k-means++ seeding with distance 1 - cos.

    Parameters
    ----------
    X : array_like or dask.array.Array, shape (n, p)
        Unit vectors.
    n_clusters : int
    weights, n_init, init, max_iter, random_state, normalize
        As for :class:`VonMisesFisherMixture`.

    Returns
    -------
    centers : ndarray (n_clusters, p)
        Unit concept vectors.
    labels : ndarray (n,)
    inertia : float
        sum_i w_i (1 - c_{k(i)}^T x_i) at the returned centers.

    References
    ----------
    I. S. Dhillon, D. S. Modha, "Concept decompositions for large sparse text data using
    clustering", Machine Learning 42, 143-175 (2001).
    """
    X = _data.check_matrix(X)
    n, p = X.shape
    w = _data.check_weights(weights, n, X)
    K = int(n_clusters)
    helper = VonMisesFisherMixture(K, posterior="hard", n_init=n_init, init=init, max_iter=max_iter, random_state=random_state)
    rng = _vmf._rng(random_state)
    ones, zeros = np.ones(K), np.zeros(K)
    nprec = np.zeros(K, dtype=bool)
    best: tuple[float, np.ndarray] | None = None
    for _ in range(int(n_init)):
        c, _, _ = helper._initial(X, w, rng, normalize)
        prev = None
        for _ in range(int(max_iter)):
            st = _data.map_reduce(X, w, _em_block, normalize, c, ones, zeros, zeros, True, nprec)
            _data.raise_if_bad(st)
            inertia = -float(st["cll"])
            ns = np.linalg.norm(st["S"], axis=1)
            c = np.where(ns[:, None] > 0, st["S"] / np.where(ns > 0, ns, 1.0)[:, None], c)
            if prev is not None and prev - inertia <= 1e-12 * max(prev, 1e-300):
                break
            prev = inertia
        st = _data.map_reduce(X, w, _em_block, normalize, c, ones, zeros, zeros, True, nprec)
        inertia = -float(st["cll"])
        if best is None or inertia < best[0]:
            best = (inertia, c)
    assert best is not None
    inertia, c = best
    labels = _labels(X, c, normalize)
    return c, labels, inertia


def _labels(X: Any, centers: np.ndarray, normalize: bool) -> np.ndarray:
    n, p = X.shape
    if _data.is_dask_array(X):
        dask = _data.dask_module()

        def blk(xb: np.ndarray) -> Any:
            x, _, _ = _data.prep_block(xb, None, 0, normalize)
            return np.argmax(x @ centers.T, axis=1)

        Xr = X.rechunk({1: -1})
        return np.asarray(dask.compute(Xr.map_blocks(blk, drop_axis=1, chunks=(Xr.chunks[0],), dtype=np.int64))[0])
    b = _data.block_rows(p)
    out = []
    for s in range(0, n, b):
        x, _, _ = _data.prep_block(X[s:s + b], None, 0, normalize)
        out.append(np.argmax(x @ centers.T, axis=1))
    return np.concatenate(out)
