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

// `return isa_<level>::CALL;` for the active ISA: the one switch over the compiled variants of
// a loop file, e.g. KERNKIT_ISA_RETURN(special(fn, n, v, sv, x, sx, out, so, nt)). Used inside
// namespace kernkit; variants not built (KERNKIT_HAVE_ISA_*) fall to the baseline.
#ifdef KERNKIT_HAVE_ISA_AVX512
#define KERNKIT_ISA_CASE_AVX512_(CALL) \
  case ::kernkit::Isa::avx512:         \
    return isa_avx512::CALL;
#else
#define KERNKIT_ISA_CASE_AVX512_(CALL)
#endif
#ifdef KERNKIT_HAVE_ISA_AVX2
#define KERNKIT_ISA_CASE_AVX2_(CALL) \
  case ::kernkit::Isa::avx2:         \
    return isa_avx2::CALL;
#else
#define KERNKIT_ISA_CASE_AVX2_(CALL)
#endif
#define KERNKIT_ISA_RETURN(CALL)                  \
  switch (::kernkit::detail::active_isa()) {      \
    KERNKIT_ISA_CASE_AVX512_(CALL)                \
    KERNKIT_ISA_CASE_AVX2_(CALL)                  \
    default:                                      \
      return isa_baseline::CALL;                  \
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
