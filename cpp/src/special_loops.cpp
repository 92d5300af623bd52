// Elementwise special-function loops. Compiled once per ISA (KERNKIT_ISA_NS) by CMake.
#include <type_traits>

#include "isa.hpp"
#include "kernkit/detail/special_ops.hpp"
#include "bessel_blocks.hpp"
#include "parallel.hpp"

namespace kernkit::KERNKIT_ISA_NS {

// The other functions: the plain elementwise loop, with the scalar function inlined into this
// ISA's code (bessel_blocks::scalar_call; see parallel.hpp on why).
template <class T, class Op>
void map_scalar(std::int64_t n, const T* v, std::int64_t sv, const T* x, std::int64_t sx, T* out,
                std::int64_t so, int nthreads, Op op) {
  detail::parallel_for(n, nthreads, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i)
      out[i * so] = bessel_blocks::scalar_call(op, v[i * sv], x[i * sx]);
  });
}

template <class T>
void special(SpecialFn fn, std::int64_t n, const T* v, std::int64_t sv, const T* x,
             std::int64_t sx, T* out, std::int64_t so, int nthreads) {
  namespace bd = ::kernkit::bessel_detail;
  switch (fn) {  // the log functions: vectorised Debye blocks (bessel_blocks.hpp)
    case SpecialFn::log_iv:
      return bessel_blocks::run<bd::kLogI>(n, v, sv, x, sx, out, so, nthreads);
    case SpecialFn::log_ive:
      return bessel_blocks::run<bd::kLogIs>(n, v, sv, x, sx, out, so, nthreads);
    case SpecialFn::log_kv:
      return bessel_blocks::run<bd::kLogK>(n, v, sv, x, sx, out, so, nthreads);
    case SpecialFn::log_kve:
      return bessel_blocks::run<bd::kLogKs>(n, v, sv, x, sx, out, so, nthreads);
    default:  // the ratio and the derivatives (the log functions are not instantiated here)
      detail::visit_special(fn, [&](auto op) {
        using O = decltype(op);
        constexpr bool kLog = std::is_same_v<O, detail::op_log_iv> || std::is_same_v<O, detail::op_log_ive> ||
                              std::is_same_v<O, detail::op_log_kv> || std::is_same_v<O, detail::op_log_kve>;
        if constexpr (!kLog) map_scalar(n, v, sv, x, sx, out, so, nthreads, op);
      });
  }
}

template void special<float>(SpecialFn, std::int64_t, const float*, std::int64_t, const float*,
                             std::int64_t, float*, std::int64_t, int);
template void special<double>(SpecialFn, std::int64_t, const double*, std::int64_t,
                              const double*, std::int64_t, double*, std::int64_t, int);

}  // namespace kernkit::KERNKIT_ISA_NS
