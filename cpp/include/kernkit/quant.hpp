// Power-exponent quantization (PowerQuant, Yvinec et al. ICLR 2023; NUPES, TPAMI 2025):
// array drivers for encoding, decoding, the exponent search and the lookup-table matmul.
//
// Layout (PyTorch Linear convention): W is (rows = out_features, cols = in_features), row-major;
// a group is `group` consecutive weights of a row (group == cols: one group per channel).
// Per (row, group) the quantizer has an exponent a and a scale s in the power domain:
//   P_a(w) = sign(w)|w|^a,  q = clip(round(P_a(w)/s), qlo, qhi),  w_hat = sign(s q)|s q|^{1/a}.
// Codes are stored unsigned, u = q + 2^{b-1}. The symmetric grid uses q in [-(2^{b-1}-1),
// 2^{b-1}-1] with s = max|P|/(2^{b-1}-1) > 0; the full grid (all 2^b codes) uses q in
// [-2^{b-1}, 2^{b-1}-1] with s = -sign(w*)max|P|/2^{b-1}, w* the group's largest |w|, so that
// w* lands on the longer (negative-q) side. A group of zeros gets s = 0 and all codes 2^{b-1}.
//
// Per-(row, group) parameters are passed as pointers with a row stride and a group stride in
// elements (0 broadcasts: a per-tensor exponent has both strides 0).
#pragma once
#include <cstdint>

namespace kernkit::quant {

// codes[r*cols + c] (uint8) and scales[r*ngroups + g] from w. bits in {2,...,8}.
template <class T>
void encode(const T* w, std::int64_t rows, std::int64_t cols, std::int64_t group, int bits,
            bool full, const T* a, std::int64_t a_sr, std::int64_t a_sg, std::uint8_t* codes,
            T* scales);

// out = dequantized weights from codes/scales/a (the same parameter layout as encode).
template <class T>
void decode(const std::uint8_t* codes, std::int64_t rows, std::int64_t cols,
            std::int64_t group, int bits, const T* scales, std::int64_t s_sr, std::int64_t s_sg,
            const T* a, std::int64_t a_sr, std::int64_t a_sg, T* out);

// Exponent search: err[(r*ngroups + g)*K + k] = sum over the group of (|w| - |w_hat|)^2 for
// the candidate exponent a[r*a_sr + g*a_sg + k*a_sk], k < K (single precision; the quantizer
// is the absmax one above). w is float32.
void search_errors(const float* w, std::int64_t rows, std::int64_t cols, std::int64_t group,
                   int bits, bool full, const float* a, std::int64_t a_sr, std::int64_t a_sg,
                   std::int64_t a_sk, std::int64_t K, double* err);

// y (batch x rows) = x (batch x cols) @ W_hat^T from the packed codes, never forming W_hat:
// W_hat[r, c] = dscale[r*ngroups + g] * lut[r*l_sr + g*l_sg + u(r, c)], g = c / group.
// Storage: code_bits 2, 3 or 4: each row is an LSB-first bit stream of cols codes in
// row_bytes >= ceil(cols*code_bits/8) bytes; code_bits 8: one code per byte (row_bytes >= cols).
// lut holds 2^bits entries per (row, group) (bits <= code_bits). Float32 uses the AVX2 kernel
// where the CPU has it (cols and group multiples of 8); rows are split over threads, each row's
// sum is computed the same way for any thread count.
template <class T>
void lut_matmul(const std::uint8_t* packed, std::int64_t row_bytes, int code_bits, int bits,
                std::int64_t rows, std::int64_t cols, std::int64_t group, const T* lut,
                std::int64_t l_sr, std::int64_t l_sg, const T* dscale, const T* x,
                std::int64_t batch, T* y);

}  // namespace kernkit::quant

namespace kernkit::cuda::quant {
// The LUT matmul on device pointers (same layout as kernkit::quant::lut_matmul), enqueued on
// `stream` (a cudaStream_t). Throws std::runtime_error in a build without CUDA.
template <class T>
void lut_matmul(const std::uint8_t* packed, std::int64_t row_bytes, int code_bits, int bits,
                std::int64_t rows, std::int64_t cols, std::int64_t group, const T* lut,
                std::int64_t l_sr, std::int64_t l_sg, const T* dscale, const T* x,
                std::int64_t batch, T* y, void* stream);
}  // namespace kernkit::cuda::quant
