// Power-quantization hot loops, compiled once per instruction set (see KernkitSimd.cmake):
// the exponent-search error sweep, the float32 lookup-table matmul (AVX2 where available) and
// the decoding matmul for every other type and layout.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define KERNKIT_QUANT_AVX2 1
#endif

#ifndef KERNKIT_ISA_NS
#define KERNKIT_ISA_NS isa_baseline
#endif

#include "isa_local.hpp"
#include "kernkit/math/quant_codes.hpp"
#include "parallel.hpp"
#include "quant_isa.hpp"

namespace kernkit::KERNKIT_ISA_NS {
namespace {

// exp(x) for x <= 0 to ~2e-7 relative, written so that loops over it vectorize.
inline float exp_nonpos(float x) {
  x = std::max(x, -87.0f);
  const float t = x * 1.44269504088896341f;
  const float fi = std::floor(t);
  const float f = t - fi;  // [0, 1)
  // 2^f on [0, 1): degree-7 Taylor polynomial of exp(f ln2) in Horner form (~1.5e-6).
  float p = 1.5252734e-5f;
  p = p * f + 1.5403530e-4f;
  p = p * f + 1.3333558e-3f;
  p = p * f + 9.6181291e-3f;
  p = p * f + 5.5504109e-2f;
  p = p * f + 2.4022651e-1f;
  p = p * f + 6.9314718e-1f;
  p = p * f + 1.0f;
  const std::int32_t e = static_cast<std::int32_t>(fi) + 127;
  std::int32_t bits = e << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

#ifdef KERNKIT_QUANT_AVX2
// exp_nonpos on 8 lanes (the same polynomial and rounding as the scalar function).
inline __m256 exp_nonpos8(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 t = _mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f));
  const __m256 fi = _mm256_floor_ps(t);
  const __m256 f = _mm256_sub_ps(t, fi);
  __m256 p = _mm256_set1_ps(1.5252734e-5f);
  p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(1.5403530e-4f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(1.3333558e-3f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(9.6181291e-3f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(5.5504109e-2f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(2.4022651e-1f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(6.9314718e-1f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fi), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
#endif


}  // namespace

void quant_search_errors(const float* w, std::int64_t rows, std::int64_t cols,
                         std::int64_t group, int bits, bool full, const float* a,
                         std::int64_t a_sr, std::int64_t a_sg, std::int64_t a_sk, std::int64_t K,
                         double* err, int nthreads) {
  const std::int64_t ng = cols / group;
  const int nhi = full ? (1 << (bits - 1)) : (1 << (bits - 1)) - 1;
  isa_vector<float> logm(nhi + 1, 0.0f);  // log(m / nhi) <= 0
  for (int m = 1; m <= nhi; ++m) logm[m] = static_cast<float>(std::log(static_cast<double>(m) / nhi));
  auto unit = [&](std::int64_t idx) {
    const std::int64_t r = idx / ng, g = idx % ng;
    const float* wg = w + r * cols + g * group;
    thread_local isa_vector<float> lt, aw;
    thread_local isa_vector<std::int32_t> capv;
    thread_local isa_vector<float> table, sqv;
    lt.resize(group);
    sqv.resize(group);
    aw.resize(group);
    capv.resize(group);
    table.resize(nhi + 1);
    float gmax = 0.0f, wstar = 0.0f;
    for (std::int64_t j = 0; j < group; ++j) {
      const float v = std::fabs(wg[j]);
      if (v > gmax) { gmax = v; wstar = wg[j]; }
    }
    double* e = err + idx * K;
    if (!(gmax > 0.0f)) {
      for (std::int64_t k = 0; k < K; ++k) e[k] = 0.0;
      return;
    }
    const float inv_gmax = 1.0f / gmax;
    for (std::int64_t j = 0; j < group; ++j) {
      const float v = std::fabs(wg[j]);
      aw[j] = v;
      lt[j] = v > 0.0f ? std::log(v * inv_gmax) : -1.0e30f;
      // Full grid: weights of the extreme's sign reach nhi, the others nhi - 1.
      capv[j] = (!full || (wg[j] < 0.0f) == (wstar < 0.0f)) ? nhi : nhi - 1;
    }
    const float fn = static_cast<float>(nhi);
    float* tb = table.data();
    const float* ap = aw.data();
    const float* lp = lt.data();
    const std::int32_t* cp = capv.data();
    float* sq = sqv.data();
    const std::int64_t g8 = group - group % 8;
    for (std::int64_t k = 0; k < K; ++k) {
      const float ak = a[r * a_sr + g * a_sg + k * a_sk];
      const float inv = 1.0f / ak;
      tb[0] = 0.0f;
#ifdef KERNKIT_QUANT_AVX2
      {
        int m = 1;
        const __m256 vinv = _mm256_set1_ps(inv), vg = _mm256_set1_ps(gmax);
        for (; m + 8 <= nhi + 1; m += 8)
          _mm256_storeu_ps(tb + m, _mm256_mul_ps(vg, exp_nonpos8(_mm256_mul_ps(_mm256_loadu_ps(logm.data() + m), vinv))));
        for (; m <= nhi; ++m) tb[m] = gmax * exp_nonpos(logm[m] * inv);
      }
#else
      for (int m = 1; m <= nhi; ++m) tb[m] = gmax * exp_nonpos(logm[m] * inv);
#endif
      std::int64_t j0 = 0;
#ifdef KERNKIT_QUANT_AVX2
      if (nhi <= 15) {
        alignas(32) float t16[16] = {0};
        for (int m = 0; m <= nhi; ++m) t16[m] = tb[m];
        const __m256 tlo = _mm256_load_ps(t16), thi = _mm256_load_ps(t16 + 8);
        const __m256 vfn = _mm256_set1_ps(fn), vak = _mm256_set1_ps(ak);
        for (; j0 + 8 <= group; j0 += 8) {
          const __m256 mag = _mm256_mul_ps(vfn, exp_nonpos8(_mm256_mul_ps(vak, _mm256_loadu_ps(lp + j0))));
          __m256i mi = _mm256_cvttps_epi32(_mm256_add_ps(mag, _mm256_set1_ps(0.5f)));
          mi = _mm256_min_epi32(mi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cp + j0)));
          __m256 v = _mm256_permutevar8x32_ps(tlo, mi);
          if (nhi >= 8)
            v = _mm256_blendv_ps(v, _mm256_permutevar8x32_ps(thi, mi), _mm256_castsi256_ps(_mm256_slli_epi32(mi, 28)));
          const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(ap + j0), v);
          _mm256_storeu_ps(sq + j0, _mm256_mul_ps(d, d));
        }
      } else {
        const __m256 vfn = _mm256_set1_ps(fn), vak = _mm256_set1_ps(ak);
        for (; j0 + 8 <= group; j0 += 8) {
          const __m256 mag = _mm256_mul_ps(vfn, exp_nonpos8(_mm256_mul_ps(vak, _mm256_loadu_ps(lp + j0))));
          __m256i mi = _mm256_cvttps_epi32(_mm256_add_ps(mag, _mm256_set1_ps(0.5f)));
          mi = _mm256_min_epi32(mi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cp + j0)));
          const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(ap + j0), _mm256_i32gather_ps(tb, mi, 4));
          _mm256_storeu_ps(sq + j0, _mm256_mul_ps(d, d));
        }
      }
#endif
      for (std::int64_t j = j0; j < group; ++j) {
        const float mag = fn * exp_nonpos(ak * lp[j]);
        std::int32_t mi = static_cast<std::int32_t>(mag + 0.5f);
        mi = std::min(mi, cp[j]);
        const float d = ap[j] - tb[mi];
        sq[j] = d * d;
      }
      float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (std::int64_t j = 0; j < g8; j += 8)
        for (int l = 0; l < 8; ++l) part[l] += sq[j + l];
      double acc = 0.0;
      for (int l = 0; l < 8; ++l) acc += part[l];
      for (std::int64_t j = g8; j < group; ++j) acc += sq[j];
      e[k] = acc;
    }
  };
  detail::parallel_for_each(rows * ng, nthreads, unit);
}

#ifdef KERNKIT_QUANT_AVX2
namespace {

template <int CB>
struct Decoder {
  __m256i shifts, mask;
  Decoder() {
    shifts = _mm256_setr_epi32(0, CB, 2 * CB, 3 * CB, 4 * CB, 5 * CB, 6 * CB, 7 * CB);
    mask = _mm256_set1_epi32((1 << CB) - 1);
  }
  // The 8 codes of chunk j (columns 8j .. 8j+7) of a row.
  inline __m256i codes(const std::uint8_t* row, std::int64_t j) const {
    if constexpr (CB == 8) {
      return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 8 * j)));
    } else {
      // 8 codes = CB bytes, assembled with shifts (a partial memcpy into a word stalls
      // store forwarding)
      const std::uint8_t* p = row + j * CB;
      std::uint32_t word = p[0];
      if constexpr (CB >= 2) word |= static_cast<std::uint32_t>(p[1]) << 8;
      if constexpr (CB >= 3) word |= static_cast<std::uint32_t>(p[2]) << 16;
      if constexpr (CB >= 4) word |= static_cast<std::uint32_t>(p[3]) << 24;
      return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(word)), shifts), mask);
    }
  }
};

template <int B>
struct Table {
  __m256 lo, hi;
  const float* p;
  inline void load(const float* lut) {
    p = lut;
    if constexpr (B <= 3) {
      alignas(32) float t[8] = {0};
      std::memcpy(t, lut, sizeof(float) << B);
      lo = _mm256_load_ps(t);
    } else if constexpr (B == 4) {
      lo = _mm256_loadu_ps(lut);
      hi = _mm256_loadu_ps(lut + 8);
    }
  }
  inline __m256 lookup(__m256i u) const {
    if constexpr (B <= 3) {
      return _mm256_permutevar8x32_ps(lo, u);
    } else if constexpr (B == 4) {
      const __m256 l = _mm256_permutevar8x32_ps(lo, u), h = _mm256_permutevar8x32_ps(hi, u);
      return _mm256_blendv_ps(l, h, _mm256_castsi256_ps(_mm256_slli_epi32(u, 28)));
    } else {
      return _mm256_i32gather_ps(p, u, 4);
    }
  }
};

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace
#endif

#if defined(KERNKIT_QUANT_AVX2) && defined(__AVX512F__)
namespace {
// GEMV with 16 lanes: one vpermps looks up a 16-entry table, so 2/3/4-bit codes cost one
// permute each (AVX2 needs two permutes and a blend for 4 bits).
template <int CB>
inline std::uint64_t codes16(const std::uint8_t* p) {  // codes 0-7 in bits 0.., 8-15 in bits 32..
  if constexpr (CB == 4) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
  } else if constexpr (CB == 3) {
    std::uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + 2, 4);
    return static_cast<std::uint64_t>(a & 0xFFFFFFu) | (static_cast<std::uint64_t>(b >> 8) << 32);
  } else {
    std::uint32_t a;
    std::memcpy(&a, p, 4);
    return static_cast<std::uint64_t>(a & 0xFFFFu) | (static_cast<std::uint64_t>(a >> 16) << 32);
  }
}

template <int CB, int BITS>
void gemv_avx512(const std::uint8_t* packed, std::int64_t row_bytes, std::int64_t rows,
                 std::int64_t cols, std::int64_t group, const float* lut, std::int64_t l_sr,
                 std::int64_t l_sg, const float* dscale, const float* x, float* y, int nthreads) {
  const std::int64_t ng = cols / group, cpg = group / 16;
  const __m512i shifts = _mm512_setr_epi32(0, CB, 2 * CB, 3 * CB, 4 * CB, 5 * CB, 6 * CB, 7 * CB,
                                           0, CB, 2 * CB, 3 * CB, 4 * CB, 5 * CB, 6 * CB, 7 * CB);
  const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m512i mask = _mm512_set1_epi32((1 << CB) - 1);
  auto load_tab = [](const float* l) {
    alignas(64) float t[16] = {0};
    std::memcpy(t, l, sizeof(float) << BITS);
    return _mm512_load_ps(t);
  };
  auto row_fn = [&](std::int64_t r) {
    const std::uint8_t* rp = packed + r * row_bytes;
    __m512 tab = load_tab(lut + r * l_sr);
    __m512 racc = _mm512_setzero_ps();
    for (std::int64_t g = 0; g < ng; ++g) {
      if (l_sg != 0) tab = load_tab(lut + r * l_sr + g * l_sg);
      __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
      const std::int64_t c0 = g * group;
      std::int64_t k = 0;
      for (; k + 1 < cpg; k += 2) {
        const std::int64_t c = c0 + 16 * k;
        const __m512i v0 = _mm512_permutexvar_epi32(spread, _mm512_castsi128_si512(_mm_cvtsi64_si128(static_cast<long long>(codes16<CB>(rp + c / 8 * CB)))));
        const __m512i v1 = _mm512_permutexvar_epi32(spread, _mm512_castsi128_si512(_mm_cvtsi64_si128(static_cast<long long>(codes16<CB>(rp + (c + 16) / 8 * CB)))));
        const __m512i i0 = _mm512_and_si512(_mm512_srlv_epi32(v0, shifts), mask);
        const __m512i i1 = _mm512_and_si512(_mm512_srlv_epi32(v1, shifts), mask);
        a0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(i0, tab), _mm512_loadu_ps(x + c), a0);
        a1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(i1, tab), _mm512_loadu_ps(x + c + 16), a1);
      }
      if (k < cpg) {
        const std::int64_t c = c0 + 16 * k;
        const __m512i v0 = _mm512_permutexvar_epi32(spread, _mm512_castsi128_si512(_mm_cvtsi64_si128(static_cast<long long>(codes16<CB>(rp + c / 8 * CB)))));
        const __m512i i0 = _mm512_and_si512(_mm512_srlv_epi32(v0, shifts), mask);
        a0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(i0, tab), _mm512_loadu_ps(x + c), a0);
      }
      racc = _mm512_fmadd_ps(_mm512_add_ps(a0, a1), _mm512_set1_ps(dscale[r * ng + g]), racc);
    }
    y[r] = _mm512_reduce_add_ps(racc);
  };
  detail::parallel_for_each(rows, nthreads, row_fn);
}
// Small batches: each decoded 16-weight vector feeds NB batch rows (NB accumulators).
template <int CB, int BITS, int NB>
inline void row_batch_avx512(const std::uint8_t* rp, std::int64_t r, std::int64_t rows,
                             std::int64_t cols, std::int64_t group, const float* lutr,
                             std::int64_t l_sg, const float* dsr, const float* xb, float* yb) {
  const std::int64_t ng = cols / group, cpg = group / 16;
  const __m512i shifts = _mm512_setr_epi32(0, CB, 2 * CB, 3 * CB, 4 * CB, 5 * CB, 6 * CB, 7 * CB,
                                           0, CB, 2 * CB, 3 * CB, 4 * CB, 5 * CB, 6 * CB, 7 * CB);
  const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m512i mask = _mm512_set1_epi32((1 << CB) - 1);
  alignas(64) float t[16] = {0};
  std::memcpy(t, lutr, sizeof(float) << BITS);
  __m512 tab = _mm512_load_ps(t);
  __m512 racc[NB];
  for (int n = 0; n < NB; ++n) racc[n] = _mm512_setzero_ps();
  for (std::int64_t g = 0; g < ng; ++g) {
    if (l_sg != 0) {
      std::memcpy(t, lutr + g * l_sg, sizeof(float) << BITS);
      tab = _mm512_load_ps(t);
    }
    __m512 acc[NB];
    for (int n = 0; n < NB; ++n) acc[n] = _mm512_setzero_ps();
    for (std::int64_t k = 0; k < cpg; ++k) {
      const std::int64_t c = g * group + 16 * k;
      const __m512i v = _mm512_permutexvar_epi32(spread, _mm512_castsi128_si512(_mm_cvtsi64_si128(static_cast<long long>(codes16<CB>(rp + c / 8 * CB)))));
      const __m512 wv = _mm512_permutexvar_ps(_mm512_and_si512(_mm512_srlv_epi32(v, shifts), mask), tab);
      for (int n = 0; n < NB; ++n) acc[n] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xb + n * cols + c), acc[n]);
    }
    const __m512 ds = _mm512_set1_ps(dsr[g]);
    for (int n = 0; n < NB; ++n) racc[n] = _mm512_fmadd_ps(acc[n], ds, racc[n]);
  }
  for (int n = 0; n < NB; ++n) yb[n * rows + r] = _mm512_reduce_add_ps(racc[n]);
}

// GEMV / small-batch GEMM with the codes left in place (2-, 3- and 4-bit). 2/4-bit: a 64-byte
// block holds 16 dwords, and dword i holds the K = 32/CB codes of columns P*blk + K*i + k (k < K, P = 16K).
// vpermps reads only the low 4 bits of each index, so code k of every lane is looked up by one
// permute of the block shifted right by CB*k bits (2-bit tables are repeated 4 times so the bits
// above a code do not matter). The block is loaded once: four loads at byte offsets 0..3 saved
// shifts, but three of them cross a cache line, and on the Zen 4 measured that cost more than
// the shifts (one core, codes in cache: 21 -> 28 G weights/s for 4-bit codes). The weights
// come out with lane i at column K*i + k, so x is permuted once per call to that order
// (xp[blk*P + 16k + i] = x[blk*P + K*i + k]); a dot product does not depend on the order of its
// terms. Scales: one per lane group of the block (group % K == 0).
// 3-bit codes: a block is 192 bytes (48 dwords, 512 codes) and lane i holds the K = 32 codes of
// its 96 bits 96i.., gathered into three registers R_j[i] = dword 3i + j once per block; code k
// is R_{3k/32} shifted right by 3k % 32 (two codes straddle two dwords: an OR of two shifts),
// with an 8-entry table repeated twice. One shift and one permute per 16 weights.
template <int CB>
constexpr int lanes_k = CB == 3 ? 32 : 32 / CB;  // codes per lane per block

template <int CB>
inline bool lanes_layout_ok(std::int64_t group, std::int64_t l_sg) {
  // (any row length: a partial last block holds whole groups, as cols % group == 0)
  constexpr std::int64_t K = lanes_k<CB>, P = 16 * K;
  if (group % K != 0) return false;
  if (group % P == 0) return true;
  return l_sg == 0 && P % group == 0;  // several groups per block: one table for the row
}

// The low n bits set (n clamped to 0..64): a byte mask for the n bytes left in a row.
inline std::uint64_t low_bytes(std::int64_t n) {
  return n >= 64 ? ~std::uint64_t{0} : n <= 0 ? 0 : (std::uint64_t{1} << n) - 1;
}

// Software prefetch of the codes about 4 KB ahead in the order they are read (into the next rows
// at a row's end, or the same columns of later rows when rows are taken in column chunks; a
// prefetch past the buffer cannot fault). The hardware prefetcher alone left the kernel waiting on
// DRAM: 25-50 MB of codes ran at ~14 G weights/s against ~22 from cache; 2 KB ahead gave ~18-20,
// 4 KB 11008x4096 W4 at batch 1 on one core 1.9-2.0 -> 1.8 ms (1 and 8 KB no better). Into L2
// only (T1): rows longer than L1 holds x for (11008 columns) stream x through L1, which evicted
// codes prefetched there (cold 4096x11008 W4: 3.5 -> 3.1 ms; from cache unchanged).
template <int LINES>
inline void prefetch_codes(const std::uint8_t* bp, std::int64_t ahead) {
  for (int l = 0; l < LINES; ++l) _mm_prefetch(reinterpret_cast<const char*>(bp) + ahead + 64 * l, _MM_HINT_T1);
}

// What a call's rows share: the block and scale layout, worked out once per call (per row, the
// 16 divisions of the lane-to-group map cost as much as a quarter of a 4096-column row).
template <int CB>
struct LanePlan {
  static constexpr std::int64_t K = lanes_k<CB>, P = 16 * K;
  std::int64_t rem, nblk, xs, last_bytes, bpg, gpb;
  bool one_scale, two_scales;  // two_scales: lanes 0-7 and 8-15, two broadcasts and a blend
  __mmask16 smask, smask_last;  // the scales of a block, of the partial last block
  alignas(64) int sidx[16];     // lane i of a block belongs to group (K*i)/group of the block's first
  LanePlan(std::int64_t cols, std::int64_t group) {
    // A row of cols codes: whole blocks, then a partial one of rem codes (whole groups) when P
    // does not divide cols; x is zero-padded to whole blocks (xs floats per batch row).
    rem = cols % P;
    nblk = cols / P + (rem != 0);
    xs = nblk * P;
    last_bytes = (rem != 0 ? rem : P) * CB / 8;
    one_scale = group % P == 0;
    two_scales = P == 2 * group;
    // group index without a division per block: blocks per group (one_scale) or groups per block
    bpg = one_scale ? group / P : 1;
    gpb = one_scale ? 0 : P / group;
    for (int i = 0; i < 16; ++i) sidx[i] = one_scale ? 0 : static_cast<int>((K * i) / group);
    smask = one_scale ? __mmask16(1) : static_cast<__mmask16>((1u << gpb) - 1u);
    smask_last = rem != 0 ? static_cast<__mmask16>((1u << (rem / group)) - 1u) : smask;
  }
};

// One row's blocks in the lanes layout, taken in order from blk0: each block's codes (loaded
// once), its table and its per-lane scales. Shared by the dot-product kernel (batches 1-4) and
// the broadcast kernel's decode (larger batches).
template <int CB, int BITS>
struct LaneRow {
  static constexpr int K = lanes_k<CB>;
  const LanePlan<CB>& pl;
  const std::uint8_t* rp;
  const float* lutr;
  const float* dsr;
  std::int64_t l_sg, g, left;
  __m512 tab;
  __m512i sidx;
  __m512i v[3];  // 3-bit codes: the three gathered registers; 2/4-bit: the block in v[0]
  bool last = false;
  // 3-bit blocks: register j takes dword e = 3i + j, from (a, b) where e < 32, else from c
  __m512i gather_lo[3], gather_c[3];
  __mmask16 gather_hi[3];

  static __m512 load_tab(const float* l) {
    alignas(64) float t[16];
    for (int j = 0; j < 16; ++j) t[j] = l[j & ((1 << BITS) - 1)];
    return _mm512_load_ps(t);
  }
  LaneRow(const LanePlan<CB>& plan, const std::uint8_t* row, const float* lut_row, std::int64_t lut_sg,
          const float* dscale_row, std::int64_t blk0)
      : pl(plan), rp(row), lutr(lut_row), dsr(dscale_row), l_sg(lut_sg),
        g(plan.one_scale ? blk0 / plan.bpg : 0), left(plan.bpg - blk0 % plan.bpg + 1),
        tab(load_tab(lut_row + g * lut_sg)),
        sidx(_mm512_load_si512(plan.sidx)) {
    if constexpr (CB == 3) {
      const __m512i three_i = _mm512_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45);
      for (int j = 0; j < 3; ++j) {
        const __m512i e = _mm512_add_epi32(three_i, _mm512_set1_epi32(j));
        gather_lo[j] = _mm512_and_si512(e, _mm512_set1_epi32(31));
        gather_c[j] = _mm512_and_si512(_mm512_sub_epi32(e, _mm512_set1_epi32(32)), _mm512_set1_epi32(15));
        gather_hi[j] = _mm512_cmpge_epi32_mask(e, _mm512_set1_epi32(32));
      }
    }
  }
  // Block blk, the next in order: its table (a new group) and its codes, prefetched `ahead` bytes on.
  inline void load(std::int64_t blk, std::int64_t ahead) {
    if (pl.one_scale && --left == 0) {
      ++g;
      left = pl.bpg;
      if (l_sg != 0) tab = load_tab(lutr + g * l_sg);
    }
    last = blk + 1 == pl.nblk;
    if constexpr (CB == 3) {
      const std::uint8_t* bp = rp + blk * 192;
      prefetch_codes<3>(bp, ahead);
      const bool part = last && pl.rem != 0;  // read no byte past the row
      const std::int64_t lb = pl.last_bytes;
      const __m512i a = part ? _mm512_maskz_loadu_epi8(low_bytes(lb), bp) : _mm512_loadu_si512(bp);
      const __m512i b = part ? _mm512_maskz_loadu_epi8(low_bytes(lb - 64), bp + 64) : _mm512_loadu_si512(bp + 64);
      const __m512i c = part ? _mm512_maskz_loadu_epi8(low_bytes(lb - 128), bp + 128) : _mm512_loadu_si512(bp + 128);
      for (int j = 0; j < 3; ++j)  // dword 3i + j: from (a, b) below 32, else from c
        v[j] = _mm512_mask_permutexvar_epi32(_mm512_permutex2var_epi32(a, gather_lo[j], b), gather_hi[j],
                                             gather_c[j], c);
    } else {
      // The last block of a row reads no byte past it (masked), so the last row never reads
      // beyond the packed buffer.
      const std::uint8_t* bp = rp + blk * 64;
      prefetch_codes<1>(bp, ahead);
      v[0] = last ? _mm512_maskz_loadu_epi8(low_bytes(pl.last_bytes), bp) : _mm512_loadu_si512(bp);
    }
  }
  // The table values of code k of every lane of the block (lane i: column K*i + k).
  inline __m512 weights(int k) const {
    __m512i u;
    if constexpr (CB == 3) {
      const int q = 3 * k / 32, s = 3 * k % 32;
      if (s == 0) {
        u = v[q];
      } else {
        const __m512i lo = _mm512_srli_epi32(v[q], static_cast<unsigned>(s));
        u = s <= 29 ? lo : _mm512_or_si512(lo, _mm512_slli_epi32(v[q + 1], static_cast<unsigned>(32 - s)));
      }
    } else {
      const int s = CB * k;
      u = s == 0 ? v[0] : _mm512_srli_epi32(v[0], static_cast<unsigned>(s));
    }
    return _mm512_permutexvar_ps(u, tab);
  }
  // The scale of each lane of block blk (a partial block has rem / group scales: the masked
  // load, and zeros for the padded lanes).
  inline __m512 scales(std::int64_t blk) const {
    const __mmask16 sm = last ? pl.smask_last : pl.smask;
    if (pl.one_scale) return _mm512_set1_ps(dsr[g]);
    if (pl.two_scales && sm == pl.smask)
      return _mm512_mask_blend_ps(__mmask16(0xFF00), _mm512_set1_ps(dsr[2 * blk]), _mm512_set1_ps(dsr[2 * blk + 1]));
    return _mm512_permutexvar_ps(sidx, _mm512_maskz_loadu_ps(sm, dsr + blk * pl.gpb));
  }
};

// Blocks [blk0, blk1) of a row; the codes are prefetched `ahead` bytes on.
template <int CB, int BITS, int NB>
inline void row_lanes_avx512(const std::uint8_t* rp, const LanePlan<CB>& pl, const float* lutr,
                             std::int64_t l_sg, const float* dsr, const float* xp,
                             std::int64_t blk0, std::int64_t blk1, std::int64_t ahead, float* out) {
  constexpr int K = lanes_k<CB>, P = 16 * K;
  const std::int64_t xs = pl.xs;
  LaneRow<CB, BITS> row(pl, rp, lutr, l_sg, dsr, blk0);
  __m512 racc[NB];
  for (int n = 0; n < NB; ++n) racc[n] = _mm512_setzero_ps();
  for (std::int64_t blk = blk0; blk < blk1; ++blk) {
    const std::int64_t c0 = blk * P;
    row.load(blk, ahead);
    __m512 acc[NB], acc2[NB];  // two FMA chains per batch row (halves the dependency chain)
    for (int n = 0; n < NB; ++n) acc[n] = acc2[n] = _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int k = 0; k < K; k += 2) {
      const __m512 w = row.weights(k), w2 = row.weights(k + 1);
      for (int n = 0; n < NB; ++n) {
        acc[n] = _mm512_fmadd_ps(w, _mm512_loadu_ps(xp + n * xs + c0 + 16 * k), acc[n]);
        acc2[n] = _mm512_fmadd_ps(w2, _mm512_loadu_ps(xp + n * xs + c0 + 16 * (k + 1)), acc2[n]);
      }
    }
    const __m512 sc = row.scales(blk);
    for (int n = 0; n < NB; ++n) racc[n] = _mm512_fmadd_ps(_mm512_add_ps(acc[n], acc2[n]), sc, racc[n]);
  }
  for (int n = 0; n < NB; ++n) out[n] = _mm512_reduce_add_ps(racc[n]);
}

template <int CB, int BITS>
void gemm_lanes_avx512(const std::uint8_t* packed, std::int64_t row_bytes, std::int64_t rows,
                       std::int64_t cols, std::int64_t group, const float* lut, std::int64_t l_sr,
                       std::int64_t l_sg, const float* dscale, const float* x, std::int64_t batch,
                       float* y, int nthreads) {
  constexpr std::int64_t K = lanes_k<CB>, P = 16 * K;
  const LanePlan<CB> pl(cols, group);
  const std::int64_t xs = pl.xs;  // zero-padded to whole blocks
  isa_vector<float> xp(static_cast<std::size_t>(batch * xs));
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t c0 = 0; c0 < xs; c0 += P)
      for (std::int64_t k = 0; k < K; ++k)
        for (std::int64_t i = 0; i < 16; ++i) {
          const std::int64_t c = c0 + K * i + k;
          xp[b * xs + c0 + 16 * k + i] = c < cols ? x[b * cols + c] : 0.0f;
        }
  const std::int64_t ng = cols / group;
  // Batches of 1 to 3 whose rows of x are more than L1 holds (32 KB) take the rows in equal
  // column chunks of at most 24 KB of x, each chunk over all of a thread's rows, so x stays in L1
  // (one core: 4096 x 11008 W2-W4 at batch 1 1.1-1.2x, batch 3 at 4096 columns 1.1-1.5x). At
  // batch 4 and above the kernel is bound by its loads of x either way (one 512-bit load per
  // FMA), and chunks measured 0.76-1.04x. A chunk is whole groups. The codes are prefetched ~4 KB
  // ahead in the order they are read.
  const std::int64_t tile = std::min<std::int64_t>(batch, 4);
  const bool chunked = tile <= 3 && pl.xs * tile > 8192;
  const std::int64_t most = chunked ? std::max<std::int64_t>(1, 6144 / (P * tile)) : pl.nblk;
  const std::int64_t nchunks = (pl.nblk + most - 1) / most;
  std::int64_t chunk = (pl.nblk + nchunks - 1) / nchunks;
  if (pl.one_scale) chunk = (chunk + pl.bpg - 1) / pl.bpg * pl.bpg;
  chunk = std::min(chunk, pl.nblk);
  const std::int64_t chunk_bytes = chunk * P * CB / 8;
  const std::int64_t ahead = chunk == pl.nblk ? 4096 : row_bytes * ((4096 + chunk_bytes - 1) / chunk_bytes);
  detail::parallel_for(rows, nthreads, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t blk0 = 0; blk0 < pl.nblk; blk0 += chunk) {
      const std::int64_t blk1 = std::min(pl.nblk, blk0 + chunk);
      for (std::int64_t r = r0; r < r1; ++r) {
        const std::uint8_t* rp = packed + r * row_bytes;
        const float* lutr = lut + r * l_sr;
        const float* dsr = dscale + r * ng;
        float out[4];
        auto store = [&](std::int64_t b, std::int64_t nb) {  // the first chunk writes, the rest add
          for (std::int64_t n = 0; n < nb; ++n) y[(b + n) * rows + r] = blk0 == 0 ? out[n] : y[(b + n) * rows + r] + out[n];
        };
        std::int64_t b = 0;
        for (; b + 4 <= batch; b += 4) {
          row_lanes_avx512<CB, BITS, 4>(rp, pl, lutr, l_sg, dsr, xp.data() + b * xs, blk0, blk1, ahead, out);
          store(b, 4);
        }
        const std::int64_t rest = batch - b;
        if (rest == 3) row_lanes_avx512<CB, BITS, 3>(rp, pl, lutr, l_sg, dsr, xp.data() + b * xs, blk0, blk1, ahead, out);
        if (rest == 2) row_lanes_avx512<CB, BITS, 2>(rp, pl, lutr, l_sg, dsr, xp.data() + b * xs, blk0, blk1, ahead, out);
        if (rest == 1) row_lanes_avx512<CB, BITS, 1>(rp, pl, lutr, l_sg, dsr, xp.data() + b * xs, blk0, blk1, ahead, out);
        store(b, rest);
      }
    }
  });
}

// Batches of 5 and more: the batch runs along the vector lanes. x is transposed once per call
// into xt[c][b] (c in the lanes order of the codes, b zero-padded to whole vectors of 16). A
// thread takes a tile of RT rows in chunks of KC columns: it decodes the chunk of each row,
// scaled, into an L1-sized buffer (wt[i][c], the same column order) and broadcasts each decoded
// weight into one FMA per 16 batch rows. No horizontal sums and no transposed weights, and the
// decode (a shift, a permute and a multiply per 16 weights) is shared by the whole batch; the
// chunks keep the decoded weights in L1 (12 whole rows of 4096 are 192 KB). Before, batches above
// 4 took the AVX2 path below (4 decoded rows, 4 x 2 dot products on 8 lanes): 4096x4096 W4 at
// batch 8-32 ran 0.6-1.3x float32 BLAS, now 1.6-2.6x (Intel Xeon, one core).
template <int RT, int NV>
inline void bcast_tile_avx512(const float* wt, std::int64_t ws, std::int64_t kc, const float* xt,
                              std::int64_t bp, float* acc_mem) {
  __m512 acc[RT][NV];
  for (int i = 0; i < RT; ++i)
    for (int n = 0; n < NV; ++n) acc[i][n] = _mm512_loadu_ps(acc_mem + i * bp + 16 * n);
  for (std::int64_t c = 0; c < kc; ++c, xt += bp) {
    __m512 xv[NV];
    for (int n = 0; n < NV; ++n) xv[n] = _mm512_loadu_ps(xt + 16 * n);
    for (int i = 0; i < RT; ++i) {
      const __m512 w = _mm512_set1_ps(wt[i * ws + c]);
      for (int n = 0; n < NV; ++n) acc[i][n] = _mm512_fmadd_ps(w, xv[n], acc[i][n]);
    }
  }
  for (int i = 0; i < RT; ++i)
    for (int n = 0; n < NV; ++n) _mm512_storeu_ps(acc_mem + i * bp + 16 * n, acc[i][n]);
}

template <int CB, int BITS>
void gemm_bcast_avx512(const std::uint8_t* packed, std::int64_t row_bytes, std::int64_t rows,
                       std::int64_t cols, std::int64_t group, const float* lut, std::int64_t l_sr,
                       std::int64_t l_sg, const float* dscale, const float* x, std::int64_t batch,
                       float* y, int nthreads) {
  constexpr std::int64_t K = lanes_k<CB>, P = 16 * K, KC = 512;  // KC: a multiple of every P
  constexpr int RT = 12;  // rows per tile: RT x 2 accumulators and 2 x vectors; RT x KC floats = 24 KB
  // A row of the buffer every KC + 16 floats: at 2 KB the 12 rows' lines all fell in 2 L1 sets.
  constexpr std::int64_t WS = KC + 16;
  const LanePlan<CB> pl(cols, group);
  const std::int64_t xs = pl.xs, bp = (batch + 15) / 16 * 16, ng = cols / group;
  isa_vector<float> xt(static_cast<std::size_t>(xs * bp), 0.0f);
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t c = 0; c < cols; ++c) {  // column c = P*blk + K*i + k sits at P*blk + 16k + i
      const std::int64_t blk = c / P, i = c % P / K, k = c % K;
      xt[(blk * P + 16 * k + i) * bp + b] = x[b * cols + c];
    }
  detail::parallel_for_each((rows + RT - 1) / RT, nthreads, [&](std::int64_t t) {
    thread_local isa_vector<float> wt, acc;
    wt.resize(static_cast<std::size_t>(RT * WS + 16));
    acc.assign(static_cast<std::size_t>(RT * bp), 0.0f);
    float* w = wt.data() + (-(reinterpret_cast<std::uintptr_t>(wt.data()) / sizeof(float)) & 15);  // 64-byte aligned
    const std::int64_t r0 = t * RT, nr = std::min<std::int64_t>(RT, rows - r0);
    for (std::int64_t c0 = 0; c0 < xs; c0 += KC) {
      const std::int64_t kc = std::min(KC, xs - c0), blk0 = c0 / P;
      for (std::int64_t i = 0; i < RT; ++i) {
        float* out = w + i * WS;
        if (i >= nr) {  // the last tile's missing rows: zeros (their sums are not stored)
          std::fill(out, out + kc, 0.0f);
          continue;
        }
        const std::int64_t r = r0 + i;
        LaneRow<CB, BITS> row(pl, packed + r * row_bytes, lut + r * l_sr, l_sg, dscale + r * ng, blk0);
        for (std::int64_t blk = blk0; blk < blk0 + kc / P; ++blk) {
          row.load(blk, 4096);
          const __m512 sc = row.scales(blk);
#pragma GCC unroll 32
          for (int k = 0; k < K; ++k) _mm512_store_ps(out + (blk - blk0) * P + 16 * k, _mm512_mul_ps(row.weights(k), sc));
        }
      }
      std::int64_t b0 = 0;
      for (; b0 + 32 <= bp; b0 += 32) bcast_tile_avx512<RT, 2>(w, WS, kc, xt.data() + c0 * bp + b0, bp, acc.data() + b0);
      if (b0 < bp) bcast_tile_avx512<RT, 1>(w, WS, kc, xt.data() + c0 * bp + b0, bp, acc.data() + b0);
    }
    for (std::int64_t i = 0; i < nr; ++i)
      for (std::int64_t b = 0; b < batch; ++b) y[b * rows + r0 + i] = acc[i * bp + b];
  });
}

template <int CB, int BITS>
void gemm_small_avx512(const std::uint8_t* packed, std::int64_t row_bytes, std::int64_t rows,
                       std::int64_t cols, std::int64_t group, const float* lut, std::int64_t l_sr,
                       std::int64_t l_sg, const float* dscale, const float* x, std::int64_t batch,
                       float* y, int nthreads) {
  const std::int64_t ng = cols / group;
  detail::parallel_for_each(rows, nthreads, [&](std::int64_t r) {
    const std::uint8_t* rp = packed + r * row_bytes;
    const float* lutr = lut + r * l_sr;
    const float* dsr = dscale + r * ng;
    std::int64_t b = 0;
    for (; b + 4 <= batch; b += 4)
      row_batch_avx512<CB, BITS, 4>(rp, r, rows, cols, group, lutr, l_sg, dsr, x + b * cols, y + b * rows);
    switch (batch - b) {
      case 3: row_batch_avx512<CB, BITS, 3>(rp, r, rows, cols, group, lutr, l_sg, dsr, x + b * cols, y + b * rows); break;
      case 2: row_batch_avx512<CB, BITS, 2>(rp, r, rows, cols, group, lutr, l_sg, dsr, x + b * cols, y + b * rows); break;
      case 1: row_batch_avx512<CB, BITS, 1>(rp, r, rows, cols, group, lutr, l_sg, dsr, x + b * cols, y + b * rows); break;
      default: break;
    }
  });
}
}  // namespace
#endif

#ifdef KERNKIT_QUANT_AVX2
namespace {
template <int CB, int BITS>
bool lut_matmul_avx2(const std::uint8_t* packed, std::int64_t row_bytes, std::int64_t rows,
                     std::int64_t cols, std::int64_t group, const float* lut, std::int64_t l_sr,
                     std::int64_t l_sg, const float* dscale, const float* x, std::int64_t batch,
                     float* y, int nthreads) {
  const std::int64_t ng = cols / group, cpg = group / 8;  // chunks of 8 per group
  const Decoder<CB> dec;
#if defined(__AVX512F__)
  if constexpr (CB <= 4) {
    if (lanes_layout_ok<CB>(group, l_sg)) {
      if (batch <= 4)
        gemm_lanes_avx512<CB, BITS>(packed, row_bytes, rows, cols, group, lut, l_sr, l_sg, dscale, x, batch, y, nthreads);
      else
        gemm_bcast_avx512<CB, BITS>(packed, row_bytes, rows, cols, group, lut, l_sr, l_sg, dscale, x, batch, y, nthreads);
      return true;
    }
  }
  if constexpr (CB <= 4) {
    if (batch == 1 && group % 16 == 0) {
      gemv_avx512<CB, BITS>(packed, row_bytes, rows, cols, group, lut, l_sr, l_sg, dscale, x, y, nthreads);
      return true;
    }
    if (batch > 1 && batch <= 4 && group % 16 == 0) {  // larger batches: the row-tile path below
      gemm_small_avx512<CB, BITS>(packed, row_bytes, rows, cols, group, lut, l_sr, l_sg, dscale, x, batch, y, nthreads);
      return true;
    }
  }
#endif
  if (batch == 1) {
    auto row_fn = [&](std::int64_t r) {
      const std::uint8_t* rp = packed + r * row_bytes;
      Table<BITS> tb;
      tb.load(lut + r * l_sr);
      __m256 racc = _mm256_setzero_ps();
      for (std::int64_t g = 0; g < ng; ++g) {
        if (l_sg != 0) tb.load(lut + r * l_sr + g * l_sg);
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        const std::int64_t j0 = g * cpg;
        std::int64_t j = 0;
        for (; j + 1 < cpg; j += 2) {
          a0 = _mm256_fmadd_ps(tb.lookup(dec.codes(rp, j0 + j)), _mm256_loadu_ps(x + 8 * (j0 + j)), a0);
          a1 = _mm256_fmadd_ps(tb.lookup(dec.codes(rp, j0 + j + 1)), _mm256_loadu_ps(x + 8 * (j0 + j + 1)), a1);
        }
        if (j < cpg) a0 = _mm256_fmadd_ps(tb.lookup(dec.codes(rp, j0 + j)), _mm256_loadu_ps(x + 8 * (j0 + j)), a0);
        racc = _mm256_fmadd_ps(_mm256_add_ps(a0, a1), _mm256_set1_ps(dscale[r * ng + g]), racc);
      }
      y[r] = hsum(racc);
    };
    detail::parallel_for_each(rows, nthreads, row_fn);
    return true;
  }
  // batch > 1: decode a tile of 4 rows (scale applied) into a per-thread buffer, then 4 x 2 dots.
  constexpr std::int64_t RT = 4;
  const std::int64_t ntiles = (rows + RT - 1) / RT;
  auto tile_fn = [&](std::int64_t t) {
    thread_local isa_vector<float> buf;
    buf.resize(static_cast<std::size_t>(RT * cols));
    const std::int64_t r0 = t * RT, nr = std::min<std::int64_t>(RT, rows - r0);
    Table<BITS> tb;
    for (std::int64_t i = 0; i < nr; ++i) {
      const std::int64_t r = r0 + i;
      const std::uint8_t* rp = packed + r * row_bytes;
      float* br = buf.data() + i * cols;
      tb.load(lut + r * l_sr);
      for (std::int64_t g = 0; g < ng; ++g) {
        if (l_sg != 0) tb.load(lut + r * l_sr + g * l_sg);
        const __m256 ds = _mm256_set1_ps(dscale[r * ng + g]);
        for (std::int64_t j = g * cpg; j < (g + 1) * cpg; ++j)
          _mm256_storeu_ps(br + 8 * j, _mm256_mul_ps(tb.lookup(dec.codes(rp, j)), ds));
      }
    }
    for (std::int64_t i = nr; i < RT; ++i) std::fill(buf.begin() + i * cols, buf.begin() + (i + 1) * cols, 0.0f);
    const float* b0 = buf.data();
    const float* b1 = b0 + cols;
    const float* b2 = b1 + cols;
    const float* b3 = b2 + cols;
    std::int64_t b = 0;
    for (; b + 1 < batch; b += 2) {
      const float* x0 = x + b * cols;
      const float* x1 = x0 + cols;
      __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c03 = c00;
      __m256 c10 = c00, c11 = c00, c12 = c00, c13 = c00;
      for (std::int64_t c = 0; c < cols; c += 8) {
        const __m256 xa = _mm256_loadu_ps(x0 + c), xb = _mm256_loadu_ps(x1 + c);
        const __m256 w0 = _mm256_loadu_ps(b0 + c), w1 = _mm256_loadu_ps(b1 + c);
        const __m256 w2 = _mm256_loadu_ps(b2 + c), w3 = _mm256_loadu_ps(b3 + c);
        c00 = _mm256_fmadd_ps(w0, xa, c00); c01 = _mm256_fmadd_ps(w1, xa, c01);
        c02 = _mm256_fmadd_ps(w2, xa, c02); c03 = _mm256_fmadd_ps(w3, xa, c03);
        c10 = _mm256_fmadd_ps(w0, xb, c10); c11 = _mm256_fmadd_ps(w1, xb, c11);
        c12 = _mm256_fmadd_ps(w2, xb, c12); c13 = _mm256_fmadd_ps(w3, xb, c13);
      }
      const float s0[RT] = {hsum(c00), hsum(c01), hsum(c02), hsum(c03)};
      const float s1[RT] = {hsum(c10), hsum(c11), hsum(c12), hsum(c13)};
      for (std::int64_t i = 0; i < nr; ++i) {
        y[b * rows + r0 + i] = s0[i];
        y[(b + 1) * rows + r0 + i] = s1[i];
      }
    }
    for (; b < batch; ++b) {
      const float* x0 = x + b * cols;
      __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
      for (std::int64_t c = 0; c < cols; c += 8) {
        const __m256 xa = _mm256_loadu_ps(x0 + c);
        c0 = _mm256_fmadd_ps(_mm256_loadu_ps(b0 + c), xa, c0);
        c1 = _mm256_fmadd_ps(_mm256_loadu_ps(b1 + c), xa, c1);
        c2 = _mm256_fmadd_ps(_mm256_loadu_ps(b2 + c), xa, c2);
        c3 = _mm256_fmadd_ps(_mm256_loadu_ps(b3 + c), xa, c3);
      }
      const float s0[RT] = {hsum(c0), hsum(c1), hsum(c2), hsum(c3)};
      for (std::int64_t i = 0; i < nr; ++i) y[b * rows + r0 + i] = s0[i];
    }
  };
  detail::parallel_for_each(ntiles, nthreads, tile_fn);
  return true;
}
}  // namespace
#endif

bool quant_lut_matmul_f32(const std::uint8_t* packed, std::int64_t row_bytes, int code_bits,
                          int bits, std::int64_t rows, std::int64_t cols, std::int64_t group,
                          const float* lut, std::int64_t l_sr, std::int64_t l_sg,
                          const float* dscale, const float* x, std::int64_t batch, float* y,
                          int nthreads) {
#ifdef KERNKIT_QUANT_AVX2
  if (cols % 8 != 0 || group % 8 != 0) return false;
#define KK_CASE(CB_, B_)                                                                        \
  if (code_bits == CB_ && bits == B_)                                                           \
    return lut_matmul_avx2<CB_, B_>(packed, row_bytes, rows, cols, group, lut, l_sr, l_sg,      \
                                    dscale, x, batch, y, nthreads);
  KK_CASE(2, 2)
  KK_CASE(3, 3)
  KK_CASE(4, 4)
  KK_CASE(8, 5)
  KK_CASE(8, 6)
  KK_CASE(8, 7)
  KK_CASE(8, 8)
#undef KK_CASE
  return false;
#else
  (void)packed; (void)row_bytes; (void)code_bits; (void)bits; (void)rows; (void)cols;
  (void)group; (void)lut; (void)l_sr; (void)l_sg; (void)dscale; (void)x; (void)batch; (void)y;
  (void)nthreads;
  return false;
#endif
}

namespace {
// w[j] = lut[code of column c0 + j], j < len: whole bytes (CB = 2, 4, 8; unrolled) where the
// chunk starts on one, else code by code (CB = 0: code_bits at run time, 3-bit codes).
template <int CB, class T>
void decode_chunk(const std::uint8_t* row, std::int64_t c0, std::int64_t len, int code_bits,
                  const T* lut, T* w) {
  if constexpr (CB > 0) {
    constexpr int per = 8 / CB;
    constexpr unsigned mask = (1u << CB) - 1u;
    if (c0 % per == 0) {
      const std::uint8_t* b = row + c0 / per;
      const std::int64_t whole = len / per;
      for (std::int64_t i = 0; i < whole; ++i) {
        const unsigned v = b[i];
        for (int k = 0; k < per; ++k) w[i * per + k] = lut[(v >> (k * CB)) & mask];
      }
      for (std::int64_t j = whole * per; j < len; ++j) w[j] = lut[packed_code_at(row, c0 + j, CB)];
      return;
    }
  }
  for (std::int64_t j = 0; j < len; ++j) w[j] = lut[packed_code_at(row, c0 + j, code_bits)];
}

// Any element type and code layout: a row's weights decoded once per chunk of up to KC columns
// (a lookup and the group's scale per weight, shared by the whole batch), then each batch row's
// dot product with the chunk, vectorized, one horizontal sum per chunk. (Decoding per batch row,
// as before, made float64 20-40x slower than float32 and 4-34x slower than BLAS at batches 1-32.)
template <class T>
void lut_matmul_decode(const std::uint8_t* packed, std::int64_t row_bytes, int code_bits,
                       std::int64_t rows, std::int64_t cols, std::int64_t group, const T* lut,
                       std::int64_t l_sr, std::int64_t l_sg, const T* dscale, const T* x,
                       std::int64_t batch, T* y, int nthreads) {
  constexpr std::int64_t KC = 512;
  const std::int64_t ng = cols / group;
  detail::parallel_for(rows, nthreads, [&](std::int64_t r0, std::int64_t r1) {
    if (r0 >= r1) return;
    alignas(64) T w[KC];
    isa_vector<T> acc(static_cast<std::size_t>(batch));
    for (std::int64_t r = r0; r < r1; ++r) {
      const std::uint8_t* rp = packed + r * row_bytes;
      std::fill(acc.begin(), acc.end(), T(0));
      for (std::int64_t c0 = 0; c0 < cols; c0 += KC) {
        const std::int64_t len = std::min(KC, cols - c0);
        for (std::int64_t a = c0; a < c0 + len;) {  // the chunk's pieces of its groups
          const std::int64_t g = a / group, e = std::min(c0 + len, (g + 1) * group);
          const T* lg = lut + r * l_sr + g * l_sg;
          T* wa = w + (a - c0);
          switch (code_bits) {
            case 2: decode_chunk<2>(rp, a, e - a, code_bits, lg, wa); break;
            case 4: decode_chunk<4>(rp, a, e - a, code_bits, lg, wa); break;
            case 8: decode_chunk<8>(rp, a, e - a, code_bits, lg, wa); break;
            default: decode_chunk<0>(rp, a, e - a, code_bits, lg, wa); break;
          }
          const T ds = dscale[r * ng + g];
#pragma omp simd
          for (std::int64_t j = 0; j < e - a; ++j) wa[j] *= ds;
          a = e;
        }
        std::int64_t b = 0;
        for (; b + 4 <= batch; b += 4) {  // four batch rows per pass over the chunk (w loaded once)
          const T *x0 = x + b * cols + c0, *x1 = x0 + cols, *x2 = x1 + cols, *x3 = x2 + cols;
          T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
          for (std::int64_t j = 0; j < len; ++j) {
            s0 += w[j] * x0[j];
            s1 += w[j] * x1[j];
            s2 += w[j] * x2[j];
            s3 += w[j] * x3[j];
          }
          acc[b] += s0;
          acc[b + 1] += s1;
          acc[b + 2] += s2;
          acc[b + 3] += s3;
        }
        for (; b < batch; ++b) {
          const T* xb = x + b * cols + c0;
          T s = 0;
#pragma omp simd reduction(+ : s)
          for (std::int64_t j = 0; j < len; ++j) s += w[j] * xb[j];
          acc[b] += s;
        }
      }
      for (std::int64_t b = 0; b < batch; ++b) y[b * rows + r] = acc[b];
    }
  });
}
}  // namespace

void quant_lut_matmul_decode(const std::uint8_t* packed, std::int64_t row_bytes, int code_bits,
                             std::int64_t rows, std::int64_t cols, std::int64_t group, const float* lut,
                             std::int64_t l_sr, std::int64_t l_sg, const float* dscale, const float* x,
                             std::int64_t batch, float* y, int nthreads) {
  lut_matmul_decode(packed, row_bytes, code_bits, rows, cols, group, lut, l_sr, l_sg, dscale, x, batch, y, nthreads);
}

void quant_lut_matmul_decode(const std::uint8_t* packed, std::int64_t row_bytes, int code_bits,
                             std::int64_t rows, std::int64_t cols, std::int64_t group, const double* lut,
                             std::int64_t l_sr, std::int64_t l_sg, const double* dscale, const double* x,
                             std::int64_t batch, double* y, int nthreads) {
  lut_matmul_decode(packed, row_bytes, code_bits, rows, cols, group, lut, l_sr, l_sg, dscale, x, batch, y, nthreads);
}

}  // namespace kernkit::KERNKIT_ISA_NS
