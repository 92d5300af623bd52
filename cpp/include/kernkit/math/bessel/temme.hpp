// K_v(x) for small order and argument (v < 26, x < 26).
//  1. Reduce to mu in [-1/2, 1/2]: K_mu and K_{mu+1} from Temme's series (x <= 1) or from a
//     trapezoid rule on the integral representation of K e^x (x > 1).
//  2. Forward recurrence K_{j+1} = K_{j-1} + (2j/x) K_j up to v (stable: K is dominant), on
//     K_{mu+j}/K_mu for x >= 1e-3 (< 1e120 there); for tinier x as log K_mu plus ratios
//     g_j = (x/2) K_j / K_{j-1}, which stay O(v + x) even for x = 1e-300, so nothing overflows.
// References: N. M. Temme, J. Comput. Phys. 19 (1975) 324; DLMF 10.31, 10.29, 10.32.9.
#pragma once
#include <cmath>

#include "../config.hpp"
#include "fastmath.hpp"
#include "logspace.hpp"

namespace kernkit {
namespace bessel_detail {

struct KMu {
  double lin;  // K_mu(x) (Temme series) or K_mu(x) e^x (quadrature): no overflow
  double lk;   // log K_mu(x)
  double lks;  // log K_mu(x) + x
  double g;    // (x/2) K_{mu+1}(x) / K_mu(x)  (O(1) unless mu is close to -1/2)
  double rk;   // K_{mu+1}(x) / K_mu(x)
  double lg;   // log g, also where g underflows (mu < 0 and tiny x: g ~ (x/2)^{-2 mu})
  double s0, s1;  // Temme series only: K_mu and (x/2) K_{mu+1}
};

// Temme's series, |mu| <= 1/2, 0 < x <= 2. With c_k = (x^2/4)^k / k!:
//   K_mu = sum c_k f_k,  K_{mu+1} = (2/x) sum c_k (p_k - k f_k),
//   f_k = (k f_{k-1} + p_{k-1} + q_{k-1}) / (k^2 - mu^2), p_k = p_{k-1}/(k - mu), q_k = q_{k-1}/(k + mu),
//   p_0 = (x/2)^{-mu} Gamma(1+mu)/2, q_0 = (x/2)^{mu} Gamma(1-mu)/2,
//   f_0 = (pi mu / sin(pi mu)) [Gamma_1(mu) cosh(sigma) + Gamma_2(mu) L sinh(sigma)/sigma],
// sigma = mu L, L = log(2/x). All sums converge like (x^2/4)^k/k!^2: <= 24 terms at x = 2.
// Term k of Temme's two sums from the recurrences below: f, p, q, c advanced to k, and
// t = c_k f_k, t1 = c_k (p_k - k f_k) (d = x^2/4, m2 = mu^2). Also temme_fast's.
KERNKIT_INLINE void temme_term(double dk, double mu, double m2, double d, double& f, double& p,
                               double& q, double& c, double& t, double& t1) {
  f = (dk * f + p + q) / (dk * dk - m2);
  p /= (dk - mu);
  q /= (dk + mu);
  c *= d / dk;
  t = c * f;
  t1 = c * (p - dk * f);
}

KERNKIT_INLINE KMu temme_series(double mu, double x) {
  const double L = (x >= 1e-300) ? -std::log(0.5 * x) : kLn2 - std::log(x);
  const double m2 = mu * mu;
  const double g1 = rgamma_odd(m2);
  const double g2 = rgamma_even(m2);
  const double rg_p = g2 - mu * g1;  // 1/Gamma(1+mu)
  const double rg_m = g2 + mu * g1;  // 1/Gamma(1-mu)
  const double sigma = mu * L;
  const double pm = kPi * mu;
  const double fact = (pm == 0.0) ? 1.0 : pm / std::sin(pm);
  const double shs = (sigma == 0.0) ? 1.0 : std::sinh(sigma) / sigma;
  const double es = std::exp(sigma);
  double f = fact * (g1 * std::cosh(sigma) + g2 * shs * L);
  double p = 0.5 * es / rg_p;
  double q = 0.5 / (es * rg_m);
  double sum = f, sum1 = p, c = 1.0;
  const double d = 0.25 * x * x;
  for (int k = 1; k <= 40; ++k) {
    double t, t1;
    temme_term(static_cast<double>(k), mu, m2, d, f, p, q, c, t, t1);
    sum += t;
    sum1 += t1;
    if (std::fabs(t) <= 1e-17 * std::fabs(sum) && std::fabs(t1) <= 1e-17 * std::fabs(sum1)) break;
  }
  KMu r;
  r.lin = sum;
  r.lk = std::log(sum);
  r.lks = r.lk + x;
  r.g = sum1 / sum;
  // K_{mu+1}/K_mu = 2g/x; g underflows only near mu = -1/2, 2 sum1 / x overflows only near mu = 0
  r.rk = (r.g >= 1e-290) ? 2.0 * r.g / x : (2.0 * sum1 / x) / sum;
  r.lg = std::log(sum1) - r.lk;
  r.s0 = sum;
  r.s1 = sum1;
  return r;
}

// Trapezoid rule on K_nu(x) e^x = int_0^inf exp(-x (cosh t - 1)) cosh(nu t) dt (DLMF 10.32.9),
// |mu| <= 1/2, 1 <= x < 26, for nu = mu and (through K_mu', quad_ratio) mu + 1 at once. The integrand is analytic in a strip
// around the real axis and decays double-exponentially, so the trapezoid rule converges
// exponentially in 1/h. Cut at t_max = acosh(1 + 47/x) (integrand < e^-40 of its peak beyond)
// with N nodes, h = t_max/(N-1), N per class of x (quad_nodes). The integrand is analytic and
// bounded by ~e^x in the strip |Im t| < pi/2, so the trapezoid error is ~e^(x - pi^2/h) of the
// integral; N = 16 from x = 3 (e^-39 there) measured (scratch script, Arb reference) <= 8e-16
// absolute in log(K e^x) over x in [3, 25.5], nu in [-1/2, 3/2], and the other classes take
// the N that keeps e^-39 or less over their x range (before: 24 nodes below x = 3, e^-49 to
// e^-62, and 16 above, e^-39 to e^-61). With K_{mu+1} from quad_ratio and these N, random points
// of the box (orders up to 25) gave <= 3 ulp for log K and log K e^x and <= 2 ulp for K'/K
// against Arb. Every term is positive and K e^x comes out directly (the
// exponent -x (cosh t - 1) is small where the terms matter), which is what makes log K + x
// accurate to ~1e-16 absolute; Temme's series and CF2 (used before) left ~1e-15 there.
// cosh t - 1 = 2 sinh^2(t/2) avoids the cancellation of cosh t - 1 for small t.
constexpr double kQuadXMin = 1.0;  // below this Temme's series is used (fewer than 20 terms)
constexpr double kQuadX[3] = {1.7, 3.0, 8.0};  // quadrature classes: (1, 1.7), [1.7, 3), [3, 8), [8, 26)

// Nodes of quadrature class q (0..3): the least N with x - pi^2 (N-1)/t_max(x) <= -39 over the
// class (e^-39 = 1e-17); LOWP (the float functions): about -23 (1e-10), as before the split.
template <bool LOWP>
constexpr int quad_nodes(int q) {  // full 20, 18, 16, 14; LOWP 12, 12, 10, 10 (a select chain: the
  // CUDA build indexes it at run time, temme_fast_compact)
  return LOWP ? ((q < 2) ? 12 : 10) : (q == 0) ? 20 : (q == 1) ? 18 : (q == 2) ? 16 : 14;
}

// The step h = acosh(1 + 47/x) / (N - 1), acosh by fastmath.hpp's log and exp (any h near it is
// as good a trapezoid step; this one is the same bits in scalar and vector code). N = 0: n_rt
// nodes at run time (1/(n-1) is then divided out at run time, the same correctly rounded value).
template <int N>
KERNKIT_INLINE double quad_step(double x, int n_rt = 0) {
  const int n = (N > 0) ? N : n_rt;
  const double y = 1.0 + 47.0 / x;  // >= 2.8
  return log_pos(y + exp_clamped(0.5 * log_pos((y - 1.0) * (y + 1.0)))) * (1.0 / (n - 1));
}

// Node j's terms of two integrals (before the weights): f0 = 2 e^{-x (cosh t - 1)} cosh(mu t) for
// I0 = K_mu e^x, and f1 = (cosh t - 1) f0 for J = int (cosh t - 1) e^{-x (cosh t - 1)} cosh(mu t) dt,
// which gives K_{mu+1} without a third exponential per node (quad_ratio).
// sinh(t/2) by its Taylor series (fastmath.hpp: sinhc; t/2 <= acosh(48)/2 = 2.3): (e - 1/e)/2
// from e = exp(t/2) lost ~3 ulp to cancellation at the nodes that matter, which
// x (cosh t - 1) = 2 x sinh^2(t/2) carried into log K + x at up to ~1e-15 abs.
KERNKIT_INLINE void quad_node(int j, double h, double mu, double x, double& f0, double& f1) {
  const double t = static_cast<double>(j) * h;
  const double sh = (0.5 * t) * sinhc(0.25 * (t * t));
  const double c1 = 2.0 * (sh * sh);  // cosh t - 1
  const double xc = -x * c1;
  const double mt = mu * t;
  const double a = exp_clamped(xc + mt);  // e^{-x(cosh t - 1) + mu t}, exponent in [-50, 3]
  const double b = exp_clamped(xc - mt);
  f0 = a + b;
  f1 = c1 * f0;
}

// K_{mu+1}/K_mu from the trapezoid sums s0 (of f0) and s1 (of f1): K_{mu+1} = (mu/x) K_mu - K_mu'
// (DLMF 10.29.2) and -K_mu' e^x = int cosh t e^{-x (cosh t - 1)} cosh(mu t) dt = I0 + J, so
// K_{mu+1}/K_mu = 1 + mu/x + J/I0: a sum of positive terms but for mu/x >= -1/2. (The direct
// integral of cosh((mu+1) t) cost an exp(t/2) and a division per node; same accuracy.)
KERNKIT_INLINE double quad_ratio(double mu, double x, double s0, double s1) {
  return (1.0 + mu / x) + s1 / s0;
}

// The trapezoid sums s0 = f0_0/2 + f0_1 + ... (s1 likewise) as running sums (N = 0: n_rt nodes).
template <int N>
KERNKIT_INLINE void temme_quad_sums(double h, double mu, double x, double& s0, double& s1, int n_rt = 0) {
  const int n = (N > 0) ? N : n_rt;
  KERNKIT_UNROLL
  for (int j = 0; j < n; ++j) {
    double f0, f1;
    quad_node(j, h, mu, x, f0, f1);
    s0 = (j == 0) ? 0.5 * f0 : s0 + f0;
    s1 = (j == 0) ? 0.5 * f1 : s1 + f1;
  }
}

template <int N>
KERNKIT_INLINE KMu temme_quad(double mu, double x) {
  const double h = quad_step<N>(x);
  double s0 = 0.0, s1 = 0.0;
  temme_quad_sums<N>(h, mu, x, s0, s1);
  KMu r;
  r.lin = 0.5 * h * s0;  // K_mu e^x; k_temme takes the logs it needs (lk, lks, lg unset)
  r.lk = r.lks = r.lg = 0.0;
  r.rk = quad_ratio(mu, x, s0, s1);  // K_{mu+1}/K_mu
  r.g = 0.5 * x * r.rk;
  r.s0 = r.s1 = 0.0;
  return r;
}

// One step K_{j+1} = K_{j-1} + (2 (mu + j)/x) K_j of the recurrence on (kp, kc) = K_{j-1}, K_j
// (relative to K_mu) with their compensation terms (kpl, kcl): kn + knl = K_{j+1}. muj = mu + j
// is exact (v minus an integer); a_j = a + al to ~1e-32 relative, from ix = 1/x (the pair
// carries a_j whether or not a is the rounded quotient: al takes the exact residual; a division
// per step cost the long recurrence ~10% of its time), and a kc + kp - kn = err (exact but for
// the last rounding of err itself).
KERNKIT_INLINE void krec_step(double muj, double x, double ix, double kp, double kpl, double kc, double kcl,
                              double& kn, double& knl) {
  const double aj = 2.0 * muj;
  const double a = aj * ix, al = fms_exact(a, x, aj) * ix;
  const double p = a * kc, pe = mul_err(a, kc, p);
  kn = kp + p;
  const double bp = kn - kp;
  const double err = ((kp - (kn - bp)) + (p - bp)) + pe;
  knl = kpl + ((a * kcl + al * kc) + err);
}

// log K_v(x), log K_v(x) + x and sk = K_{v-1}(x)/K_v(x) for 0 <= v < 26, 0 < x < 26.
KERNKIT_INLINE void k_temme(double v, double x, double& lk, double& lks, double& sk) {
  // mu in (-1/2, 1/2] (mu = -1/2 would make g ~ x/2, subnormal for tiny x).
  // For v <= 1/2 use mu = -v: the pair (K_{-v}, K_{1-v}) = (K_v, K_{v-1}) gives the ratio directly.
  const double n = (v <= 0.5) ? 0.0 : std::ceil(v - 0.5);
  const double mu = (n == 0.0) ? -v : v - n;
  const bool quad = x > kQuadXMin;  // km.lin is K_mu e^x (quadrature) rather than K_mu (series)
  const KMu km = !quad               ? temme_series(mu, x)
                 : (x < kQuadX[0]) ? temme_quad<quad_nodes<false>(0)>(mu, x)
                 : (x < kQuadX[1]) ? temme_quad<quad_nodes<false>(1)>(mu, x)
                 : (x < kQuadX[2]) ? temme_quad<quad_nodes<false>(2)>(mu, x)
                                   : temme_quad<quad_nodes<false>(3)>(mu, x);
  // For x >= 1e-3 K is assembled in linear space and logged once: log K can be O(1) while its
  // pieces (x, log of the recurrence product) are ~25, whose separate roundings would cost
  // ~2e-15 absolute. exp(-x) (x < 26) and the product stay far from over/underflow.
  if (n == 0.0) {
    sk = km.rk;
    if (quad) {
      lks = std::log(km.lin);
      lk = std::log(km.lin * std::exp(-x));
    } else {
      lk = km.lk;
      lks = km.lks;
    }
    return;
  }
  const int nn = static_cast<int>(n);
  const double x2 = 0.25 * x * x;
  double g = km.g;
  if (x >= 1e-3) {
    // K_{mu+j}/K_mu by the recurrence itself (no division on the dependent chain); the values
    // stay below ~1e120 here. The rounding errors of the factors a_j = 2 (mu + j)/x (mu + j is
    // exact: v minus an integer) and of each step are carried in a second, compensating
    // recurrence (kpl, kcl) off the dependent chain: uncompensated, 25 steps left ~3 ulp.
    const double ix = 1.0 / x;
    double kp = 1.0, kc = (2.0 * g) * ix;
    double kpl = 0.0, kcl = fms_exact(kc, x, 2.0 * g) * ix;
    for (int j = 1; j < nn; ++j) {
      double kn, knl;
      krec_step(mu + static_cast<double>(j), x, ix, kp, kpl, kc, kcl, kn, knl);
      kp = kc;
      kpl = kcl;
      kc = kn;
      kcl = knl;
    }
    sk = kp / kc;
    const double kv = km.lin * kc + km.lin * kcl;  // K_v, or K_v e^x for the quadrature
    if (quad) {
      lks = std::log(kv);
      lk = std::log(kv * std::exp(-x));
    } else {
      lk = std::log(kv);
      lks = lk + x;
    }
    return;
  }
  // tiny x (Temme series only): keep (2/x)^n apart in log space. The first factor g may be
  // subnormal (mu < 0); use its log, and x^2/(4g) <= (x/2)^{1+2mu} is then negligible.
  double prod = 1.0;
  for (int j = 2; j <= nn; ++j) {
    g = (mu + static_cast<double>(j - 1)) + ((g >= 1e-280) ? x2 / g : 0.0);
    prod *= g;
  }
  const double lsum = km.lg + std::log(prod) + n * (kLn2 - std::log(x));
  lk = km.lk + lsum;
  lks = km.lks + lsum;
  if (nn >= 2 || g >= 1e-280) {
    sk = 0.5 * x / g;
  } else {  // K_mu / K_{mu+1} = (x/2) s0 / s1 with g = s1/s0 subnormal: rescale by 2^600
    sk = ((0.5 * x * 0x1p600) / km.s1) * km.s0 * 0x1p-600;
  }
}

}  // namespace bessel_detail
}  // namespace kernkit
