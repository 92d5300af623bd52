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

namespace {
void check_scalars(const char* what, std::int64_t n, int p, const double* c, int nc) {
  if (p < 2) throw std::invalid_argument(std::string("vmf::") + what + ": p must be >= 2, got " + std::to_string(p));
  if (n < 0) throw std::invalid_argument(std::string("vmf::") + what + ": negative size " + std::to_string(n));
  if (nc < 1 || !c) throw std::invalid_argument(std::string("vmf::") + what + ": no expansion coefficients");
}
}  // namespace

void a_u_da(std::int64_t n, int p, const double* kappa, double thr, const double* c, int nc, double* A,
            double* u, double* dA) {
  check_scalars("a_u_da", n, p, c, nc);
  if (n > 0 && (!kappa || !A || !u || !dA)) throw std::invalid_argument("vmf::a_u_da: null pointer");
  for (std::int64_t i = 0; i < n; ++i) {
    const VmfAU r = vmf_a_u_da(p, kappa[i], thr, c, nc);
    A[i] = r.A;
    u[i] = r.u;
    dA[i] = r.dA;
  }
}

void kappa_mle(std::int64_t n, int p, const double* r, const double* d, double thr, const double* c, int nc,
               double* kappa, int* evals) {
  check_scalars("kappa_mle", n, p, c, nc);
  if (n > 0 && (!r || !d || !kappa)) throw std::invalid_argument("vmf::kappa_mle: null pointer");
  for (std::int64_t i = 0; i < n; ++i) kappa[i] = vmf_kappa_newton(p, r[i], d[i], thr, c, nc, evals ? evals + i : nullptr);
}

}  // namespace kernkit::vmf
