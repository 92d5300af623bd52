// Internal: the per-instruction-set variants of the elementwise loops (special_loops.cpp is
// compiled once per ISA into namespace kernkit::isa_<name>).
#pragma once
#include <cstdint>

#include "kernkit/special.hpp"

namespace kernkit {

enum class Isa : int { baseline = 0, avx2 = 1, avx512 = 2 };

namespace detail {
Isa active_isa();  // chosen once per process from the CPU and KERNKIT_SIMD
}

#define KERNKIT_DECLARE_ISA(ns)                                                               \
  namespace ns {                                                                               \
  template <class T>                                                                           \
  void special(SpecialFn fn, std::int64_t n, const T* v, std::int64_t sv, const T* x,         \
               std::int64_t sx, T* out, std::int64_t so, int nthreads);                        \
  }
KERNKIT_DECLARE_ISA(isa_baseline)
KERNKIT_DECLARE_ISA(isa_avx2)
KERNKIT_DECLARE_ISA(isa_avx512)
#undef KERNKIT_DECLARE_ISA

}  // namespace kernkit
