"""Logarithms of the modified Bessel functions I_v and K_v, their ratio and derivatives.

Every function is a numpy ufunc on the CPU (``kernkit.log_iv.ufunc`` is the `numpy.ufunc`
itself) and takes CuPy / PyTorch CUDA arrays of one device as well. Any real order and
x >= 0, in float32 or float64, without overflow: the result is computed on a log scale.

On torch tensors that require grad each function is differentiable in x: d/dx log I_v = dlog_iv
(and so on); for the ratio and dlog_* the derivative comes from the modified Bessel equation,
evaluated in float64, whose terms of size T >= 1 cancel: an absolute error ~1e-16 T (relative
~1e-16 x^2 at large x).

Reference: A. Plesner, H. H. B. Sørensen, S. Hauberg, "Accurate Computation of the
Logarithm of Modified Bessel Functions on GPUs", ICS 2024 (arXiv:2409.08729); DLMF §10.25,
§10.40, §10.41.
"""

from __future__ import annotations

from ._dispatch import make_ufunc

_COMMON = """
Parameters
----------
v : array_like
    Order; any real value (negative orders through the reflection formulas).
x : array_like
    Argument. x < 0 follows scipy.special's conventions (real only where the function is).
out, where, dtype, casting, ... :
    As for any numpy ufunc (CPU arrays only).

Returns
-------
ndarray (or the caller's CUDA array type)
    float32 for float32 inputs, float64 otherwise (integers are computed in float64).

PyTorch tensors (CPU or CUDA) that require grad give a result differentiable in x (autograd,
`kernkit.torch.SpecialFunction`); the order v is not differentiated (an error if asked).
"""

log_iv = make_ufunc("log_iv", """log I_v(x), the logarithm of the modified Bessel function of the first kind.

I_v(x) = sum_k (x/2)^(2k+v) / (k! Gamma(k+v+1))  (DLMF 10.25.2). log I_0(0) = 0,
log I_v(0) = -inf for v > 0. Where I_v(x) < 0 (some negative non-integer orders) the
real logarithm is NaN.
""" + _COMMON)

log_kv = make_ufunc("log_kv", """log K_v(x), the logarithm of the modified Bessel function of the second kind.

K_v(x) = (pi/2) (I_{-v}(x) - I_v(x)) / sin(v pi)  (DLMF 10.27.4); K_{-v} = K_v;
log K_v(0) = +inf.
""" + _COMMON)

log_ive = make_ufunc("log_ive", """log I_v(x) - |x|: the log of scipy.special.ive, without its overflow and underflow.
""" + _COMMON)

log_kve = make_ufunc("log_kve", """log K_v(x) + x: the log of scipy.special.kve, without its overflow and underflow.
""" + _COMMON)

bessel_iv_ratio = make_ufunc("bessel_iv_ratio", """I_{v+1}(x) / I_v(x), computed directly (accurate also where it is close to 1).

For v = p/2 - 1 this is A_p(kappa), the mean resultant length of a von Mises-Fisher
distribution on the sphere S^(p-1).
""" + _COMMON)

dlog_iv = make_ufunc("dlog_iv", """d/dx log I_v(x) = I_v'(x) / I_v(x) = I_{v+1}(x)/I_v(x) + v/x.
""" + _COMMON)

dlog_kv = make_ufunc("dlog_kv", """d/dx log K_v(x) = K_v'(x) / K_v(x) = v/x - K_{v+1}(x)/K_v(x).
""" + _COMMON)

__all__ = ["log_iv", "log_kv", "log_ive", "log_kve", "bessel_iv_ratio", "dlog_iv", "dlog_kv"]
