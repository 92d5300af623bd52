// eta(z) = sqrt(1+z^2) - asinh(1/z) (the Debye exponent, v*eta = v*sqrt(1+z^2) - v*asinh(v/x))
// near its zero z0: there the two terms cancel and the naive form loses ~v*eps absolutely
// (measured 1e-13 at v ~ 1e3), so for z in (0.45, 0.92) use eta = (z - z0) g(z), with z - z0
// carried to ~1e-32 and g a degree-22 Chebyshev interpolant (max relative error 2.2e-16,
// fitted at 50 digits in a scratch script). Outside that interval |eta| > 0.41, where the naive
// form is good to a few ulp.
#pragma once
#include "../config.hpp"

namespace kernkit {
namespace bessel_detail {

constexpr double kEtaZ0Hi = 0.6627434193491816;  // eta(z0) = 0, z0 = hi + lo
constexpr double kEtaZ0Lo = 8.155323790501267e-18;
constexpr double kEtaZLo = 0.45;
constexpr double kEtaZHi = 0.92;

// g((z - 0.685) / 0.235) = eta(z) / (z - z0)
KERNKIT_INLINE double eta_g(double u) {
  return ((((((((((((((((((((((7.54114893495259e-12) * u + -2.292598527288545e-11) * u + 2.6466233326105048e-11) * u + -8.129117469178605e-11) * u + 3.5878503989515764e-10) * u + -1.1031286078937005e-09) * u + 3.2475162817686324e-09) * u + -1.0057618612514572e-08) * u + 3.140879541438908e-08) * u + -9.807852351361394e-08) * u + 3.0775103002734796e-07) * u + -9.716578496364214e-07) * u + 3.0891329359380224e-06) * u + -9.901650568606746e-06) * u + 3.205328214304868e-05) * u + -0.00010506046969942466) * u + 0.00035004751568458827) * u + -0.0011923062621961966) * u + 0.004177878892262141) * u + -0.015114317132509016) * u + 0.05622614828421105) * u + -0.2119166710886255) * u + 1.789582674879589;
}

}  // namespace bessel_detail
}  // namespace kernkit
