// Elementwise special-function loops. Compiled once per ISA (KERNKIT_ISA_NS) by CMake.
#include "isa.hpp"
#include "kernkit/detail/special_ops.hpp"
#include "parallel.hpp"

namespace kernkit::KERNKIT_ISA_NS {

template <class T>
void special(SpecialFn fn, std::int64_t n, const T* v, std::int64_t sv, const T* x,
             std::int64_t sx, T* out, std::int64_t so, int nthreads) {
  detail::visit_special(fn, [&](auto op) { detail::map2(n, v, sv, x, sx, out, so, nthreads, op); });
}

template void special<float>(SpecialFn, std::int64_t, const float*, std::int64_t, const float*,
                             std::int64_t, float*, std::int64_t, int);
template void special<double>(SpecialFn, std::int64_t, const double*, std::int64_t,
                              const double*, std::int64_t, double*, std::int64_t, int);

}  // namespace kernkit::KERNKIT_ISA_NS
