// Float-arithmetic log K_v(x), log K_v(x) + x and K_v'(x)/K_v(x) for the float32 functions on
// temme_fast's quadrature classes (x > 1 in the box below Debye): the same method -- trapezoid
// sums for K_mu e^x and K_{mu+1}/K_mu, then the compensated forward recurrence up to v -- with
// the LOWP node counts, in float. The double kernel cost as much per element in float32 as in
// float64 (its exponentials are the work: two per node), the slowest box class of the CPU grid.
// Why float is enough (target: 1e-6 relative, absolute below |log K| = 1):
//  * every trapezoid term is positive; a term e^-E carries the rounding of its exponent, ~5 ulp
//    of E, so the sums' relative error is ~5 ulp times the terms' weighted mean E (<~ 1, the
//    terms that matter have E <~ 1) plus the exponentials' and the additions' own ~2 ulp;
//  * the recurrence adds positive terms and carries each step's rounding in a compensating
//    sum, as the double kernel does (uncompensated, 25 float steps could lose ~25 ulp);
//  * log(K e^x) and log K: log_pos_f, ~1 ulp of the log's size.
// Measured against the double kernels on these classes: tests/python/test_special.py
// (test_float32_temme_quadrature_in_float).
#pragma once
#include <cmath>
#include <cstdint>

#include "../config.hpp"
#include "debye_float.hpp"
#include "fastmath.hpp"
#include "temme_fast.hpp"

namespace kernkit {
namespace bessel_detail {

// e^x for -87 <= x <= 88 (here [-52, 3]): x = k log 2 + r, |r| <= log(2)/2, k by the 1.5 * 2^23
// rounding trick, e^r by its Taylor polynomial of degree 7 (truncation 5e-9 relative).
KERNKIT_INLINE float exp_f(float x) {
  constexpr float kShift = 12582912.0f;  // 1.5 * 2^23: t's low mantissa bits hold k
  const float t = x * 1.44269504f + kShift;
  const float k = t - kShift;
  const float r = (x - k * kLn2HiF) - k * kLn2LoF;
  const float q = ((((1.98412698e-4f * r + 1.38888889e-3f) * r + 8.33333333e-3f) * r + 4.16666667e-2f) * r +
                   1.66666667e-1f) * r + 0.5f;
  const float er = 1.0f + (r + (r * r) * q);
  const float scale = bits_as<float>((bits_as<std::uint32_t>(t) - 0x4B400000u + 127u) << 23);  // 2^k
  return er * scale;
}

// sinh(u)/u for s = u^2 <= 5.3 (|u| <= 2.3): Taylor series to u^18 (first omitted term < 3e-11).
KERNKIT_INLINE float sinhc_f(float s) {
  return 1.0f + s * (0.16666667f + s * (8.3333333e-3f + s * (1.9841270e-4f + s * (2.7557319e-6f +
         s * (2.5052108e-8f + s * (1.6059044e-10f + s * (7.6471637e-13f + s * (2.8114573e-15f + s * 8.2206352e-18f))))))));
}

// Whether temme_fast class c (1..kTemmeFastClasses) is a quadrature class (x > 1).
KERNKIT_INLINE constexpr bool temme_class_quad(int c) { return (c - 1) % 6 >= 2; }

// temme_fast for a quadrature class in float (NQ nodes, at most NREC recurrence steps; 0: the
// run-time nq_rt, nrec_rt, as temme_fast_compact). v, x: float values; scaled, dlog as there.
template <int NQ, int NREC>
KERNKIT_INLINE float temme_float(float v, float x, float scaled, float dlog, int nq_rt = 0, int nrec_rt = 0) {
  const int nq = (NREC > 0) ? NQ : nq_rt;
  const int nrec = (NREC > 0) ? NREC : nrec_rt;
  const float w = v - 0.5f;
  const float fl = static_cast<float>(static_cast<int>(w));
  const float above = static_cast<float>(v > 0.5f);
  const float n = above * (fl + static_cast<float>(w > fl));
  const float mu = (2.0f * above - 1.0f) * v - n;  // exact
  // the step h = acosh(1 + 47/x)/(N - 1) (any h near it is as good), sqrt by log and exp
  const float y = 1.0f + 47.0f / x;
  const float h = log_pos_f(y + exp_f(0.5f * log_pos_f((y - 1.0f) * (y + 1.0f)))) * (1.0f / static_cast<float>(nq - 1));
  float s0 = 0.0f, s1 = 0.0f;
  KERNKIT_UNROLL
  for (int j = 0; j < nq; ++j) {  // quad_node and temme_quad_sums in float
    const float t = static_cast<float>(j) * h;
    const float sh = (0.5f * t) * sinhc_f(0.25f * (t * t));
    const float c1 = 2.0f * (sh * sh);  // cosh t - 1
    const float xc = -x * c1;
    const float mt = mu * t;
    const float f0 = exp_f(xc + mt) + exp_f(xc - mt);
    const float f1 = c1 * f0;
    s0 = (j == 0) ? 0.5f * f0 : s0 + f0;
    s1 = (j == 0) ? 0.5f * f1 : s1 + f1;
  }
  const float k0 = 0.5f * h * s0;  // K_mu e^x
  const float g = 0.5f * x * ((1.0f + mu / x) + s1 / s0);  // K_{mu+1}/K_mu * x/2 (quad_ratio)
  // K_{mu+j}/K_mu: krec_step's compensated recurrence in float (steps j >= n leave the state)
  const float ix = 1.0f / x;
  float kp = 1.0f, kc = (2.0f * g) * ix;
  float kpl = 0.0f, kcl = (n == 0.0f) ? 0.0f : fms_exact_f(kc, x, 2.0f * g) * ix;
  kc = (n == 0.0f) ? 1.0f : kc;
  KERNKIT_UNROLL
  for (int j = 1; j < nrec; ++j) {
    const bool on = static_cast<float>(j) < n;
    const float aj = 2.0f * (mu + static_cast<float>(j));
    const float a = aj * ix, al = fms_exact_f(a, x, aj) * ix;
    const float p = a * kc, pe = mul_err_f(a, kc, p);
    const float kn = kp + p;
    const float bp = kn - kp;
    const float err = ((kp - (kn - bp)) + (p - bp)) + pe;
    const float knl = kpl + ((a * kcl + al * kc) + err);
    kp = on ? kc : kp;
    kpl = on ? kcl : kpl;
    kc = on ? kn : kc;
    kcl = on ? knl : kcl;
  }
  const float sk = (n == 0.0f) ? (2.0f * g) / x : (kp + kpl) / (kc + kcl);
  const float kv = k0 * kc + k0 * kcl;  // K_v e^x
  const float lk = log_pos_f(kv * exp_f((scaled - 1.0f) * x));
  return lk * (1.0f - dlog) + (-(v / x + sk)) * dlog;
}

// Calls f.template operator()<NQ, NREC>() with quadrature class c's LOWP counts.
template <class F>
KERNKIT_INLINE auto temme_float_visit(int c, F&& f) {
  switch (c) {  // x kinds 2-5 (nodes 12, 12, 10, 10) by recurrence kind 0-2 (steps 1, 5, 25)
    case 3: return f.template operator()<quad_nodes<true>(0), 1>();
    case 4: return f.template operator()<quad_nodes<true>(1), 1>();
    case 5: return f.template operator()<quad_nodes<true>(2), 1>();
    case 6: return f.template operator()<quad_nodes<true>(3), 1>();
    case 9: return f.template operator()<quad_nodes<true>(0), 5>();
    case 10: return f.template operator()<quad_nodes<true>(1), 5>();
    case 11: return f.template operator()<quad_nodes<true>(2), 5>();
    case 12: return f.template operator()<quad_nodes<true>(3), 5>();
    case 15: return f.template operator()<quad_nodes<true>(0), 25>();
    case 16: return f.template operator()<quad_nodes<true>(1), 25>();
    case 17: return f.template operator()<quad_nodes<true>(2), 25>();
    default: return f.template operator()<quad_nodes<true>(3), 25>();
  }
}

struct TemmeFloatScalar {
  float v, x, scaled, dlog;
  template <int NQ, int NREC>
  KERNKIT_INLINE float operator()() const { return temme_float<NQ, NREC>(v, x, scaled, dlog); }
};

// Scalar entry for quadrature class c (temme_class_quad(c)); v, x are float values. The CUDA
// build: one instantiation with run-time counts (as temme_fast_compact).
KERNKIT_INLINE double temme_float_dispatch(int c, double v, double x, double scaled, double dlog) {
  const float fv = static_cast<float>(v), fx = static_cast<float>(x);
  const float sc = static_cast<float>(scaled), dl = static_cast<float>(dlog);
#ifdef __CUDA_ARCH__
  return temme_float<0, 0>(fv, fx, sc, dl, temme_class_nq<true>(c), temme_class_nrec(c));
#else
  return temme_float_visit(c, TemmeFloatScalar{fv, fx, sc, dl});
#endif
}

}  // namespace bessel_detail
}  // namespace kernkit
