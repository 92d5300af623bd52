// sin(pi x) and cos(pi x) in double for FFT twiddle tables: CUDA's sincospi on the device; on the
// host a reduction to [-1/4, 1/4] that is exact for the fractions m/2^j twiddles use, so the
// results (and symmetries such as cos(pi/2) = 0) do not depend on rounding pi * x.
#pragma once
#include <cmath>

#include "kernkit/math/config.hpp"

namespace kernkit::math {

KERNKIT_INLINE void sincospi(double x, double* s, double* c) {
#if defined(__CUDA_ARCH__)
  ::sincospi(x, s, c);
#else
  const double q = std::nearbyint(2.0 * x);  // x = q/2 + r, |r| <= 1/4 (exact)
  const double r = x - 0.5 * q;
  const double pr = 3.14159265358979323846 * r;
  const double sr = r == 0.0 ? 0.0 : std::sin(pr), cr = r == 0.0 ? 1.0 : std::cos(pr);
  switch (static_cast<long long>(q) & 3) {
    case 0: *s = sr; *c = cr; break;
    case 1: *s = cr; *c = -sr; break;
    case 2: *s = -sr; *c = -cr; break;
    default: *s = -cr; *c = sr; break;
  }
#endif
}

}  // namespace kernkit::math
