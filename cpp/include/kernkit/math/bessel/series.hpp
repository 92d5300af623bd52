// Power series for I_v(x), DLMF 10.25.2, used for v > -1 and small hyp = sqrt(v^2+x^2) (< 26).
// All terms are positive (also for -1 < v < 0, where Gamma(k+v+1) > 0), so the sum is well conditioned; the prefactor (x/2)^v / Gamma(v+1) is
// applied in log space (never overflows). The ratio I_{v+1}/I_v comes from the second sum
//   I_{v+1}/I_v = (x/2)/(v+1) * [sum q^k/(k! (v+2)_k)] / [sum q^k/(k! (v+1)_k)],  q = x^2/4.
#pragma once
#include <cmath>

#include "../config.hpp"
#include "logspace.hpp"
#include "series_fast.hpp"

namespace kernkit {
namespace bessel_detail {

template <bool WD>
KERNKIT_INLINE void series_i(double v, double x, double& li, double& ri) {
  const double q = 0.25 * x * x;
  double ta = 1.0, sa = 1.0, tb = 1.0, sb = 1.0;
  // Terms fall off like q^k/k!^2: at most ~60 terms for x < 26 (relative tail < 1e-17).
  for (int k = 1; k <= 90; ++k) {
    const double dk = static_cast<double>(k);
    ta *= q / (dk * (dk + v));
    sa += ta;
    if (WD) {
      tb *= q / (dk * (dk + v + 1.0));
      sb += tb;
    }
    if (ta <= 1e-17 * sa) break;  // tb <= ta, so this also bounds the second sum
  }
  const double lx2 = (x >= 1e-300) ? std::log(0.5 * x) : std::log(x) - kLn2;
  li = ((v == 0.0) ? 0.0 : v * lx2 - lgamma1p(v)) + std::log(sa);
  if (v >= 1.0 && std::fabs(li) < 4.0) {
    // log I is small but v log(x/2) and log Gamma(v+1) are not (up to ~60 here): their rounding
    // errors would dominate the absolute error. Recompute the prefactor as
    //   (x/2)^v / Gamma(v+1) = [(x/2)^mu / Gamma(1+mu)] * prod_{k=1..n} (x/2)/(mu+k),  v = n + mu,
    // with the product in double-double (series_fast.hpp; v < 25.5 here, so n <= 25).
    const double n = std::floor(v + 0.5);
    const double mu = v - n;  // [-1/2, 1/2)
    double h, l;
    prefactor_dd<25>(v, 0.5 * x, n, h, l);
    li = std::log(h) + (l / h + (mu * lx2 - lgamma1p(mu))) + std::log(sa);
  }
  ri = WD ? (0.5 * x / (v + 1.0)) * (sb / sa) : 0.0;
}

}  // namespace bessel_detail
}  // namespace kernkit
