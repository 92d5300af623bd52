// CPU driver of the vMF row statistics: argument checks, then the ISA variant picked at run time.
#include "kernkit/vmf.hpp"

#include <stdexcept>
#include <string>

#include "isa.hpp"
#include "parallel.hpp"
#include "vmf_isa.hpp"

namespace kernkit::vmf {

void row_stats(std::int64_t n, std::int64_t p, const double* x, std::int64_t ldx, const double* mu,
               double* norm2, double* dot, double* dist2) {
  if (n < 0 || p < 0)
    throw std::invalid_argument("vmf::row_stats: negative size (n = " + std::to_string(n) +
                                ", p = " + std::to_string(p) + ")");
  if (ldx < p)
    throw std::invalid_argument("vmf::row_stats: row stride " + std::to_string(ldx) +
                                " is below the row length " + std::to_string(p));
  if (n == 0) return;
  if (!norm2 || !dot || !dist2 || (p > 0 && (!x || !mu)))
    throw std::invalid_argument("vmf::row_stats: null pointer");
  const int nt = detail::threads_for(n, 0.4 * static_cast<double>(p) + 20.0);
  KERNKIT_ISA_RETURN(vmf_row_stats(n, p, x, ldx, mu, norm2, dot, dist2, nt))
}

}  // namespace kernkit::vmf
