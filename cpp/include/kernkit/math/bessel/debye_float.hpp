// Float-arithmetic Debye kernels for the float32 functions: log I, log I e^-x, log K, log K e^x
// on the Debye classes where float arithmetic meets the float32 target (1e-6 relative, absolute
// below |log f| = 1) with margin, so the float32 functions need not compute these in double; and
// the ratios I_{v+1}/I_v, I_v'/I_v, K_v'/K_v on all of the Debye region within the float range
// (sums of positive terms, no exponent: debye_ratio_fast's formula).
// On GPUs with half-rate FP64 (H100/H200) the double kernels were bound by the FP64 pipe (ncu:
// map2_binned<float, op_log_iv> at 65% of SM throughput); on the CPU float lanes are twice as
// many per vector. Measured: the CPU's float32 grid medians rose 1.3x (bench/results/special.md);
// the H200 was no faster (random log_iv float32 24.7 -> 23.0 G evals/s, the float32 / float64
// rate ratio 2.0 -> 1.8, across two runs; per region mixed, within the runs' noise).
//
// Where: kind F (v <= x) for all four but log K e^x (whose two parts cancel: debye_kve_f carries
// them to 1e-17 in double), and kind G for x <= 0.3 v only; v, x <= 1e19 (v^2 + x^2 stays finite
// in float) and v <= 1e36 x ((v + hyp)/x too). Why float is enough there: every part of the
// result is carried to a few float ulp of its own size and the parts do not cancel by much.
//  * kind F: v eta = x + v f(w) with v f(w) in [-0.48 x, 0], so v eta >= 0.52 x >= 9.4 (hyp >=
//    25.5), against log(2 pi hyp)/2 <= 23: log I loses at most a factor ~1.7, log I e^-x = v f(w)
//    - log(2 pi hyp)/2 + ... and log K = -v eta + ... add terms of one sign;
//  * kind G, z = x/v <= 0.3: v eta = hyp - v log((v + hyp)/x) cancels by at most 3.4 (at z = 0.3;
//    4.9 at the kind's edge 0.45, 5.5 at z = 0.92, which therefore stay double), and the other
//    parts have the sign of v eta for I and of -v eta for K;
//  * log(hyp)/2 (at most 22 here) by log_pos_f, ~1 ulp; the correction sum of the LOWP terms
//    (|p| < 0.005, truncation < 1e-9) by debye_sums in float: its rounding is ~1e-9 absolute.
// The ratios are debye_ratio_fast itself, in float.
// Measured against the double kernels on these classes: see tests/python/test_special.py
// (test_float32_debye_kernels_in_float).
#pragma once
#include <cmath>
#include <cstdint>

#include "../config.hpp"
#include "debye.hpp"
#include "debye_fast.hpp"
#include "fastmath.hpp"

namespace kernkit {
namespace bessel_detail {

// log 2 = kLn2HiF + kLn2LoF, kLn2HiF with its low 8 bits zero: k * kLn2HiF is exact for |k| < 256.
constexpr float kLn2HiF = 0.693145751953125f;
constexpr float kLn2LoF = 1.428606765330187e-06f;

// log(x) for normal 0 < x < inf: log_pos's method in float (x = 2^k m, m in [sqrt(1/2),
// sqrt(2)), f = m - 1, s = f/(2 + f), log m = f - s (f - z r(z)), z = s^2 <= 0.0295, r the
// Taylor series of (2 atanh(s) - 2 s)/(s z) to z^3: truncation 2 z^4/11 < 2e-7 relative in r,
// which enters log m scaled by s z < 0.006).
KERNKIT_INLINE float log_pos_f(float x) {
  const std::uint32_t t = bits_as<std::uint32_t>(x) + 0x004AFB0Du;  // 0x3F800000 - bits(sqrt(1/2)): k in t's exponent
  const float k = static_cast<float>(static_cast<std::int32_t>(t >> 23) - 127);
  const float m = bits_as<float>((t & 0x007FFFFFu) + 0x3F3504F3u);
  const float f = m - 1.0f;
  const float s = f / (2.0f + f);
  const float z = s * s;
  const float r = ((0.22222222f * z + 0.28571429f) * z + 0.4f) * z + 0.66666667f;
  return k * kLn2HiF + ((f - s * (f - z * r)) + k * kLn2LoF);
}

// f(w)/w = g(2 w^2 - 1) for 0 <= w <= 1: debye_f_unit's polynomial to degree 10 (the dropped
// terms sum to < 4e-9 for |u| <= 1: 7.7e-9 relative at most, measured on a fine grid).
KERNKIT_INLINE float debye_g_unit_f(float u) {
  return ((((((((((-1.0382803232787745e-08f * u + 3.9419594892014157e-08f) * u + -1.5344553470381697e-07f) * u +
                 6.16130174370344e-07f) * u + -2.573837752072887e-06f) * u + 1.1329797197450903e-05f) * u +
              -5.363003169058151e-05f) * u + 0.00028281236507371243f) * u + -0.0017835271275547264f) * u +
           0.016125186943178004f) * u + -0.4817401166695341f);
}

constexpr int kDebyeFloatClasses = 12;  // ids 1..12: 1 + hyp class + 6 kind (F 0, G 1; the ratios F)

// The float class of (nu, x) whose Debye class is c (debye_fast_class), 0 where the double kernel
// stays. Branch-free like debye_fast_class (the CPU block loop vectorises it). The ratios have no
// exponent: every kind, as one class per term count.
template <int Q>
KERNKIT_INLINE_ALWAYS int debye_float_class(int c, double nu, double x) {
  const int kind = (c > 6) + (c > 12);  // F, G, E (c = 1 + hyp class + 6 kind)
  const bool range = (nu <= 1e19) & (x <= 1e19) & (nu <= 1e36 * x);
  const int hc = c - 1 - 6 * kind;
  if constexpr (Q >= kRatioI) {
    return static_cast<int>((c != 0) & range) * (1 + hc);
  } else {
    const bool f = (kind == kKindF) & (Q != kLogKs);
    const bool g = (kind == kKindG) & (x <= 0.3 * nu);
    return static_cast<int>((c != 0) & range & (f | g)) * (1 + hc + 6 * static_cast<int>(g));
  }
}

// v >= 0, x > 0 in float class (NT, KIND), hyp = sqrt(v*v + x*x) correctly rounded (in float).
// NT = 0: the term count and kind at run time (the CUDA build's one instantiation).
template <int NT, int KIND, int Q>
KERNKIT_INLINE float debye_float(float v, float x, float hyp, int nt_rt = 0, int kind_rt = 0) {
  const int nt = (NT > 0) ? NT : nt_rt;
  const int kind = (NT > 0) ? KIND : kind_rt;
  const float y = 1.0f / hyp;
  const float t = v * y;
  const float s = t * t;
  float e0, e0s;  // v eta, v eta - x
  if (kind == kKindF) {
    const float w = v / x;
    e0s = v * (w * debye_g_unit_f(2.0f * (w * w) - 1.0f));
    e0 = x + e0s;
  } else {
    e0 = hyp - v * log_pos_f((v + hyp) / x);
    e0s = e0 - x;
  }
  const float hl = 0.5f * log_pos_f(hyp);
  constexpr bool WI = Q == kLogI || Q == kLogIs;
  float pu, pk, qu, qk;
  debye_sums<WI, !WI, false>(nt, s, y, pu, pk, qu, qk);
  const float p = WI ? pu : pk;
  const float l1 = p * (1.0f + p * (-0.5f + p * 0.33333333f));  // log1p(p), |p| < 0.005: < 2e-10
  if (WI) {
    const float c = (l1 - static_cast<float>(kHalfLog2Pi)) - hl;
    return (Q == kLogI) ? e0 + c : e0s + c;
  }
  const float c = (l1 + static_cast<float>(kHalfLogPiOver2)) - hl;
  return (Q == kLogK) ? c - e0 : c - e0s;
}

// Q's float kernel: the logs by term count and kind, the ratios by term count (KIND unused).
template <int NT, int KIND, int Q>
KERNKIT_INLINE float debye_float_kernel(float v, float x, float hyp, int nt_rt = 0, int kind_rt = 0) {
  if constexpr (Q >= kRatioI) {
    return debye_ratio_fast<NT, Q>(v, x, hyp, nt_rt);  // (in float)
  } else {
    return debye_float<NT, KIND, Q>(v, x, hyp, nt_rt, kind_rt);
  }
}

// Calls f.template operator()<NT, KIND>() for float class c (1..kDebyeFloatClasses).
template <class F>
KERNKIT_INLINE auto debye_float_visit(int c, F&& f) {
  switch (c) {
    case 1: return f.template operator()<debye_class_terms<true>(0), kKindF>();
    case 2: return f.template operator()<debye_class_terms<true>(1), kKindF>();
    case 3: return f.template operator()<debye_class_terms<true>(2), kKindF>();
    case 4: return f.template operator()<debye_class_terms<true>(3), kKindF>();
    case 5: return f.template operator()<debye_class_terms<true>(4), kKindF>();
    case 6: return f.template operator()<debye_class_terms<true>(5), kKindF>();
    case 7: return f.template operator()<debye_class_terms<true>(0), kKindG>();
    case 8: return f.template operator()<debye_class_terms<true>(1), kKindG>();
    case 9: return f.template operator()<debye_class_terms<true>(2), kKindG>();
    case 10: return f.template operator()<debye_class_terms<true>(3), kKindG>();
    case 11: return f.template operator()<debye_class_terms<true>(4), kKindG>();
    default: return f.template operator()<debye_class_terms<true>(5), kKindG>();
  }
}

template <int Q>
struct DebyeFloatScalar {
  float v, x, hyp;
  template <int NT, int KIND>
  KERNKIT_INLINE float operator()() const { return debye_float_kernel<NT, KIND, Q>(v, x, hyp); }
};

// Float class c's kernel with the term count and kind at run time (the same operations as
// debye_float_visit's instantiation for c).
template <int Q>
KERNKIT_INLINE float debye_float_compact(int c, float v, float x, float hyp) {
  return debye_float_kernel<0, 0, Q>(v, x, hyp, debye_class_terms<true>((c - 1) % 6), (c - 1) / 6);
}

// Scalar entry for float class c != 0; v and x are float values (the float32 functions' inputs).
template <int Q>
KERNKIT_INLINE double debye_float_dispatch(int c, double v, double x) {
  const float fv = static_cast<float>(v), fx = static_cast<float>(x);
  const float hyp = std::sqrt(fv * fv + fx * fx);
#ifdef __CUDA_ARCH__
  return debye_float_compact<Q>(c, fv, fx, hyp);
#else
  return debye_float_visit(c, DebyeFloatScalar<Q>{fv, fx, hyp});
#endif
}

}  // namespace bessel_detail
}  // namespace kernkit
