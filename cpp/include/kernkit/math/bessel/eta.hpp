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

// zeta(z) = eta(z) + z, the exponent of K_v(x) e^{-x} = exp(-v zeta + ...), which the reflected
// log I_{-v}(x) - x needs where the K term dominates. It vanishes at z1 ~ 0.4477, where v*eta and
// x cancel. Same treatment: zeta = (z - z1) g1(z) for z in (0.3, 0.6), g1 a degree-19 Chebyshev
// interpolant (max relative error 1.4e-16, 50-digit scratch fit); outside, |zeta| > (|eta| + z)/2.
constexpr double kZetaZ1Hi = 0.44774320469430284;  // zeta(z1) = 0, z1 = hi + lo
constexpr double kZetaZ1Lo = 5.9843149850025696e-18;
constexpr double kZetaZLo = 0.3;
constexpr double kZetaZHi = 0.6;

// g1((z - 0.45) / 0.15) = zeta(z) / (z - z1)
KERNKIT_INLINE double zeta_g(double u) {
  return (((((((((((((((((((-1.6266360068977143e-10) * u + 5.123946491537396e-10) * u + -8.048271007109781e-10) * u + 2.5625132315310453e-09) * u + -9.91726256887401e-09) * u + 3.172259022491827e-08) * u + -9.988757376060958e-08) * u + 3.2271908149639203e-07) * u + -1.0503004741040707e-06) * u + 3.437232011980269e-06) * u + -1.1341794816490437e-05) * u + 3.780407976644799e-05) * u + -0.00012757763239679774) * u + 0.0004373607426615099) * u + -0.0015309408802547115) * u + 0.00551617157742808) * u + -0.020692769821129563) * u + 0.08168621923811341) * u + -0.3389776994611876) * u + 3.44195693292379;
}

}  // namespace bessel_detail
}  // namespace kernkit
