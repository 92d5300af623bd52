// Hashed-attention loops, compiled once per instruction set (see KernkitSimd.cmake). Every
// inner loop runs over the d value columns and is a plain add/subtract (vectorised by the
// compiler); the ±1 code bits only select which row or table entry is added.
//
// Non-causal slice (kernkit/hashattn.hpp for the formula):
//   1. scatter: for each key row j and each 4-bit group g of its code, add v_j to bucket
//      B[g][p] (p = the group's 4 bits); count the rows per bucket. Value rows go into
//      input-precision buckets, flushed into double buckets every kFlush rows.
//   2. per bit r of group g: S_r = sum_p (+/-)_r(p) B[g][p] (double), k_r likewise (integers);
//      tables T[g][p] = sum_{r in g} (+/-)_r(p) S_r (+ c * sum_j v_j in group 0) and the integer
//      denominator tables D[g][p] (+ c N in group 0).
//   3. each query row: out_i = (sum_g T[g][p_g(i)]) / (sum_g D[g][p_g(i)]) (+ c v_i in the
//      ecoformer mode): one add per group.
// Causal slice: running sums (double) updated row by row, v_j added to the sum of each bit set
// in its code (slice_causal), and out_i read from them.
#include <algorithm>
#include <cstdint>
#include <cstring>

#ifndef KERNKIT_ISA_NS
#define KERNKIT_ISA_NS isa_baseline
#endif

#include "hashattn_isa.hpp"
#include "kernkit/math/hashattn.hpp"
#include "isa_local.hpp"
#include "parallel.hpp"

namespace kernkit::KERNKIT_ISA_NS {
namespace {

constexpr int kGroupBits = kHashGroupBits;
constexpr int kPatterns = 1 << kGroupBits;
constexpr std::int64_t kFlush = 1024;

inline std::int64_t imin(std::int64_t a, std::int64_t b) { return a < b ? a : b; }
inline int imin(int a, int b) { return a < b ? a : b; }

template <class W>
inline std::uint64_t word_at(const void* p, std::int64_t i) {
  return static_cast<std::uint64_t>(static_cast<const W*>(p)[i]);
}

inline std::uint64_t load_code(const void* p, int wb, std::int64_t i) {
  switch (wb) {
    case 1: return word_at<std::uint8_t>(p, i);
    case 2: return word_at<std::uint16_t>(p, i);
    case 4: return word_at<std::uint32_t>(p, i);
    default: return word_at<std::uint64_t>(p, i);
  }
}

// 32-byte vectors (GCC/Clang vector extensions; two 16-byte halves on the baseline ISA) for the
// compile-time-width paths: accumulators stay in registers, one store per result row.
template <class T>
struct Vec32 {
  typedef T type __attribute__((vector_size(32)));
};
template <class T>
using vec32 = typename Vec32<T>::type;
template <class T>
inline vec32<T> vload(const T* p) {
  vec32<T> x;
  std::memcpy(&x, p, sizeof x);
  return x;
}
template <class T>
inline void vstore(T* p, vec32<T> x) {
  std::memcpy(p, &x, sizeof x);
}

template <class A, class B>
inline void add_row(A* __restrict a, const B* __restrict x, std::int64_t d) {
#pragma omp simd
  for (std::int64_t e = 0; e < d; ++e) a[e] += static_cast<A>(x[e]);
}

template <class A, class B>
inline void sub_row(A* __restrict a, const B* __restrict x, std::int64_t d) {
#pragma omp simd
  for (std::int64_t e = 0; e < d; ++e) a[e] -= static_cast<A>(x[e]);
}

template <class T>
struct Scratch {
  isa_vector<T> local;        // [G][16][d] input-precision buckets
  isa_vector<double> master;  // [G][16][d]
  isa_vector<double> s;       // [bits][d]
  isa_vector<double> vsum;    // [d]
  isa_vector<T> table;        // [G][16][d]
  isa_vector<double> dtab;    // [G][16]
  isa_vector<std::int64_t> cnt;  // [G][16] (non-causal) or [bits] (causal)
  isa_vector<double> acc;     // [3][d] (causal)
};

template <int DD, class T>
void slice_noncausal(const void* hq, const void* hk, int wb, int bits, const T* v, T* out,
                     std::int64_t nq, std::int64_t nk, std::int64_t d_, double c, int mode,
                     Scratch<T>& s) {
  const std::int64_t d = DD > 0 ? DD : d_;  // a compile-time width lets the loops unroll
  const int G = (bits + kGroupBits - 1) / kGroupBits;
  const std::size_t gsz = static_cast<std::size_t>(kPatterns) * static_cast<std::size_t>(d);
  if (DD == 0) s.local.assign(G * gsz, T(0));
  s.master.assign(G * gsz, 0.0);
  s.cnt.assign(static_cast<std::size_t>(G) * kPatterns, 0);
  // 1. scatter value rows into buckets.
  if constexpr (DD > 0) {
    // Compile-time width: per block of kBlock rows and per group, order the rows by their
    // 4-bit pattern (counting sort) and sum each pattern's rows in a register accumulator,
    // then add it to the double bucket once: loads and adds per row, no per-row stores.
    constexpr std::int64_t kBlock = 256;
    std::uint8_t pat[kBlock];
    std::uint16_t order[kBlock];
    std::uint64_t words[kBlock];
    for (std::int64_t j0 = 0; j0 < nk; j0 += kBlock) {
      const std::int64_t L = imin(nk - j0, kBlock);
      for (std::int64_t t = 0; t < L; ++t) words[t] = load_code(hk, wb, j0 + t);
      for (int g = 0; g < G; ++g) {
        int start[kPatterns + 1] = {0};
        for (std::int64_t t = 0; t < L; ++t) {
          pat[t] = static_cast<std::uint8_t>(hash_group_pattern(words[t], g, bits));
          ++start[pat[t] + 1];
        }
        for (int p = 0; p < kPatterns; ++p) {
          s.cnt[g * kPatterns + p] += start[p + 1];
          start[p + 1] += start[p];
        }
        int fill[kPatterns];
        for (int p = 0; p < kPatterns; ++p) fill[p] = start[p];
        for (std::int64_t t = 0; t < L; ++t) order[fill[pat[t]]++] = static_cast<std::uint16_t>(t);
        for (int p = 0; p < kPatterns; ++p) {
          if (start[p] == start[p + 1]) continue;
          constexpr int kL = static_cast<int>(32 / sizeof(T)), kN = DD / kL;
          vec32<T> acc[kN];
#pragma GCC unroll 32
          for (int k = 0; k < kN; ++k) acc[k] = vec32<T>{};
          for (int q = start[p]; q < start[p + 1]; ++q) {
            const T* vj = v + (j0 + order[q]) * DD;
#pragma GCC unroll 32
            for (int k = 0; k < kN; ++k) acc[k] += vload(vj + k * kL);
          }
          alignas(32) T buf[DD];
#pragma GCC unroll 32
          for (int k = 0; k < kN; ++k) vstore(buf + k * kL, acc[k]);
          add_row(s.master.data() + g * gsz + p * DD, buf, DD);
        }
      }
    }
  } else {
    for (std::int64_t j0 = 0; j0 < nk; j0 += kFlush) {
      const std::int64_t j1 = imin(nk, j0 + kFlush);
      for (std::int64_t j = j0; j < j1; ++j) {
        const std::uint64_t w = load_code(hk, wb, j);
        const T* vj = v + j * d;
        for (int g = 0; g < G; ++g) {
          const unsigned p = hash_group_pattern(w, g, bits);
          add_row(s.local.data() + g * gsz + p * d, vj, d);
          ++s.cnt[g * kPatterns + p];
        }
      }
      add_row(s.master.data(), s.local.data(), static_cast<std::int64_t>(G * gsz));
      std::fill(s.local.begin(), s.local.end(), T(0));
    }
  }
  // 2. per-bit sums, tables.
  s.s.assign(static_cast<std::size_t>(bits) * d, 0.0);
  s.vsum.assign(d, 0.0);
  for (int p = 0; p < kPatterns; ++p) add_row(s.vsum.data(), s.master.data() + p * d, d);
  std::int64_t kr[64];
  for (int r = 0; r < bits; ++r) {
    const int g = r / kGroupBits, rb = r % kGroupBits;
    double* sr = s.s.data() + static_cast<std::size_t>(r) * d;
    std::int64_t k = 0;
    for (int p = 0; p < kPatterns; ++p) {
      const double* bp = s.master.data() + g * gsz + p * d;
      const std::int64_t np = s.cnt[g * kPatterns + p];
      if ((p >> rb) & 1) {
        add_row(sr, bp, d);
        k += np;
      } else {
        sub_row(sr, bp, d);
        k -= np;
      }
    }
    kr[r] = k;
  }
  s.table.assign(G * gsz, T(0));
  s.dtab.assign(static_cast<std::size_t>(G) * kPatterns, 0.0);
  s.acc.assign(d, 0.0);
  for (int g = 0; g < G; ++g) {
    const int r0 = g * kGroupBits, r1 = imin(bits, r0 + kGroupBits);
    for (int p = 0; p < kPatterns; ++p) {
      // Patterns that differ only in unused high bits of the last group are never read
      // (those bits are masked off when a query is read).
      double* a = s.acc.data();
      for (std::int64_t e = 0; e < d; ++e) a[e] = 0.0;
      std::int64_t den = 0;
      for (int r = r0; r < r1; ++r) {
        const double* sr = s.s.data() + static_cast<std::size_t>(r) * d;
        if ((p >> (r - r0)) & 1) {
          add_row(a, sr, d);
          den += kr[r];
        } else {
          sub_row(a, sr, d);
          den -= kr[r];
        }
      }
      double dd = static_cast<double>(den);
      if (g == 0) {
        if (mode == 0) {
#pragma omp simd
          for (std::int64_t e = 0; e < d; ++e) a[e] += c * s.vsum[e];
        }
        dd += c * static_cast<double>(nk);
      }
      T* t = s.table.data() + g * gsz + p * d;
#pragma omp simd
      for (std::int64_t e = 0; e < d; ++e) t[e] = static_cast<T>(a[e]);
      s.dtab[g * kPatterns + p] = dd;
    }
  }
  // 3. outputs.
  const T cT = static_cast<T>(c);
  for (std::int64_t i = 0; i < nq; ++i) {
    const std::uint64_t w = load_code(hq, wb, i);
    T* oi = out + i * d;
    unsigned p = hash_group_pattern(w, 0, bits);
    const T* t0 = s.table.data() + p * d;
    double den = s.dtab[p];
    if constexpr (DD > 0) {  // accumulate in registers, store once
      constexpr int kL = static_cast<int>(32 / sizeof(T)), kN = DD / kL;
      vec32<T> acc[kN];
#pragma GCC unroll 32
      for (int k = 0; k < kN; ++k) acc[k] = vload(t0 + k * kL);
      for (int g = 1; g < G; ++g) {
        p = hash_group_pattern(w, g, bits);
        const T* t = s.table.data() + g * gsz + p * DD;
#pragma GCC unroll 32
        for (int k = 0; k < kN; ++k) acc[k] += vload(t + k * kL);
        den += s.dtab[g * kPatterns + p];
      }
      if (mode == 1) {
        const T* vi = v + i * DD;
#pragma GCC unroll 32
        for (int k = 0; k < kN; ++k) acc[k] += cT * vload(vi + k * kL);
      }
      const T dT = static_cast<T>(den);
#pragma GCC unroll 32
      for (int k = 0; k < kN; ++k) vstore(oi + k * kL, acc[k] / dT);
      continue;
    }
#pragma omp simd
    for (std::int64_t e = 0; e < d; ++e) oi[e] = t0[e];
    for (int g = 1; g < G; ++g) {
      p = hash_group_pattern(w, g, bits);
      add_row(oi, s.table.data() + g * gsz + p * d, d);
      den += s.dtab[g * kPatterns + p];
    }
    if (mode == 1) {
      const T* vi = v + i * d;
#pragma omp simd
      for (std::int64_t e = 0; e < d; ++e) oi[e] += cT * vi[e];
    }
    const T dT = static_cast<T>(den);
#pragma omp simd
    for (std::int64_t e = 0; e < d; ++e) oi[e] /= dT;
  }
}

// A = sum of the rows r of P ([bits][d]) whose bit is set in w. Compile-time width: 32 columns at
// a time in registers, one store per column block.
template <int DD>
inline void sum_selected_rows(const double* P, std::uint64_t w, std::int64_t d, double* A) {
  if constexpr (DD > 0) {
    constexpr int kL = 4, kC = 32, kN = kC / kL;  // doubles per vector, columns per pass
    static_assert(DD % kC == 0, "DD must be a multiple of 32");
    for (int e0 = 0; e0 < DD; e0 += kC) {
      vec32<double> acc[kN];
#pragma GCC unroll 8
      for (int k = 0; k < kN; ++k) acc[k] = vec32<double>{};
      for (std::uint64_t m = w; m != 0; m &= m - 1) {
        const double* pr = P + static_cast<std::size_t>(__builtin_ctzll(m)) * DD + e0;
#pragma GCC unroll 8
        for (int k = 0; k < kN; ++k) acc[k] += vload(pr + k * kL);
      }
#pragma GCC unroll 8
      for (int k = 0; k < kN; ++k) vstore(A + e0 + k * kL, acc[k]);
    }
  } else {
    for (std::int64_t e = 0; e < d; ++e) A[e] = 0.0;
    for (std::uint64_t m = w; m != 0; m &= m - 1)
      add_row(A, P + static_cast<std::size_t>(__builtin_ctzll(m)) * d, d);
  }
}

// x added to the rows r of P ([bits][d]) whose bit is set in w, and as many times to U (add-only:
// compile-time width keeps the running multiple of x in registers, 16 columns at a time).
template <int DD>
inline void add_to_selected_rows(double* P, std::uint64_t w, const double* x, double* U, std::int64_t d) {
  if constexpr (DD > 0) {
    constexpr int kL = 4, kC = 16, kN = kC / kL;
    static_assert(DD % kC == 0, "DD must be a multiple of 16");
    for (int e0 = 0; e0 < DD; e0 += kC) {
      vec32<double> xv[kN], t[kN];
#pragma GCC unroll 4
      for (int k = 0; k < kN; ++k) {
        xv[k] = vload(x + e0 + k * kL);
        t[k] = vec32<double>{};
      }
      for (std::uint64_t m = w; m != 0; m &= m - 1) {
        double* pr = P + static_cast<std::size_t>(__builtin_ctzll(m)) * DD + e0;
#pragma GCC unroll 4
        for (int k = 0; k < kN; ++k) {
          vstore(pr + k * kL, vload(pr + k * kL) + xv[k]);
          t[k] += xv[k];
        }
      }
#pragma GCC unroll 4
      for (int k = 0; k < kN; ++k) vstore(U + e0 + k * kL, vload(U + e0 + k * kL) + t[k]);
    }
  } else {
    for (std::uint64_t m = w; m != 0; m &= m - 1) {
      double* __restrict pr = P + static_cast<std::size_t>(__builtin_ctzll(m)) * d;
#pragma omp simd
      for (std::int64_t e = 0; e < d; ++e) {
        pr[e] += x[e];
        U[e] += x[e];
      }
    }
  }
}

template <int DD, class T>
void slice_causal(const void* hq, const void* hk, int wb, int bits, const T* v, T* out,
                  std::int64_t n, std::int64_t d_, double c, int mode, Scratch<T>& s) {
  // Running sums up to row i (double): P_r = sum of the rows with bit r set, V = sum of all rows,
  // U = sum_r P_r. With s_r = +/-1 the query's bits and m = sum_r s_r, S_r = 2 P_r - V gives
  //   sum_r s_r S_r = 4 A - 2 U - m V,  A = sum of P_r over the query's set bits,
  // so a row adds itself to popcount(key) rows of P (and as often to U, and once to V) and reads
  // popcount(query) rows of P (before: every S_r updated and read, 2 x bits row operations).
  const std::int64_t d = DD > 0 ? DD : d_;
  const std::uint64_t mask = hash_code_mask(bits);
  s.s.assign(static_cast<std::size_t>(bits) * d, 0.0);
  s.vsum.assign(d, 0.0);
  s.acc.assign(3 * d, 0.0);
  double* U = s.acc.data();
  double* A = U + d;
  double* x = A + d;  // row i widened to double
  const double* V = s.vsum.data();
  s.cnt.assign(bits, 0);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint64_t wk = load_code(hk, wb, i) & mask;
    const T* vi = v + i * d;
#pragma omp simd
    for (std::int64_t e = 0; e < d; ++e) x[e] = static_cast<double>(vi[e]);
    add_to_selected_rows<DD>(s.s.data(), wk, x, U, d);
    for (std::uint64_t m = wk; m != 0; m &= m - 1) ++s.cnt[__builtin_ctzll(m)];
    add_row(s.vsum.data(), x, d);
    const std::uint64_t wq = load_code(hq, wb, i) & mask;
    const std::int64_t ni = i + 1;
    std::int64_t den = 0;
    for (int r = 0; r < bits; ++r) {
      const std::int64_t kr = 2 * s.cnt[r] - ni;
      den += ((wq >> r) & 1u) ? kr : -kr;
    }
    const double dd = static_cast<double>(den) + c * static_cast<double>(ni);
    const double mq = static_cast<double>(2 * hash_popcount(wq) - bits);
    sum_selected_rows<DD>(s.s.data(), wq, d, A);
    const double* extra = mode == 0 ? V : x;
    T* oi = out + i * d;
#pragma omp simd
    for (std::int64_t e = 0; e < d; ++e)
      oi[e] = static_cast<T>(((4.0 * A[e] - 2.0 * U[e]) - mq * V[e] + c * extra[e]) / dd);
  }
}

template <class T>
void run(const void* hq, const void* hk, int wb, int bits, const T* v, T* out, std::int64_t bh,
         std::int64_t nq, std::int64_t nk, std::int64_t d, double c, bool causal, int mode,
         const std::int64_t* lens, int nthreads) {
  detail::parallel_for(bh, nthreads, [&](std::int64_t b0, std::int64_t b1) {
    Scratch<T> s;
    for (std::int64_t b = b0; b < b1; ++b) {
      const char* q = static_cast<const char*>(hq) + b * nq * wb;
      const char* k = static_cast<const char*>(hk) + b * nk * wb;
      const T* vb = v + b * nk * d;
      T* ob = out + b * nq * d;
      if (causal) {
        if (d == 64) slice_causal<64>(q, k, wb, bits, vb, ob, nq, d, c, mode, s);
        else if (d == 32) slice_causal<32>(q, k, wb, bits, vb, ob, nq, d, c, mode, s);
        else if (d == 128) slice_causal<128>(q, k, wb, bits, vb, ob, nq, d, c, mode, s);
        else slice_causal<0>(q, k, wb, bits, vb, ob, nq, d, c, mode, s);
      } else {
        const std::int64_t nkb = lens ? lens[b] : nk;  // keys after the first nkb: padding
        if (d == 64) slice_noncausal<64>(q, k, wb, bits, vb, ob, nq, nkb, d, c, mode, s);
        else if (d == 32) slice_noncausal<32>(q, k, wb, bits, vb, ob, nq, nkb, d, c, mode, s);
        else if (d == 128 && sizeof(T) == 4) slice_noncausal<128>(q, k, wb, bits, vb, ob, nq, nkb, d, c, mode, s);
        else slice_noncausal<0>(q, k, wb, bits, vb, ob, nq, nkb, d, c, mode, s);
      }
    }
  });
}

}  // namespace

void hashattn_f32(const void* hq, const void* hk, int word_bytes, int bits, const float* v,
                  float* out, std::int64_t bh, std::int64_t nq, std::int64_t nk, std::int64_t d,
                  double offset, bool causal, int mode, const std::int64_t* key_lengths,
                  int nthreads) {
  run(hq, hk, word_bytes, bits, v, out, bh, nq, nk, d, offset, causal, mode, key_lengths, nthreads);
}

void hashattn_f64(const void* hq, const void* hk, int word_bytes, int bits, const double* v,
                  double* out, std::int64_t bh, std::int64_t nq, std::int64_t nk, std::int64_t d,
                  double offset, bool causal, int mode, const std::int64_t* key_lengths,
                  int nthreads) {
  run(hq, hk, word_bytes, bits, v, out, bh, nq, nk, d, offset, causal, mode, key_lengths, nthreads);
}

}  // namespace kernkit::KERNKIT_ISA_NS
