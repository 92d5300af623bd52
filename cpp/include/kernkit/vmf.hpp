// Array drivers of the von Mises-Fisher code (kernkit.vmf): row statistics of points on the
// sphere (the norms, dot products and distances to the mean direction that its log-density and
// fit need, in one pass over the points), A_p(kappa) and the maximum-likelihood kappa (the
// scalars of kernkit/math/vmf.hpp over arrays).
#pragma once
#include <cstdint>

#include "kernkit/math/vmf.hpp"

namespace kernkit::vmf {

// For each row i < n of the (n, p) matrix x (row i at x + i*ldx, unit column stride):
//   norm2[i] = sum_j x_ij^2,   dot[i] = sum_j mu_j x_ij,   dist2[i] = sum_j (x_ij - mu_j)^2.
// dist2 is summed term by term (not as norm2 - 2 dot + |mu|^2), so it keeps its relative
// precision for points close to mu, where 1 - mu^T x would cancel. Each sum is taken over 8
// partial sums (column j goes to partial j % 8) added in a fixed order at the end: the same
// bits on every instruction set and thread count.
// Throws std::invalid_argument for negative sizes, ldx < p, or a null pointer with n*p > 0.
void row_stats(std::int64_t n, std::int64_t p, const double* x, std::int64_t ldx, const double* mu,
               double* norm2, double* dot, double* dist2);

// A_p(kappa[i]), 1 - A_p and A_p' for i < n (kernkit/math/vmf.hpp: vmf_a_u_da; kappa >= 0), and
// the maximum-likelihood kappa[i] for r[i] in (0, 1), d[i] = 1 - r[i] > 0 (vmf_kappa_newton);
// thr and the nc coefficients c of the large-kappa expansion of 1 - A_p as there; evals (may be
// null) receives each element's number of A_p evaluations.
// Throws std::invalid_argument for p < 2, n < 0, nc < 1 or a null pointer with n > 0.
void a_u_da(std::int64_t n, int p, const double* kappa, double thr, const double* c, int nc, double* A,
            double* u, double* dA);
void kappa_mle(std::int64_t n, int p, const double* r, const double* d, double thr, const double* c, int nc,
               double* kappa, int* evals = nullptr);

}  // namespace kernkit::vmf
