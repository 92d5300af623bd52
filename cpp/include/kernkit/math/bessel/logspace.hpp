// Small scalar helpers shared by the log-Bessel code: constants, sin(pi v), log-space sums,
// 1/Gamma(1+z) near z = 0. Host+device, double only.
#pragma once
#include <cmath>

#include "../config.hpp"

namespace kernkit {
namespace bessel_detail {

constexpr double kPi = 3.141592653589793;
constexpr double kLn2 = 0.6931471805599453;
constexpr double kHalfLog2Pi = 0.91893853320467274;     // log(2 pi)/2
constexpr double kHalfLogPiOver2 = 0.22579135264472744;  // log(pi/2)/2

KERNKIT_INLINE bool is_integer(double v) { return std::floor(v) == v; }

// sin(pi v) with exact argument reduction (v - 2 floor(v/2) is exact for every finite v).
KERNKIT_INLINE double sinpi(double v) {
  const double r = v - 2.0 * std::floor(0.5 * v);  // [0, 2)
  const double n = std::floor(r + 0.5);             // 0, 1 or 2
  const double s = std::sin(kPi * (r - n));         // r - n in [-1/2, 1/2], exact
  return (n == 1.0) ? -s : s;
}

// log(1 - exp(d)) for d < 0; the split keeps both ends accurate.
KERNKIT_INLINE double log1mexp(double d) {
  return (d > -kLn2) ? std::log(-std::expm1(d)) : std::log1p(-std::exp(d));
}

// 1/Gamma(1+z) = sum_k c_k z^k; coefficients from log Gamma(1+z) = -gamma z +
// sum_{k>=2} (-1)^k zeta(k) z^k / k, exponentiated at 60 digits (scratch script). Split by parity
// (truncation < 1e-20 for |z| <= 1/2):
//   rgamma_even(z^2) = sum_{k even} c_k z^k  (= Temme's Gamma_2(z); _m1: minus 1),
//   rgamma_odd(z^2)  = -sum_{k odd} c_k z^{k-1} (= Temme's Gamma_1(z)),
// so 1/Gamma(1+z) = even - z*odd and 1/Gamma(1-z) = even + z*odd, without cancellation.
KERNKIT_INLINE double rgamma_even_m1(double z2) {
  return z2 * (((((((((((-2.05832605356650664e-14) * z2 + -3.69680561864220598e-12) * z2 + 1.04342671169110054e-10) * z2 + 5.00200764446922295e-09) * z2 + -2.05633841697760707e-07) * z2 + -1.25049348214267063e-06) * z2 + 1.28050282388116196e-04) * z2 + -0.0011651675918590652) * z2 + -0.009621971527876973) * z2 + 0.16653861138229148) * z2 + -0.6558780715202539);
}
KERNKIT_INLINE double rgamma_even(double z2) { return 1.0 + rgamma_even_m1(z2); }
KERNKIT_INLINE double rgamma_odd(double z2) {
  return ((((((((((-5.10037028745447575e-13) * z2 + -7.78226343990507081e-12) * z2 + 1.18127457048702004e-09) * z2 + -6.11609510448141609e-09) * z2 + -1.13302723198169593e-06) * z2 + 2.01348547807882387e-05) * z2 + 2.15241674114950975e-04) * z2 + -0.0072189432466631) * z2 + 0.04219773455554433) * z2 + 0.04200263503409524) * z2 + -0.5772156649015329;
}

// log Gamma(1+v) for v > -1, accurate in absolute terms also for tiny |v| (std::lgamma(1+v)
// would lose the bits of v that do not fit next to 1).
KERNKIT_INLINE double lgamma1p(double v) {
  if (std::fabs(v) <= 0.5) {
    const double z2 = v * v;
    return -std::log1p(rgamma_even_m1(z2) - v * rgamma_odd(z2));
  }
  return std::lgamma(v + 1.0);
}

}  // namespace bessel_detail
}  // namespace kernkit
