// Branch-free Debye evaluation of log I_v(x), log I_v(x) - x, log K_v(x), log K_v(x) + x (and
// the ratios I_{v+1}/I_v, I_v'/I_v, K_v'/K_v) for the bulk of the (v, x) plane: v >= 0,
// hyp = sqrt(v^2 + x^2) >= 25.5, 1e-100 <= x, v <= 1e150.
// The same expansion as debye() in log_bessel.hpp, but
//  * the term count is fixed per class of hyp (a few more terms than the minimum; the extra ones
//    are below 1e-17 relative) and the form of the exponent is fixed per kind, so one
//    instantiation has no data-dependent control flow;
//  * the only transcendental is bessel/fastmath.hpp's log; hyp = sqrt(v^2 + x^2) is an argument
//    (std::sqrt sets errno, which keeps GCC from vectorising a loop that calls it; the CPU block
//    loop computes it with the ISA's sqrt instruction, the scalar path with std::sqrt, both
//    correctly rounded);
// so the CPU loop (cpp/src/bessel_blocks.hpp) runs it over a block with #pragma omp simd, and the
// scalar log_iv/log_kv call the very same function for these inputs: results are bitwise
// identical whichever path an element takes (no FMA here; the build has -ffp-contract=off).
//
// Exponent, with w = v/x:
//   kind F (v <= x):      v eta - x = v f(w),  f(w) = w/(1 + sqrt(1+w^2)) - asinh(w), by a
//                         polynomial fit (the two terms of f cancel by ~2, so not term by term);
//   kind G (x < v, outside E): v eta = hyp - v log((v + hyp)/x);
//   kind E (0.45 v < x < 0.92 v, near eta's zero z0): eta = (z - z0) g(z) (bessel/eta.hpp) with
//                         z - z0 from the exact residual of z = x/v.
#pragma once
#include <cmath>

#include "../config.hpp"
#include "debye.hpp"
#include "eta.hpp"
#include "fastmath.hpp"
#include "logspace.hpp"

namespace kernkit {
namespace bessel_detail {

// f(w) = w/(1+sqrt(1+w^2)) - asinh(w) for w < 0.2: odd Taylor series with the exact rational
// coefficients (12 terms, truncation < 1e-20 relative). Used by debye() in log_bessel.hpp.
KERNKIT_INLINE double debye_f_taylor(double w) {
  const double w2 = w * w;
  return w * ((((((((((((0.00030468857806661856) * w2 + -0.000381378900437128) * w2 + 0.00048808047645970394) * w2 + -0.0006417667164522059) * w2 + 0.000872802734375) * w2 + -0.001239483173076923) * w2 + 0.001864346590909091) * w2 + -0.0030381944444444445) * w2 + 0.005580357142857143) * w2 + -0.0125) * w2 + 0.041666666666666664) * w2 + -0.5);
}

// The same f for 0 <= w <= 1 as w g(w^2): g is analytic on [0, 1] in s = w^2 (singular at
// s = -1), degree-18 Chebyshev fit in u = 2 s - 1 (mpmath.chebyfit at 50 digits, scratch script;
// truncation 1e-18, max relative error in double 8.7e-17). No cancellation: g in [-0.5, -0.46].
KERNKIT_INLINE double debye_f_unit(double w) {
  const double u = 2.0 * (w * w) - 1.0;
  return w * (((((((((((((((((((-6.295144964739969e-13) * u + 2.146828472301283e-12) * u + -4.383192017737389e-12) * u + 1.5328527015198313e-11) * u + -6.011916940252254e-11) * u + 2.137730055121999e-10) * u + -7.632227156405048e-10) * u + 2.7903092204156027e-09) * u + -1.0382803232787745e-08) * u + 3.9419594892014157e-08) * u + -1.5344553470381697e-07) * u + 6.16130174370344e-07) * u + -2.573837752072887e-06) * u + 1.1329797197450903e-05) * u + -5.363003169058151e-05) * u + 0.00028281236507371243) * u + -0.0017835271275547264) * u + 0.016125186943178004) * u + -0.4817401166695341);
}

// k(s) = (f(w)/w + 1/2)/s, s = w^2 in [0, 1] (k(0) = 1/24): f(w) = w (-1/2 + s k(s)) with the
// leading -w/2 split off exactly, for log K + x below. Degree-19 Chebyshev fit in u = 2 s - 1
// (mpmath.chebyfit at 50 digits, scratch script; truncation 1.3e-19, in double 2e-16 relative).
KERNKIT_INLINE double debye_k_unit(double s) {
  const double u = 2.0 * s - 1.0;
  return (((((((((((((((((((-1.6100738396939621e-13) * u + 5.41171894873518e-13) * u + -1.0240414408120731e-12) * u + 3.5141229581800526e-12) * u + -1.3861431211855279e-11) * u + 4.812068566619189e-11) * u + -1.6658940929611265e-10) * u + 5.902016316430987e-10) * u + -2.117832626827422e-09) * u + 7.701003501195058e-09) * u + -2.8466124652927034e-08) * u + 1.0730431373997025e-07) * u + -4.1419550196066525e-07) * u + 1.646456081083526e-06) * u + -6.794131568947245e-06) * u + 2.945372593513176e-05) * u + -0.00013671378931738354) * u + 0.0007023385194664347) * u + -0.004269392774575861) * u + 0.03651976666093184;
}

// log(1+p) for the Debye correction sums, |p| < 0.006 when hyp >= 25.5 (max |P_1|/hyp =
// 0.125/hyp dominates): 9 Taylor terms leave < 1e-21. Used by debye() in log_bessel.hpp.
KERNKIT_INLINE double log1p_tiny(double p) {
  return p * (1.0 + p * (-0.5 + p * (1.0 / 3.0 + p * (-0.25 + p * (0.2 + p * (-1.0 / 6.0 + p *
         (1.0 / 7.0 + p * (-0.125 + p * (1.0 / 9.0)))))))));
}

// The same series with L terms; L is chosen per hyp class so that |p|^(L+1)/(L+1) < 4e-19 with
// |p| <= 0.13/hyp: 7 terms from hyp 25.5, 6 from 64.5, 5 from 115, 4 from 650, 3 from 13300
// (with the float term counts of debye_fast_visit: 4 below hyp 64.5, then 3; < 5e-12).
template <int K, int L>
KERNKIT_INLINE double log1p_horner(double p) {  // sum_{k=K..L} (-1)^(k+1) p^(k-K) / k
  constexpr double c = ((K & 1) ? 1.0 : -1.0) / K;
  if constexpr (K == L) {
    return c;
  } else {
    return c + p * log1p_horner<K + 1, L>(p);
  }
}
template <int L>
KERNKIT_INLINE double log1p_series(double p) {
  return p * log1p_horner<1, L>(p);
}
constexpr int debye_log1p_terms(int nt) {
  return (nt >= 14) ? 7 : (nt >= 10) ? 6 : (nt >= 8) ? 5 : (nt >= 5) ? 4 : 3;
}
// log1p_series with debye_log1p_terms(nt) terms: fixed by NT > 0, else by the run-time nt.
template <int NT>
KERNKIT_INLINE double debye_log1p(int nt, double p) {
  if constexpr (NT > 0) {
    return log1p_series<debye_log1p_terms(NT)>(p);
  } else {
    switch (debye_log1p_terms(nt)) {
      case 7: return log1p_series<7>(p);
      case 6: return log1p_series<6>(p);
      case 5: return log1p_series<5>(p);
      case 4: return log1p_series<4>(p);
      default: return log1p_series<3>(p);
    }
  }
}

// The quantities of the branch-free Debye kernels: log I, log I e^-x, log K, log K e^x
// (debye_fast) and I_{v+1}/I_v, I_v'/I_v, K_v'/K_v (debye_ratio_fast).
enum DebyeQ : int { kLogI = 0, kLogIs = 1, kLogK = 2, kLogKs = 3, kRatioI = 4, kDlogI = 5, kDlogK = 6 };
// K's quantities (any order via K_{-v} = K_v; Temme's classes in the box), the others are I's.
constexpr bool is_k_quantity(int q) { return q == kLogK || q == kLogKs || q == kDlogK; }
enum DebyeKind : int { kKindF = 0, kKindG = 1, kKindE = 2 };

constexpr int kDebyeFastClasses = 18;  // class ids 1..18; 0 = not handled here

// Class of (nu, x), nu = |order|: 0 outside the fast domain (also NaN, inf, x <= 0), else
// 1 + (hyp class 0..5) + 6 kind. Hyp classes by hyp^2 with term counts 18, 14, 10, 8, 5, 3
// (minimum needed: 18 at hyp 25.5, 14 at 34.8, 10 at 64.5, 8 at 115, 5 at 650, 3 at 13300).
// Branch-free (bools combined arithmetically), so the block loop vectorises it too.
KERNKIT_INLINE_ALWAYS int debye_fast_class(double nu, double x) {
  const double h2 = nu * nu + x * x;
  const bool ok = (x >= 1e-100) & (x <= 1e150) & (nu >= 0.0) & (nu <= 1e150) & (h2 >= 650.25);
  const int hc = static_cast<int>(h2 >= 34.8 * 34.8) + static_cast<int>(h2 >= 64.5 * 64.5) +
                 static_cast<int>(h2 >= 115.0 * 115.0) + static_cast<int>(h2 >= 650.0 * 650.0) +
                 static_cast<int>(h2 >= 13300.0 * 13300.0);
  const int xge = static_cast<int>(nu <= x);
  const int band = static_cast<int>((x < nu) & (x > kEtaZLo * nu) & (x < kEtaZHi * nu));
  const int kind = (1 - xge) * (kKindG + band);  // F, G or E
  // arithmetic, not ?:, on purpose: GCC would sink the operands of ?: into branches, which it
  // may not if-convert (FP compares can trap), and the block loop would not vectorise
  return static_cast<int>(ok) * (1 + hc + 6 * kind);
}

// log K_v(x) + x for kind F (v <= x). It can be O(1) while its two parts, log(pi/(2 hyp))/2 and
// -v f(w) ~ v^2/(2x), are ~10 and cancel: each part is carried to ~1e-17 absolute. v^2/x as a
// double-double, v f(w) = -(v^2/x)/2 + (v^2/x) s k(s); log(hyp) in three parts (fastmath.hpp);
// the two large pieces then cancel exactly (Sterbenz) and the small ones are added after.
KERNKIT_INLINE double debye_kve_f(double v, double x, double hyp, double log1p_pk) {
  double vv, vve, p, pe;
  two_prod(v, v, vv, vve);
  const double q = vv / x;
  two_prod(q, x, p, pe);
  const double ql = (((vv - p) - pe) + vve) / x;  // v^2/x = q + ql; vv - p exact (p ~ vv)
  const double w = v / x;
  const double s = w * w;
  const double t2 = (q * s) * debye_k_unit(s);
  double la, lb, lc;
  log_pos_parts(hyp, la, lb, lc);
  const double b1 = kHalfLogPiOver2 - 0.5 * la;  // 0.5 la is exact
  const double bb = b1 - kHalfLogPiOver2;         // TwoSum error of b1
  const double e1 = (kHalfLogPiOver2 - (b1 - bb)) + (-0.5 * la - bb);
  const double big = b1 + 0.5 * q;
  return big + (((e1 - 0.5 * lb) + (0.5 * ql - 0.5 * lc)) + (log1p_pk - t2));
}

// v >= 0, x > 0 in the class's domain, hyp = sqrt(v*v + x*x) correctly rounded.
// NT = 0: the term count and kind are the run-time nt_rt and kind_rt instead (the CUDA build's
// one instantiation for every class: debye_fast_compact).
template <int NT, int KIND, int Q>
KERNKIT_INLINE double debye_fast(double v, double x, double hyp, int nt_rt = 0, int kind_rt = 0) {
  const int nt = (NT > 0) ? NT : nt_rt;
  const int kind = (NT > 0) ? KIND : kind_rt;
  const double y = 1.0 / hyp;
  const double t = v * y;
  const double s = t * t;  // t^2 = v^2/hyp^2
  double e0, e0s;          // v eta, v eta - x
  if (kind == kKindF) {
    e0s = v * debye_f_unit(v / x);
    e0 = x + e0s;
  } else if (kind == kKindE) {
    const double z = x / v;
    double p, pe;
    two_prod(z, v, p, pe);
    const double zlo = ((x - p) - pe) / v;  // x - p is exact (p ~ x)
    const double h = (z - kEtaZ0Hi) + (zlo - kEtaZ0Lo);
    e0 = v * (h * eta_g((z - 0.685) / 0.235));
    e0s = e0 - x;
  } else {  // x < v: asinh(v/x) = log((v + hyp)/x), |eta| > 0.4 so no cancellation
    e0 = hyp - v * log_pos((v + hyp) / x);
    e0s = e0 - x;
  }
  const double hl = 0.5 * log_pos(hyp);
  constexpr bool WI = Q == kLogI || Q == kLogIs;
  double pu, pk, qu, qk;
  debye_sums<WI, !WI, false>(nt, s, y, pu, pk, qu, qk);
  if (WI) {
    const double c = debye_log1p<NT>(nt, pu) - kHalfLog2Pi - hl;
    return (Q == kLogI) ? e0 + c : e0s + c;
  }
  if (kind == kKindF && Q == kLogKs) return debye_kve_f(v, x, hyp, debye_log1p<NT>(nt, pk));
  const double c = debye_log1p<NT>(nt, pk) + kHalfLogPiOver2 - hl;
  return (Q == kLogK) ? c - e0 : c - e0s;
}

// The ratios for v >= 0 in the same classes (the kind does not matter: no exponent, no log).
// With y = 1/hyp and s = (v y)^2, as in debye() of log_bessel.hpp,
//   I_{v+1}/I_v = x/(hyp + v) + x y W/U,   K_{v-1}/K_v = x/(hyp + v) + x y Wbar/Ubar,
// where W/U ~ -1/(2 hyp) is a small correction, so I_v'/I_v = v/x + I_{v+1}/I_v and
// K_v'/K_v = -(v/x + K_{v-1}/K_v) are sums of positive terms (no cancellation for x << v).
// NT = 0: the run-time term count nt_rt, as debye_fast. T: double, or float for the float32
// functions' float kernels (bessel/debye_float.hpp; sums of positive terms: a few float ulp).
template <int NT, int Q, class T>
KERNKIT_INLINE T debye_ratio_fast(T v, T x, T hyp, int nt_rt = 0) {
  static_assert(Q == kRatioI || Q == kDlogI || Q == kDlogK, "debye_ratio_fast: a ratio quantity");
  const T y = T(1) / hyp;
  const T t = v * y;
  constexpr bool WI = Q != kDlogK;
  T pu, pk, qu, qk;
  debye_sums<WI, !WI, true>((NT > 0) ? NT : nt_rt, t * t, y, pu, pk, qu, qk);
  const T r = x / (hyp + v) + (x * y) * (WI ? qu / (T(1) + pu) : qk / (T(1) + pk));
  if (Q == kRatioI) return r;
  return (Q == kDlogI) ? v / x + r : -(v / x + r);
}

// Term count of hyp class hc (0..5). LOWP (the float functions): a truncation error < 1e-9
// instead of 2e-17 (6 terms from hyp 20.9, 5 from 28.8, 4 from 46.9, 3 from 102.9, 2 from 418,
// 1 from 8385: same hyp classes).
template <bool LOWP>
constexpr int debye_class_terms(int hc) {  // full: 18, 14, 10, 8, 5, 3 (a select chain, not an
  // array: the CUDA build indexes it at run time, debye_fast_compact)
  return LOWP ? 6 - hc : (hc == 0) ? 18 : (hc == 1) ? 14 : (hc == 2) ? 10 : (hc == 3) ? 8 : (hc == 4) ? 5 : 3;
}

// Calls f.template operator()<NT, KIND>() for class c (1..kDebyeFastClasses): the one map from
// class id to instantiation, shared by the scalar path and the CPU block loop.
template <bool LOWP, class F>
KERNKIT_INLINE auto debye_fast_visit(int c, F&& f) {
  constexpr int n0 = debye_class_terms<LOWP>(0), n1 = debye_class_terms<LOWP>(1), n2 = debye_class_terms<LOWP>(2);
  constexpr int n3 = debye_class_terms<LOWP>(3), n4 = debye_class_terms<LOWP>(4), n5 = debye_class_terms<LOWP>(5);
  switch (c) {
    case 1: return f.template operator()<n0, kKindF>();
    case 2: return f.template operator()<n1, kKindF>();
    case 3: return f.template operator()<n2, kKindF>();
    case 4: return f.template operator()<n3, kKindF>();
    case 5: return f.template operator()<n4, kKindF>();
    case 6: return f.template operator()<n5, kKindF>();
    case 7: return f.template operator()<n0, kKindG>();
    case 8: return f.template operator()<n1, kKindG>();
    case 9: return f.template operator()<n2, kKindG>();
    case 10: return f.template operator()<n3, kKindG>();
    case 11: return f.template operator()<n4, kKindG>();
    case 12: return f.template operator()<n5, kKindG>();
    case 13: return f.template operator()<n0, kKindE>();
    case 14: return f.template operator()<n1, kKindE>();
    case 15: return f.template operator()<n2, kKindE>();
    case 16: return f.template operator()<n3, kKindE>();
    case 17: return f.template operator()<n4, kKindE>();
    default: return f.template operator()<n5, kKindE>();
  }
}

// Q's kernel for one class: the logs by term count and kind, the ratios by term count (KIND unused).
// NT = 0: nt_rt and kind_rt at run time.
template <int NT, int KIND, int Q>
KERNKIT_INLINE double debye_kernel(double v, double x, double hyp, int nt_rt = 0, int kind_rt = 0) {
  if constexpr (Q >= kRatioI) {
    return debye_ratio_fast<NT, Q>(v, x, hyp, nt_rt);
  } else {
    return debye_fast<NT, KIND, Q>(v, x, hyp, nt_rt, kind_rt);
  }
}

template <int Q>
struct DebyeFastScalar {
  double v, x, hyp;
  template <int NT, int KIND>
  KERNKIT_INLINE double operator()() const { return debye_kernel<NT, KIND, Q>(v, x, hyp); }
};

// Calls f.template operator()<NT, kKindF>() with class c's term count: for the ratios, which do
// not depend on the kind (one instantiation per hyp class, c = 1 + hyp class + 6 kind).
template <bool LOWP, class F>
KERNKIT_INLINE auto debye_ratio_visit(int c, F&& f) {
  switch ((c - 1) % 6) {
    case 0: return f.template operator()<debye_class_terms<LOWP>(0), kKindF>();
    case 1: return f.template operator()<debye_class_terms<LOWP>(1), kKindF>();
    case 2: return f.template operator()<debye_class_terms<LOWP>(2), kKindF>();
    case 3: return f.template operator()<debye_class_terms<LOWP>(3), kKindF>();
    case 4: return f.template operator()<debye_class_terms<LOWP>(4), kKindF>();
    default: return f.template operator()<debye_class_terms<LOWP>(5), kKindF>();
  }
}

// Q's class visit: by term count and kind for the logs, by term count for the ratios.
template <int Q, bool LOWP, class F>
KERNKIT_INLINE auto debye_visit(int c, F&& f) {
  if constexpr (Q >= kRatioI) {
    return debye_ratio_visit<LOWP>(c, f);
  } else {
    return debye_fast_visit<LOWP>(c, f);
  }
}

// Class c's kernel as one instantiation with the term count and kind as run-time values: the same
// operations as debye_visit's instantiation for c (so the same bits where nothing is contracted).
template <int Q, bool LOWP>
KERNKIT_INLINE double debye_fast_compact(int c, double v, double x, double hyp) {
  return debye_kernel<0, 0, Q>(v, x, hyp, debye_class_terms<LOWP>((c - 1) % 6), (c - 1) / 6);
}

// Scalar entry for class c != 0 (Q: a log quantity, or a ratio). The CUDA build takes the compact
// kernel: with one instantiation per class (here and in the box's series and Temme classes) the
// CUDA kernels were 24-53k instructions, and random inputs ran 9x slower than the same inputs
// sorted by v on an H200 (warps of many classes on one SM: the code they run exceeds the
// instruction cache); compact, log_iv float32 went from 2.8 to 24.7 G evals/s there. Inputs of a
// few Debye classes pay 20-35% for the run-time counts; keeping the six classes from hyp = 650
// per class won that back but cost random inputs 1.8x (H200, bench/gpu/bench_special_gpu.py).
template <int Q, bool LOWP>
KERNKIT_INLINE double debye_fast_dispatch(int c, double v, double x) {
  const double hyp = std::sqrt(v * v + x * x);
#ifdef __CUDA_ARCH__
  return debye_fast_compact<Q, LOWP>(c, v, x, hyp);
#else
  return debye_visit<Q, LOWP>(c, DebyeFastScalar<Q>{v, x, hyp});
#endif
}

}  // namespace bessel_detail
}  // namespace kernkit
