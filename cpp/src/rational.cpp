// CPU driver of the group-rational activations: argument checks, the work plan, coefficient
// preprocessing, the ISA variant picked at run time, and the fixed-order sum of the per-chunk
// coefficient-gradient partials.
#include "kernkit/rational.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "isa.hpp"
#include "parallel.hpp"
#include "rational_plan.hpp"

namespace kernkit {

namespace {

std::int64_t gcd64(std::int64_t a, std::int64_t b) {
  while (b) {
    const std::int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

[[noreturn]] void bad(const std::string& what) {
  throw std::invalid_argument("kernkit::rational: " + what);
}

detail::RationalPlan make_plan(const RationalShape& s) {
  rational_check(s);
  detail::RationalPlan p;
  p.shape = s;
  p.row = s.channels * s.inner;
  p.num_per = s.channels / s.num_groups;
  p.den_per = s.channels / s.den_groups;
  p.seg_channels = gcd64(p.num_per, p.den_per);
  p.seg = p.seg_channels * s.inner;
  p.nseg = s.channels / p.seg_channels;
  p.na = s.deg_num + 1;
  p.nb = math::rational_den_count(s.form, s.deg_den);
  p.ncoef = s.num_groups * p.na + s.den_groups * p.nb;
  // Chunks of whole rows: at least 64k elements, and enough that zeroing the per-chunk lane
  // accumulators (ncoef * lanes doubles) is a small part of the work. Depends on the shape only.
  const std::int64_t want = std::max<std::int64_t>(
      65536, 16 * static_cast<std::int64_t>(detail::rational_lanes) * p.ncoef);
  p.rows_per_chunk = p.row > 0 ? std::max<std::int64_t>(1, want / p.row) : 1;
  // Short runs: a period of rows whose element count is a multiple of 8 (lanes line up with the
  // same positions every period) unless its table grows large, then single rows. Chunks hold
  // whole periods, so only the last chunk ends inside one.
  const std::int64_t nc = p.na + p.nb;
  if (p.seg < detail::rational_short_run && p.row > 0 && p.row * nc <= detail::rational_table_max) {
    const std::int64_t r = 8 / gcd64(p.row, 8);
    p.period_rows = r * p.row * nc <= detail::rational_table_rows_max ? r : 1;
    p.period = p.period_rows * p.row;
    p.rows_per_chunk = (p.rows_per_chunk + p.period_rows - 1) / p.period_rows * p.period_rows;
  }
  p.nchunks = s.outer > 0 ? (s.outer + p.rows_per_chunk - 1) / p.rows_per_chunk : 0;
  return p;
}

// Coefficients as the loops use them, in double (their arithmetic type; float32 converts
// exactly): the numerator as given, the denominator as |b| for form A, b otherwise.
template <class T>
std::vector<double> loop_num(const RationalShape& s, const T* num) {
  return std::vector<double>(num, num + s.num_groups * (s.deg_num + 1));
}
template <class T>
std::vector<double> loop_den(const RationalShape& s, const T* den) {
  const std::int64_t nb = s.den_groups * math::rational_den_count(s.form, s.deg_den);
  std::vector<double> c(den, den + nb);
  if (s.form == RationalForm::A)
    for (auto& v : c) v = std::abs(v);
  return c;
}

}  // namespace

void rational_check(const RationalShape& s) {
  if (s.outer < 0 || s.channels < 0 || s.inner < 0)
    bad("sizes (outer, channels, inner) must be >= 0");
  if (s.channels == 0) bad("channels must be >= 1");
  if (s.num_groups < 1) bad("num_groups must be >= 1, got " + std::to_string(s.num_groups));
  if (s.den_groups < 1) bad("den_groups must be >= 1, got " + std::to_string(s.den_groups));
  if (s.channels % s.num_groups != 0)
    bad("channels (" + std::to_string(s.channels) + ") must be divisible by num_groups (" +
        std::to_string(s.num_groups) + ")");
  if (s.channels % s.den_groups != 0)
    bad("channels (" + std::to_string(s.channels) + ") must be divisible by den_groups (" +
        std::to_string(s.den_groups) + ")");
  if (s.deg_num < 0 || s.deg_num > math::rational_max_degree)
    bad("deg_num must be in [0, " + std::to_string(math::rational_max_degree) + "], got " +
        std::to_string(s.deg_num));
  if (s.deg_den < 0 || s.deg_den > math::rational_max_degree)
    bad("deg_den must be in [0, " + std::to_string(math::rational_max_degree) + "], got " +
        std::to_string(s.deg_den));
  const int f = static_cast<int>(s.form);
  if (f < 0 || f > 2) bad("unknown form id " + std::to_string(f) + " (A=0, B=1, C=2)");
}

template <class T>
void rational_forward(const RationalShape& s, const T* x, const T* num, const T* den, T* y) {
  const detail::RationalPlan p = make_plan(s);
  const std::int64_t n = s.outer * p.row;
  if (n == 0) return;
  if (!x || !num || !y || (!den && p.nb > 0)) bad("null pointer");
  const std::vector<double> a = loop_num(s, num), c = loop_den(s, den);
  const int deg = s.deg_num + s.deg_den;
  const int nt = std::min<std::int64_t>(detail::threads_for(n, 0.3 + 0.1 * deg), p.nchunks);
  KERNKIT_ISA_RETURN(rational_forward_loop(p, x, a.data(), c.data(), y, nt))
}

template <class T>
void rational_backward(const RationalShape& s, const T* grad, const T* x, const T* num,
                       const T* den, T* dx, T* dnum, T* dden) {
  const detail::RationalPlan p = make_plan(s);
  const std::int64_t n = s.outer * p.row;
  const bool coef = dnum || dden;
  if (coef) {
    if (dnum) std::fill(dnum, dnum + s.num_groups * p.na, T(0));
    if (dden) std::fill(dden, dden + s.den_groups * p.nb, T(0));
  }
  if (n == 0) return;
  if (!grad || !x || !num || (!den && p.nb > 0)) bad("null pointer");
  if (!dx && !coef) return;
  const std::vector<double> a = loop_num(s, num), c = loop_den(s, den);
  std::vector<double> partials(coef ? static_cast<std::size_t>(p.nchunks * p.ncoef) : 0);
  const int deg = s.deg_num + s.deg_den;
  const int nt = std::min<std::int64_t>(detail::threads_for(n, 1.0 + 0.3 * deg), p.nchunks);
  double* part = coef ? partials.data() : nullptr;
  [&] { KERNKIT_ISA_RETURN(rational_backward_loop(p, grad, x, a.data(), c.data(), dx, part, coef, nt)) }();
  if (!coef) return;
  // Fixed-order sum over chunks (serial, chunk 0 first): independent of the thread count.
  std::vector<double> total(static_cast<std::size_t>(p.ncoef), 0.0);
  for (std::int64_t ch = 0; ch < p.nchunks; ++ch) {
    const double* pc = part + ch * p.ncoef;
    for (std::int64_t i = 0; i < p.ncoef; ++i) total[i] += pc[i];
  }
  const std::int64_t nna = s.num_groups * p.na;
  if (dnum)
    for (std::int64_t i = 0; i < nna; ++i) dnum[i] = static_cast<T>(total[i]);
  if (dden)
    for (std::int64_t i = 0; i < s.den_groups * p.nb; ++i) {
      double v = total[nna + i];
      if (s.form == RationalForm::A) {  // d/db_k |b_k| = sign(b_k), sign(0) = 0
        const T b = den[i];
        v = b > T(0) ? v : (b < T(0) ? -v : 0.0 * v);
      }
      dden[i] = static_cast<T>(v);
    }
}

template void rational_forward<float>(const RationalShape&, const float*, const float*,
                                      const float*, float*);
template void rational_forward<double>(const RationalShape&, const double*, const double*,
                                       const double*, double*);
template void rational_backward<float>(const RationalShape&, const float*, const float*,
                                       const float*, const float*, float*, float*, float*);
template void rational_backward<double>(const RationalShape&, const double*, const double*,
                                        const double*, const double*, double*, double*,
                                        double*);

}  // namespace kernkit
