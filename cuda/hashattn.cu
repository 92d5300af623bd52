// CUDA binary-hash attention (kernkit/hashattn.hpp for the formula and the code layout).
//
// Non-causal, three kernels on the caller's stream, no atomics (deterministic):
//   1. scatter: block (chunk of key rows, slice, 64-column tile); each warp takes one row at a
//      time, lane l owns columns 2l, 2l+1 of the tile and adds the row's values into the
//      accumulator of every bit that is set in the row's code (predicated adds, float32 for
//      f16/bf16/f32 values, float64 for f64), plus the plain value sum. The warps' partials are
//      summed in a fixed order into one partial per chunk; tile 0 also counts the set bits.
//   2. reduce: the chunk partials of each (slice, bit slot, tile) summed in a fixed order into
//      P_r (the sum of the rows whose bit r is set) and V (all rows), and the bit counts.
//   3. output: each block first builds, in shared memory, its slice's and column tile's tables
//      from P_r and V: S_r = 2 P_r - V and the 16-entry tables T[g][p] = sum_{r in group g}
//      (+/-)_r(p) S_r (+ c V for group 0 in the consistent mode), and the denominator tables;
//      then each query row adds one table row per 4-bit group of its code (b/4 adds per value)
//      and divides.
// Causal: the same scatter per chunk of rows, an exclusive prefix over chunks, then one warp per
// chunk walks its rows in order, adding or subtracting each value row into the running sums
// (registers) and reading the output from them.
// Latency: a warp loads the codes of its next 32 rows with one load (a code per lane) and
// broadcasts them by shuffles, and loads the values of kBatch rows before adding any of them (a
// pair of columns per lane in one load where d is even), so several loads are in flight per warp
// (a row at a time left one, and the kernels latency-bound).
// The word type is fixed by the bit count (kernkit::hashattn::word_bytes_for), so MAXB picks it.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "check.cuh"
#include "kernkit/hashattn.hpp"
#include "kernkit/math/hashattn.hpp"

namespace kernkit::cuda::hashattn {
namespace {

using kernkit::hashattn::Mode;

constexpr int kWarps = 8;     // warps per block (scatter, output)
constexpr int kTile = 64;     // value columns per block (2 per lane)
constexpr int kGroupBits = kHashGroupBits;
constexpr int kPatterns = 16;
constexpr int kCausalRows = 128;  // rows per warp in the causal pass
constexpr int kTargetBlocks = 1024;  // blocks of the scatter and output grids (about)
// Rows whose values are loaded before any of them is added: 8, or fewer where the accumulators
// already fill the registers (more than 16 float or 8 double of them per lane and column; 2 for
// 64 double ones, which spill even so).
template <class A, int MAXB>
constexpr int kBatch = MAXB * sizeof(A) <= 64 ? 8 : MAXB * sizeof(A) <= 256 ? 4 : 2;

// The code word of MAXB-bit codes (the word check_args requires) and the register holding it.
template <int MAXB> struct Word;
template <> struct Word<8> { using type = std::uint8_t; };
template <> struct Word<16> { using type = std::uint16_t; };
template <> struct Word<32> { using type = std::uint32_t; };
template <> struct Word<64> { using type = std::uint64_t; };
template <int MAXB>
using CodeReg = std::conditional_t<(MAXB <= 32), unsigned int, unsigned long long>;

template <class X> struct Acc { using type = float; };
template <> struct Acc<double> { using type = double; };

__device__ inline float to_acc(float v) { return v; }
__device__ inline double to_acc(double v) { return v; }
__device__ inline float to_acc(__half v) { return __half2float(v); }
__device__ inline float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class X> __device__ inline X from_acc(float v);
template <> __device__ inline float from_acc<float>(float v) { return v; }
template <> __device__ inline __half from_acc<__half>(float v) { return __float2half_rn(v); }
template <> __device__ inline __nv_bfloat16 from_acc<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <class X> __device__ inline X from_acc(double v);
template <> __device__ inline double from_acc<double>(double v) { return v; }

template <class VT, class A>
__device__ inline void store_pair(VT* p, std::int64_t c, std::int64_t d, bool vec, A a, A b) {
  if (c >= d) return;
  const VT x = from_acc<VT>(a), y = from_acc<VT>(b);
  if (vec) {
    if constexpr (sizeof(VT) == 2) {
      unsigned short ux, uy;
      memcpy(&ux, &x, 2);
      memcpy(&uy, &y, 2);
      *reinterpret_cast<unsigned int*>(p + c) = static_cast<unsigned int>(ux) | (static_cast<unsigned int>(uy) << 16);
      return;
    } else if constexpr (sizeof(VT) == 4) {
      *reinterpret_cast<float2*>(p + c) = make_float2(x, y);
      return;
    } else {
      *reinterpret_cast<double2*>(p + c) = make_double2(x, y);
      return;
    }
  }
  p[c] = x;
  if (c + 1 < d) p[c + 1] = y;
}

// Columns c, c+1 of a row as stored (16-bit values: one register), zeros past the last column or
// when !ok; one load where vec (d even and the rows aligned to a pair), else two. No branches,
// so a warp's row loads are all issued before the first add.
template <class VT>
struct alignas(2 * sizeof(VT)) Pair {
  VT v[2];
};

template <class VT>
__device__ inline Pair<VT> load_pair(const VT* p, std::int64_t c, std::int64_t d, bool ok, bool vec) {
  const VT zero = from_acc<VT>(typename Acc<VT>::type(0));
  if (vec) {  // c is even: c and c + 1 are both in the row or both past it
    const Pair<VT> z = {{zero, zero}};
    return ok && c < d ? *reinterpret_cast<const Pair<VT>*>(p + c) : z;
  }
  Pair<VT> r;
  r.v[0] = ok && c < d ? p[c] : zero;
  r.v[1] = ok && c + 1 < d ? p[c + 1] : zero;
  return r;
}

// The codes of a warp's next 32 rows j = jb + t * stride (lane t loads row t's), bits at and past
// `bits` cleared (so predicates need no r < bits test); 0 at and past j1.
template <int MAXB>
__device__ inline CodeReg<MAXB> load_codes(const typename Word<MAXB>::type* h, std::int64_t jb,
                                           std::int64_t stride, std::int64_t j1, int lane,
                                           CodeReg<MAXB> mask) {
  const std::int64_t j = jb + lane * stride;
  return j < j1 ? static_cast<CodeReg<MAXB>>(h[j]) & mask : CodeReg<MAXB>(0);
}

// Row t's code (t warp-uniform; every lane of the warp calls it).
template <class R>
__device__ inline R code_of_row(R lane_codes, int t) { return __shfl_sync(0xffffffffu, lane_codes, t & 31); }

// Rows of a warp left in [jb, j1) at stride `stride`, at most 32 (warp-uniform).
__device__ inline int rows_left(std::int64_t jb, std::int64_t j1, std::int64_t stride) {
  const std::int64_t r = (j1 - jb + stride - 1) / stride;
  return r < 32 ? static_cast<int>(r) : 32;
}

inline std::int64_t align256(std::int64_t b) { return (b + 255) / 256 * 256; }

struct Plan {
  std::int64_t tiles, chunks, chunk_rows, groups;
  std::int64_t off_part, off_cnt, off_red, off_kred, total;
};

Plan make_plan(int bits, std::int64_t bh, std::int64_t nk, std::int64_t d, bool causal,
               std::int64_t acc_bytes) {
  Plan p{};
  p.tiles = (d + kTile - 1) / kTile;
  p.groups = (bits + kGroupBits - 1) / kGroupBits;
  if (causal) {
    p.chunk_rows = kCausalRows;
  } else {
    const std::int64_t per = bh * p.tiles > 0 ? bh * p.tiles : 1;
    std::int64_t want = (kTargetBlocks + per - 1) / per;
    if (want < 1) want = 1;
    std::int64_t rows = (nk + want - 1) / want;
    if (rows < 256) rows = 256;
    p.chunk_rows = rows;
  }
  p.chunks = nk > 0 ? (nk + p.chunk_rows - 1) / p.chunk_rows : 1;
  std::int64_t off = 0;
  p.off_part = off;
  off += align256(bh * p.chunks * (bits + 1) * d * acc_bytes);
  p.off_cnt = off;
  off += align256(bh * p.chunks * bits * 4);
  p.off_red = off;
  off += causal ? 0 : align256(bh * (bits + 1) * d * acc_bytes);
  p.off_kred = off;
  off += causal ? 0 : align256(bh * bits * 8);
  p.total = off;
  return p;
}

// ---- 1. scatter -----------------------------------------------------------------------------
template <class VT, int MAXB>
__global__ void __launch_bounds__(kWarps * 32)
scatter_kernel(const void* __restrict__ hk, int bits, const VT* __restrict__ v,
               std::int64_t nk, std::int64_t d, std::int64_t chunk_rows, std::int64_t chunks,
               bool vec, const std::int64_t* __restrict__ lens,
               typename Acc<VT>::type* __restrict__ part, int* __restrict__ cnt) {
  using A = typename Acc<VT>::type;
  using R = CodeReg<MAXB>;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const std::int64_t chunk = blockIdx.x, s = blockIdx.y, tile = blockIdx.z;
  const std::int64_t c0 = tile * kTile + 2 * lane;
  const std::int64_t j0 = chunk * chunk_rows;
  // Keys at and after the slice's length are padding (no weight): a shorter row range.
  std::int64_t nvalid = nk;
  if (lens) nvalid = lens[s] < 0 ? 0 : (lens[s] > nk ? nk : lens[s]);
  const std::int64_t j1 = j0 + chunk_rows < nvalid ? j0 + chunk_rows : nvalid;
  const typename Word<MAXB>::type* hks = static_cast<const typename Word<MAXB>::type*>(hk) + s * nk;
  const R mask = static_cast<R>(hash_code_mask(bits));
  const VT* vs = v + s * nk * d;
  A acc0[MAXB], acc1[MAXB];
#pragma unroll
  for (int r = 0; r < MAXB; ++r) acc0[r] = acc1[r] = A(0);
  A sum0 = A(0), sum1 = A(0);
  int count = 0;  // lane < bits: rows with bit `lane` set (lanes 32..63 of 64-bit codes: count2)
  int count2 = 0;
  constexpr int kB = kBatch<A, MAXB>;
  // Warp `warp` adds rows j0 + warp, j0 + warp + kWarps, ... in that order.
  for (std::int64_t jb = j0 + warp; jb < j1; jb += 32 * kWarps) {
    const R codes = load_codes<MAXB>(hks, jb, kWarps, j1, lane, mask);
    const int rows = rows_left(jb, j1, kWarps);
    for (int t0 = 0; t0 < rows; t0 += kB) {
      Pair<VT> xr[kB];
#pragma unroll
      for (int u = 0; u < kB; ++u)
        xr[u] = load_pair(vs + (jb + (t0 + u) * kWarps) * d, c0, d, t0 + u < rows, vec);
#pragma unroll
      for (int u = 0; u < kB; ++u) {
        const R w = code_of_row(codes, t0 + u);
        if (t0 + u < rows) {
          const A x0 = to_acc(xr[u].v[0]), x1 = to_acc(xr[u].v[1]);
          sum0 += x0;
          sum1 += x1;
#pragma unroll
          for (int r = 0; r < MAXB; ++r) {
            if (w & (R(1) << r)) {
              acc0[r] += x0;
              acc1[r] += x1;
            }
          }
          count += static_cast<int>((w >> lane) & 1u);
          if constexpr (MAXB > 32) count2 += static_cast<int>((w >> (lane + 32)) & 1u);
        }
      }
    }
  }
  // Fixed-order reduction over the warps, one bit slot at a time.
  __shared__ A sh[kWarps][kTile];
  __shared__ int shc[kWarps][64];
  A* out = part + ((s * chunks + chunk) * (bits + 1)) * d;
  for (int r = 0; r <= bits; ++r) {
    A a0 = sum0, a1 = sum1;
#pragma unroll
    for (int q = 0; q < MAXB; ++q)
      if (q == r && q < bits) { a0 = acc0[q]; a1 = acc1[q]; }
    sh[warp][2 * lane] = a0;
    sh[warp][2 * lane + 1] = a1;
    __syncthreads();
    if (threadIdx.x < kTile) {
      A t = A(0);
      for (int k = 0; k < kWarps; ++k) t += sh[k][threadIdx.x];
      const std::int64_t col = tile * kTile + threadIdx.x;
      if (col < d) out[static_cast<std::int64_t>(r) * d + col] = t;
    }
    __syncthreads();
  }
  if (tile == 0) {
    shc[warp][lane] = count;
    shc[warp][lane + 32] = count2;
    __syncthreads();
    if (threadIdx.x < bits) {
      int t = 0;
      for (int k = 0; k < kWarps; ++k) t += shc[k][threadIdx.x];
      cnt[(s * chunks + chunk) * bits + threadIdx.x] = t;
    }
  }
}

// ---- 2. reduce the chunk partials (non-causal) ----------------------------------------------------
// Block (slice, bit slot r <= bits, column tile): 64 columns x 4 chunk lanes; each lane sums
// every 4th chunk (loads unrolled), then the 4 lanes are added in a fixed order. Slots r < bits
// of tile 0 also sum the set-bit counts.
template <class A>
__global__ void __launch_bounds__(256)
reduce_kernel(int bits, std::int64_t d, std::int64_t chunks, const A* __restrict__ part,
              const int* __restrict__ cnt, A* __restrict__ red, long long* __restrict__ kred) {
  const std::int64_t s = blockIdx.x, r = blockIdx.y, tile = blockIdx.z;
  const int cl = threadIdx.x / kTile, cc = threadIdx.x % kTile;
  const std::int64_t col = tile * kTile + cc;
  __shared__ A sh[4][kTile];
  __shared__ long long shk[256];
  A t = A(0);
  if (col < d) {
    const A* p = part + (s * chunks * (bits + 1) + r) * d + col;
    const std::int64_t stride = (bits + 1) * d;
#pragma unroll 8
    for (std::int64_t ch = cl; ch < chunks; ch += 4) t += p[ch * stride];
  }
  sh[cl][cc] = t;
  long long k = 0;
  const bool counts = tile == 0 && r < bits;
  if (counts)
    for (std::int64_t ch = threadIdx.x; ch < chunks; ch += 256) k += cnt[(s * chunks + ch) * bits + r];
  shk[threadIdx.x] = k;
  __syncthreads();
  if (cl == 0 && col < d) red[(s * (bits + 1) + r) * d + col] = ((sh[0][cc] + sh[1][cc]) + sh[2][cc]) + sh[3][cc];
  if (counts && threadIdx.x == 0) {
    long long tot = 0;
    for (int i = 0; i < 256; ++i) tot += shk[i];
    kred[s * bits + r] = tot;
  }
}

// ---- 3. output (non-causal) -------------------------------------------------------------------
// Block (row range, slice, column tile). The prologue builds the slice's tables for the tile from
// the reduced sums (what a separate per-slice kernel did: one launch less, and a block reads
// (bits + 1) x 64 sums instead of groups x 16 x 64 finished table entries).
// FULL: bits fills the word (groups == kMaxGroups), so the per-row loop over the groups has a
// compile-time trip count and no per-group branch. One division per row (1/den, then products)
// and the row's output address by increments. sm_90 SASS, float16 values, 16 bits: 100 -> 65
// instructions per row on the usual path (two divisions were 18 of them), 40 -> 54 registers;
// on an H200 94.5 -> 73.3 us under ncu, 70.5 -> 54.8 us per call at n = 65536 (8 heads, d = 64).
template <class VT, int MAXB, bool FULL>
__global__ void __launch_bounds__(kWarps * 32)
output_kernel(const void* __restrict__ hq, int bits, const VT* __restrict__ v,
              VT* __restrict__ out, std::int64_t nq, std::int64_t nk_all, std::int64_t d,
              int groups, std::int64_t rows_per_block, double c, int mode, bool vec,
              const std::int64_t* __restrict__ lens, const typename Acc<VT>::type* __restrict__ red,
              const long long* __restrict__ kred) {
  using A = typename Acc<VT>::type;
  using R = CodeReg<MAXB>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  A* st = reinterpret_cast<A*>(smem_raw);                          // [groups][16][kTile]
  double* sd = reinterpret_cast<double*>(st + groups * kPatterns * kTile);  // [groups][16]
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const std::int64_t s = blockIdx.y, tile = blockIdx.z;
  const std::int64_t cbase = tile * kTile;
  std::int64_t nk = nk_all;
  if (lens) nk = lens[s] < 0 ? 0 : (lens[s] > nk_all ? nk_all : lens[s]);
  // Denominator tables: sum over the group's bits of (+/-)_r(p) k_r, k_r = 2 count_r - N.
  for (std::int64_t e = threadIdx.x; e < groups * kPatterns; e += blockDim.x) {
    const int g = static_cast<int>(e / kPatterns), p = static_cast<int>(e % kPatterns);
    double den = 0;
    for (int r = g * kGroupBits; r < bits && r < (g + 1) * kGroupBits; ++r) {
      const double kr = static_cast<double>(2 * kred[s * bits + r] - nk);
      den += ((p >> (r - g * kGroupBits)) & 1) ? kr : -kr;
    }
    if (g == 0) den += c * static_cast<double>(nk);
    sd[e] = den;
  }
  // Value tables: thread per (group, column of the tile), S_r = 2 P_r - V.
  const A* rs = red + s * (bits + 1) * d;
  for (std::int64_t e = threadIdx.x; e < groups * kTile; e += blockDim.x) {
    const std::int64_t g = e / kTile, cc = e % kTile, col = cbase + cc;
    A* tg = st + g * kPatterns * kTile + cc;
    if (col >= d) {
      for (int p = 0; p < kPatterns; ++p) tg[p * kTile] = A(0);
      continue;
    }
    const A V = rs[bits * d + col];
    A S[kGroupBits];
    const int r0 = static_cast<int>(g) * kGroupBits;
    const int nbg = bits - r0 < kGroupBits ? bits - r0 : kGroupBits;
#pragma unroll
    for (int q = 0; q < kGroupBits; ++q) S[q] = q < nbg ? A(2) * rs[(r0 + q) * d + col] - V : A(0);
    for (int p = 0; p < kPatterns; ++p) {
      A t = (g == 0 && mode == 0) ? static_cast<A>(c) * V : A(0);
#pragma unroll
      for (int q = 0; q < kGroupBits; ++q)
        if (q < nbg) t += ((p >> q) & 1) ? S[q] : -S[q];
      tg[p * kTile] = t;
    }
  }
  __syncthreads();
  const std::int64_t c0 = cbase + 2 * lane;
  const std::int64_t i0 = blockIdx.x * rows_per_block;
  const std::int64_t i1 = i0 + rows_per_block < nq ? i0 + rows_per_block : nq;
  const typename Word<MAXB>::type* hqs = static_cast<const typename Word<MAXB>::type*>(hq) + s * nq;
  const R mask = static_cast<R>(hash_code_mask(bits));
  const VT* vs = v + s * nq * d;
  VT* os = out + s * nq * d;
  const A cA = static_cast<A>(c);
  constexpr int kMaxGroups = (MAXB + kGroupBits - 1) / kGroupBits;
  constexpr int kOutBatch = 4;  // only the ecoformer mode loads values here
  // Warp `warp` writes rows i0 + warp, i0 + warp + kWarps, ...
  for (std::int64_t ib = i0 + warp; ib < i1; ib += 32 * kWarps) {
    const R codes = load_codes<MAXB>(hqs, ib, kWarps, i1, lane, mask);
    const int rows = rows_left(ib, i1, kWarps);
    for (int t0 = 0; t0 < rows; t0 += kOutBatch) {
      Pair<VT> xr[kOutBatch];  // own values (ecoformer mode)
      if (mode == 1) {
#pragma unroll
        for (int u = 0; u < kOutBatch; ++u)
          xr[u] = load_pair(vs + (ib + (t0 + u) * kWarps) * d, c0, d, t0 + u < rows, vec);
      }
      VT* orow = os + (ib + t0 * kWarps) * d;  // row t0 + u's output: kWarps rows apart
#pragma unroll
      for (int u = 0; u < kOutBatch; ++u, orow += kWarps * d) {
        const R w = code_of_row(codes, t0 + u);
        if (t0 + u < rows) {
          A a0 = A(0), a1 = A(0);
          double den = 0;
#pragma unroll
          for (int g = 0; g < kMaxGroups; ++g) {
            if (FULL || g < groups) {
              // w has no bits past `bits`: the group's pattern (hash_group_pattern) is its 4 bits.
              const int p = static_cast<int>((w >> (g * kGroupBits)) & (kPatterns - 1));
              const A* t = st + (g * kPatterns + p) * kTile + 2 * lane;
              a0 += t[0];
              a1 += t[1];
              den += sd[g * kPatterns + p];
            }
          }
          if (mode == 1) {
            a0 += cA * to_acc(xr[u].v[0]);
            a1 += cA * to_acc(xr[u].v[1]);
          }
          const A inv = A(1) / static_cast<A>(den);
          store_pair(orow, c0, d, vec, a0 * inv, a1 * inv);
        }
      }
    }
  }
}

// ---- causal: exclusive prefix over chunks, then one warp per chunk ----------------------------
// Exclusive prefix over the chunks, in place, for every (slice, slot, column) sequence.
// Block (64 sequences x kSeg chunk segments): each thread sums its segment (loads unrolled),
// the segment totals are combined in shared memory in a fixed order, then each thread rewrites
// its segment with the running sum. blockIdx.y = slice.
constexpr int kSeg = 4;
constexpr int kPrefixBatch = 16;
template <class A>
__global__ void __launch_bounds__(64 * kSeg)
prefix_kernel(int bits, std::int64_t d, std::int64_t chunks, A* __restrict__ part,
              int* __restrict__ cnt) {
  const std::int64_t per = (bits + 1) * d;
  const std::int64_t s = blockIdx.y;
  const std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * 64 + threadIdx.x;
  const int seg = threadIdx.y;
  const std::int64_t len = (chunks + kSeg - 1) / kSeg;
  const std::int64_t c0 = seg * len, c1 = c0 + len < chunks ? c0 + len : chunks;
  __shared__ A tot[kSeg][64];
  __shared__ int totc[kSeg][64];
  A* base = part + s * chunks * per + e;
  A t = A(0);
  if (e < per) {
#pragma unroll 16
    for (std::int64_t ch = c0; ch < c1; ++ch) t += base[ch * per];
  }
  tot[seg][threadIdx.x] = t;
  const bool has_cnt = e < bits;  // count sequences: the first `bits` threads of block 0
  int* cb = cnt + s * chunks * bits + e;
  int tc = 0;
  if (has_cnt) {
#pragma unroll 16
    for (std::int64_t ch = c0; ch < c1; ++ch) tc += cb[ch * bits];
  }
  totc[seg][threadIdx.x] = tc;
  __syncthreads();
  A run = A(0);
  int runc = 0;
  for (int k = 0; k < seg; ++k) {
    run += tot[k][threadIdx.x];
    runc += totc[k][threadIdx.x];
  }
  // The rewrite loads kPrefixBatch values before storing any: a load after a store to the same
  // array is not moved above it, so one value per round trip otherwise.
  if (e < per) {
    for (std::int64_t ch0 = c0; ch0 < c1; ch0 += kPrefixBatch) {
      A x[kPrefixBatch];
#pragma unroll
      for (int k = 0; k < kPrefixBatch; ++k) x[k] = ch0 + k < c1 ? base[(ch0 + k) * per] : A(0);
#pragma unroll
      for (int k = 0; k < kPrefixBatch; ++k) {
        if (ch0 + k < c1) {
          base[(ch0 + k) * per] = run;
          run += x[k];
        }
      }
    }
  }
  if (has_cnt) {
    for (std::int64_t ch0 = c0; ch0 < c1; ch0 += kPrefixBatch) {
      int x[kPrefixBatch];
#pragma unroll
      for (int k = 0; k < kPrefixBatch; ++k) x[k] = ch0 + k < c1 ? cb[(ch0 + k) * bits] : 0;
#pragma unroll
      for (int k = 0; k < kPrefixBatch; ++k) {
        if (ch0 + k < c1) {
          cb[(ch0 + k) * bits] = runc;
          runc += x[k];
        }
      }
    }
  }
}

template <class VT, int MAXB>
__global__ void __launch_bounds__(kWarps * 32)
causal_kernel(const void* __restrict__ hq, const void* __restrict__ hk, int bits,
              const VT* __restrict__ v, VT* __restrict__ out, std::int64_t n, std::int64_t d,
              std::int64_t chunks, double c, int mode, bool vec,
              const typename Acc<VT>::type* __restrict__ part, const int* __restrict__ cnt) {
  using A = typename Acc<VT>::type;
  using R = CodeReg<MAXB>;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const std::int64_t chunk = static_cast<std::int64_t>(blockIdx.x) * kWarps + warp;
  if (chunk >= chunks) return;  // whole warp; no block-level barrier below
  const std::int64_t s = blockIdx.y, tile = blockIdx.z;
  const std::int64_t c0 = tile * kTile + 2 * lane, c1 = c0 + 1;
  const A* ps = part + (s * chunks + chunk) * (bits + 1) * d;
  A p0[MAXB], p1[MAXB];  // running P_r (sum of rows with bit r set)
#pragma unroll
  for (int r = 0; r < MAXB; ++r) {
    p0[r] = (r < bits && c0 < d) ? ps[r * d + c0] : A(0);
    p1[r] = (r < bits && c1 < d) ? ps[r * d + c1] : A(0);
  }
  A V0 = c0 < d ? ps[bits * d + c0] : A(0);
  A V1 = c1 < d ? ps[bits * d + c1] : A(0);
  const int* cs = cnt + (s * chunks + chunk) * bits;
  long long k_lo = lane < bits ? cs[lane] : 0;            // count of bit `lane`
  long long k_hi = lane + 32 < bits ? cs[lane + 32] : 0;  // count of bit `lane + 32`
  using W = typename Word<MAXB>::type;
  const W* hqs = static_cast<const W*>(hq) + s * n;
  const W* hks = static_cast<const W*>(hk) + s * n;
  const R mask = static_cast<R>(hash_code_mask(bits));
  const VT* vs = v + s * n * d;
  VT* os = out + s * n * d;
  const std::int64_t j0 = chunk * kCausalRows;
  const std::int64_t j1 = j0 + kCausalRows < n ? j0 + kCausalRows : n;
  const A cA = static_cast<A>(c);
  constexpr int kB = kBatch<A, MAXB>;
  for (std::int64_t ib = j0; ib < j1; ib += 32) {
    const R kcodes = load_codes<MAXB>(hks, ib, 1, j1, lane, mask);
    const R qcodes = load_codes<MAXB>(hqs, ib, 1, j1, lane, mask);
    const int rows = rows_left(ib, j1, 1);
    for (int t0 = 0; t0 < rows; t0 += kB) {
      Pair<VT> xr[kB];
#pragma unroll
      for (int u = 0; u < kB; ++u)
        xr[u] = load_pair(vs + (ib + t0 + u) * d, c0, d, t0 + u < rows, vec);
#pragma unroll
      for (int u = 0; u < kB; ++u) {
        const R wk = code_of_row(kcodes, t0 + u);
        const R wq = code_of_row(qcodes, t0 + u);
        if (t0 + u >= rows) continue;  // warp-uniform
        const std::int64_t i = ib + t0 + u;
        const A x0 = to_acc(xr[u].v[0]), x1 = to_acc(xr[u].v[1]);
        V0 += x0;
        V1 += x1;
#pragma unroll
        for (int r = 0; r < MAXB; ++r)
          if (wk & (R(1) << r)) {
            p0[r] += x0;
            p1[r] += x1;
          }
        k_lo += static_cast<long long>((wk >> lane) & 1u);
        if constexpr (MAXB > 32) k_hi += static_cast<long long>((wk >> (lane + 32)) & 1u);
        // den = sum_r s_r (2 cnt_r - N_i) + c N_i: lanes hold the counts, a warp sum (before the
        // numerator: no code-bit predicates held across the shuffles).
        const long long ni = i + 1;
        long long part_den = 0;
        if (lane < bits) part_den += ((wq >> lane) & 1u) ? (2 * k_lo - ni) : -(2 * k_lo - ni);
        if constexpr (MAXB > 32)
          if (lane + 32 < bits) part_den += ((wq >> (lane + 32)) & 1u) ? (2 * k_hi - ni) : -(2 * k_hi - ni);
        for (int off = 16; off > 0; off >>= 1) part_den += __shfl_xor_sync(0xffffffffu, part_den, off);
        const double den = static_cast<double>(part_den) + c * static_cast<double>(ni);
        // num = sum_r s_r (2 P_r - V) = 2 (sum_{set} P_r - sum_{clear} P_r) - (2 popc - bits) V.
        // For r >= bits, P_r stays +0 and the bit is clear: subtracting +0 changes nothing.
        A a0 = A(0), a1 = A(0);
#pragma unroll
        for (int r = 0; r < MAXB; ++r) {
          if (wq & (R(1) << r)) { a0 += p0[r]; a1 += p1[r]; }
          else { a0 -= p0[r]; a1 -= p1[r]; }
        }
        const A sv = static_cast<A>(hash_code_sum(wq, bits));
        a0 = A(2) * a0 - sv * V0;
        a1 = A(2) * a1 - sv * V1;
        if (mode == 0) {
          a0 += cA * V0;
          a1 += cA * V1;
        } else {
          a0 += cA * x0;
          a1 += cA * x1;
        }
        const A dA = static_cast<A>(den);
        store_pair(os + i * d, c0, d, vec, a0 / dA, a1 / dA);
      }
    }
  }
}

template <class VT, int MAXB>
void launch(const void* hq, const void* hk, int bits, const void* v_, void* out_,
            std::int64_t bh, std::int64_t nq, std::int64_t nk, std::int64_t d, double c,
            bool causal, int mode, void* ws, cudaStream_t st, const std::int64_t* lens) {
  using A = typename Acc<VT>::type;
  const VT* v = static_cast<const VT*>(v_);
  VT* out = static_cast<VT*>(out_);
  const Plan p = make_plan(bits, bh, nk, d, causal, sizeof(A));
  char* base = static_cast<char*>(ws);
  A* part = reinterpret_cast<A*>(base + p.off_part);
  int* cnt = reinterpret_cast<int*>(base + p.off_cnt);
  if (bh > 65535 || p.tiles > 65535 || p.chunks > 2147483647LL)
    throw std::invalid_argument("kernkit::cuda::hashattn: problem too large for one launch");
  const dim3 block(kWarps * 32);
  const auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % (2 * sizeof(VT)) == 0; };
  const bool vec = d % 2 == 0 && aligned(v) && aligned(out);
  const dim3 gs(static_cast<unsigned>(p.chunks), static_cast<unsigned>(bh), static_cast<unsigned>(p.tiles));
  scatter_kernel<VT, MAXB><<<gs, block, 0, st>>>(hk, bits, v, nk, d, p.chunk_rows, p.chunks, vec, lens, part,
                                                 cnt);
  KERNKIT_CUDA_CHECK(cudaGetLastError());
  if (causal) {
    const std::int64_t per = (bits + 1) * d;
    const dim3 gp(static_cast<unsigned>((per + 63) / 64), static_cast<unsigned>(bh));
    prefix_kernel<A><<<gp, dim3(64, kSeg), 0, st>>>(bits, d, p.chunks, part, cnt);
    KERNKIT_CUDA_CHECK(cudaGetLastError());
    const dim3 gc(static_cast<unsigned>((p.chunks + kWarps - 1) / kWarps), static_cast<unsigned>(bh),
                  static_cast<unsigned>(p.tiles));
    causal_kernel<VT, MAXB><<<gc, block, 0, st>>>(hq, hk, bits, v, out, nq, d, p.chunks, c, mode, vec, part, cnt);
    KERNKIT_CUDA_CHECK(cudaGetLastError());
    return;
  }
  A* red = reinterpret_cast<A*>(base + p.off_red);
  long long* kred = reinterpret_cast<long long*>(base + p.off_kred);
  const dim3 gr(static_cast<unsigned>(bh), static_cast<unsigned>(bits + 1), static_cast<unsigned>(p.tiles));
  reduce_kernel<A><<<gr, 256, 0, st>>>(bits, d, p.chunks, part, cnt, red, kred);
  KERNKIT_CUDA_CHECK(cudaGetLastError());
  // ~1024 blocks: each builds its slice's tables (groups x 16 x 64 values) once.
  std::int64_t rows_per_block = (nq * bh * p.tiles + kTargetBlocks - 1) / kTargetBlocks;
  rows_per_block = (rows_per_block + 127) / 128 * 128;
  if (rows_per_block > 2048) rows_per_block = 2048;
  const std::int64_t smem = p.groups * kPatterns * kTile * static_cast<std::int64_t>(sizeof(A)) +
                            p.groups * kPatterns * 8;
  constexpr std::int64_t kMaxGroups = (MAXB + kGroupBits - 1) / kGroupBits;
  auto* const okernel = p.groups == kMaxGroups ? output_kernel<VT, MAXB, true> : output_kernel<VT, MAXB, false>;
  if (smem > 48 * 1024)
    KERNKIT_CUDA_CHECK(cudaFuncSetAttribute(okernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const std::int64_t rb = (nq + rows_per_block - 1) / rows_per_block;
  if (rb > 2147483647LL) throw std::invalid_argument("kernkit::cuda::hashattn: too many rows");
  const dim3 go(static_cast<unsigned>(rb), static_cast<unsigned>(bh), static_cast<unsigned>(p.tiles));
  okernel<<<go, block, static_cast<size_t>(smem), st>>>(hq, bits, v, out, nq, nk, d, static_cast<int>(p.groups),
                                                       rows_per_block, c, mode, vec, lens, red, kred);
  KERNKIT_CUDA_CHECK(cudaGetLastError());
}

// The code word is word_bytes_for(bits) (check_args), i.e. MAXB's Word.
template <class VT>
void launch_bits(int bits, const void* hq, const void* hk, const void* v, void* out,
                 std::int64_t bh, std::int64_t nq, std::int64_t nk, std::int64_t d, double c,
                 bool causal, int mode, void* ws, cudaStream_t st, const std::int64_t* lens) {
  if (bits <= 8) return launch<VT, 8>(hq, hk, bits, v, out, bh, nq, nk, d, c, causal, mode, ws, st, lens);
  if (bits <= 16) return launch<VT, 16>(hq, hk, bits, v, out, bh, nq, nk, d, c, causal, mode, ws, st, lens);
  if (bits <= 32) return launch<VT, 32>(hq, hk, bits, v, out, bh, nq, nk, d, c, causal, mode, ws, st, lens);
  return launch<VT, 64>(hq, hk, bits, v, out, bh, nq, nk, d, c, causal, mode, ws, st, lens);
}

std::int64_t acc_bytes(Dtype dt) { return dt == Dtype::f64 ? 8 : 4; }

}  // namespace

std::int64_t workspace_bytes(int bits, std::int64_t batch_heads, std::int64_t nq,
                             std::int64_t nk, std::int64_t d, bool causal, Dtype dtype) {
  (void)nq;
  if (bits < 1 || bits > 64) throw std::invalid_argument("bits: must be in 1..64");
  return make_plan(bits, batch_heads, nk, d, causal, acc_bytes(dtype)).total;
}

void attention(const void* hq, const void* hk, int word_bytes, int bits, const void* v, void* out,
               Dtype dtype, std::int64_t batch_heads, std::int64_t nq, std::int64_t nk,
               std::int64_t d, double offset, bool causal, Mode mode, void* workspace,
               std::int64_t ws_bytes, void* stream, const std::int64_t* key_lengths) {
  kernkit::hashattn::check_args(word_bytes, bits, batch_heads, nq, nk, d, causal, mode);
  if (key_lengths && causal)
    throw std::invalid_argument("key_lengths: not used with causal attention");
  if (batch_heads * nq * d == 0) return;
  if (ws_bytes < workspace_bytes(bits, batch_heads, nq, nk, d, causal, dtype))
    throw std::invalid_argument("workspace: too small (kernkit::cuda::hashattn::workspace_bytes)");
  auto st = static_cast<cudaStream_t>(stream);
  const int m = static_cast<int>(mode);
  switch (dtype) {
    case Dtype::f32: return launch_bits<float>(bits, hq, hk, v, out, batch_heads, nq, nk, d, offset, causal, m, workspace, st, key_lengths);
    case Dtype::f64: return launch_bits<double>(bits, hq, hk, v, out, batch_heads, nq, nk, d, offset, causal, m, workspace, st, key_lengths);
    case Dtype::f16: return launch_bits<__half>(bits, hq, hk, v, out, batch_heads, nq, nk, d, offset, causal, m, workspace, st, key_lengths);
    case Dtype::bf16: return launch_bits<__nv_bfloat16>(bits, hq, hk, v, out, batch_heads, nq, nk, d, offset, causal, m, workspace, st, key_lengths);
  }
  throw std::invalid_argument("dtype: unknown");
}

}  // namespace kernkit::cuda::hashattn
