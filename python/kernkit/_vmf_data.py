"""Row validation and map-reduce over row blocks for :mod:`kernkit.vmf` (numpy or Dask).

Every statistic that ``kernkit.vmf`` needs from the data (resultant vectors, weight sums,
mixture responsibilities' weighted sums, log-likelihoods) is a *sum over rows*. This module
applies a per-block function to row blocks of an in-memory array or of a Dask array (one
task per block, combined by a pairwise tree of small tasks: a distributed reduction) and
adds the blocks' results up. In-memory and Dask fits therefore run the same code on the
same numbers and differ only in the order of floating-point additions.

Dask is never imported unless the data already is a Dask array.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import _core

#: A row whose Euclidean norm differs from 1 by more than this is "not a unit vector".
UNIT_TOL = 1e-6

#: Target size of one in-memory block of rows (float64 bytes).
_BLOCK_BYTES = 1 << 24


def dask_module() -> Any:
    """The dask package (imported only when the data already is a Dask array)."""
    import importlib

    return importlib.import_module("dask")


def is_dask_array(x: Any) -> bool:
    """True for a ``dask.array.Array``, decided without importing dask."""
    mod = type(x).__module__ or ""
    return mod.split(".")[0] == "dask" and hasattr(x, "chunks") and hasattr(x, "to_delayed")


def check_matrix(X: Any, name: str = "X") -> Any:
    """Return X as a 2-D float array (numpy, or the Dask array itself); check its shape.

    Raises ValueError for anything but a non-empty (n, p) array with p >= 2.
    """
    if is_dask_array(X):
        if X.ndim != 2:
            raise ValueError(f"{name} must be a 2-D array of shape (n_samples, dim); got ndim={X.ndim}")
        n, p = X.shape
        if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
            raise TypeError(f"{name} must hold real numbers; got dtype {X.dtype}")
    else:
        X = np.asarray(X)
        if X.dtype == object or not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
            raise TypeError(f"{name} must hold real numbers; got dtype {X.dtype}")
        if X.ndim != 2:
            raise ValueError(f"{name} must be a 2-D array of shape (n_samples, dim); got shape {X.shape}")
        n, p = X.shape
    if p == 1:
        raise ValueError(
            f"{name} has dim p = 1: the 'sphere' S^0 is the two points {{-1, +1}}, where a von Mises-Fisher "
            "distribution is not defined; kernkit.vmf needs p >= 2"
        )
    if p < 1:
        raise ValueError(f"{name} has no columns (shape {X.shape})")
    if n == 0:
        raise ValueError(f"{name} has no rows (shape {X.shape})")
    return X


def check_weights(weights: Any, n: int, X: Any) -> Any:
    """Validate sample weights: None, or a length-n array of finite non-negative numbers."""
    if weights is None:
        return None
    if is_dask_array(weights):
        if weights.ndim != 1 or weights.shape[0] != n:
            raise ValueError(f"weights must have shape ({n},) to match X's rows; got {weights.shape}")
        return weights  # values are checked block by block
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"weights must have shape ({n},) to match X's rows; got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights contain NaN or infinite values")
    if np.any(w < 0):
        raise ValueError(f"weights must be >= 0; weight {int(np.flatnonzero(w < 0)[0])} is negative")
    return w


def check_norms(
    nrm2: np.ndarray, wb: np.ndarray, offset: int, normalize: bool
) -> tuple[np.ndarray, np.ndarray, dict[str, Any], np.ndarray]:
    """Validate rows from their squared norms and weights.

    Returns the norms (1 for invalid rows), the weights (0 for invalid rows), the report
    (keys ``bad_*``: count and first global row index, which the caller turns into an
    exception after the reduction) and the mask of invalid rows.
    """
    nonfinite = ~np.isfinite(nrm2)
    zero = nrm2 == 0
    nrm = np.sqrt(np.where(nonfinite | zero, 1.0, nrm2))
    dev = np.abs(nrm - 1.0)
    nonunit = (dev > UNIT_TOL) & ~nonfinite & ~zero
    badw = ~np.isfinite(wb) | (wb < 0)
    report: dict[str, Any] = {}
    for key, mask in (("nonfinite", nonfinite), ("zero", zero), ("badw", badw)):
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            report[f"bad_{key}"] = (int(mask.sum()), offset + i, 0.0)
    if nonunit.any() and not normalize:
        i = int(np.argmax(np.where(nonunit, dev, -1.0)))
        report["bad_nonunit"] = (int(nonunit.sum()), offset + i, float(nrm[i]))
    bad = nonfinite | zero | badw
    if bad.any():
        wb = np.where(bad, 0.0, wb)
        nrm = np.where(bad, 1.0, nrm)
    return nrm, wb, report, bad


def _block_weights(Xb: np.ndarray, wb: np.ndarray | None) -> np.ndarray:
    return np.ones(Xb.shape[0]) if wb is None else np.asarray(wb, dtype=np.float64)


def prep_block(
    Xb: np.ndarray, wb: np.ndarray | None, offset: int, normalize: bool
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Cast a block to float64, validate its rows and return unit rows, weights and a report.

    Rows are divided by their norms unless they are unit to ~1e-14 already, so that the
    statistics are those of exactly unit vectors. Invalid rows get weight 0 (and zero values),
    see :func:`check_norms`.
    """
    Xb = np.asarray(Xb, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        nrm2 = np.einsum("ij,ij->i", Xb, Xb)
    nrm, wb, report, bad = check_norms(nrm2, _block_weights(Xb, wb), offset, normalize)
    if bad.any():
        Xb = np.where(bad[:, None], 0.0, Xb)
    if np.any(np.abs(nrm - 1.0) > 1e-14):
        Xb = Xb / nrm[:, None]
    return Xb, wb, report


def row_stats(Xb: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """|x|^2, mu^T x and |x - mu|^2 of each row x, in one pass (kernkit::vmf::row_stats)."""
    Xb = np.ascontiguousarray(Xb, dtype=np.float64)
    n = Xb.shape[0]
    nrm2, dot, dist2 = np.empty(n), np.empty(n), np.empty(n)
    _core.vmf_row_stats(Xb, np.ascontiguousarray(mu, dtype=np.float64), nrm2, dot, dist2)
    return nrm2, dot, dist2


def one_minus_dot(dot: np.ndarray, dist2: np.ndarray) -> np.ndarray:
    """1 - mu^T u for unit rows u, as |u - mu|^2 / 2 where mu^T u > 1/2 (no cancellation)."""
    return np.where(dot > 0.5, 0.5 * dist2, 1.0 - dot)


def unit_row_stats(
    Xb: np.ndarray, wb: np.ndarray | None, offset: int, normalize: bool, mu: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """mu^T u and |u - mu|^2 for the rows u of a block scaled to unit length, in one pass.

    The same validation and scaling as :func:`prep_block`, without the scaled copy for rows
    within the unit tolerance: for a row x of norm n = 1 + d, mu^T u = mu^T x / n and
    |u - mu|^2 = (|x - mu|^2 - d^2) / n (exact for unit mu), with d = (|x|^2 - 1)/(n + 1) free
    of cancellation; d^2 <= 1e-12 adds nothing there. Rows further from unit length (accepted
    with normalize=True), where d^2 could cancel against |x - mu|^2, are scaled and summed
    again. Invalid rows get zeros. Returns (dot, dist2, weights, report).
    """
    Xb = np.asarray(Xb, dtype=np.float64)
    nrm2, dot, dist2 = row_stats(Xb, mu)
    nrm, wb, report, bad = check_norms(nrm2, _block_weights(Xb, wb), offset, normalize)
    scale = np.abs(nrm - 1.0) > 1e-14
    if scale.any():
        d = (nrm2 - 1.0) / (nrm + 1.0)
        dot = np.where(scale, dot / nrm, dot)
        dist2 = np.where(scale, (dist2 - d * d) / nrm, dist2)
        far = np.flatnonzero(scale & (np.abs(d) > UNIT_TOL) & ~bad)
        if far.size:
            _, dot[far], dist2[far] = row_stats(Xb[far] / nrm[far, None], mu)
    if bad.any():
        dot = np.where(bad, 0.0, dot)
        dist2 = np.where(bad, 0.0, dist2)
    return dot, dist2, wb, report


def _merge_bad(a: tuple[int, int, float], b: tuple[int, int, float]) -> tuple[int, int, float]:
    return (a[0] + b[0], min(a[1], b[1]), a[2] if a[1] <= b[1] else b[2])


def combine(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Add two block results (arrays and numbers add; ``bad_*`` entries merge)."""
    out = dict(a)
    for k, v in b.items():
        if k not in out:
            out[k] = v
        elif k.startswith("bad_"):
            out[k] = _merge_bad(out[k], v)
        else:
            out[k] = out[k] + v
    return out


def _tree(parts: list[Any], comb: Callable[[Any, Any], Any]) -> Any:
    while len(parts) > 1:
        nxt = [comb(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            nxt.append(parts[-1])
        parts = nxt
    return parts[0]


def raise_if_bad(stats: dict[str, Any], name: str = "X") -> None:
    """Turn the ``bad_*`` entries of a reduced report into a ValueError with the reason."""
    if "bad_nonfinite" in stats:
        c, i, _ = stats["bad_nonfinite"]
        raise ValueError(f"{name} has {c} row(s) with NaN or infinite values (first: row {i})")
    if "bad_zero" in stats:
        c, i, _ = stats["bad_zero"]
        raise ValueError(
            f"{name} has {c} all-zero row(s) (first: row {i}); a zero vector has no direction on the sphere"
        )
    if "bad_badw" in stats:
        c, i, _ = stats["bad_badw"]
        raise ValueError(f"weights has {c} negative or non-finite value(s) (first: index {i})")
    if "bad_nonunit" in stats:
        c, i, nrm = stats["bad_nonunit"]
        raise ValueError(
            f"{name} has {c} row(s) that are not unit vectors (e.g. row {i} has norm {nrm:.6g}; "
            f"tolerance {UNIT_TOL:g}); normalize the rows first or pass normalize=True"
        )


def block_rows(p: int) -> int:
    """Rows per in-memory block."""
    return max(1, _BLOCK_BYTES // (8 * p))


def map_reduce(
    X: Any,
    weights: Any,
    func: Callable[..., dict[str, Any]],
    *args: Any,
) -> dict[str, Any]:
    """Sum ``func(X_block, w_block, row_offset, *args)`` over row blocks of X.

    For a Dask array this builds one task per row block (the array is rechunked to whole rows
    first) and a pairwise tree of combine tasks, and computes it with the scheduler in effect
    (``dask.config.set(scheduler=...)`` or a ``distributed.Client``). The block results are
    small (a few vectors of length p), so only they travel between workers.
    """
    n, p = X.shape
    if is_dask_array(X):
        dask = dask_module()  # only reached when X already is a dask array

        Xr = X.rechunk({1: -1})
        row_chunks = Xr.chunks[0]
        offsets = np.concatenate([[0], np.cumsum(row_chunks)]).astype(int)
        xblocks = list(Xr.to_delayed().ravel())
        if weights is None:
            wblocks: list[Any] = [None] * len(xblocks)
        elif is_dask_array(weights):
            wblocks = list(weights.rechunk((row_chunks,)).to_delayed().ravel())
        else:
            wblocks = [weights[offsets[i]:offsets[i + 1]] for i in range(len(xblocks))]
        f = dask.delayed(func, pure=True)
        parts = [f(xb, wb, int(offsets[i]), *args) for i, (xb, wb) in enumerate(zip(xblocks, wblocks))]
        total = _tree(parts, dask.delayed(combine, pure=True))
        result: dict[str, Any] = dask.compute(total)[0]
        return result
    b = block_rows(p)
    parts = []
    for s in range(0, n, b):
        e = min(n, s + b)
        parts.append(func(X[s:e], None if weights is None else weights[s:e], s, *args))
    out: dict[str, Any] = _tree(parts, combine)
    return out


def take_rows(X: Any, idx: np.ndarray) -> np.ndarray:
    """X[idx] as an in-memory float64 array (computes the rows of a Dask array)."""
    if is_dask_array(X):
        dask = dask_module()
        return np.asarray(dask.compute(X[np.sort(idx)])[0], dtype=np.float64)[np.argsort(np.argsort(idx))]
    return np.asarray(X[idx], dtype=np.float64)


def take_items(w: Any, idx: np.ndarray) -> np.ndarray | None:
    """w[idx] in memory (None stays None)."""
    if w is None:
        return None
    if is_dask_array(w):
        dask = dask_module()
        return np.asarray(dask.compute(w[np.sort(idx)])[0], dtype=np.float64)[np.argsort(np.argsort(idx))]
    return np.asarray(w[idx], dtype=np.float64)
