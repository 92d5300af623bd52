// Elementwise special-function loops. Compiled once per ISA (KERNKIT_ISA_NS) by CMake.
#include "isa.hpp"
#include "kernkit/special.hpp"
#include "bessel_blocks.hpp"
#include "parallel.hpp"

namespace kernkit::KERNKIT_ISA_NS {

template <class T>
void special(SpecialFn fn, std::int64_t n, const T* v, std::int64_t sv, const T* x,
             std::int64_t sx, T* out, std::int64_t so, int nthreads) {
  namespace bd = ::kernkit::bessel_detail;
  switch (fn) {  // vectorised blocks by class (bessel_blocks.hpp)
    case SpecialFn::log_iv:
      return bessel_blocks::run<bd::kLogI>(n, v, sv, x, sx, out, so, nthreads);
    case SpecialFn::log_ive:
      return bessel_blocks::run<bd::kLogIs>(n, v, sv, x, sx, out, so, nthreads);
    case SpecialFn::log_kv:
      return bessel_blocks::run<bd::kLogK>(n, v, sv, x, sx, out, so, nthreads);
    case SpecialFn::log_kve:
      return bessel_blocks::run<bd::kLogKs>(n, v, sv, x, sx, out, so, nthreads);
    case SpecialFn::iv_ratio:
      return bessel_blocks::run<bd::kRatioI>(n, v, sv, x, sx, out, so, nthreads);
    case SpecialFn::dlog_iv:
      return bessel_blocks::run<bd::kDlogI>(n, v, sv, x, sx, out, so, nthreads);
    case SpecialFn::dlog_kv:
      return bessel_blocks::run<bd::kDlogK>(n, v, sv, x, sx, out, so, nthreads);
    default:  // unknown ids are refused by the caller
      return;
  }
}

template void special<float>(SpecialFn, std::int64_t, const float*, std::int64_t, const float*,
                             std::int64_t, float*, std::int64_t, int);
template void special<double>(SpecialFn, std::int64_t, const double*, std::int64_t,
                              const double*, std::int64_t, double*, std::int64_t, int);

}  // namespace kernkit::KERNKIT_ISA_NS
