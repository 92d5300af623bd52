// Scalar group-rational (Padé) activation math, shared verbatim by the CPU loops and CUDA.
//
//   F(x) = P(x) / Q(x),  P(x) = a_0 + a_1 x + ... + a_m x^m  (Horner)
//   form A: Q = 1   + sum_{i=1..n} |b_i| |x|^i      (PAU "safe", KAT's kernels)
//   form B: Q = 1   + | sum_{i=1..n} b_i x^i |       (KAT's paper and fit scripts)
//   form C: Q = 0.1 + | sum_{i=0..n} b_i x^i |       (rational_activations version C)
//
// Coefficient arrays: a[0..m]; b holds b_1..b_n (forms A, B) or b_0..b_n (form C).
// sign(0) = 0 everywhere, as torch.sign / the subgradient of |.| at 0 in PyTorch.
//
// T is the arithmetic type and C the coefficients' stored type (converted to T as read): float32
// inputs are evaluated in double (T = double, C = float or double), since Q's inner sum can cancel
// (form C's 0.1 + |S| with S near 0) and float32 Horner is then only float32-accurate relative to
// the sum of |terms|, not to Q. float32 values are exact in double: one rounding at the end.
#pragma once
#include "kernkit/math/config.hpp"

namespace kernkit {

enum class RationalForm : int { A = 0, B = 1, C = 2 };

namespace math {

// Largest supported degrees (the CUDA kernels keep one register accumulator per coefficient).
constexpr int rational_max_degree = 12;

template <class T>
KERNKIT_INLINE T rational_sign(T v) {
  return v > T(0) ? T(1) : (v < T(0) ? T(-1) : T(0));
}

// Number of denominator coefficients stored for degree n in `form`.
KERNKIT_INLINE int rational_den_count(RationalForm form, int n) {
  return form == RationalForm::C ? n + 1 : n;
}

// P(x) by Horner.
template <class T, class C>
KERNKIT_INLINE T rational_p(const C* a, int m, T x) {
  T p = T(a[m]);
  for (int k = m - 1; k >= 0; --k) p = p * x + T(a[k]);
  return p;
}

// Q(x) of the given form (Horner from the top coefficient, as the array loops do).
template <class T, class C>
KERNKIT_INLINE T rational_q(RationalForm form, const C* b, int n, T x) {
  if (form == RationalForm::A) {
    if (n == 0) return T(1);
    const T t = x < T(0) ? -x : x;
    T s = T(b[n - 1] < C(0) ? -b[n - 1] : b[n - 1]);
    for (int k = n - 1; k >= 1; --k) s = s * t + T(b[k - 1] < C(0) ? -b[k - 1] : b[k - 1]);
    return T(1) + t * s;
  }
  if (form == RationalForm::B) {
    if (n == 0) return T(1);
    T r = T(b[n - 1]);
    for (int k = n - 1; k >= 1; --k) r = r * x + T(b[k - 1]);
    const T s = r * x;
    return T(1) + (s < T(0) ? -s : s);
  }
  T s = T(b[n]);
  for (int k = n - 1; k >= 0; --k) s = s * x + T(b[k]);
  return T(0.1) + (s < T(0) ? -s : s);
}

template <class T, class C>
KERNKIT_INLINE T rational_value(RationalForm form, const C* a, int m, const C* b, int n, T x) {
  return rational_p(a, m, x) / rational_q(form, b, n, x);
}

// P(x) and P'(x) together.
template <class T, class C>
KERNKIT_INLINE void rational_p_dp(const C* a, int m, T x, T& p, T& dp) {
  p = T(a[m]);
  dp = T(0);
  for (int k = m - 1; k >= 0; --k) {
    dp = dp * x + p;
    p = p * x + T(a[k]);
  }
}

// Q(x), dQ/dx, and the factor `w` such that dQ/db_k = w * x^k (forms B, C); for form A,
// dQ/db_k = sign(b_k) |x|^k and w is returned as 1.
template <class T, class C>
KERNKIT_INLINE void rational_q_dq(RationalForm form, const C* b, int n, T x, T& q, T& dq, T& w) {
  w = T(1);
  if (n == 0 && form != RationalForm::C) {
    q = T(1);
    dq = T(0);
    return;
  }
  if (form == RationalForm::A) {
    // q = 1 + t s(t), s = |b_1| + |b_2| t + ... + |b_n| t^(n-1), t = |x|.
    const T t = x < T(0) ? -x : x;
    T s = T(b[n - 1] < C(0) ? -b[n - 1] : b[n - 1]), ds = T(0);
    for (int k = n - 1; k >= 1; --k) {
      ds = ds * t + s;
      s = s * t + T(b[k - 1] < C(0) ? -b[k - 1] : b[k - 1]);
    }
    q = T(1) + t * s;
    dq = rational_sign(x) * (s + t * ds);
    return;
  }
  T s, ds;
  if (form == RationalForm::B) {
    // s = x r(x), r = b_1 + b_2 x + ... + b_n x^(n-1)
    T r = T(b[n - 1]), dr = T(0);
    for (int k = n - 1; k >= 1; --k) {
      dr = dr * x + r;
      r = r * x + T(b[k - 1]);
    }
    s = r * x;
    ds = r + x * dr;
    q = T(1) + (s < T(0) ? -s : s);
  } else {
    s = T(b[n]);
    ds = T(0);
    for (int k = n - 1; k >= 0; --k) {
      ds = ds * x + s;
      s = s * x + T(b[k]);
    }
    q = T(0.1) + (s < T(0) ? -s : s);
  }
  w = rational_sign(s);
  dq = w * ds;
}

}  // namespace math
}  // namespace kernkit
