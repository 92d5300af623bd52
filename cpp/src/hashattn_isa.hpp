// Internal: per-instruction-set variants of the hashed-attention loops (hashattn_loops.cpp is
// compiled once per ISA into namespace kernkit::isa_<name>).
#pragma once
#include <cstdint>

namespace kernkit {

#define KERNKIT_DECLARE_HASHATTN_ISA(ns)                                                      \
  namespace ns {                                                                               \
  void hashattn_f32(const void* hq, const void* hk, int word_bytes, int bits, const float* v,  \
                    float* out, std::int64_t bh, std::int64_t nq, std::int64_t nk,            \
                    std::int64_t d, double offset, bool causal, int mode,                       \
                    const std::int64_t* key_lengths, int nthreads);                            \
  void hashattn_f64(const void* hq, const void* hk, int word_bytes, int bits, const double* v, \
                    double* out, std::int64_t bh, std::int64_t nq, std::int64_t nk,           \
                    std::int64_t d, double offset, bool causal, int mode,                       \
                    const std::int64_t* key_lengths, int nthreads);                            \
  }
KERNKIT_DECLARE_HASHATTN_ISA(isa_baseline)
KERNKIT_DECLARE_HASHATTN_ISA(isa_avx2)
KERNKIT_DECLARE_HASHATTN_ISA(isa_avx512)
#undef KERNKIT_DECLARE_HASHATTN_ISA

}  // namespace kernkit
