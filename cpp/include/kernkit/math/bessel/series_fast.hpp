// Branch-free power series for log I_v(x) and log I_v(x) - x (and, without the prefactor, the
// ratio I_{v+1}/I_v: series_ratio_fast) in the small box below the Debye region: v >= 0,
// 1e-300 <= x, v^2 + x^2 < 25.5^2 (where debye_fast_class is 0). The same sum as
// series_i (bessel/series.hpp), I_v(x) = (x/2)^v / Gamma(v+1) * S, S = sum_k q^k / (k! (v+1)_k),
// q = x^2/4, but with a term count fixed per class of x and no data-dependent control flow, so
// the CPU block loop (cpp/src/bessel_blocks.hpp) runs it with #pragma omp simd, and the scalar
// log_iv calls the very same function for these inputs (same bits on either path).
//
// Prefactor, with v = n + mu, n = floor(v + 1/2), mu in [-1/2, 1/2), 1/Gamma(1+mu) = 1 + r
// (bessel/logspace.hpp) and D = v (v-1) ... (mu+1) = Gamma(v+1)/Gamma(mu+1), whose factors
// v - j are exact:
//  * x >= 1e-3 (kinds 1): log I can be O(1) while v log(x/2) and log Gamma(v+1) are ~60, whose
//    separate roundings would cost ~1e-14 absolute. So P = (x/2)^n / D is formed as a
//    double-double (exact products by fma; n <= 25, so P stays within 1e-83..1e28) and
//      log I = log(P_hi (1+r) S) + P_lo/P_hi + mu log(x/2),   |mu log(x/2)| <= 3.8;
//  * x < 1e-3 (kind 0): log I = v log(x/2) + log((1+r) S / D); both terms are <= 0 for v >= 1
//    (no cancellation) and D <= 1.5 for v < 1.5. Also for 1e-3 <= x < 1 when v >= 4.5: there
//    D >= 29.5 against (1+r) S <= 1.2, so both terms are < 0 again (the same ~1 ulp against Arb
//    on 6000 points, and 1.46x the double-double prefactor's throughput on one core).
// Term counts per class of x, for a truncation below 1e-18 relative at v = 0 (the slowest case):
// 3 below x = 1e-3, 10 below 1, 16 below 4, 25 below 10, 41 below 25.5 (rounded up to even).
#pragma once
#include <cmath>

#include "../config.hpp"
#include "fastmath.hpp"
#include "logspace.hpp"

namespace kernkit {
namespace bessel_detail {

constexpr int kSeriesFastClasses = 15;  // class ids 1..15; 0 = not handled here

// Class of (v, x): 0 outside the domain above (also NaN, inf, negative v or x), else
// 1 + (x class 0..4: x < 1e-3, 1, 4, 10, 25.5) + 5 (prefactor factors, masked past v: up to 4
// below v = 4.5, 12 below 12.5, else 25). Branch-free like debye_fast_class.
KERNKIT_INLINE_ALWAYS int series_fast_class(double v, double x) {
  const bool ok = (v >= 0.0) & (x >= 1e-300) & (v * v + x * x < 650.25);
  const int xc = static_cast<int>(x >= 1e-3) + static_cast<int>(x >= 1.0) + static_cast<int>(x >= 4.0) +
                 static_cast<int>(x >= 10.0);
  return static_cast<int>(ok) * (1 + xc + 5 * (static_cast<int>(v >= 4.5) + static_cast<int>(v >= 12.5)));
}

// (h, l) * f as a double-double, f a double (relative error ~1e-32).
KERNKIT_INLINE void dd_mul(double& h, double& l, double f) {
  const double p = h * f;
  l = mul_err(h, f, p) + l * f;
  h = p;
}

// P = c^n / (v (v-1) ... (v-n+1)) as a double-double ph + pl (n <= NMAX, c = x/2): the
// prefactor (x/2)^v/Gamma(v+1) divided by its mu part, from exact factors (also series_i's).
// NMAX = 0: nmax_rt at run time (the steps past n multiply by 1: exact).
template <int NMAX>
KERNKIT_INLINE void prefactor_dd(double v, double c, double n, double& ph, double& pl, int nmax_rt = 0) {
  const int nmax = (NMAX > 0) ? NMAX : nmax_rt;
  double nh = 1.0, nl = 0.0, dh = 1.0, dl = 0.0;
  KERNKIT_UNROLL
  for (int j = 0; j < nmax; ++j) {
    const bool on = static_cast<double>(j) < n;
    dd_mul(nh, nl, on ? c : 1.0);
    dd_mul(dh, dl, on ? v - static_cast<double>(j) : 1.0);
  }
  ph = nh / dh;  // (nh + nl) / (dh + dl) = ph + pl
  pl = (fms_exact(ph, dh, nh) + (nl - ph * dl)) / dh;
}

// Term count of x class xc (0..4). LOWP (the float functions): a truncation below 1e-10.
template <bool LOWP>
constexpr int series_class_terms(int xc) {  // full 4, 10, 16, 26, 42; LOWP 2, 8, 12, 20, 32 (a
  // select chain, not an array: the CUDA build indexes it at run time, series_fast_compact)
  return LOWP ? ((xc == 0) ? 2 : (xc == 1) ? 8 : (xc == 2) ? 12 : (xc == 3) ? 20 : 32)
              : ((xc == 0) ? 4 : (xc == 1) ? 10 : (xc == 2) ? 16 : (xc == 3) ? 26 : 42);
}

// Whether a sum of nt terms is the float functions' below x = 4 (LOWP x classes 0-2), whose S is
// summed in float (series_sum<float>): there the terms that matter are the first few, so the term
// recurrence's rounding stays at a few float ulp. (The counts tell the float functions apart.)
constexpr bool series_sum_in_float(int nt) {
  return nt == series_class_terms<true>(0) || nt == series_class_terms<true>(1) || nt == series_class_terms<true>(2);
}
static_assert(!series_sum_in_float(series_class_terms<false>(0)) && !series_sum_in_float(series_class_terms<false>(1)) &&
                  !series_sum_in_float(series_class_terms<false>(2)) && !series_sum_in_float(series_class_terms<false>(3)) &&
                  !series_sum_in_float(series_class_terms<false>(4)),
              "the float64 functions' term counts must differ from the float ones' below x = 4");

// S = sum_k q^k / (k! (v+1)_k) with nt terms after the first (q = x^2/4), in arithmetic T: double
// for series_fast, float for the float functions below x = 4 (v, x then float values). Summed with
// TwoSum (the rounding of the running sum cost up to ~4 ulp of S; the terms themselves are
// accurate to ~1 ulp each) and corrected for the rounding dq of q, which would enter S as
// (dq/q) sum k t_k, ~x/2 times itself (for q above the type's threshold; below, sk / S is
// negligible). Terms in pairs with one division: t_k = t_{k-1} d_{k+1} r, t_{k+1} = t_k d_k r,
// where d_k = k (k + v) and r = q / (d_k d_{k+1}). In float within ~3 ulp of S for x < 4.
// Terms are flushed to zero below tcut, and q below qcut drops every term after the first (both
// far below the type's rounding of S >= 1; v >= 0 here): no term then comes out subnormal, which
// on Intel cores costs a microcode assist per vector operation (float32 log I at x ~ 1e-3 ran at
// 30 M/s against ~100 on Zen 4, which handles subnormals in hardware). With q >= qcut and
// d_k <= 450 (k <= 12, v < 25.5; float), a flushed-or-not term times q / d_k stays normal.
template <class T>
KERNKIT_INLINE double series_sum(double vd, double xd, int nt) {
  const T v = static_cast<T>(vd), x = static_cast<T>(xd);
  const T c = T(0.5) * x;
  const T q = c * c;
  constexpr bool f32 = sizeof(T) == sizeof(float);
  const T qcut = f32 ? T(1e-14f) : T(1e-150), tcut = f32 ? T(1e-20f) : T(1e-140);
  const T qe = (q >= qcut) ? q : T(0);
  T t = T(1), s = T(1), se = T(0), sk = T(0);  // S = s + se; sk = sum k t_k = q dS/dq
  KERNKIT_UNROLL
  for (int k = 1; k < nt; k += 2) {
    const T dk = static_cast<T>(k);
    const T d1 = dk * (dk + v), d2 = (dk + T(1)) * ((dk + T(1)) + v);
    const T r = qe / (d1 * d2);
    T t1 = t * (d2 * r);
    t1 = (t1 >= tcut) ? t1 : T(0);
    t = t1 * (d1 * r);
    t = (t >= tcut) ? t : T(0);
    const T s1 = s + t1, b1 = s1 - s;
    const T s2 = s1 + t, b2 = s2 - s1;
    se += ((s - (s1 - b1)) + (t1 - b1)) + ((s1 - (s2 - b2)) + (t - b2));
    s = s2;
    sk += dk * t1 + (dk + T(1)) * t;
  }
  const T qmin = sizeof(T) == sizeof(float) ? T(1e-30f) : T(1e-280);
  const T qs = (q >= qmin) ? q : T(1);
  T dq;  // the rounding of q = c^2
  if constexpr (sizeof(T) == sizeof(float)) {
    dq = fms_exact_f(c, c, qs);
  } else {
    dq = fms_exact(c, c, qs);
  }
  s += se + ((q >= qmin) ? (dq / -qs) * sk : T(0));
  return static_cast<double>(s);
}

// LOGSPACE: kind 0 (x < 1e-3); else kind 1. NT: series terms after the first (even).
// NMAX: the most factors of D (n <= NMAX). scaled = 1: log I - x, 0: log I (a run-time value,
// so that both share one instantiation; used in arithmetic, as in temme_fast).
// NT = 0: NT, LOGSPACE and NMAX are the run-time nt_rt, logspace_rt, nmax_rt (series_fast_compact).
template <int NT, bool LOGSPACE, int NMAX>
KERNKIT_INLINE double series_fast(double v, double x, double scaled, int nt_rt = 0, bool logspace_rt = false,
                                  int nmax_rt = 0) {
  const int nt = (NT > 0) ? NT : nt_rt;
  const bool logspace = (NT > 0) ? LOGSPACE : logspace_rt;
  const int nmax = (NT > 0) ? NMAX : nmax_rt;
  const double c = 0.5 * x;
  const double s = series_sum_in_float(nt) ? series_sum<float>(v, x, nt) : series_sum<double>(v, x, nt);
  const double lc = log_pos(c);
  const double n = static_cast<double>(static_cast<int>(v + 0.5));  // floor (v >= 0); vectorises
  const double mu = v - n;
  const double m2 = mu * mu;
  const double g = 1.0 + (rgamma_even_m1(m2) - mu * rgamma_odd(m2));  // 1/Gamma(1+mu)
  double li;
  if (logspace) {
    double d = 1.0;
    KERNKIT_UNROLL
    for (int j = 0; j < nmax; ++j) d *= (static_cast<double>(j) < n) ? v - static_cast<double>(j) : 1.0;
    li = v * lc + log_pos((g * s) / d);
  } else {
    double ph, pl;
    prefactor_dd<NMAX>(v, c, n, ph, pl, nmax);
    li = log_pos(ph * g * s) + (pl / ph + mu * lc);
  }
  return li - scaled * x;
}

// The most prefactor factors of class c's order class (v < 4.5, 12.5, 25.5).
constexpr int series_class_nmax(int c) { return ((c - 1) / 5 == 0) ? 4 : ((c - 1) / 5 == 1) ? 12 : 25; }
// Whether class c forms the prefactor in log space: x < 1e-3 (kind 0), x < 1 from v = 4.5 on
// (see the top), or everywhere for LOWP (its ~1e-14 absolute error is far below float's).
template <bool LOWP>
constexpr bool series_class_logspace(int c) {
  return LOWP || (c - 1) % 5 == 0 || ((c - 1) % 5 == 1 && (c - 1) / 5 >= 1);
}

template <bool LOWP, int C, class F>
KERNKIT_INLINE auto series_call(F&& f) {
  return f.template operator()<series_class_terms<LOWP>((C - 1) % 5), series_class_logspace<LOWP>(C),
                               series_class_nmax(C)>();
}

// Calls f.template operator()<NT, LOGSPACE, NMAX>() with class c's counts (1..kSeriesFastClasses).
template <bool LOWP, class F>
KERNKIT_INLINE auto series_fast_visit(int c, F&& f) {
  switch (c) {
    case 1: return series_call<LOWP, 1>(f);
    case 2: return series_call<LOWP, 2>(f);
    case 3: return series_call<LOWP, 3>(f);
    case 4: return series_call<LOWP, 4>(f);
    case 5: return series_call<LOWP, 5>(f);
    case 6: return series_call<LOWP, 6>(f);
    case 7: return series_call<LOWP, 7>(f);
    case 8: return series_call<LOWP, 8>(f);
    case 9: return series_call<LOWP, 9>(f);
    case 10: return series_call<LOWP, 10>(f);
    case 11: return series_call<LOWP, 11>(f);
    case 12: return series_call<LOWP, 12>(f);
    case 13: return series_call<LOWP, 13>(f);
    case 14: return series_call<LOWP, 14>(f);
    default: return series_call<LOWP, 15>(f);
  }
}

// Class c's series_fast as one instantiation with run-time counts (the CUDA build: see
// debye_fast_dispatch); the same operations as series_fast_visit's instantiation for c.
template <bool LOWP>
KERNKIT_INLINE double series_fast_compact(int c, double v, double x, double scaled) {
  return series_fast<0, false, 0>(v, x, scaled, series_class_terms<LOWP>((c - 1) % 5),
                                  series_class_logspace<LOWP>(c), series_class_nmax(c));
}

// I_{v+1}/I_v (dlog = 0) or I_v'/I_v = v/x + I_{v+1}/I_v (dlog = 1) in the same domain, from
// series_i's two positive sums: I_{v+1}/I_v = (x/2)/(v+1) S_{v+1}/S_v with
// S_u = sum_k q^k / (k! (u+1)_k), each with NT terms after the first (series_fast's counts,
// enough for S_v; S_{v+1} falls off faster) in pairs with one division, as series_fast. No
// prefactor, and dlog a run-time value (v/x is finite here, so adding 0 (v/x) is exact): one
// instantiation per x class.
// NT = 0: the run-time term count nt_rt (series_ratio_compact).
template <int NT>
KERNKIT_INLINE double series_ratio_fast(double v, double x, double dlog, int nt_rt = 0) {
  const int nt = (NT > 0) ? NT : nt_rt;
  const double c = 0.5 * x;
  const double q = c * c;
  const double w = v + 1.0;
  double ta = 1.0, sa = 1.0, tb = 1.0, sb = 1.0;
  KERNKIT_UNROLL
  for (int k = 1; k < nt; k += 2) {
    const double dk = static_cast<double>(k);
    const double a1 = dk * (dk + v), a2 = (dk + 1.0) * ((dk + 1.0) + v);
    const double b1 = dk * (dk + w), b2 = (dk + 1.0) * ((dk + 1.0) + w);
    const double ra = q / (a1 * a2), rb = q / (b1 * b2);
    const double ta1 = ta * (a2 * ra), tb1 = tb * (b2 * rb);
    ta = ta1 * (a1 * ra);
    tb = tb1 * (b1 * rb);
    sa = (sa + ta1) + ta;
    sb = (sb + tb1) + tb;
  }
  const double r = (c / w) * (sb / sa);
  return (dlog * v) / x + r;
}

// Calls f.template operator()<NT>() with the term count of class c's x class.
template <bool LOWP, class F>
KERNKIT_INLINE auto series_ratio_visit(int c, F&& f) {
  switch ((c - 1) % 5) {
    case 0: return f.template operator()<series_class_terms<LOWP>(0)>();
    case 1: return f.template operator()<series_class_terms<LOWP>(1)>();
    case 2: return f.template operator()<series_class_terms<LOWP>(2)>();
    case 3: return f.template operator()<series_class_terms<LOWP>(3)>();
    default: return f.template operator()<series_class_terms<LOWP>(4)>();
  }
}

struct SeriesRatioScalar {
  double v, x, dlog;
  template <int NT>
  KERNKIT_INLINE double operator()() const { return series_ratio_fast<NT>(v, x, dlog); }
};

struct SeriesFastScalar {
  double v, x, scaled;
  template <int NT, bool LOGSPACE, int NMAX>
  KERNKIT_INLINE double operator()() const { return series_fast<NT, LOGSPACE, NMAX>(v, x, scaled); }
};

// Scalar entries for class c != 0: the per-class instantiations on the CPU, the compact kernels
// in the CUDA build (debye_fast_dispatch says why).
template <bool LOWP>
KERNKIT_INLINE double series_fast_dispatch(int c, double v, double x, double scaled) {
#ifdef __CUDA_ARCH__
  return series_fast_compact<LOWP>(c, v, x, scaled);
#else
  return series_fast_visit<LOWP>(c, SeriesFastScalar{v, x, scaled});
#endif
}
template <bool LOWP>
KERNKIT_INLINE double series_ratio_compact(int c, double v, double x, double dlog) {
  return series_ratio_fast<0>(v, x, dlog, series_class_terms<LOWP>((c - 1) % 5));
}
template <bool LOWP>
KERNKIT_INLINE double series_ratio_dispatch(int c, double v, double x, double dlog) {
#ifdef __CUDA_ARCH__
  return series_ratio_compact<LOWP>(c, v, x, dlog);
#else
  return series_ratio_visit<LOWP>(c, SeriesRatioScalar{v, x, dlog});
#endif
}

}  // namespace bessel_detail
}  // namespace kernkit
