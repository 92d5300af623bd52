// Internal: per-instruction-set variants of the vMF row loop (vmf_loops.cpp is compiled once
// per ISA into namespace kernkit::isa_<name>).
#pragma once
#include <cstdint>

namespace kernkit {

#define KERNKIT_DECLARE_VMF_ISA(ns)                                                              \
  namespace ns {                                                                                  \
  void vmf_row_stats(std::int64_t n, std::int64_t p, const double* x, std::int64_t ldx,          \
                     const double* mu, double* norm2, double* dot, double* dist2, int nthreads); \
  }
KERNKIT_DECLARE_VMF_ISA(isa_baseline)
KERNKIT_DECLARE_VMF_ISA(isa_avx2)
KERNKIT_DECLARE_VMF_ISA(isa_avx512)
#undef KERNKIT_DECLARE_VMF_ISA

}  // namespace kernkit
