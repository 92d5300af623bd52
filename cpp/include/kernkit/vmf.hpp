// Row statistics of points on the sphere for the von Mises-Fisher code (kernkit.vmf): the
// norms, dot products and distances to the mean direction that its log-density and fit need,
// in one pass over the points.
#pragma once
#include <cstdint>

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

}  // namespace kernkit::vmf
