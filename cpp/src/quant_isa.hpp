// Internal: per-instruction-set variants of the power-quantization loops (quant_loops.cpp is
// compiled once per ISA into namespace kernkit::isa_<name>).
#pragma once
#include <cstdint>

namespace kernkit {

#define KERNKIT_DECLARE_QUANT_ISA(ns)                                                         \
  namespace ns {                                                                               \
  void quant_search_errors(const float* w, std::int64_t rows, std::int64_t cols,              \
                           std::int64_t group, int bits, bool full, const float* a,           \
                           std::int64_t a_sr, std::int64_t a_sg, std::int64_t a_sk,           \
                           std::int64_t K, double* err, int nthreads);                         \
  bool quant_lut_matmul_f32(const std::uint8_t* packed, std::int64_t row_bytes, int code_bits, \
                            int bits, std::int64_t rows, std::int64_t cols, std::int64_t group, \
                            const float* lut, std::int64_t l_sr, std::int64_t l_sg,           \
                            const float* dscale, const float* x, std::int64_t batch, float* y, \
                            int nthreads);                                                     \
  void quant_lut_matmul_decode(const std::uint8_t* packed, std::int64_t row_bytes, int code_bits, \
                               std::int64_t rows, std::int64_t cols, std::int64_t group,      \
                               const float* lut, std::int64_t l_sr, std::int64_t l_sg,        \
                               const float* dscale, const float* x, std::int64_t batch,       \
                               float* y, int nthreads);                                        \
  void quant_lut_matmul_decode(const std::uint8_t* packed, std::int64_t row_bytes, int code_bits, \
                               std::int64_t rows, std::int64_t cols, std::int64_t group,      \
                               const double* lut, std::int64_t l_sr, std::int64_t l_sg,       \
                               const double* dscale, const double* x, std::int64_t batch,     \
                               double* y, int nthreads);                                       \
  }
KERNKIT_DECLARE_QUANT_ISA(isa_baseline)
KERNKIT_DECLARE_QUANT_ISA(isa_avx2)
KERNKIT_DECLARE_QUANT_ISA(isa_avx512)
#undef KERNKIT_DECLARE_QUANT_ISA

}  // namespace kernkit
