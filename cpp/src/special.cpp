// CPU driver of the special functions: argument checks, then the ISA variant picked at run time.
#include "kernkit/special.hpp"

#include <stdexcept>
#include <string>

#include "isa.hpp"
#include "parallel.hpp"

namespace kernkit {

template <class T>
void special(SpecialFn fn, std::int64_t n, const T* v, std::int64_t sv, const T* x,
             std::int64_t sx, T* out, std::int64_t so) {
  if (static_cast<int>(fn) < 0 || fn >= SpecialFn::count_)
    throw std::invalid_argument("kernkit::special: unknown function id " +
                                std::to_string(static_cast<int>(fn)));
  if (n < 0) throw std::invalid_argument("kernkit::special: n must be >= 0, got " + std::to_string(n));
  if (n == 0) return;
  if (!v || !x || !out) throw std::invalid_argument("kernkit::special: null pointer with n > 0");
  // About 100 ns per element: worth a second thread from a few thousand elements on.
  const int nt = detail::threads_for(n, 100.0);
  KERNKIT_ISA_RETURN(special(fn, n, v, sv, x, sx, out, so, nt))
}

template void special<float>(SpecialFn, std::int64_t, const float*, std::int64_t, const float*,
                             std::int64_t, float*, std::int64_t);
template void special<double>(SpecialFn, std::int64_t, const double*, std::int64_t,
                              const double*, std::int64_t, double*, std::int64_t);

}  // namespace kernkit
