// Internal: how the CPU rational loops split the work (fixed chunks of whole rows, independent of
// the thread count, so the coefficient-gradient sums are bitwise reproducible).
#pragma once
#include <cstdint>

#include "kernkit/rational.hpp"

namespace kernkit::detail {

struct RationalPlan {
  RationalShape shape;
  std::int64_t row = 0;          // channels * inner: elements per outer index
  std::int64_t seg_channels = 0; // channels per (numerator group, denominator group) run
  std::int64_t seg = 0;          // elements per run (seg_channels * inner), contiguous
  std::int64_t nseg = 0;         // runs per row
  std::int64_t num_per = 0, den_per = 0;  // channels per numerator / denominator group
  int na = 0, nb = 0;            // coefficients per numerator / denominator group
  std::int64_t ncoef = 0;        // num_groups * na + den_groups * nb
  std::int64_t rows_per_chunk = 1, nchunks = 0;
  // Short runs (seg < rational_short_run): the loops take `period_rows` rows at a time as one
  // stream of `period` elements whose vector lanes span channels, each lane with its own group's
  // coefficients from a per-position table (the channel pattern repeats every row), instead of
  // one call per run. period_rows makes the period a multiple of 8 elements (so of every vector
  // width) where the table stays small, else it is 1. 0 = the run-wise loops.
  std::int64_t period_rows = 0, period = 0;
};

// Lanes of the per-chunk coefficient-gradient accumulators (doubles).
constexpr int rational_lanes = 16;
// Elements per inner block (stack arrays of this size per intermediate).
constexpr int rational_block = 256;
// Runs shorter than this take the short-run (per-lane coefficient) loops; measured crossover.
constexpr std::int64_t rational_short_run = 64;
// Largest per-position coefficient table of the short-run loops, in doubles (8 MiB), and the
// size up to which a period of several rows is preferred to one row.
constexpr std::int64_t rational_table_max = std::int64_t{1} << 20;
constexpr std::int64_t rational_table_rows_max = std::int64_t{1} << 16;

}  // namespace kernkit::detail

#define KERNKIT_DECLARE_RATIONAL_ISA(ns)                                                     \
  namespace kernkit::ns {                                                                     \
  template <class T>                                                                          \
  void rational_forward_loop(const detail::RationalPlan& p, const T* x, const double* a,     \
                             const double* c, T* y, int nthreads);                            \
  template <class T>                                                                          \
  void rational_backward_loop(const detail::RationalPlan& p, const T* g, const T* x,         \
                              const double* a, const double* c, T* dx, double* partials,     \
                              bool coef, int nthreads);                                       \
  }
KERNKIT_DECLARE_RATIONAL_ISA(isa_baseline)
KERNKIT_DECLARE_RATIONAL_ISA(isa_avx2)
KERNKIT_DECLARE_RATIONAL_ISA(isa_avx512)
#undef KERNKIT_DECLARE_RATIONAL_ISA
