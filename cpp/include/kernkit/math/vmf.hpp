// von Mises-Fisher scalars (kernkit.vmf): the mean resultant length A_p(kappa) = I_{p/2}/I_{p/2-1},
// u = 1 - A_p(kappa) and A_p'(kappa), each to full relative precision, and the maximum-likelihood
// kappa solving A_p(kappa) = r. Scalar, header-only, host+device (KERNKIT_HD).
//
// u carries the information when A is close to 1 (large kappa): for kappa >= thr it comes from
// the large-kappa expansion u = sum_{k=1..nc} c[k-1] kappa^-k (the caller's coefficients, exact
// rationals rounded once: kernkit/vmf.py's _asym_coeffs, thr = max(20 p, 40)) rather than 1 - A.
#pragma once
#include <cmath>

#include "config.hpp"
#include "log_bessel.hpp"

namespace kernkit {

struct VmfAU {
  double A, u, dA;  // A_p(kappa), 1 - A_p(kappa), A_p'(kappa)
};

// A_p, 1 - A_p and A_p' at kappa >= 0 (A' = 1 - A^2 - (p - 1) A / kappa; 1/p at kappa = 0).
KERNKIT_INLINE VmfAU vmf_a_u_da(int p, double kappa, double thr, const double* c, int nc) {
  VmfAU r{0.0, 1.0, 1.0 / p};
  if (kappa >= thr) {
    const double t = 1.0 / kappa;
    double s = 0.0, ds = 0.0;
    for (int k = nc; k >= 1; --k) {  // Horner: u = sum c_k t^k, -du/dkappa = sum k c_k t^(k+1)
      s = (s + c[k - 1]) * t;
      ds = (ds + k * c[k - 1]) * t;
    }
    r.u = s;
    r.A = 1.0 - s;
    r.dA = ds * t;
  } else if (kappa > 0.0) {
    const double a = bessel_iv_ratio(0.5 * p - 1.0, kappa);
    r.A = a;
    r.u = 1.0 - a;
    r.dA = (1.0 - a) * (1.0 + a) - (p - 1.0) * a / kappa;
  }
  return r;
}

// The root kappa of A_p(kappa) = r for 0 < r < 1, d = 1 - r > 0 (given without cancellation).
// Newton's method in s = log kappa on log A - log r (r <= 1/2) or log d - log u (r > 1/2), both
// nearly linear in s, started at Banerjee et al.'s r (p - r^2) / (1 - r^2) and kept inside
// the bracket max(p r, r (p - 2)/(1 - r^2)) <= kappa <= r p / (1 - r^2) (Tanabe et al. 2007) by
// bisection in log kappa. It stops at a step below 1e-15, or where Newton has reached the
// rounding noise of f (a tiny step back, not much shorter than the last: it would cycle between
// neighbours of the root; the geometric mean of the bracket is taken), or a closed bracket.
// evals (if not null) receives the number of A_p evaluations.
KERNKIT_INLINE double vmf_kappa_newton(int p, double r, double d, double thr, const double* c, int nc,
                                       int* evals = nullptr) {
  const bool high = r > 0.5;
  const double one_m_r2 = d * (1.0 + r);
  double lo = std::fmax(p * r, r * (p - 2.0) / one_m_r2) * (1.0 - 1e-10);
  double hi = std::fmin(r * p / one_m_r2, 1e300) * (1.0 + 1e-10);
  double kap = std::fmin(std::fmax(r * (p - r * r) / one_m_r2, lo), hi);  // Banerjee et al. (2005)
  const double log_r = std::log(r), log_d = std::log(d);
  double last_ds = 0.0;
  int it = 0;
  while (it < 100) {
    ++it;
    const double ki = kap;
    const VmfAU a = vmf_a_u_da(p, ki, thr, c, nc);
    const double f = high ? log_d - std::log(a.u) : std::log(a.A) - log_r;
    const double fp = ki * a.dA / (high ? a.u : a.A);
    if (f > 0) {  // f increases with kappa: the root is below ki
      hi = std::fmin(hi, ki);
    } else {
      lo = std::fmax(lo, ki);
    }
    const double ds = -f / fp;  // Newton step in log kappa
    // kappa * exp(ds) keeps kappa's relative precision (exp(log kappa) would lose |log kappa| ulps)
    double knew = ki * std::exp(ds);
    const bool cycle = std::fabs(last_ds) <= 1e-12 && ds * last_ds < 0 && std::fabs(ds) >= 0.1 * std::fabs(last_ds);
    last_ds = ds;
    if (cycle) knew = lo * std::sqrt(hi / lo);  // the last two iterates bracket the root
    const bool small = std::fabs(ds) <= 1e-15 || cycle;
    if (!small && !(knew >= lo && knew <= hi)) knew = std::exp(0.5 * (std::log(lo) + std::log(hi)));
    const bool done = small || f == 0 || hi <= lo * (1.0 + 4e-16);
    kap = (f == 0) ? ki : knew;
    if (done) break;
  }
  if (evals) *evals = it;
  return kap;
}

}  // namespace kernkit
