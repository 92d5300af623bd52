// Branch-free log K_v(x), log K_v(x) + x and K_v'(x)/K_v(x) below the Debye region (v >= 0,
// v^2 + x^2 < 25.5^2) for x >= 1e-3: the method of k_temme (bessel/temme.hpp) -- Temme's series
// (x <= 1) or the trapezoid rule (x > 1) for K_mu and K_{mu+1}, |mu| <= 1/2, then the compensated
// forward recurrence up to v -- with the term or node count fixed per class of x, the recurrence
// run to a fixed length with the steps past v masked off, and fastmath.hpp's log, exp, sinh(u)/u
// and sin(y)/y in place of libm calls. No data-dependent control flow, so the CPU block loop
// (cpp/src/bessel_blocks.hpp) runs it with #pragma omp simd, and the scalar log_kv / dlog_kv
// call the very same function for these inputs (same bits on either path).
// Series terms: Temme's sums fall off like (x^2/4)^k / k!^2; 6 terms leave < 1e-17 below
// x = 0.1, 11 up to x = 1. Quadrature nodes: 20, 18, 16 and 14 from x = 1, 1.7, 3 and 8 (quad_nodes).
#pragma once
#include <cmath>

#include "../config.hpp"
#include "fastmath.hpp"
#include "logspace.hpp"
#include "temme.hpp"

namespace kernkit {
namespace bessel_detail {

constexpr int kTemmeFastClasses = 18;  // class ids 1..18; 0 = not handled here

// Class of (nu, x): 0 outside the domain above (also NaN), else 1 + (x kind: 0 series, x < 0.1;
// 1 series; 2-5 quadrature from x = 1, 1.7, 3, 8: quad_nodes) + 6 (recurrence: 0 none, v <= 1/2;
// 1 short, v <= 4.5; 2 long, v < 25.5). Its steps are unrolled and masked past v, each with two
// divisions: the 24 of the long one cost orders 1-4 about as much as their series or quadrature.
KERNKIT_INLINE_ALWAYS int temme_fast_class(double nu, double x) {
  const bool ok = (nu >= 0.0) & (nu * nu + x * x < 650.25) & (x >= 1e-3);  // below Debye
  const int xk = static_cast<int>(x >= 0.1) + static_cast<int>(x > kQuadXMin) + static_cast<int>(x >= kQuadX[0]) +
                 static_cast<int>(x >= kQuadX[1]) + static_cast<int>(x >= kQuadX[2]);
  const int rk = static_cast<int>(nu > 0.5) + static_cast<int>(nu > 4.5);
  return static_cast<int>(ok) * (1 + xk + 6 * rk);
}

// NT: series terms after the first (x <= 1), or 0 and NQ quadrature nodes (x > 1); NREC: the
// most recurrence steps (v < NREC + 1/2).
// scaled = 1: log K + x, 0: log K; dlog = 1: K_v'/K_v = -(v/x + K_{v-1}/K_v) instead, the ratio
// from the last two steps of the recurrence (n = 0: K_{v-1} = K_{1-v} = K_{mu+1}). Run-time
// values, so that log K, log K e^x and K'/K share one instantiation (these are large: unrolled
// terms, nodes and steps); used in arithmetic, as GCC does not vectorise a select on a scalar
// bool. Both results are finite in this domain, so the blend by dlog = 0 or 1 is exact.
// NREC = 0: NT, NQ and NREC are the run-time nt_rt, nq_rt and nrec_rt (temme_fast_compact).
template <int NT, int NQ, int NREC>
KERNKIT_INLINE double temme_fast(double v, double x, double scaled, double dlog, int nt_rt = 0, int nq_rt = 0,
                                 int nrec_rt = 0) {
  const int nt = (NREC > 0) ? NT : nt_rt;
  const int nq = (NREC > 0) ? NQ : nq_rt;
  const int nrec = (NREC > 0) ? NREC : nrec_rt;
  // mu in (-1/2, 1/2] as k_temme: n = 0, mu = -v for v <= 1/2, else n = ceil(v - 1/2), mu = v - n
  // (arithmetic rather than ?: on v: GCC left those as branches, and the loop unvectorised)
  const double w = v - 0.5;
  const double fl = static_cast<double>(static_cast<int>(w));  // trunc(w) = floor(w) for w >= 0
  const double above = static_cast<double>(v > 0.5);
  const double n = above * (fl + static_cast<double>(w > fl));
  const double mu = (2.0 * above - 1.0) * v - n;  // exact
  double k0, g;  // K_mu (series) or K_mu e^x (quadrature); g = K_{mu+1}/K_mu * x/2
  if (nq == 0) {  // Temme's series (see temme_series): f_0 from Gamma_1, Gamma_2, cosh, sinh
    const double L = -log_pos(0.5 * x);
    const double m2 = mu * mu;
    const double g1 = rgamma_odd(m2);
    const double g2 = rgamma_even(m2);
    const double sigma = mu * L;  // |sigma| <= 3.8
    const double es = exp_clamped(sigma);
    const double ies = 1.0 / es;
    const double fact = 1.0 / sinc_sq((kPi * mu) * (kPi * mu));  // pi mu / sin(pi mu)
    double f = fact * (g1 * (0.5 * (es + ies)) + g2 * sinhc(sigma * sigma) * L);
    double p = (0.5 * es) / (g2 - mu * g1);  // 1/Gamma(1+mu) = g2 - mu g1
    double q = (0.5 * ies) / (g2 + mu * g1);
    double sum = f, sum1 = p, c = 1.0;
    const double d = 0.25 * x * x;
    KERNKIT_UNROLL
    for (int k = 1; k <= nt; ++k) {
      double t, t1;
      temme_term(static_cast<double>(k), mu, m2, d, f, p, q, c, t, t1);
      sum += t;
      sum1 += t1;
    }
    k0 = sum;
    g = sum1 / sum;
  } else {  // trapezoid rule on K e^x (see temme_quad)
    const double h = quad_step<NQ>(x, nq);
    double s0 = 0.0, s1 = 0.0;
    temme_quad_sums<NQ>(h, mu, x, s0, s1, nq);
    k0 = 0.5 * h * s0;
    g = 0.5 * x * quad_ratio(mu, x, s0, s1);
  }
  // K_{mu+j}/K_mu by the compensated recurrence of k_temme (steps j >= n leave the state as is)
  const double ix = 1.0 / x;
  double kp = 1.0, kc = (2.0 * g) * ix;
  double kpl = 0.0, kcl = (n == 0.0) ? 0.0 : fms_exact(kc, x, 2.0 * g) * ix;
  kc = (n == 0.0) ? 1.0 : kc;  // n = 0: K_v = K_mu
  KERNKIT_UNROLL
  for (int j = 1; j < nrec; ++j) {
    const bool on = static_cast<double>(j) < n;
    double kn, knl;
    krec_step(mu + static_cast<double>(j), x, ix, kp, kpl, kc, kcl, kn, knl);
    kp = on ? kc : kp;
    kpl = on ? kcl : kpl;
    kc = on ? kn : kc;
    kcl = on ? knl : kcl;
  }
  const double sk = (n == 0.0) ? (2.0 * g) / x : (kp + kpl) / (kc + kcl);
  const double kv = k0 * kc + k0 * kcl;  // K_v, or K_v e^x (quadrature)
  // (exp_clamped(+-0) = 1 exactly)
  const double lk = (nq == 0) ? log_pos(kv) + scaled * x : log_pos(kv * exp_clamped((scaled - 1.0) * x));
  return lk * (1.0 - dlog) + (-(v / x + sk)) * dlog;
}

// Class c's counts (1..kTemmeFastClasses; x kind (c - 1) % 6, recurrence (c - 1) / 6). LOWP (the
// float functions): counts for a truncation below 1e-10 (series 4 and 7 terms; 12, 12, 10 and 10
// nodes, quad_nodes).
template <bool LOWP>
constexpr int temme_class_nt(int c) {
  return ((c - 1) % 6 == 0) ? (LOWP ? 4 : 6) : ((c - 1) % 6 == 1) ? (LOWP ? 7 : 11) : 0;
}
template <bool LOWP>
constexpr int temme_class_nq(int c) {
  return ((c - 1) % 6 >= 2) ? quad_nodes<LOWP>((c - 1) % 6 - 2) : 0;
}
constexpr int temme_class_nrec(int c) { return ((c - 1) / 6 == 0) ? 1 : ((c - 1) / 6 == 1) ? 5 : 25; }

template <bool LOWP, int C, class F>
KERNKIT_INLINE auto temme_call(F&& f) {
  return f.template operator()<temme_class_nt<LOWP>(C), temme_class_nq<LOWP>(C), temme_class_nrec(C)>();
}

// Calls f.template operator()<NT, NQ, NREC>() with class c's counts.
template <bool LOWP, class F>
KERNKIT_INLINE auto temme_fast_visit(int c, F&& f) {
  switch (c) {
    case 1: return temme_call<LOWP, 1>(f);
    case 2: return temme_call<LOWP, 2>(f);
    case 3: return temme_call<LOWP, 3>(f);
    case 4: return temme_call<LOWP, 4>(f);
    case 5: return temme_call<LOWP, 5>(f);
    case 6: return temme_call<LOWP, 6>(f);
    case 7: return temme_call<LOWP, 7>(f);
    case 8: return temme_call<LOWP, 8>(f);
    case 9: return temme_call<LOWP, 9>(f);
    case 10: return temme_call<LOWP, 10>(f);
    case 11: return temme_call<LOWP, 11>(f);
    case 12: return temme_call<LOWP, 12>(f);
    case 13: return temme_call<LOWP, 13>(f);
    case 14: return temme_call<LOWP, 14>(f);
    case 15: return temme_call<LOWP, 15>(f);
    case 16: return temme_call<LOWP, 16>(f);
    case 17: return temme_call<LOWP, 17>(f);
    default: return temme_call<LOWP, 18>(f);
  }
}

// Class c's temme_fast as one instantiation with run-time counts (the CUDA build: see
// debye_fast_dispatch); the same operations as temme_fast_visit's instantiation for c.
template <bool LOWP>
KERNKIT_INLINE double temme_fast_compact(int c, double v, double x, double scaled, double dlog) {
  return temme_fast<0, 0, 0>(v, x, scaled, dlog, temme_class_nt<LOWP>(c), temme_class_nq<LOWP>(c),
                             temme_class_nrec(c));
}

struct TemmeFastScalar {
  double v, x, scaled, dlog;
  template <int NT, int NQ, int NREC>
  KERNKIT_INLINE double operator()() const { return temme_fast<NT, NQ, NREC>(v, x, scaled, dlog); }
};

// Scalar entry for class c != 0: the per-class instantiations on the CPU, the compact kernel in
// the CUDA build (debye_fast_dispatch says why).
template <bool LOWP>
KERNKIT_INLINE double temme_fast_dispatch(int c, double v, double x, double scaled, double dlog) {
#ifdef __CUDA_ARCH__
  return temme_fast_compact<LOWP>(c, v, x, scaled, dlog);
#else
  return temme_fast_visit<LOWP>(c, TemmeFastScalar{v, x, scaled, dlog});
#endif
}

}  // namespace bessel_detail
}  // namespace kernkit
