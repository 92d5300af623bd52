// CUDA LUT matmul of power-quantized weights: y (batch x rows) = x (batch x cols) @ W_hat^T,
// W_hat[r, c] = dscale[r, g] * lut[r, g][u(r, c)] decoded on the fly from the packed codes
// (layout of kernkit::quant::lut_matmul). A LUT shared by every row and group is staged in shared
// memory (2^b <= 256 entries); a group's scale multiplies its partial sum once.
// GEMV and batches up to 4 (2-, 4- and 8-bit codes, two words of codes per lane within one
// group): a block of 4 or 8 warps (gemv_warps) takes kGemvRows rows and splits their columns
// between its warps, in units of two code words per lane (CPL columns). A warp loads a unit's x once
// (coalesced, each batch row's) and applies it to every row of the block, whose codes and scales
// it loads first (all rows in flight), each decoded weight to every batch row; the rows' sums
// are reduced over lanes by shuffles and over warps through shared memory in a fixed order. (One
// warp per row, as before, read each lane's x at a 128-byte stride: 32 cache lines per load
// instruction, and ncu on an H200 had the GEMV at 87% of L1 throughput and 6% of DRAM's.)
// Batched word path (batches above 4, and the word layouts the GEMV kernel does not take; 2-, 4-
// and 8-bit codes, groups a multiple of a word's codes): a warp takes kWordRows rows and a tile of
// kBatchTile rows of x (grid.y); lane l takes words l, l + 32, ... of its rows, loads the rows'
// codes and group scales together, decodes 8 codes of each row at a time and applies each batch
// row's x at those columns, loaded once for all the warp's rows (one warp per row, as before,
// loaded x once per row: 4x the L1 traffic, and at batch 32 it took 20x fp16 cuBLAS's time on an
// H200); a shared table is read from shared memory with LDS (SHARED), a per-row one from global
// memory. The lanes' sums are reduced by shuffles in a fixed order.
// Other layouts (3-bit codes, odd row lengths) take the code-at-a-time kernel.
#include <cstdint>
#include <cstdlib>
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
constexpr int kWordWarps = 8;  // warps per block, word path
template <class T>
constexpr int kWordRows = sizeof(T) == 8 ? 2 : 4;  // rows per warp, word path
constexpr int kGemvRows = 8;   // GEMV: rows per block

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

template <class T, int CB, bool SHARED>
__global__ void __launch_bounds__(kWordWarps * 32, 2)
    lut_matmul_words(const std::uint32_t* __restrict__ packed, std::int64_t row_words, int nlut,
                     std::int64_t rows, std::int64_t cols, std::int64_t group,
                     const T* __restrict__ lut, std::int64_t l_sr, std::int64_t l_sg,
                     const T* __restrict__ dscale, const T* __restrict__ x, std::int64_t batch,
                     T* __restrict__ y) {
  constexpr int K = 32 / CB;              // codes per word
  constexpr int S = K < 8 ? K : 8;        // codes decoded at a time
  constexpr unsigned kMask = (1u << CB) - 1u;
  constexpr int V = 16 / sizeof(T);       // x elements per 16-byte load; S is a multiple of V
  constexpr int RW = kWordRows<T>;        // rows per warp
  __shared__ T slut[SHARED ? 256 : 1];
  if constexpr (SHARED) {
    for (int i = threadIdx.x; i < nlut; i += blockDim.x) slut[i] = lut[i];
    __syncthreads();  // before any thread leaves
  }
  const int lane = threadIdx.x & 31;
  const std::int64_t r0 = (static_cast<std::int64_t>(blockIdx.x) * kWordWarps + (threadIdx.x >> 5)) * RW;
  if (r0 >= rows) return;
  const int nr = static_cast<int>(rows - r0 < RW ? rows - r0 : RW);
  const std::int64_t b0 = static_cast<std::int64_t>(blockIdx.y) * kBatchTile;
  const int nb = static_cast<int>(batch - b0 < kBatchTile ? batch - b0 : kBatchTile);
  const std::int64_t nwords = cols / K, words_per_group = group / K, ng = cols / group;
  T acc[RW][kBatchTile];
#pragma unroll
  for (int r = 0; r < RW; ++r)
#pragma unroll
    for (int b = 0; b < kBatchTile; ++b) acc[r][b] = T(0);
  for (std::int64_t c = lane; c < nwords; c += 32) {
    const std::int64_t g = c / words_per_group;  // a word lies in one group
    std::uint32_t wd[RW];
    T ds[RW];
    const T* L[RW];
#pragma unroll
    for (int r = 0; r < RW; ++r) {  // the rows' codes and scales in flight together
      const std::int64_t row = r0 + (r < nr ? r : 0);  // rows past the end redo row r0, unstored
      wd[r] = packed[row * row_words + c];
      ds[r] = __ldg(dscale + row * ng + g);
      L[r] = SHARED ? slut : lut + row * l_sr + g * l_sg;
    }
#pragma unroll
    for (int h = 0; h < K / S; ++h) {
      T w[RW][S];
#pragma unroll
      for (int r = 0; r < RW; ++r)
#pragma unroll
        for (int k = 0; k < S; ++k) {
          const unsigned i = (wd[r] >> ((h * S + k) * CB)) & kMask;
          w[r][k] = SHARED ? L[r][i] : __ldg(L[r] + i);
        }
      const T* xp = x + b0 * cols + c * K + h * S;
#pragma unroll
      for (int b = 0; b < kBatchTile; ++b, xp += cols)
        if (b < nb) {
          Vec<T, V> xv[S / V];  // loaded once for the RW rows
#pragma unroll
          for (int j = 0; j < S / V; ++j) xv[j] = *reinterpret_cast<const Vec<T, V>*>(xp + j * V);
#pragma unroll
          for (int r = 0; r < RW; ++r) {
            T sum = T(0);
#pragma unroll
            for (int k = 0; k < S; ++k) sum += w[r][k] * xv[k / V].v[k % V];
            acc[r][b] += ds[r] * sum;
          }
        }
    }
  }
#pragma unroll
  for (int r = 0; r < RW; ++r)
#pragma unroll
    for (int b = 0; b < kBatchTile; ++b) {
      T v = acc[r][b];
      for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
      if (lane == 0 && r < nr && b < nb) y[(b0 + b) * rows + r0 + r] = v;
    }
}

// y = W_hat x for batches of 1 to 4 (see the header comment). Unit u of a row = code words 2u,
// 2u + 1 = columns [u CPL, (u + 1) CPL), in one group (group % CPL == 0); units go to lanes and
// warps in turn. Needs cols % CPL == 0, even row_words, 8-byte aligned codes and 16-byte aligned x
// rows. BT: the batch tile (batch <= BT); each decoded weight serves the BT rows of x, whose unit
// a lane holds in registers, and a block takes kGemvRows rows (half as many for BT = 4: the x
// registers). W: warps per block (4 or 8, see gemv_warps). Blocks of 8 warps per SM that ptxas
// must allow at batch 1: 3 where that costs no spills (float, 4- and 8-bit codes: 80 registers
// against 107 unbounded), else the most without spills; twice as many blocks of 4 warps.
template <class T, int CB>
constexpr int kGemvMinBlocks = sizeof(T) == 4 ? (CB == 2 ? 2 : 3) : (CB == 2 ? 1 : 2);

template <class T, int CB, int BT, int W>
__global__ void __launch_bounds__(W * 32, (BT == 1 ? kGemvMinBlocks<T, CB> : 2) * 8 / W)
    lut_gemv_split(const std::uint32_t* __restrict__ packed, std::int64_t row_words, int nlut,
                   std::int64_t rows, std::int64_t cols, std::int64_t group, const T* __restrict__ lut,
                   std::int64_t l_sr, std::int64_t l_sg, const T* __restrict__ dscale,
                   const T* __restrict__ x, std::int64_t batch, T* __restrict__ y) {
  constexpr int K = 32 / CB;  // codes per word
  constexpr int CPL = 2 * K;  // columns per unit
  constexpr unsigned kMask = (1u << CB) - 1u;
  constexpr int V = 16 / sizeof(T);  // x elements per 16-byte load; CPL is a multiple of V
  constexpr int R = BT == 4 ? kGemvRows / 2 : kGemvRows;  // rows per block
  __shared__ T slut[256];
  __shared__ T part[W][R * BT];
  const bool shared_lut = l_sr == 0 && l_sg == 0;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const std::int64_t r0 = static_cast<std::int64_t>(blockIdx.x) * R;
  const int nr = static_cast<int>(rows - r0 < R ? rows - r0 : R);
  const int nb = static_cast<int>(batch < BT ? batch : BT);
  const std::int64_t units = cols / CPL, ng = cols / group;
  uint2 code[R];  // every row's codes and scale in flight before any is used
  T ds[R];
  auto load_codes = [&](std::int64_t u) {
    const std::int64_t g = u * CPL / group;
#pragma unroll
    for (int r = 0; r < R; ++r)
      if (r < nr) {
        code[r] = *reinterpret_cast<const uint2*>(packed + (r0 + r) * row_words + 2 * u);
        ds[r] = __ldg(dscale + (r0 + r) * ng + g);
      }
  };
  // The first unit's codes are requested before the table is staged, so the two memory latencies
  // overlap instead of adding up (at 4096 columns a thread has one unit per row).
  const std::int64_t u0 = static_cast<std::int64_t>(warp) * 32 + lane;
  if (u0 < units) load_codes(u0);
  if (shared_lut)
    for (int i = threadIdx.x; i < nlut; i += blockDim.x) slut[i] = lut[i];
  __syncthreads();
  T acc[R][BT];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int b = 0; b < BT; ++b) acc[r][b] = T(0);
  for (std::int64_t u = u0; u < units; u += W * 32) {
    Vec<T, V> xv[BT][CPL / V];
#pragma unroll
    for (int b = 0; b < BT; ++b)
      if (b < nb)
#pragma unroll
        for (int j = 0; j < CPL / V; ++j) xv[b][j] = *reinterpret_cast<const Vec<T, V>*>(x + b * cols + u * CPL + j * V);
    const std::int64_t g = u * CPL / group;
#pragma unroll
    for (int r = 0; r < R; ++r)
      if (r < nr) {
        const T* L = shared_lut ? slut : lut + (r0 + r) * l_sr + g * l_sg;
        T s[BT];
#pragma unroll
        for (int b = 0; b < BT; ++b) s[b] = T(0);
#pragma unroll
        for (int k = 0; k < CPL; ++k) {
          const std::uint32_t word = k < K ? code[r].x : code[r].y;
          const T w = L[(word >> ((k % K) * CB)) & kMask];
#pragma unroll
          for (int b = 0; b < BT; ++b) s[b] += w * xv[b][k / V].v[k % V];
        }
#pragma unroll
        for (int b = 0; b < BT; ++b) acc[r][b] += ds[r] * s[b];
      }
    if (u + W * 32 < units) load_codes(u + W * 32);  // the next unit's
  }
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int b = 0; b < BT; ++b) {
      T v = acc[r][b];
      for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
      if (lane == 0) part[warp][r * BT + b] = v;
    }
  __syncthreads();
  if (threadIdx.x < R * BT) {
    const int r = threadIdx.x / BT, b = threadIdx.x % BT;
    if (r < nr && b < nb) {
      T v = T(0);
      for (int w = 0; w < W; ++w) v += part[w][threadIdx.x];
      y[b * rows + r0 + r] = v;
    }
  }
}

// Warps per GEMV block: 4. Twice as many blocks fit an SM as of 8 warps (all 512 of a 4096-row
// GEMV at once on an H100), each thread taking twice the units of a row; on an H100 that took
// 4.5-6% less time at batch 1 and 7-11% at batch 4; on an H200 6-12% and 7-10%
// (bench/results/gpu/quant_gpu.md).
// KERNKIT_QUANT_GEMV_WARPS=8 restores blocks of 8 warps (for timing one against the other).
int gemv_warps() {
  const char* e = std::getenv("KERNKIT_QUANT_GEMV_WARPS");
  return e && std::string(e) == "8" ? 8 : 4;
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
                     (cols * static_cast<std::int64_t>(sizeof(T))) % 16 == 0 &&
                     (batch + kBatchTile - 1) / kBatchTile <= 65535;  // grid.y of the word path
  const unsigned grid = static_cast<unsigned>(blocks);
  const auto* pw = reinterpret_cast<const std::uint32_t*>(packed);
  const int nlut = 1 << bits;
  // GEMV, and batches up to 4 for float weights with 4- or 8-bit codes (elsewhere the x and sum
  // registers of a batch tile spill): units of two words per lane, in one group, every row 8-byte
  // aligned
  const bool units = row_bytes % 8 == 0 && reinterpret_cast<std::uintptr_t>(packed) % 8 == 0 &&
                     cols % (2 * per_word) == 0 && group % (2 * per_word) == 0;
  const std::int64_t grows = batch <= 2 ? kGemvRows : kGemvRows / 2;  // lut_gemv_split's rows per block
  const unsigned ggrid = static_cast<unsigned>((rows + grows - 1) / grows);
  auto launch = [&](auto cb) {
    constexpr int CB = decltype(cb)::value;
    auto gemv = [&](auto bt) {  // lut_gemv_split with batch tile BT
      constexpr int BT = decltype(bt)::value;
      if (gemv_warps() == 4)
        lut_gemv_split<T, CB, BT, 4><<<ggrid, 4 * 32, 0, s>>>(pw, row_bytes / 4, nlut, rows, cols, group, lut,
                                                             l_sr, l_sg, dscale, x, batch, y);
      else
        lut_gemv_split<T, CB, BT, 8><<<ggrid, 8 * 32, 0, s>>>(pw, row_bytes / 4, nlut, rows, cols, group, lut,
                                                             l_sr, l_sg, dscale, x, batch, y);
    };
    if (units && batch == 1) return gemv(std::integral_constant<int, 1>{});
    if constexpr (std::is_same<T, float>::value && CB >= 4) {
      if (units && batch == 2) return gemv(std::integral_constant<int, 2>{});
      if (units && batch <= 4) return gemv(std::integral_constant<int, 4>{});
    }
    const dim3 wgrid(static_cast<unsigned>((rows + kWordWarps * kWordRows<T> - 1) / (kWordWarps * kWordRows<T>)),
                     static_cast<unsigned>((batch + kBatchTile - 1) / kBatchTile));
    if (l_sr == 0 && l_sg == 0)
      lut_matmul_words<T, CB, true><<<wgrid, kWordWarps * 32, 0, s>>>(pw, row_bytes / 4, nlut, rows, cols, group, lut,
                                                                     l_sr, l_sg, dscale, x, batch, y);
    else
      lut_matmul_words<T, CB, false><<<wgrid, kWordWarps * 32, 0, s>>>(pw, row_bytes / 4, nlut, rows, cols, group,
                                                                      lut, l_sr, l_sg, dscale, x, batch, y);
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
