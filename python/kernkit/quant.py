"""Power-exponent weight quantization: PowerQuant and NUPES.

The operator (Yvinec, Dapogny, Cord, Bailly, "PowerQuant: Automorphism Search for Non-Uniform
Quantization", ICLR 2023) maps a weight through the power automorphism, quantizes uniformly
there, and maps back::

    P_a(w) = sign(w) |w|^a,          q = clip(round(P_a(w) / s), q_lo, q_hi),
    w_hat  = sign(s q) |s q|^(1/a)

with one b-bit grid per tensor, output channel or group of ``g`` consecutive weights of a
channel (PyTorch Linear layout: ``W`` is ``(out_features, in_features)``, a channel is a row,
a layer computes ``x @ W.T``). ``a = 1`` is plain symmetric round-to-nearest; ``a < 1`` puts more
levels near zero (bell-shaped weights). Exact zeros stay exactly zero.

* :func:`quantize` quantizes with a given exponent or searches it (per tensor, channel or group)
  on the weight MSE or on the layer-output MSE ``||X W^T - X W_hat^T||^2`` of calibration inputs.
* :func:`refine` is a NUPES-style reconstruction (Yvinec, Dapogny, Bailly, "NUPES: Non-Uniform
  Post-Training Quantization via Power Exponent Search", TPAMI 2025): the integer codes move over
  the whole grid (not just up or down from round-to-nearest) together with the exponent and the
  scales, on the layer-output loss.
* :class:`PowerQuantized` stores the codes densely packed (2/3/4 bits; one byte for 5-8 bits)
  with the scales and exponents, saves to ``.npz`` and dequantizes.
* :func:`matmul` computes ``x @ W_hat.T`` from the packed codes through a ``2^b``-entry lookup
  table per group (C++, AVX2 where the CPU has it; CUDA), never forming ``W_hat``.

Grids. The symmetric grid uses ``q`` in ``[-(2^(b-1)-1), 2^(b-1)-1]`` and ``s = max|P| /
(2^(b-1)-1)`` (2^b - 1 levels). ``full_range=True`` uses all 2^b codes, ``q`` in ``[-2^(b-1),
2^(b-1)-1]``, with ``s = -sign(w*) max|P| / 2^(b-1)`` (``w*`` the group's largest-magnitude
weight), so the extreme weight lands on the longer side, as NF4 does.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, cast

import numpy as np

from . import _core, _dispatch

logger = logging.getLogger(__name__)

SUPPORTED_BITS: tuple[int, ...] = (2, 3, 4, 5, 6, 8)
_PACKED_BITS = (2, 3, 4)
_GRANULARITIES = ("tensor", "channel", "group")

__all__ = ["PowerQuantized", "SUPPORTED_BITS", "load", "matmul", "quantize", "refine", "search_exponent"]


# ----------------------------------------------------------------------------------------------
# packing
# ----------------------------------------------------------------------------------------------


def _code_bits(bits: int) -> int:
    return bits if bits in _PACKED_BITS else 8


def pack_codes(u: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned codes (rows, cols) uint8 < 2^bits into the kernel's row layout.

    bits 2, 3, 4: each row is an LSB-first bit stream (code c at bits [c*b, c*b+b)), 8 codes per
    ``b`` bytes, the row padded with zero codes to a multiple of 8; other widths: one byte each.
    """
    u = np.ascontiguousarray(u, dtype=np.uint8)
    if bits not in _PACKED_BITS:
        return u.copy()
    rows, cols = u.shape
    nch = -(-cols // 8)
    pad = np.zeros((rows, nch * 8), dtype=np.uint32)
    pad[:, :cols] = u
    shifts = (np.arange(8, dtype=np.uint32) * bits)[None, None, :]
    words = (pad.reshape(rows, nch, 8) << shifts).sum(axis=-1, dtype=np.uint32)
    by = words.astype("<u4").view(np.uint8).reshape(rows, nch, 4)[:, :, :bits]
    return np.ascontiguousarray(by.reshape(rows, nch * bits))


def unpack_codes(packed: np.ndarray, bits: int, cols: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: unsigned codes (rows, cols) uint8."""
    packed = np.asarray(packed, dtype=np.uint8)
    if bits not in _PACKED_BITS:
        return np.ascontiguousarray(packed[:, :cols])
    rows = packed.shape[0]
    nch = -(-cols // 8)
    by = np.zeros((rows, nch, 4), dtype=np.uint8)
    by[:, :, :bits] = packed[:, : nch * bits].reshape(rows, nch, bits)
    words = by.reshape(rows, nch * 4).view("<u4").reshape(rows, nch, 1)
    shifts = (np.arange(8, dtype=np.uint32) * bits)[None, None, :]
    u = (words >> shifts) & np.uint32((1 << bits) - 1)
    return np.ascontiguousarray(u.reshape(rows, nch * 8)[:, :cols].astype(np.uint8))


# ----------------------------------------------------------------------------------------------
# the quantized matrix
# ----------------------------------------------------------------------------------------------


@dataclass(eq=False)
class PowerQuantized:
    """A power-quantized weight matrix ``(rows, cols)`` in packed form.

    Attributes
    ----------
    packed : uint8 (rows, row_bytes): the codes ``u = q + 2^(b-1)``, densely packed for 2/3/4 bits.
    scales : (1|rows, 1|ngroups) float: the scale ``s`` in the power domain (signed for full range).
    a : (1|rows, 1|ngroups) float: the exponent(s).
    bits, shape, group_size (the scale's group along a row; cols for per-channel/per-tensor),
    granularity ('tensor' | 'channel' | 'group'), full_range.
    """

    packed: np.ndarray
    scales: np.ndarray
    a: np.ndarray
    bits: int
    shape: tuple[int, int]
    group_size: int
    granularity: str
    full_range: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False, compare=False)

    # -- views -----------------------------------------------------------------------------------
    @property
    def dtype(self) -> np.dtype:
        return self.scales.dtype

    @property
    def codes(self) -> np.ndarray:
        """Signed integer codes q (rows, cols) int8 (int16 for 8 bits is not needed: q fits int8)."""
        u = unpack_codes(self.packed, self.bits, self.shape[1])
        return (u.astype(np.int16) - (1 << (self.bits - 1))).astype(np.int8)

    def _unsigned(self) -> np.ndarray:
        return unpack_codes(self.packed, self.bits, self.shape[1])

    @property
    def ngroups(self) -> int:
        return self.shape[1] // self.group_size if self.shape[1] else 0

    @property
    def nbytes(self) -> int:
        """Storage in bytes: packed codes + scales + exponents."""
        return int(self.packed.nbytes + self.scales.nbytes + self.a.nbytes)

    @property
    def bits_per_weight(self) -> float:
        n = self.shape[0] * self.shape[1]
        return 8.0 * self.nbytes / n if n else float("nan")

    def dequantize(self) -> np.ndarray:
        """The dequantized weights ``sign(s q) |s q|^(1/a)`` (rows, cols), in the scales' dtype."""
        rows, cols = self.shape
        out = np.empty((rows, cols), dtype=self.dtype)
        if rows * cols == 0:
            return out
        u = self._unsigned()
        if self.granularity == "tensor":
            _core.quant_decode(u.reshape(1, -1), rows * cols, self.bits, self.scales, self.a, out.reshape(1, -1))
        else:
            a = self.a
            if a.shape[1] != 1 and a.shape[1] != self.ngroups:
                raise ValueError("a's group axis does not match the scale groups")
            _core.quant_decode(u, self.group_size, self.bits, self.scales, a, out)
        return out

    def integer_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The exact integer form when 1/a is an integer n (a = 1/2, 1/3, ...).

        Returns ``(M, d)`` with ``M = sign(q)|q|^n`` (int8 when it fits, else int16/int32) and
        ``d = sign(s)|s|^n`` (rows, ngroups), so ``W_hat[r, c] = d[r, c // g] * M[r, c]``: an
        integer GEMM with a per-group (or per-channel) float scale. a = 1/2 at 4 bits gives
        M in [-49, 49] (int8).
        """
        n = self._integer_power()
        if n is None:
            raise ValueError(f"integer_weights needs 1/a to be an integer for every exponent, got a = {np.unique(self.a)[:4]}")
        q = self.codes.astype(np.int64)
        M = np.sign(q) * np.abs(q) ** n
        lim = int(np.abs(M).max(initial=0))
        dt = np.int8 if lim <= 127 else (np.int16 if lim <= 32767 else np.int32)
        return M.astype(dt), self._dscale(self.dtype)

    def _integer_power(self) -> int | None:
        inv = 1.0 / self.a.astype(np.float64)
        n = np.rint(inv)
        if np.all(np.abs(inv - n) <= 1e-6 * n) and np.all(n >= 1):
            vals = np.unique(n)
            if vals.size == 1:
                return int(vals[0])
        return None

    # -- kernel tables ---------------------------------------------------------------------------
    def _kernel_group(self) -> int:
        return self.shape[1] if self.granularity == "tensor" else self.group_size

    def _dscale(self, dtype: Any) -> np.ndarray:
        """sign(s)|s|^(1/a) materialized at (rows, ngroups_kernel), float64 math."""
        rows, cols = self.shape
        ng = cols // self._kernel_group() if cols else 0
        s = np.broadcast_to(self.scales.astype(np.float64), (rows, ng)) if ng else np.zeros((rows, 0))
        a = np.broadcast_to(self.a.astype(np.float64), (rows, ng)) if ng else np.ones((rows, 0))
        n = self._integer_power()
        with np.errstate(divide="ignore", invalid="ignore"):
            mag = np.abs(s) ** n if n is not None else np.abs(s) ** (1.0 / a)
        return np.ascontiguousarray((np.sign(s) * mag).astype(dtype))

    def _lut(self, dtype: Any) -> np.ndarray:
        """sign(q)|q|^(1/a) for u = 0 .. 2^b - 1, shape (1|rows, 1|ngroups, 2^b)."""
        q = np.arange(1 << self.bits, dtype=np.float64) - (1 << (self.bits - 1))
        n = self._integer_power()
        a = self.a.astype(np.float64)
        if self.granularity == "tensor":
            a = a.reshape(1, 1)
        if n is not None:
            lut = np.broadcast_to(np.sign(q) * np.abs(q) ** n, (1, 1, q.size))
        else:
            lut = np.sign(q) * np.abs(q)[None, None, :] ** (1.0 / a[..., None])
        return np.ascontiguousarray(lut.astype(dtype))

    def kernel_tables(self, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
        """(lut, dscale) in ``dtype`` for :func:`matmul` (cached)."""
        key = ("cpu", _dispatch.name_of(np.dtype(dtype)))  # (dtype.name is slow Python code)
        if key not in self._cache:
            self._cache[key] = (self._lut(dtype), self._dscale(dtype))
        return cast("tuple[np.ndarray, np.ndarray]", self._cache[key])

    def to(self, like: Any) -> "PowerQuantized":
        """A copy whose kernel buffers live where ``like`` (a CuPy/PyTorch CUDA array) lives.

        The one explicit host-to-device copy; :func:`matmul` then runs on the GPU for inputs of
        that device and library.
        """
        target = _dispatch.device_of(like)
        if target is None or target.kind != "cuda":
            return self
        xp = _dispatch.array_namespace(like)
        new = PowerQuantized(self.packed, self.scales, self.a, self.bits, self.shape, self.group_size,
                             self.granularity, self.full_range, dict(self.info))
        dev = like.device
        for dt in ("float32", "float64"):
            lut, ds = self.kernel_tables(np.dtype(dt))
            nlut = lut.shape[2]
            # what the kernel needs besides the three tables: their device, the packed row length
            # and the table's row / group strides (0 where shared)
            meta = (target, self.packed.shape[1], 0 if lut.shape[0] == 1 else lut.shape[1] * nlut,
                    0 if lut.shape[1] == 1 else nlut)
            new._cache[("cuda", dt)] = tuple(xp.asarray(t, device=dev) for t in (self.packed, lut, ds)) + (meta,)
        return new

    def __eq__(self, other: object) -> bool:
        """The same quantized matrix: codes, scales, exponents and layout (``info`` aside)."""
        if not isinstance(other, PowerQuantized):
            return NotImplemented
        return (self.bits == other.bits and tuple(self.shape) == tuple(other.shape)
                and self.group_size == other.group_size and self.granularity == other.granularity
                and self.full_range == other.full_range and self.scales.dtype == other.scales.dtype
                and all(np.array_equal(x, y) for x, y in ((self.packed, other.packed),
                                                          (self.scales, other.scales), (self.a, other.a))))

    __hash__ = None  # type: ignore[assignment]  # (mutable, like its arrays)

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Save to a ``.npz`` (packed codes, scales, exponents, the metadata and ``info`` as JSON;
        numpy adds the ``.npz`` suffix when the path has none, and :func:`load` finds it)."""
        def plain(v: Any) -> Any:
            if isinstance(v, (np.generic, np.ndarray)):
                return v.tolist()
            raise TypeError(f"PowerQuantized.info holds a {type(v).__name__}, which save cannot write")

        np.savez(
            path, packed=self.packed, scales=self.scales, a=self.a,
            meta=np.array([self.bits, self.shape[0], self.shape[1], self.group_size, int(self.full_range)], dtype=np.int64),
            granularity=np.array(self.granularity), info=np.array(json.dumps(self.info, default=plain)),
        )


def load(path: str | os.PathLike[str]) -> PowerQuantized:
    """Load a :class:`PowerQuantized` written by :meth:`PowerQuantized.save` (``path`` with or
    without the ``.npz`` suffix that numpy's savez adds)."""
    with np.load(_dispatch.npz_path(path), allow_pickle=False) as f:
        bits, rows, cols, g, full = (int(v) for v in f["meta"])
        info = json.loads(str(f["info"])) if "info" in f.files else {}
        return PowerQuantized(f["packed"].copy(), f["scales"].copy(), f["a"].copy(), bits, (rows, cols), g,
                              str(f["granularity"]), bool(full), info)


# ----------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------


def _check_bits(bits: Any) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or int(bits) not in SUPPORTED_BITS:
        raise ValueError(f"argument 'bits' must be one of {SUPPORTED_BITS}, got {bits!r}")
    return int(bits)


def _check_weights(w: Any) -> np.ndarray:
    dev = _dispatch.device_of(w)
    if dev is not None and dev.kind == "cuda":
        raise NotImplementedError(
            "kernkit.quant.quantize runs on the CPU (numpy); the CUDA entry is the LUT matmul: quantize on "
            "the host, then move the result with PowerQuantized.to(cuda_array)")
    _dispatch.check_float_dtype("w", w)
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"argument 'w' must be a 2-d (out_features, in_features) matrix, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("argument 'w' contains NaN or inf; quantization needs finite weights")
    return np.ascontiguousarray(w)


def _groups(granularity: str, group_size: int | None, cols: int) -> int:
    if granularity not in _GRANULARITIES:
        raise ValueError(f"argument 'granularity' must be one of {_GRANULARITIES}, got {granularity!r}")
    if granularity == "group":
        if group_size is None:
            raise ValueError("argument 'group_size' is required with granularity='group'")
        g = int(group_size)
        if g <= 0 or (cols and cols % g):
            raise ValueError(f"argument 'group_size' ({group_size}) must be positive and divide in_features ({cols})")
        return g
    if group_size is not None and int(group_size) != cols:
        raise ValueError(f"argument 'group_size' is only used with granularity='group' (got {group_size})")
    return max(cols, 1)


def _check_a_granularity(a_granularity: str, granularity: str) -> None:
    """The exponent's granularity: a known one, and no finer than the scales'."""
    if a_granularity not in _GRANULARITIES:
        raise ValueError(f"argument 'a_granularity' must be one of {_GRANULARITIES}, got {a_granularity!r}")
    if _ORDER[a_granularity] > _ORDER[granularity]:
        raise ValueError(f"argument 'a_granularity' ({a_granularity!r}) cannot be finer than 'granularity' ({granularity!r})")


def _a_shape(a_granularity: str, rows: int, ng: int) -> tuple[int, int]:
    return {"tensor": (1, 1), "channel": (rows, 1), "group": (rows, ng)}[a_granularity]


def _scale_shape(granularity: str, rows: int, ng: int) -> tuple[int, int]:
    return {"tensor": (1, 1), "channel": (rows, 1), "group": (rows, ng)}[granularity]


_ORDER = {"tensor": 0, "channel": 1, "group": 2}
_BLOCK = 128  # column block of the NUPES / GPTQ passes


def _encode(w: np.ndarray, bits: int, a: np.ndarray, granularity: str, g: int, full: bool) -> PowerQuantized:
    """Quantize with exponents ``a`` of shape (1|rows, 1|ngroups)."""
    rows, cols = w.shape
    dt = w.dtype
    a = np.ascontiguousarray(a, dtype=dt)
    u = np.empty((rows, cols), dtype=np.uint8)
    if granularity == "tensor":
        scales = np.empty((1, 1), dtype=dt)
        if rows * cols:
            _core.quant_encode(w.reshape(1, -1), rows * cols, bits, full, a.reshape(1, 1), u.reshape(1, -1), scales)
        else:
            scales[:] = 0
    else:
        ng = cols // g if cols else 0
        scales = np.empty((rows, ng), dtype=dt)
        if rows * cols:
            _core.quant_encode(w, g, bits, full, a, u, scales)
        if granularity == "channel":
            scales = scales.reshape(rows, 1) if ng == 1 else scales
    return PowerQuantized(pack_codes(u, bits), scales, a, bits, (rows, cols), g if granularity == "group" else max(cols, 1),
                          granularity, full)


# ----------------------------------------------------------------------------------------------
# exponent search
# ----------------------------------------------------------------------------------------------


def _unit_sum(err: np.ndarray, a_granularity: str) -> np.ndarray:
    """(rows, ng, K) -> per exponent unit (R, G, K)."""
    if a_granularity == "tensor":
        return cast(np.ndarray, err.sum(axis=(0, 1), keepdims=True))
    if a_granularity == "channel":
        return cast(np.ndarray, err.sum(axis=1, keepdims=True))
    return err


def _weight_errors(w32: np.ndarray, bits: int, full: bool, granularity: str, g: int, a_gran: str,
                   cand: np.ndarray) -> np.ndarray:
    """Weight squared error per exponent unit for candidates cand (R, G, K)."""
    rows, cols = w32.shape
    if granularity == "tensor":
        err = np.empty((1, 1, cand.shape[-1]))
        _core.quant_search_errors(w32.reshape(1, -1), rows * cols, bits, full, np.ascontiguousarray(cand.reshape(1, 1, -1), dtype=np.float32), err)
        return err
    ng = cols // g
    err = np.empty((rows, ng, cand.shape[-1]))
    _core.quant_search_errors(w32, g, bits, full, np.ascontiguousarray(cand, dtype=np.float32), err)
    return _unit_sum(err, a_gran)


class _OutputLoss:
    """||X (W - W_hat)^T||^2 per row, from calibration inputs X (n, cols) or their Gram matrix."""

    X: np.ndarray | None
    H: np.ndarray | None
    n: int

    def __init__(self, calib: np.ndarray | None, cols: int, gram: np.ndarray | None = None):
        if gram is not None:
            H = np.asarray(gram, dtype=np.float64)
            if H.shape != (cols, cols) or not np.all(np.isfinite(H)):
                raise ValueError(f"argument 'gram' must be a finite (in_features, in_features) = ({cols}, {cols}) matrix X^T X")
            self.X, self.H, self.n = None, H, 0
            return
        if calib is None:
            raise ValueError("the output objective needs calibration inputs 'calib' (n_samples, in_features) or 'gram'")
        X = np.asarray(calib, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != cols:
            raise ValueError(f"argument 'calib' must be (n_samples, in_features={cols}), got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("argument 'calib' contains NaN or inf")
        self.n = X.shape[0]
        self.X = X if X.shape[0] < cols else None
        self.H = X.T @ X if self.X is None else None

    def gram(self) -> np.ndarray:
        if self.H is not None:
            return self.H
        X = cast(np.ndarray, self.X)  # kept whenever H is not
        return cast(np.ndarray, X.T @ X)

    def rows(self, E: np.ndarray) -> np.ndarray:
        E = E.astype(np.float64, copy=False)
        if self.X is not None:
            P = E @ self.X.T
            return cast(np.ndarray, np.einsum("ij,ij->i", P, P))
        return cast(np.ndarray, np.einsum("ij,ij->i", E @ self.H, E))


def _output_errors(w: np.ndarray, bits: int, full: bool, granularity: str, g: int, a_gran: str,
                   cand: np.ndarray, loss: _OutputLoss) -> np.ndarray:
    """Output squared error per exponent unit (tensor / channel units) for candidates (R, 1, K)."""
    rows = w.shape[0]
    K = cand.shape[-1]
    out = np.empty((rows, K))
    for k in range(K):
        qw = _encode(w, bits, cand[:, :, k], granularity, g, full)
        out[:, k] = loss.rows(w - qw.dequantize())
    out = out[:, None, :]
    return out.sum(axis=0, keepdims=True) if a_gran == "tensor" else out


def search_exponent(
    w: np.ndarray,
    bits: int,
    granularity: str = "channel",
    group_size: int | None = None,
    *,
    a_granularity: str = "tensor",
    objective: Literal["mse", "output"] = "mse",
    calib: np.ndarray | None = None,
    gram: np.ndarray | None = None,
    full_range: bool = False,
    a_range: tuple[float, float] = (0.1, 1.0),
    grid: int = 13,
    refine_points: int = 6,
    refine_rounds: int = 2,
) -> np.ndarray:
    """Search the exponent a (PowerQuant): coarse grid, then local grid refinement.

    The error curve in a is not always unimodal (heavy tails at 3 bits), so a uniform grid of
    ``grid`` points over ``a_range`` picks the basin and ``refine_rounds`` rounds of
    ``refine_points`` points between the best point's neighbours narrow it (each round shrinks
    the bracket by (refine_points + 1) / 2). Every exponent unit (the tensor, each channel or each
    group) is searched at once, vectorized (C++ loop over groups, threads).

    Objectives: ``"mse"`` minimizes sum (w - w_hat)^2 over the unit; ``"output"`` minimizes
    ||X W^T - X W_hat^T||^2 for calibration inputs ``calib`` = X (n, in_features); with
    per-group exponents it uses the diagonal of X^T X as weights (the exact loss does not split
    over groups). ``gram`` = X^T X may be given instead of ``calib``.

    Returns the exponents, shape (1, 1), (rows, 1) or (rows, ngroups).
    """
    bits = _check_bits(bits)
    w = _check_weights(w)
    rows, cols = w.shape
    g = _groups(granularity, group_size, cols)
    _check_a_granularity(a_granularity, granularity)
    lo, hi = float(a_range[0]), float(a_range[1])
    if not (0 < lo < hi):
        raise ValueError(f"argument 'a_range' must satisfy 0 < lo < hi, got {a_range}")
    if objective not in ("mse", "output"):
        raise ValueError(f"argument 'objective' must be 'mse' or 'output', got {objective!r}")
    ng = cols // g if cols else 0
    R, G = _a_shape(a_gran := a_granularity, rows, ng)
    if rows * cols == 0:
        return np.ones((R, G), dtype=w.dtype)

    w32 = w.astype(np.float32)
    if objective == "output":
        if calib is None and gram is None:
            raise ValueError("objective='output' needs calibration inputs 'calib' (n_samples, in_features)")
        loss = _OutputLoss(calib, cols, gram)
        if a_gran == "group":
            d = np.sqrt(np.maximum(np.diag(loss.gram()), 0.0)).astype(np.float32)

            def errors(cand: np.ndarray) -> np.ndarray:  # diagonal-weighted MSE: exact per group
                return _diag_weighted(w32, d, bits, full_range, granularity, g, cand)

        else:
            def errors(cand: np.ndarray) -> np.ndarray:
                return _output_errors(w, bits, full_range, granularity, g, a_gran, cand, loss)
    else:
        def errors(cand: np.ndarray) -> np.ndarray:
            return _weight_errors(w32, bits, full_range, granularity, g, a_gran, cand)

    base = np.linspace(lo, hi, int(grid))
    cand = np.broadcast_to(base, (R, G, base.size))
    err = errors(cand)
    best = np.argmin(err, axis=-1)
    step = (hi - lo) / (grid - 1)
    centre = base[best]
    a_best = centre.copy()
    e_best = np.take_along_axis(err, best[..., None], -1)[..., 0]
    half = step
    for _ in range(int(refine_rounds)):
        lo_b = np.maximum(a_best - half, lo)
        hi_b = np.minimum(a_best + half, hi)
        t = (np.arange(1, refine_points + 1) / (refine_points + 1))[None, None, :]
        c = lo_b[..., None] + (hi_b - lo_b)[..., None] * t
        e = errors(c)
        k = np.argmin(e, axis=-1)
        ek = np.take_along_axis(e, k[..., None], -1)[..., 0]
        better = ek < e_best
        a_best = np.where(better, np.take_along_axis(c, k[..., None], -1)[..., 0], a_best)
        e_best = np.where(better, ek, e_best)
        half = half * 2.0 / (refine_points + 1)
    return cast(np.ndarray, a_best.astype(w.dtype))


def _diag_weighted(w32: np.ndarray, d: np.ndarray, bits: int, full: bool, granularity: str, g: int,
                   cand: np.ndarray) -> np.ndarray:
    """sum_j d_j^2 (w_j - w_hat_j)^2 per group for candidates (rows, ng, K) (exact per group)."""
    rows, cols = w32.shape
    K = cand.shape[-1]
    ng = cols // g
    out = np.empty((rows, ng, K))
    for k in range(K):
        qw = _encode(w32.astype(np.float64), bits, cand[:, :, k].astype(np.float64), granularity, g, full)
        E = (w32 - qw.dequantize()) * d[None, :]
        out[:, :, k] = (E * E).reshape(rows, ng, g).sum(-1)
    return out


# ----------------------------------------------------------------------------------------------
# quantize
# ----------------------------------------------------------------------------------------------


def quantize(
    w: np.ndarray,
    bits: int,
    a: float | np.ndarray | None = None,
    granularity: Literal["tensor", "channel", "group"] = "channel",
    group_size: int | None = None,
    objective: Literal["mse", "output"] = "mse",
    calib: np.ndarray | None = None,
    *,
    full_range: bool = False,
    a_granularity: Literal["tensor", "channel", "group"] = "tensor",
    a_range: tuple[float, float] = (0.1, 1.0),
    gram: np.ndarray | None = None,
) -> PowerQuantized:
    """Power-exponent quantization of a weight matrix (PowerQuant).

    Parameters
    ----------
    w : (out_features, in_features) float32 or float64, finite.
    bits : one of 2, 3, 4, 5, 6, 8.
    a : the exponent (> 0; scalar or an array broadcastable to the exponent units), or None to
        search it (see :func:`search_exponent`).
    granularity : scale per ``"tensor"``, per output ``"channel"`` (row) or per ``"group"`` of
        ``group_size`` consecutive weights of a row (``group_size`` must divide in_features).
    objective, calib : search objective: weight ``"mse"`` or layer-output ``"output"`` MSE on
        calibration inputs ``calib`` (n_samples, in_features).
    full_range : use all 2^b codes (asymmetric grid, NF4-like) instead of 2^b - 1.
    a_granularity : one exponent per ``"tensor"`` (default, as PowerQuant), ``"channel"`` or
        ``"group"`` (no finer than ``granularity``).
    a_range : the search interval of the exponent.
    gram : X^T X (in_features, in_features), instead of ``calib`` for the output objective.

    Returns
    -------
    PowerQuantized : packed codes, scales s, exponents a; ``dequantize()`` gives
        ``sign(s q)|s q|^(1/a)``.

    Notes
    -----
    ``P_a(w) = sign(w)|w|^a``; ``q = clip(round(P_a(w)/s), q_lo, q_hi)`` with the absmax scale of
    each group; ``a = 1`` is symmetric round-to-nearest uniform quantization. Exact zeros map to
    ``q = 0`` and dequantize to 0; an all-zero group gets ``s = 0``.
    """
    bits = _check_bits(bits)
    w = _check_weights(w)
    rows, cols = w.shape
    g = _groups(granularity, group_size, cols)
    _check_a_granularity(a_granularity, granularity)
    ng = cols // g if cols else 0
    shape = _a_shape(a_granularity, rows, ng)
    if a is None:
        a_arr = search_exponent(w, bits, granularity, group_size, a_granularity=a_granularity, objective=objective,
                                calib=calib, gram=gram, full_range=full_range, a_range=a_range)
    else:
        a_in = np.asarray(a, dtype=np.float64)
        if not np.all(np.isfinite(a_in)) or np.any(a_in <= 0):
            raise ValueError(f"argument 'a' must be finite and > 0, got {a!r}")
        try:
            a_arr = np.broadcast_to(a_in.reshape(1, 1) if a_in.size == 1 else a_in, shape)
        except ValueError:
            raise ValueError(f"argument 'a' of shape {a_in.shape} does not broadcast to the exponent units {shape}") from None
        a_arr = a_arr.astype(w.dtype)
    if granularity == "tensor":
        a_arr = np.asarray(a_arr).reshape(1, 1)
    qw = _encode(w, bits, np.asarray(a_arr), granularity, g, full_range)
    if not np.all(np.isfinite(qw.scales)):  # |w|^a beyond the dtype's range (a > 1, huge w)
        raise ValueError(f"|w|^a overflows {w.dtype} (max |w| = {float(np.abs(w).max()):.3g}, "
                         f"max a = {float(np.max(a_arr)):.3g}): use a smaller 'a' or rescale 'w'")
    qw.info["objective"] = objective if a is None else "given"
    return qw


# ----------------------------------------------------------------------------------------------
# matmul
# ----------------------------------------------------------------------------------------------


def matmul(x: Any, qw: PowerQuantized) -> Any:
    """``x @ W_hat.T`` from the packed codes (lookup-table GEMV / GEMM), never forming W_hat.

    Parameters
    ----------
    x : (..., in_features) float32 or float64 (numpy or torch on the CPU; CuPy / PyTorch CUDA
        arrays with a ``qw.to(x)`` copy of the quantized weights).
    qw : PowerQuantized (rows = out_features).

    Returns
    -------
    (..., out_features) in x's dtype and library (a torch CPU tensor gives a tensor). Per output
    row r and group g the kernel computes ``dscale[r, g] * sum_c lut[u(r, c)] x[c]`` with
    ``lut[u] = sign(q)|q|^(1/a)`` (exact integers when 1/a is an integer) and
    ``dscale = sign(s)|s|^(1/a)``.

    Speed (CPU): float32 x with 2/3/4/8-bit codes takes the vector lookup kernels (AVX2 /
    AVX-512); float64 x, and float32 in a build or layout without them, decodes each row's
    weights once per 512 columns and takes vector dot products with them (float64: ~2x the time
    of a float64 BLAS product with the dense matrix, measured on a Xeon at batches 1-32).
    """
    if not isinstance(qw, PowerQuantized):
        raise TypeError(f"argument 'qw' must be a PowerQuantized, got {type(qw).__name__}")
    _dispatch.refuse_grad("quant.matmul", x=x)
    _dispatch.check_float_dtype("x", x)
    rows, cols = qw.shape
    dev = _dispatch.device_of(x)
    on_cuda = dev is not None and dev.kind == "cuda"
    shape = tuple(x.shape)
    if len(shape) == 0 or shape[-1] != cols:
        raise ValueError(f"argument 'x' must have in_features = {cols} as its last axis, got shape {shape}")
    batch = math.prod(shape[:-1])
    dt = _dispatch.dtype_name(x)
    g = qw._kernel_group()
    if on_cuda:
        _dispatch.require_cuda("x")
        key = ("cuda", dt)
        if key not in qw._cache:
            raise ValueError("argument 'qw' lives on the host; move it next to 'x' first with qw = qw.to(x)")
        packed, lut, ds, (qdev, row_bytes, l_sr, l_sg) = qw._cache[key]
        if qdev != dev:
            raise ValueError(f"argument 'qw' lives on {qdev} but 'x' on {dev}; use qw.to(x)")
        xp = _dispatch.array_namespace(x)
        x2 = _dispatch.contiguous(xp.reshape(x, (batch, cols)))
        y = xp.empty((batch, rows), dtype=x.dtype, device=x.device)
        stream = _dispatch.current_stream(x)
        addr = _dispatch.addresses(packed, lut, ds, x2, y)
        if addr is not None:  # torch / CuPy: addresses instead of five DLPack imports
            with _dispatch.device_guard(x):
                _core.quant_lut_matmul_cuda_ptr(addr[0], row_bytes, _code_bits(qw.bits), qw.bits, rows, cols,
                                                g, addr[1], l_sr, l_sg, addr[2], addr[3], batch, addr[4],
                                                dt == "float64", stream)
        else:
            _core.quant_lut_matmul_cuda(packed, _code_bits(qw.bits), qw.bits, cols, g, lut, ds, x2, y, stream)
        return xp.reshape(y, shape[:-1] + (rows,))
    xa = np.ascontiguousarray(np.asarray(x).reshape(batch, cols))
    lut, ds = qw.kernel_tables(xa.dtype)
    y = np.empty((batch, rows), dtype=xa.dtype)
    if cols == 0:
        y[:] = 0
    else:
        _core.quant_lut_matmul(qw.packed, _code_bits(qw.bits), qw.bits, cols, g, lut, ds, xa, y)
    return _dispatch.to_library_of(x, y.reshape(shape[:-1] + (rows,)))


# ----------------------------------------------------------------------------------------------
# NUPES refinement
# ----------------------------------------------------------------------------------------------


def refine(
    qw: PowerQuantized,
    w: np.ndarray,
    calib: np.ndarray | None = None,
    *,
    gram: np.ndarray | None = None,
    iters: int = 4,
    gptq: bool = True,
    a_min: float = 0.1,
    damp: float = 1e-6,
    progress: bool = False,
) -> PowerQuantized:
    """NUPES-style refinement on the layer-output loss ``||X W^T - X W_hat^T||^2``.

    Starting from ``qw`` (typically :func:`quantize` with a searched exponent), alternates

    1. the integer codes over the whole grid: a GPTQ-style pass first (column by column, each
       weight rounded to the nearest level of the power grid, its error pushed onto the
       not-yet-quantized columns through the Cholesky factor of (X^T X)^-1), then exact
       coordinate descent: each weight moves to whichever of the 2^b levels lowers the loss
       most given all others, so a code may jump anywhere in the grid;
    2. the per-group scales: exact 1-D minimization of each group's dequantization scale;
    3. the exponent a (per tensor or channel): Gauss-Newton steps on the loss, computed in log
       space (``|q|^(1/a) = exp(log|q| / a)``, only on non-zero codes, so no NaN at exact zeros),
       clamped to ``[a_min, 1]``, accepted only if the loss drops.

    Every step is a descent step, so the output loss never rises above the starting point's.
    ``calib`` is X (n_samples, in_features), or give ``gram`` = X^T X. Per-tensor scales are kept (only codes and a move).
    Deterministic. ``progress=True`` shows a tqdm bar (if installed).

    Returns a new PowerQuantized; ``info['loss']`` holds the loss after each step.
    """
    if not isinstance(qw, PowerQuantized):
        raise TypeError(f"argument 'qw' must be a PowerQuantized, got {type(qw).__name__}")
    w = _check_weights(w)
    if w.shape != qw.shape:
        raise ValueError(f"argument 'w' has shape {w.shape}, expected {qw.shape}")
    if qw.a.shape[1] != 1:
        raise ValueError("refine supports one exponent per tensor or per channel (a_granularity 'tensor'/'channel')")
    if not (0 < a_min <= 1):
        raise ValueError(f"argument 'a_min' must be in (0, 1], got {a_min}")
    rows, cols = w.shape
    loss = _OutputLoss(calib, cols, gram)
    H = loss.gram()
    scale_h = float(np.mean(np.diag(H))) or 1.0
    H = H / scale_h
    H = H + damp * np.eye(cols)
    W = w.astype(np.float64)
    bits, full = qw.bits, qw.full_range
    off = 1 << (bits - 1)
    qlo = -off if full else -(off - 1)
    qhi = off - 1
    G = qw._kernel_group()
    ng = cols // G
    per_tensor_scale = qw.granularity == "tensor"

    q = qw.codes.astype(np.float64)  # (rows, cols)
    a = np.broadcast_to(qw.a.astype(np.float64), (rows, 1)).copy()
    t = qw._dscale(np.float64)  # (rows, ng): w_hat = t[g] * sign(q)|q|^(1/a)
    levels = np.arange(qlo, qhi + 1, dtype=np.float64)  # all codes
    logl = np.log(np.abs(levels), where=levels != 0, out=np.zeros_like(levels))
    logq_mask = levels != 0

    def basis(a_: np.ndarray) -> np.ndarray:  # sign(l)|l|^(1/a) per row: (rows, L)
        return np.where(logq_mask[None, :], np.sign(levels)[None, :] * np.exp(logl[None, :] / a_), 0.0)

    def index(qv: np.ndarray) -> np.ndarray:
        return (qv - qlo).astype(np.int64)

    def what(q_: np.ndarray, a_: np.ndarray, t_: np.ndarray) -> np.ndarray:
        B = basis(a_)
        vals = np.take_along_axis(B, index(q_), axis=1)
        return cast(np.ndarray, vals * np.repeat(t_, G, axis=1))

    def total(E: np.ndarray) -> float:
        return float(np.einsum("ij,ij->", E @ H, E))

    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm  # type: ignore[import-untyped,unused-ignore]

            bar = tqdm(total=iters + int(gptq), desc="NUPES refine", unit="it")
        except ImportError:
            logger.warning("progress=True needs tqdm (pip install tqdm); continuing without a bar")
    history = []
    Wh = what(q, a, t)
    history.append(total(W - Wh))

    if gptq:
        q_g = _gptq_pass(W, H, a, t, G, basis, qlo, qhi)
        Wg = what(q_g, a, t)
        lg = total(W - Wg)
        if lg < history[-1]:
            q, Wh = q_g, Wg
            history.append(lg)
        logger.info("NUPES: GPTQ pass loss %.6g -> %.6g", history[0], lg)
        if bar is not None:
            bar.update(1)

    for it in range(int(iters)):
        # 1. codes: exact coordinate descent over all levels (blocks of columns: within a block
        #    the gradient is updated column by column, the rest once per block by a GEMM)
        E = W - Wh
        Gm = E @ H  # loss = sum(E * Gm); moving w_hat[:, j] by d changes it by -2 d Gm[:, j] + d^2 H[j, j]
        B = basis(a)
        tt = np.repeat(t, G, axis=1)
        ar = np.arange(rows)
        for b0 in range(0, cols, _BLOCK):
            b1 = min(b0 + _BLOCK, cols)
            Gb = Gm[:, b0:b1].copy()
            D = np.zeros((rows, b1 - b0))
            Hbb = H[b0:b1, b0:b1]
            for j in range(b0, b1):
                jj = j - b0
                delta = B * tt[:, j : j + 1] - Wh[:, j : j + 1]  # (rows, levels)
                dl = delta * (delta * H[j, j] - 2.0 * Gb[:, jj : jj + 1])
                k = np.argmin(dl, axis=1)
                dk = np.where(dl[ar, k] < 0, delta[ar, k], 0.0)
                if np.any(dk):
                    Wh[:, j] += dk
                    q[:, j] = np.where(dk != 0, levels[k], q[:, j])
                    D[:, jj] = dk
                    Gb -= dk[:, None] * Hbb[jj][None, :]
            Gm -= D @ H[b0:b1, :]
        # 2. scales: exact per-group line minimization of t
        if not per_tensor_scale:
            vals = np.take_along_axis(B, index(q), axis=1)
            for gi in range(ng):
                sl = slice(gi * G, (gi + 1) * G)
                Bg = vals[:, sl]
                num = np.einsum("ij,ij->i", Bg, Gm[:, sl])
                den = np.einsum("ij,ij->i", Bg @ H[sl, sl], Bg)
                dt_ = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
                if np.any(dt_):
                    t[:, gi] += dt_
                    Wh[:, sl] += dt_[:, None] * Bg
                    Gm -= (dt_[:, None] * Bg) @ H[sl, :]
        cur = total(W - Wh)
        # 3. exponent: Gauss-Newton in a (per row), log-space derivative, clamped, accept if better
        a, t, Wh, cur = _a_step(W, H, q, a, t, G, qlo, logl, logq_mask, levels, a_min, what, cur, per_row=qw.a.shape[0] != 1)
        history.append(cur)
        logger.info("NUPES iter %d: loss %.6g, a in [%.4f, %.4f]", it, cur, a.min(), a.max())
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()

    # back to the stored form: s = sign(t)|t|^a, codes q
    a_out = a if qw.a.shape[0] != 1 else a[:1]
    s = np.sign(t) * np.abs(t) ** a
    if per_tensor_scale:
        s = s[:1, :1]
    elif qw.granularity == "channel":
        s = s.reshape(rows, 1)
    dt = qw.dtype
    u = (q + off).astype(np.uint8)
    new = PowerQuantized(pack_codes(u, bits), s.astype(dt), a_out.astype(dt).reshape(qw.a.shape), bits, qw.shape,
                         qw.group_size, qw.granularity, full, dict(qw.info))
    new.info["loss"] = [h * scale_h for h in history]
    new.info["method"] = "nupes"
    return new


def _gptq_pass(W: np.ndarray, H: np.ndarray, a: np.ndarray, t: np.ndarray, G: int,
               basis: Callable[[np.ndarray], np.ndarray], qlo: int, qhi: int) -> np.ndarray:
    """Column-by-column rounding to the nearest power-grid level with error feedback (GPTQ)."""
    rows, cols = W.shape
    try:
        Hinv = np.linalg.inv(H)
        U = np.linalg.cholesky(Hinv).T  # upper: Hinv = U^T U
    except np.linalg.LinAlgError:
        return cast(np.ndarray, np.rint(np.zeros_like(W)))
    Wc = W.copy()
    q = np.zeros_like(W)
    B = basis(a)  # (rows, levels)
    levels = np.arange(qlo, qhi + 1, dtype=np.float64)
    tt = np.repeat(t, G, axis=1)
    ar = np.arange(rows)
    for b0 in range(0, cols, _BLOCK):  # lazy batch updates: exact, one GEMM per block
        b1 = min(b0 + _BLOCK, cols)
        Wb = Wc[:, b0:b1].copy()
        Err = np.zeros((rows, b1 - b0))
        for j in range(b0, b1):
            jj = j - b0
            lv = B * tt[:, j : j + 1]
            k = np.argmin(np.abs(lv - Wb[:, jj : jj + 1]), axis=1)
            q[:, j] = levels[k]
            err = (Wb[:, jj] - lv[ar, k]) / U[j, j]
            Err[:, jj] = err
            Wb[:, jj + 1 :] -= err[:, None] * U[j, j + 1 : b1][None, :]
        if b1 < cols:
            Wc[:, b1:] -= Err @ U[b0:b1, b1:]
    return q


def _a_step(W: np.ndarray, H: np.ndarray, q: np.ndarray, a: np.ndarray, t: np.ndarray, G: int, qlo: int,
            logl: np.ndarray, logq_mask: np.ndarray, levels: np.ndarray, a_min: float,
            what: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], cur: float,
            per_row: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """One Gauss-Newton step on the exponent with codes and scales fixed (then a half step if
    that does not help); accepted per row (per-channel a) or as a whole, only if the loss drops."""
    rows = W.shape[0]
    idx = (q - qlo).astype(np.int64)
    lq = logl[idx]  # log|q| (0 where q = 0)
    nz = logq_mask[idx]
    tt = np.repeat(t, G, axis=1)
    mag = np.where(nz, np.exp(lq / a), 0.0)  # |q|^(1/a) in log space
    Wh = tt * np.sign(q) * mag
    E = W - Wh
    # d w_hat / d a = -t sign(q) |q|^(1/a) log|q| / a^2 (0 at q = 0: no log 0)
    J = -tt * np.sign(q) * mag * lq / (a * a)
    EH = E @ H
    lo = np.einsum("ij,ij->i", EH, E)
    gr = np.einsum("ij,ij->i", J, EH)  # -1/2 dL/da per row
    cu = np.einsum("ij,ij->i", J @ H, J)
    if not per_row:
        gr, cu = np.full(rows, gr.sum()), np.full(rows, cu.sum())
    step = np.where(cu > 0, gr / np.where(cu > 0, cu, 1.0), 0.0)
    for frac in (1.0, 0.5):
        a_new = np.clip(a[:, 0] + frac * step, a_min, 1.0)[:, None]
        Wn = what(q, a_new, t)
        En = W - Wn
        ln = np.einsum("ij,ij->i", En @ H, En)
        if per_row:
            acc = ln < lo
            if acc.any():
                a = np.where(acc[:, None], a_new, a)
                Wh = np.where(acc[:, None], Wn, Wh)
                lo = np.where(acc, ln, lo)
                break
        elif ln.sum() < lo.sum():
            a, Wh, lo = a_new, Wn, ln
            break
    return a, t, Wh, float(lo.sum())
