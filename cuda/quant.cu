// CUDA LUT matmul of power-quantized weights: y (batch x rows) = x (batch x cols) @ W_hat^T,
// W_hat[r, c] = dscale[r, g] * lut[r, g][u(r, c)] decoded on the fly from the packed codes
// (layout of kernkit::quant::lut_matmul). One warp per output row; each lane walks the row's
// codes with a stride of 32, keeps up to 8 batch accumulators in registers and the warp reduces
// with shuffles. Compiled everywhere nvcc exists; not yet timed on a GPU.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "check.cuh"
#include "kernkit/math/quant_codes.hpp"
#include "kernkit/quant.hpp"

namespace kernkit::cuda::quant {
namespace {

constexpr int kWarps = 4;  // rows per block
constexpr int kBatchTile = 8;

template <class T>
__global__ void lut_matmul_kernel(const std::uint8_t* __restrict__ packed, std::int64_t row_bytes,
                                  int code_bits, std::int64_t rows, std::int64_t cols,
                                  std::int64_t group, const T* __restrict__ lut,
                                  std::int64_t l_sr, std::int64_t l_sg,
                                  const T* __restrict__ dscale, const T* __restrict__ x,
                                  std::int64_t batch, T* __restrict__ y) {
  const int lane = threadIdx.x & 31;
  const std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (r >= rows) return;
  const std::uint8_t* rp = packed + r * row_bytes;
  const std::int64_t ng = cols / group;
  for (std::int64_t b0 = 0; b0 < batch; b0 += kBatchTile) {
    const int nb = static_cast<int>(batch - b0 < kBatchTile ? batch - b0 : kBatchTile);
    T acc[kBatchTile];
#pragma unroll
    for (int i = 0; i < kBatchTile; ++i) acc[i] = T(0);
    for (std::int64_t c = lane; c < cols; c += 32) {
      const std::int64_t g = c / group;
      const T w = dscale[r * ng + g] * lut[r * l_sr + g * l_sg + packed_code_at(rp, c, code_bits)];
#pragma unroll
      for (int i = 0; i < kBatchTile; ++i)
        if (i < nb) acc[i] += w * x[(b0 + i) * cols + c];
    }
#pragma unroll
    for (int i = 0; i < kBatchTile; ++i) {
      T v = acc[i];
      for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
      if (lane == 0 && i < nb) y[(b0 + i) * rows + r] = v;
    }
  }
}

}  // namespace

template <class T>
void lut_matmul(const std::uint8_t* packed, std::int64_t row_bytes, int code_bits, int bits,
                std::int64_t rows, std::int64_t cols, std::int64_t group, const T* lut,
                std::int64_t l_sr, std::int64_t l_sg, const T* dscale, const T* x,
                std::int64_t batch, T* y, void* stream_) {
  if (code_bits != 2 && code_bits != 3 && code_bits != 4 && code_bits != 8)
    throw std::invalid_argument("kernkit::cuda::quant::lut_matmul: code_bits must be 2, 3, 4 or 8");
  if (bits < 2 || bits > code_bits)
    throw std::invalid_argument("kernkit::cuda::quant::lut_matmul: bits must be in [2, code_bits]");
  if (rows < 0 || cols < 0 || batch < 0 || group <= 0 || (cols > 0 && cols % group != 0))
    throw std::invalid_argument("kernkit::cuda::quant::lut_matmul: bad rows/cols/group/batch");
  if (row_bytes < (cols * code_bits + 7) / 8)
    throw std::invalid_argument("kernkit::cuda::quant::lut_matmul: row_bytes too small");
  if (rows == 0 || batch == 0) return;
  auto s = static_cast<cudaStream_t>(stream_);
  const std::int64_t blocks = (rows + kWarps - 1) / kWarps;
  if (blocks > 2147483647LL) throw std::invalid_argument("kernkit::cuda::quant::lut_matmul: too many rows");
  lut_matmul_kernel<T><<<static_cast<unsigned>(blocks), kWarps * 32, 0, s>>>(
      packed, row_bytes, code_bits, rows, cols, group, lut, l_sr, l_sg, dscale, x, batch, y);
  KERNKIT_CUDA_CHECK(cudaGetLastError());
}

template void lut_matmul<float>(const std::uint8_t*, std::int64_t, int, int, std::int64_t,
                                std::int64_t, std::int64_t, const float*, std::int64_t,
                                std::int64_t, const float*, const float*, std::int64_t, float*,
                                void*);
template void lut_matmul<double>(const std::uint8_t*, std::int64_t, int, int, std::int64_t,
                                 std::int64_t, std::int64_t, const double*, std::int64_t,
                                 std::int64_t, const double*, const double*, std::int64_t,
                                 double*, void*);

}  // namespace kernkit::cuda::quant
