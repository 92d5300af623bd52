"""Group-rational (Padé) activations: KAT's GR-KAN units and PAU, forward and backward.

``F(x) = P(x) / Q(x)`` with ``P(x) = a_0 + a_1 x + ... + a_m x^m`` and, by ``form``:

* ``"A"``: ``Q = 1 + sum_{i=1..n} |b_i| |x|^i`` (PAU's "safe" default; what KAT's kernels compute),
* ``"B"``: ``Q = 1 + |sum_{i=1..n} b_i x^i|`` (the KAT paper and its fitting scripts),
* ``"C"``: ``Q = 0.1 + |b_0 + sum_{i=1..n} b_i x^i|`` (rational_activations version C).

The channel axis (last by default, ``channel_axis=1`` for (B, C, H, W)) of size D is split into
contiguous groups: channel d uses numerator row ``d // (D / G_num)`` of ``num`` (shape
``(G_num, m+1)``) and denominator row ``d // (D / G_den)`` of ``den`` (shape ``(G_den, n)``, or
``(G_den, n+1)`` for form C). KAT shares one numerator (G_num = 1) and uses G_den = 8.

References: X. Yang, X. Wang, "Kolmogorov-Arnold Transformer", ICLR 2025 (arXiv:2409.10594);
A. Molina, P. Schramowski, K. Kersting, "Padé Activation Units", ICLR 2020 (arXiv:1907.06732);
A. Raffel, L. Chen, "FlashKAT" (arXiv:2505.13813) for the block-wise gradient reduction.
"""

from __future__ import annotations

import functools
import math
from typing import Any, cast

import numpy as np

from . import _core, _dispatch

__all__ = ["rational", "rational_backward", "rational_init", "variance_gain", "RATIONAL_INITS"]

_FORMS = {"A": 0, "B": 1, "C": 2}
MAX_DEGREE = 12
_CUDA_X_DTYPES = ("float16", "bfloat16", "float32", "float64")


_dtype_name = _dispatch.dtype_name


def _form_id(form: str) -> int:
    if not isinstance(form, str) or form.upper() not in _FORMS:
        raise ValueError(f"argument 'form' must be 'A', 'B' or 'C', got {form!r}")
    return _FORMS[form.upper()]


def _is_torch(a: Any) -> bool:
    return type(a).__module__.split(".")[0] == "torch"


def _empty_like(a: Any, shape: tuple[int, ...] | None = None, dtype: Any = None) -> Any:
    if isinstance(a, np.ndarray):
        return np.empty(a.shape if shape is None else shape, dtype=a.dtype if dtype is None else dtype)
    if _is_torch(a):
        import torch

        if shape is None and dtype is None:  # (a is contiguous here; faster than torch.empty)
            return torch.empty_like(a, memory_format=torch.contiguous_format)
        return torch.empty(a.shape if shape is None else shape,
                           dtype=a.dtype if dtype is None else dtype, device=a.device)
    xp = _dispatch.array_namespace(a)
    return xp.empty(a.shape if shape is None else shape, dtype=a.dtype if dtype is None else dtype,
                    device=getattr(a, "device", None))


def _prepare(x: Any, num: Any, den: Any, form: str, channel_axis: int,
             grad_out: Any = None) -> tuple[Any, ...]:
    """Validate; returns (device, x, num, den, grad_out, form_id, outer, D, inner)."""
    fid = _form_id(form)
    named = {"x": x, "num": num, "den": den}
    if grad_out is not None:
        named["grad_out"] = grad_out
    dev = _dispatch.common_device(named)
    if dev.kind == "cpu":
        if not _is_torch(x):
            x = np.asarray(x)
            num, den = np.asarray(num), np.asarray(den)
            if grad_out is not None:
                grad_out = np.asarray(grad_out)
        _dispatch.check_float_dtype("x", x)
        for name, a in (("num", num), ("den", den), ("grad_out", grad_out)):
            if a is not None and _dtype_name(a) != _dtype_name(x):
                raise TypeError(f"argument {name!r} must have the dtype of 'x' ({_dtype_name(x)}) "
                                f"on the CPU, got {_dtype_name(a)}")
    else:
        _dispatch.require_cuda("x")
        if _dtype_name(x) not in _CUDA_X_DTYPES:
            raise TypeError(f"argument 'x' must be float16, bfloat16, float32 or float64, "
                            f"got {_dtype_name(x)}")
        cdt = "float64" if _dtype_name(x) == "float64" else "float32"
        for name, a in (("num", num), ("den", den)):
            if _dtype_name(a) != cdt:
                raise TypeError(f"argument {name!r} must be {cdt} for {_dtype_name(x)} input on "
                                f"CUDA, got {_dtype_name(a)}")
        if grad_out is not None and _dtype_name(grad_out) != _dtype_name(x):
            raise TypeError(f"argument 'grad_out' must have the dtype of 'x' ({_dtype_name(x)})")
    shape = tuple(map(int, x.shape))
    if len(shape) == 0:
        raise ValueError("argument 'x' must have at least one dimension (the channel axis)")
    if grad_out is not None and tuple(map(int, grad_out.shape)) != shape:
        raise ValueError(f"argument 'grad_out' must have the shape of 'x' {shape}, "
                         f"got {tuple(grad_out.shape)}")
    if not -len(shape) <= channel_axis < len(shape):
        raise ValueError(f"argument 'channel_axis' = {channel_axis} is out of range for "
                         f"x.ndim = {len(shape)}")
    ax = channel_axis % len(shape)
    D = shape[ax]
    outer = math.prod(shape[:ax])
    inner = math.prod(shape[ax + 1:])
    if len(num.shape) != 2:
        raise ValueError(f"argument 'num' must be 2-D (numerator groups, m+1), got shape "
                         f"{tuple(num.shape)}")
    if len(den.shape) != 2:
        raise ValueError(f"argument 'den' must be 2-D (denominator groups, n{'+1' if fid == 2 else ''}), "
                         f"got shape {tuple(den.shape)}")
    gn, na = int(num.shape[0]), int(num.shape[1])
    gd, nb = int(den.shape[0]), int(den.shape[1])
    m = na - 1
    n = nb - 1 if fid == 2 else nb
    if not 0 <= m <= MAX_DEGREE:
        raise ValueError(f"argument 'num' must have 1..{MAX_DEGREE + 1} columns (degree m in "
                         f"[0, {MAX_DEGREE}]), got {na}")
    if not 0 <= n <= MAX_DEGREE:
        lo, hi = (1, MAX_DEGREE + 1) if fid == 2 else (0, MAX_DEGREE)
        raise ValueError(f"argument 'den' must have {lo}..{hi} columns for form {form!r} "
                         f"(degree n in [0, {MAX_DEGREE}]), got {nb}")
    if gn < 1 or gd < 1:
        raise ValueError("arguments 'num' and 'den' must have at least one group (row)")
    if D == 0:
        raise ValueError("the channel axis of 'x' has size 0")
    if D % gn:
        raise ValueError(f"x has {D} channels, not divisible by the {gn} numerator groups "
                         "(rows of 'num')")
    if D % gd:
        raise ValueError(f"x has {D} channels, not divisible by the {gd} denominator groups "
                         "(rows of 'den')")
    x = _dispatch.contiguous(x)
    num, den = _dispatch.contiguous(num), _dispatch.contiguous(den)
    if grad_out is not None:
        grad_out = _dispatch.contiguous(grad_out)
    return dev, x, num, den, grad_out, fid, outer, D, inner


def _check_out(name: str, out: Any, like: Any, shape: tuple[int, ...]) -> Any:
    if tuple(int(v) for v in out.shape) != shape or _dtype_name(out) != _dtype_name(like):
        raise ValueError(f"argument {name!r} must have shape {shape} and dtype {_dtype_name(like)}, "
                         f"got {tuple(out.shape)} {_dtype_name(out)}")
    if type(out) is not type(like) or _dispatch.device_of(out) != _dispatch.device_of(like):
        raise ValueError(f"argument {name!r} must be the same array type on the same device as 'x'")
    contiguous = (out.flags.c_contiguous if isinstance(out, np.ndarray)
                  else out.is_contiguous() if _is_torch(out) else out.flags.c_contiguous)
    if not contiguous:
        raise ValueError(f"argument {name!r} must be C-contiguous")
    if isinstance(out, np.ndarray) and not out.flags.writeable:
        raise ValueError(f"argument {name!r} is read-only")
    return out


def rational(x: Any, num: Any, den: Any, form: str = "A", *, channel_axis: int = -1,
             out: Any = None) -> Any:
    """Group-rational activation ``y = P(x) / Q(x)`` per channel group.

    Parameters
    ----------
    x : array
        Input, float32/float64 (numpy or CPU torch) or float16/bfloat16/float32/float64 on CUDA.
        Any shape; ``channel_axis`` picks the channel axis of size D.
    num : array, shape (G_num, m+1)
        Numerator coefficients a_0..a_m per group, 0 <= m <= 12.
    den : array, shape (G_den, n), or (G_den, n+1) for form "C"
        Denominator coefficients b_1..b_n (b_0..b_n for form "C"), 0 <= n <= 12.
    form : {"A", "B", "C"}
        ``A``: Q = 1 + sum |b_i||x|^i; ``B``: Q = 1 + |sum b_i x^i|; ``C``: Q = 0.1 + |sum_{i>=0} b_i x^i|.
    channel_axis : int
        -1 for channels-last (..., D); 1 for channels-first (B, C, H, W).

    Returns
    -------
    array of x's shape, dtype and library; differentiable (autograd, `kernkit.torch.rational`)
    when x, num or den is a tensor that requires grad.

    Notes
    -----
    D must be divisible by G_num and G_den (ValueError otherwise). NaN/inf inputs propagate.
    float32 and float64 inputs are computed in double (float32 rounded once at the end, so within
    about one float32 rounding of the float64 result even where Q's inner sum cancels);
    float16/bfloat16 (CUDA) in float32. The same holds for :func:`rational_backward`.
    Non-contiguous inputs are copied to a contiguous array on their device first. ``out``: a
    C-contiguous array of x's shape, dtype and type to write into (saves the allocation and its
    page faults, which cost about as much as the kernel itself at ViT sizes on the CPU).
    """
    if _dispatch.wants_grad(x, num, den):
        if out is not None:
            raise TypeError("kernkit.rational: out= is not supported for tensors that require grad")
        from .torch import rational as differentiable

        x, num, den = _dispatch.as_tensors(x, num, den)
        return differentiable(x, num, den, form, channel_axis)
    dev, x, num, den, _, fid, outer, D, inner = _prepare(x, num, den, form, channel_axis)
    y = _empty_like(x) if out is None else _check_out("out", out, x, tuple(int(v) for v in x.shape))
    if dev.kind == "cpu":
        _core.rational_forward(x, num, den, y, fid, outer, D, inner)
        return y
    stream = _dispatch.current_stream(x)
    addr = _dispatch.addresses(x, num, den, y)
    if addr is None:
        _core.rational_forward_cuda(x, num, den, y, fid, outer, D, inner, stream)
    else:  # torch / CuPy: addresses instead of four DLPack imports (all checked above)
        with _dispatch.device_guard(x):
            _core.rational_forward_cuda_ptr(addr[0], addr[1], addr[2], addr[3],
                                            _dispatch.CUDA_DTYPE_CODES[_dtype_name(x)], num.shape[0],
                                            num.shape[1], den.shape[0], den.shape[1], fid, outer, D, inner,
                                            stream)
    return y


def rational_backward(grad_out: Any, x: Any, num: Any, den: Any, form: str = "A", *,
                      channel_axis: int = -1, out: tuple[Any, Any, Any] | None = None
                      ) -> tuple[Any, Any, Any]:
    """Gradients of ``sum(grad_out * rational(x, num, den, form))``: ``(dx, dnum, dden)``.

    ``dx`` has x's shape and dtype; ``dnum``/``dden`` have the shapes of num/den and their dtype
    (float32 for float16/bfloat16/float32 input on CUDA). With sign(0) = 0 as in PyTorch:
    d/db_i (form A) = sign(b_i)|x|^i (-P/Q^2); d/db_i (B, C) = sign(S) x^i (-P/Q^2), S the inner
    polynomial; dQ/dx (form A) = sign(x) sum i|b_i||x|^(i-1).

    The coefficient gradients are reduced hierarchically and deterministically: on the CPU per
    fixed chunk of rows in double (independent of the thread count), then the chunks in a fixed
    order; on CUDA per block (registers, warp shuffles, shared memory) into per-block partials,
    then a fixed-order sum in double. Results are bitwise identical run to run.
    ``out=(dx, dnum, dden)``: preallocated C-contiguous outputs to write into.
    """
    dev, x, num, den, g, fid, outer, D, inner = _prepare(x, num, den, form, channel_axis, grad_out)
    if out is None:
        dx, dnum, dden = _empty_like(x), _empty_like(num), _empty_like(den)
    else:
        if len(out) != 3:
            raise ValueError("argument 'out' must be a tuple (dx, dnum, dden)")
        dx = _check_out("out[0] (dx)", out[0], x, tuple(int(v) for v in x.shape))
        dnum = _check_out("out[1] (dnum)", out[1], num, tuple(int(v) for v in num.shape))
        dden = _check_out("out[2] (dden)", out[2], den, tuple(int(v) for v in den.shape))
    if dev.kind == "cpu":
        _core.rational_backward(g, x, num, den, dx, dnum, dden, fid, outer, D, inner)
        return dx, dnum, dden
    stream = _dispatch.current_stream(x)
    addr = _dispatch.addresses(g, x, num, den, dx, dnum, dden)
    if addr is None:
        _core.rational_backward_cuda(g, x, num, den, dx, dnum, dden, fid, outer, D, inner, stream)
    else:  # torch / CuPy: addresses instead of seven DLPack imports (all checked above)
        with _dispatch.device_guard(x):
            _core.rational_backward_cuda_ptr(addr[0], addr[1], addr[2], addr[3], addr[4], addr[5], addr[6],
                                             _dispatch.CUDA_DTYPE_CODES[_dtype_name(x)], num.shape[0],
                                             num.shape[1], den.shape[0], den.shape[1], fid, outer, D, inner,
                                             stream)
    return dx, dnum, dden


# ---------------------------------------------------------------------------------------------
# Initialization: least-squares fits in the same form that is evaluated.

def _erf(x: np.ndarray) -> np.ndarray:
    return cast(np.ndarray, np.vectorize(math.erf, otypes=[np.float64])(x))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


RATIONAL_INITS: dict[str, Any] = {
    "identity": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
    "swish": lambda x: x * _sigmoid(x),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
}


def _eval_np(form: int, a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """float64 reference of F (numpy, straight from the formula)."""
    p = np.polynomial.polynomial.polyval(x, a)
    if form == 0:
        q = 1.0 + sum(abs(b[i - 1]) * np.abs(x) ** i for i in range(1, len(b) + 1))
    elif form == 1:
        q = 1.0 + np.abs(sum(b[i - 1] * x ** i for i in range(1, len(b) + 1)) + 0.0 * x)
    else:
        q = 0.1 + np.abs(np.polynomial.polynomial.polyval(x, b))
    return cast(np.ndarray, p / q)


def _fit(f: np.ndarray, x: np.ndarray, m: int, n: int, form: int) -> tuple[np.ndarray, np.ndarray]:
    """Least squares of F(x) - f over the points x, Levenberg-Marquardt from linearized starts."""
    nb = n + 1 if form == 2 else n
    V = np.vander(x, m + 1, increasing=True)

    def resid(theta: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, _eval_np(form, theta[:m + 1], theta[m + 1:], x) - f)

    def jac(theta: np.ndarray) -> np.ndarray:
        a, b = theta[:m + 1], theta[m + 1:]
        p = V @ a
        if form == 0:
            pw = np.stack([np.abs(x) ** i for i in range(1, n + 1)], 1) if n else np.zeros((len(x), 0))
            q = 1.0 + pw @ np.abs(b)
            Jb = -(p / q ** 2)[:, None] * pw * np.sign(b)[None, :]
        else:
            k0 = 1 if form == 1 else 0
            pw = np.stack([x ** i for i in range(k0, n + 1)], 1) if nb else np.zeros((len(x), 0))
            s = pw @ b
            q = (1.0 if form == 1 else 0.1) + np.abs(s)
            Jb = -(p / q ** 2 * np.sign(s))[:, None] * pw
        return np.concatenate([V / q[:, None], Jb], 1)

    starts = []
    # Polynomial fit with Q = 1 (or Q = 0.1 + |b_0|, b_0 = 0.9, form C).
    a0 = np.linalg.lstsq(V, f, rcond=None)[0]
    b0 = np.zeros(nb)
    if form == 2:
        b0[0] = 0.9
    starts.append(np.concatenate([a0, b0]))
    # Linearized fit P - f * S = f (S the inner polynomial with Q ~ 1 + S).
    if n:
        # f (1 + S) = P with S = sum_{i>=1} b_i x^i (form C: b_0 = 0.9, so 0.1 + b_0 = 1).
        pw = np.stack([x ** i for i in range(1, n + 1)], 1)
        A = np.concatenate([V, -f[:, None] * pw], 1)
        sol = np.linalg.lstsq(A, f, rcond=None)[0]
        bl = sol[m + 1:]
        b1 = np.concatenate([[0.9], bl]) if form == 2 else bl
        starts.append(np.concatenate([sol[:m + 1], b1]))
        if form == 0:  # |b| cannot carry signs: start also from the positive part
            starts.append(np.concatenate([sol[:m + 1], np.abs(bl)]))
    def q_of(b: np.ndarray) -> np.ndarray:
        return _eval_np(form, np.array([1.0]), b, x)  # 1 / Q (P = 1)

    best, best_cost = starts[0], np.inf

    def restarts() -> list[np.ndarray]:
        # Deterministic random denominators, numerator by linear least squares given Q.
        rng = np.random.default_rng(12345)
        out = []
        for _ in range(8):
            b = rng.normal(size=nb) * 10.0 ** rng.uniform(-2, 0.5)
            if form == 0:
                b = np.abs(b)
            if form == 2:
                b[0] = abs(b[0]) + 0.9
            inv_q = q_of(b)
            a = np.linalg.lstsq(V * inv_q[:, None], f, rcond=None)[0]
            out.append(np.concatenate([a, b]))
        return out

    queue = list(starts)
    tried_restarts = False
    while queue:
        theta = queue.pop(0)
        theta = theta.astype(np.float64).copy()
        # Avoid sign(0) = 0 stalls of |b| (form A) by nudging exact zeros.
        if form == 0 and n:
            z = theta[m + 1:] == 0
            theta[m + 1:][z] = 1e-6
        lam = 1e-3
        r = resid(theta)
        cost = float(r @ r)
        for _ in range(300):
            J = jac(theta)
            g = J.T @ r
            H = J.T @ J
            step = np.linalg.solve(H + lam * np.diag(np.diag(H) + 1e-12), -g)
            cand = theta + step
            rc = resid(cand)
            cc = float(rc @ rc)
            if np.isfinite(cc) and cc < cost:
                done = cost - cc <= 1e-15 * max(cost, 1e-300)
                theta, r, cost = cand, rc, cc
                lam = max(lam / 3, 1e-12)
                if done:
                    break
            else:
                lam *= 4
                if lam > 1e12:
                    break
        if cost < best_cost:
            best, best_cost = theta, cost
        if not queue and not tried_restarts and n and best_cost > 1e-6 * len(x):
            queue, tried_restarts = restarts(), True  # rms above 1e-3: look for a better basin
    return best[:m + 1], best[m + 1:]


_trapezoid = getattr(np, "trapezoid", None) or getattr(np, "trapz")


@functools.lru_cache(maxsize=64)
def _init_cached(name: str, m: int, n: int, form: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = np.linspace(-3.0, 3.0, 1000)
    f = RATIONAL_INITS[name](x)
    if name == "identity":
        a = np.zeros(m + 1)
        if m >= 1:
            a[1] = 1.0
        b = np.zeros(n + 1 if form == 2 else n)
        if form == 2:
            b[0] = 0.9  # Q = 0.1 + |0.9| = 1
        if m >= 1:
            return tuple(a), tuple(b)
    a, b = _fit(f, x, m, n, form)
    return tuple(float(v) for v in a), tuple(float(v) for v in b)


def rational_init(name: str, degrees: tuple[int, int] = (5, 4), form: str = "A") -> tuple[np.ndarray, np.ndarray]:
    """Coefficients ``(a, b)`` of a rational approximating a standard activation.

    Fitted by least squares on 1000 points of [-3, 3] **in the form that is evaluated** (KAT's
    shipped GELU coefficients were fitted in form B but run in form A, max error 1.46 there).
    ``name`` in identity, relu, leaky_relu (slope 0.01), gelu (erf), swish (x sigmoid x), tanh,
    sigmoid. Returns float64 arrays ``a`` (m+1,) and ``b`` (n,) or (n+1,) for form "C"; tile
    them to (G, .) for grouped use.
    """
    fid = _form_id(form)
    if name not in RATIONAL_INITS:
        raise ValueError(f"argument 'name' must be one of {sorted(RATIONAL_INITS)}, got {name!r}")
    try:
        m, n = (int(d) for d in degrees)
    except (TypeError, ValueError):
        raise ValueError(f"argument 'degrees' must be a pair (m, n), got {degrees!r}") from None
    if not (0 <= m <= MAX_DEGREE and 0 <= n <= MAX_DEGREE):
        raise ValueError(f"argument 'degrees' must have 0 <= m, n <= {MAX_DEGREE}, got {degrees!r}")
    a, b = _init_cached(name, m, n, fid)
    return np.array(a), np.array(b)


def variance_gain(num: Any, den: Any, form: str = "A") -> float | np.ndarray:
    """``1 / E[F(x)^2]`` for x ~ N(0, 1): the gain of a variance-preserving init of the next layer.

    One coefficient set (1-D num, den) gives a float; grouped coefficients (G, .) give one gain per
    group (num and den groups broadcast as in KAT: one shared numerator row works with G rows).
    Computed by the trapezoid rule on [-12, 12] (2^17 points) in float64.
    """
    fid = _form_id(form)
    a = np.asarray(num, dtype=np.float64)
    b = np.asarray(den, dtype=np.float64)
    single = a.ndim == 1 and b.ndim == 1
    a2, b2 = np.atleast_2d(a), np.atleast_2d(b)
    if a2.ndim != 2 or b2.ndim != 2:
        raise ValueError("arguments 'num' and 'den' must be 1-D or 2-D")
    G = max(a2.shape[0], b2.shape[0])
    if a2.shape[0] not in (1, G) or b2.shape[0] not in (1, G):
        raise ValueError(f"'num' has {a2.shape[0]} rows and 'den' {b2.shape[0]}: cannot pair them")
    x = np.linspace(-12.0, 12.0, (1 << 17) + 1)
    w = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    out = np.empty(G)
    for g in range(G):
        F = _eval_np(fid, a2[min(g, a2.shape[0] - 1)], b2[min(g, b2.shape[0] - 1)], x)
        out[g] = 1.0 / _trapezoid(w * F * F, x)
    return float(out[0]) if single else out
