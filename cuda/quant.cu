// CUDA LUT matmul of power-quantized weights: y (batch x rows) = x (batch x cols) @ W_hat^T,
// W_hat[r, c] = dscale[r, g] * lut[r, g][u(r, c)] decoded on the fly from the packed codes
// (layout of kernkit::quant::lut_matmul). One warp per output row, up to 8 batch accumulators per
// lane in registers, a shuffle reduction at the end.
// Word path (2-, 4- and 8-bit codes, groups a multiple of a word's codes): each lane reads
// chunks of W words; a GEMV takes W = 4 (16 bytes: 32 4-bit codes of one group) where rows are
// 16-byte aligned and groups hold whole chunks, else W = 1. A warp reads 32*4*W contiguous
// bytes per step and issues kUnroll steps before using any, so with W = 4 a 4096-column 4-bit
// row (2 KB) is in flight at once (a GEMV is bound by the bytes in flight, not by the few
// instructions per code). x is read 16 bytes at a time; a LUT shared by every row and group is
// staged in shared memory (2^b <= 256 entries); the group's scale multiplies each word's
// partial sum once. Other layouts (3-bit codes, odd row lengths) take the code-at-a-time kernel.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "check.cuh"
#include "kernkit/math/quant_codes.hpp"
#include "kernkit/quant.hpp"

namespace kernkit::cuda::quant {
namespace {

constexpr int kWarps = 4;  // rows per block
constexpr int kBatchTile = 8;
constexpr int kWordWarps = 8;  // rows per block, word path
constexpr int kUnroll = 4;     // chunks in flight per lane

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

// VEC elements loaded as one aligned 16-byte access.
template <class T, int VEC>
struct alignas(sizeof(T) * VEC) Vec {
  T v[VEC];
};

template <class T, int CB, int W, int BT>
__global__ void __launch_bounds__(kWordWarps * 32)
    lut_matmul_words(const std::uint32_t* __restrict__ packed, std::int64_t row_words, int nlut,
                     std::int64_t rows, std::int64_t cols, std::int64_t group,
                     const T* __restrict__ lut, std::int64_t l_sr, std::int64_t l_sg,
                     const T* __restrict__ dscale, const T* __restrict__ x, std::int64_t batch,
                     T* __restrict__ y) {
  constexpr int K = 32 / CB;  // codes per word
  constexpr unsigned kMask = (1u << CB) - 1u;
  constexpr int V = 16 / sizeof(T);  // x elements per 16-byte load; K is a multiple of V
  __shared__ T slut[256];
  const bool shared_lut = l_sr == 0 && l_sg == 0;
  if (shared_lut) {
    for (int i = threadIdx.x; i < nlut; i += blockDim.x) slut[i] = lut[i];
    __syncthreads();  // before any thread leaves
  }
  const int lane = threadIdx.x & 31;
  const std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * kWordWarps + (threadIdx.x >> 5);
  if (r >= rows) return;
  const auto* rp = reinterpret_cast<const Vec<std::uint32_t, W>*>(packed + r * row_words);
  const unsigned nchunks = static_cast<unsigned>(cols / (K * W));
  const unsigned chunks_per_group = static_cast<unsigned>(group / (K * W));
  const std::int64_t ng = cols / group;
  const T* ds_row = dscale + r * ng;
  const T* lut_row = lut + r * l_sr;
  for (std::int64_t b0 = 0; b0 < batch; b0 += BT) {
    const int nb = static_cast<int>(batch - b0 < BT ? batch - b0 : BT);
    const T* xb = x + b0 * cols;
    T acc[BT];
#pragma unroll
    for (int i = 0; i < BT; ++i) acc[i] = T(0);
    for (unsigned c0 = lane; c0 < nchunks; c0 += 32 * kUnroll) {
      Vec<std::uint32_t, W> chunk[kUnroll];  // issue kUnroll independent loads before using any
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const unsigned c = c0 + 32u * u;
        if (c < nchunks) chunk[u] = rp[c];
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const unsigned c = c0 + 32u * u;
        if (c >= nchunks) break;
        const unsigned g = c / chunks_per_group;  // a chunk lies in one group
        const T* L = shared_lut ? slut : lut_row + g * l_sg;
        const T ds = __ldg(ds_row + g);
#pragma unroll
        for (int e = 0; e < W; ++e) {
          const std::uint32_t word = chunk[u].v[e];
          const std::int64_t col = (static_cast<std::int64_t>(c) * W + e) * K;
          T wv[K];
#pragma unroll
          for (int k = 0; k < K; ++k) wv[k] = L[(word >> (k * CB)) & kMask];
#pragma unroll
          for (int i = 0; i < BT; ++i)
            if (i < nb) {
              const T* xp = xb + i * cols + col;
              T s = T(0);
#pragma unroll
              for (int k = 0; k < K; k += V) {
                const Vec<T, V> xv = *reinterpret_cast<const Vec<T, V>*>(xp + k);
#pragma unroll
                for (int q = 0; q < V; ++q) s += wv[k + q] * xv.v[q];
              }
              acc[i] += ds * s;
            }
        }
      }
    }
#pragma unroll
    for (int i = 0; i < BT; ++i) {
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
  const int per_word = 32 / code_bits;
  const bool words = code_bits != 3 && row_bytes % 4 == 0 && cols % per_word == 0 &&
                     group % per_word == 0 && reinterpret_cast<std::uintptr_t>(packed) % 4 == 0 &&
                     reinterpret_cast<std::uintptr_t>(x) % 16 == 0 &&
                     (cols * static_cast<std::int64_t>(sizeof(T))) % 16 == 0;
  const unsigned grid = static_cast<unsigned>(blocks);
  const unsigned wgrid = static_cast<unsigned>((rows + kWordWarps - 1) / kWordWarps);
  const auto* pw = reinterpret_cast<const std::uint32_t*>(packed);
  const int nlut = 1 << bits;
  // 16-byte chunks where every row starts 16-byte aligned and a group holds whole chunks
  const bool wide = row_bytes % 16 == 0 && reinterpret_cast<std::uintptr_t>(packed) % 16 == 0 &&
                    group % (4 * per_word) == 0;
  // Wide chunks for a GEMV (batch 1) only: with eight batch accumulators they take 164
  // registers (ptxas, sm_90) and one block per SM, against 64 registers for batch 1.
  auto launch = [&](auto cb) {
    constexpr int CB = decltype(cb)::value;
    if (wide && batch == 1)
      lut_matmul_words<T, CB, 4, 1><<<wgrid, kWordWarps * 32, 0, s>>>(pw, row_bytes / 4, nlut, rows, cols, group,
                                                                    lut, l_sr, l_sg, dscale, x, batch, y);
    else
      lut_matmul_words<T, CB, 1, kBatchTile><<<wgrid, kWordWarps * 32, 0, s>>>(pw, row_bytes / 4, nlut, rows, cols,
                                                                             group, lut, l_sr, l_sg, dscale, x, batch, y);
  };
  if (words && code_bits == 4)
    launch(std::integral_constant<int, 4>{});
  else if (words && code_bits == 2)
    launch(std::integral_constant<int, 2>{});
  else if (words && code_bits == 8)
    launch(std::integral_constant<int, 8>{});
  else
    lut_matmul_kernel<T><<<grid, kWarps * 32, 0, s>>>(packed, row_bytes, code_bits, rows, cols,
                                                      group, lut, l_sr, l_sg, dscale, x, batch, y);
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
