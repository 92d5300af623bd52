// The vMF row loop (kernkit::vmf::row_stats), compiled once per ISA (KERNKIT_ISA_NS) by CMake.
#include "vmf_isa.hpp"
#include "parallel.hpp"

namespace kernkit::KERNKIT_ISA_NS {

namespace {
constexpr int kParts = 8;  // partial sums per quantity: one vector of 8, 2 of 4 or 4 of 2 lanes

// The partials in one fixed order (the same whatever the vector width).
inline double combine(const double* a) { return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7])); }
}  // namespace

void vmf_row_stats(std::int64_t n, std::int64_t p, const double* x, std::int64_t ldx,
                   const double* mu, double* norm2, double* dot, double* dist2, int nthreads) {
  detail::parallel_for(n, nthreads, [&](std::int64_t i0, std::int64_t i1) {
    for (std::int64_t i = i0; i < i1; ++i) {
      const double* r = x + i * ldx;
      double a[kParts] = {}, b[kParts] = {}, c[kParts] = {};
      std::int64_t j = 0;
      for (; j + kParts <= p; j += kParts) {
#pragma omp simd  // across l: the partials are the vector lanes
        for (int l = 0; l < kParts; ++l) {
          const double xv = r[j + l], m = mu[j + l], d = xv - m;
          a[l] += xv * xv;
          b[l] += m * xv;
          c[l] += d * d;
        }
      }
      for (int l = 0; j + l < p; ++l) {
        const double xv = r[j + l], m = mu[j + l], d = xv - m;
        a[l] += xv * xv;
        b[l] += m * xv;
        c[l] += d * d;
      }
      norm2[i] = combine(a);
      dot[i] = combine(b);
      dist2[i] = combine(c);
    }
  });
}

}  // namespace kernkit::KERNKIT_ISA_NS
