// K_v(x) for small order and argument (v < 26, x < 26): Temme's method.
//  1. Reduce to mu in [-1/2, 1/2]: K_mu and K_{mu+1} from Temme's series (x <= 2) or from
//     Steed's evaluation of Temme's continued fraction CF2 (x > 2).
//  2. Forward recurrence K_{j+1} = K_{j-1} + (2j/x) K_j up to v (stable: K is dominant).
// Everything is carried as log K_mu plus ratios g_j = (x/2) K_j / K_{j-1}, which stay O(v + x)
// even for x = 1e-300, so nothing overflows.
// References: N. M. Temme, J. Comput. Phys. 19 (1975) 324; DLMF 10.31, 10.29, 13.2.
#pragma once
#include <cmath>

#include "../config.hpp"
#include "logspace.hpp"

namespace kernkit {
namespace bessel_detail {

struct KMu {
  double lin;  // K_mu(x) (Temme series) or K_mu(x) e^x (CF2): both O(1)..O(1e150), no overflow
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
    const double dk = static_cast<double>(k);
    f = (dk * f + p + q) / (dk * dk - m2);
    p /= (dk - mu);
    q /= (dk + mu);
    c *= d / dk;
    const double t = c * f;
    const double t1 = c * (p - dk * f);
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

// Steed's algorithm for Temme's CF2, |mu| <= 1/2, x > 2. With u_n = U(mu+1/2+n, 2mu+1, 2x)
// (DLMF 13.2) one has K_mu = sqrt(pi) (2x)^mu e^-x u_0 and the three-term recurrence
//   u_{n-1} = 2(n+x) u_n - a_{n+1} u_{n+1},  a_n = (n-1/2)^2 - mu^2,
// so u_1/u_0 is the continued fraction 1/(b_1 - a_2/(b_2 - a_3/(b_3 - ...))), b_n = 2(n+x).
// Temme's normalisation sum_n C_n u_n = (2x)^{-mu-1/2}, C_n = prod_{j<=n} a_j / j, gives
//   K_mu = sqrt(pi/(2x)) e^{-x} / S,  S = sum_n C_n u_n/u_0,
//   K_{mu+1}/K_mu = (mu + x + 1/2 - a_1 u_1/u_0) / x.
// Steed's method sums the CF forward; S uses the same partial denominators via the auxiliary
// solution q_n of the recurrence. Converges faster the larger x is (<= ~45 terms at x = 2).
KERNKIT_INLINE KMu temme_cf2(double mu, double x) {
  const double a1 = 0.25 - mu * mu;
  double b = 2.0 * (1.0 + x);
  double dd = 1.0 / b;
  double dh = dd;
  double h = dd;        // CF value u_1/u_0 so far
  double qa = 0.0, qb = 1.0;
  double an = -a1;      // -a_{n+1} as the loop runs
  double cn = a1;       // C_n
  double qsum = a1;     // sum C_n q_n
  double s = 1.0 + qsum * dh;
  for (int n = 1; n <= 200; ++n) {
    const double dn = static_cast<double>(n);
    an -= 2.0 * dn;
    cn = -an * cn / (dn + 1.0);
    const double qn = (qa - b * qb) / an;
    qa = qb;
    qb = qn;
    qsum += cn * qn;
    b += 2.0;
    dd = 1.0 / (b + an * dd);
    dh = (b * dd - 1.0) * dh;
    h += dh;
    const double ds = qsum * dh;
    s += ds;
    if (std::fabs(ds) <= 1e-17 * std::fabs(s)) break;
  }
  KMu r;
  r.lin = std::sqrt(0.5 * kPi / x) / s;
  r.lks = std::log(r.lin);
  r.lk = r.lks - x;
  r.g = 0.5 * (mu + x + 0.5 - a1 * h);
  r.rk = 2.0 * r.g / x;
  r.lg = std::log(r.g);
  r.s0 = r.s1 = 0.0;
  return r;
}

// log K_v(x), log K_v(x) + x and sk = K_{v-1}(x)/K_v(x) for 0 <= v < 26, 0 < x < 26.
KERNKIT_INLINE void k_temme(double v, double x, double& lk, double& lks, double& sk) {
  // mu in (-1/2, 1/2] (mu = -1/2 would make g ~ x/2, subnormal for tiny x).
  // For v <= 1/2 use mu = -v: the pair (K_{-v}, K_{1-v}) = (K_v, K_{v-1}) gives the ratio directly.
  const double n = (v <= 0.5) ? 0.0 : std::ceil(v - 0.5);
  const double mu = (n == 0.0) ? -v : v - n;
  const bool cf2 = x > 2.0;
  const KMu km = cf2 ? temme_cf2(mu, x) : temme_series(mu, x);
  // For x >= 1e-3 K is assembled in linear space and logged once: log K can be O(1) while its
  // pieces (x, log of the recurrence product) are ~25, whose separate roundings would cost
  // ~2e-15 absolute. exp(-x) (x < 26) and the product stay far from over/underflow.
  if (n == 0.0) {
    sk = km.rk;
    if (cf2) {
      lks = km.lks;
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
    // products of K_j/K_{j-1} = 2 g_j / x stay below ~1e120 here
    const double t = 2.0 / x;
    double prod = g * t;
    for (int j = 2; j <= nn; ++j) {
      g = (mu + static_cast<double>(j - 1)) + x2 / g;
      prod *= g * t;
    }
    sk = 0.5 * x / g;
    const double kv = km.lin * prod;  // K_v, or K_v e^x for CF2
    if (cf2) {
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
