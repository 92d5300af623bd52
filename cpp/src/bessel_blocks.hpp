// Internal: the block loop for log I_v, log I_v e^-x, log K_v, log K_v e^x and the ratios
// I_{v+1}/I_v, I_v'/I_v, K_v'/K_v (included by special_loops.cpp, so it is compiled once per
// ISA). Each block of kBlock elements is split by bessel_detail::fast_class: the elements of one
// class (Debye, or in the box below it I's series and K's Temme series; for float32
// also the float kernels' Debye classes, bessel_detail::fast_class_p) are gathered into
// contiguous buffers and run through that class's branch-free kernel in a `#pragma omp simd`
// loop; the rest (x < 1e-3 in the box for K, negative order for I, special values) call the
// scalar function. The scalar function uses the same class test and the same kernel (hyp from a
// correctly rounded sqrt on both paths), so every element gets the same bits whichever way it
// goes (contiguous or strided, 1 or n threads, alone or in a large array).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "kernkit/math/log_bessel.hpp"
#include "parallel.hpp"

#if defined(__GNUC__)
#define KERNKIT_FLATTEN [[gnu::flatten]]
#else
#define KERNKIT_FLATTEN
#endif

namespace kernkit::KERNKIT_ISA_NS {
namespace bessel_blocks {

namespace bd = ::kernkit::bessel_detail;
constexpr int kBlock = 512;
constexpr int kClasses = bd::kFastClassesLowp + 1;  // 0: scalar path; float kernels above kFastClasses
static_assert(kClasses <= 64, "the block loop keeps the classes present in a 64-bit mask");
constexpr int kLanes = 8;  // class runs are padded to a multiple of this (any ISA's lane count)
// gathered slots: the block, each class's padding, and the 8 slots a compaction may store past its end
constexpr int kGather = kBlock + kLanes * kClasses + 8;

// h = sqrt(v*v + x*x) with the ISA's sqrt instruction (std::sqrt would not vectorise: errno).
// Same operations and rounding as the scalar path's std::sqrt(v * v + x * x).
inline void hyp_block(int k, const double* v, const double* x, double* h) {
  int i = 0;
#if defined(__AVX512F__)
  for (; i + 8 <= k; i += 8) {
    const __m512d a = _mm512_loadu_pd(v + i), b = _mm512_loadu_pd(x + i);
    _mm512_storeu_pd(h + i, _mm512_sqrt_pd(_mm512_add_pd(_mm512_mul_pd(a, a), _mm512_mul_pd(b, b))));
  }
#elif defined(__AVX__)
  for (; i + 4 <= k; i += 4) {
    const __m256d a = _mm256_loadu_pd(v + i), b = _mm256_loadu_pd(x + i);
    _mm256_storeu_pd(h + i, _mm256_sqrt_pd(_mm256_add_pd(_mm256_mul_pd(a, a), _mm256_mul_pd(b, b))));
  }
#elif defined(__SSE2__)
  for (; i + 2 <= k; i += 2) {
    const __m128d a = _mm_loadu_pd(v + i), b = _mm_loadu_pd(x + i);
    _mm_storeu_pd(h + i, _mm_sqrt_pd(_mm_add_pd(_mm_mul_pd(a, a), _mm_mul_pd(b, b))));
  }
#endif
  for (; i < k; ++i) h[i] = std::sqrt(v[i] * v[i] + x[i] * x[i]);
}

// The same in float, for the float kernels (bessel/debye_float.hpp), as std::sqrt(float).
inline void hyp_block_f(int k, const float* v, const float* x, float* h) {
  int i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= k; i += 16) {
    const __m512 a = _mm512_loadu_ps(v + i), b = _mm512_loadu_ps(x + i);
    _mm512_storeu_ps(h + i, _mm512_sqrt_ps(_mm512_add_ps(_mm512_mul_ps(a, a), _mm512_mul_ps(b, b))));
  }
#elif defined(__AVX__)
  for (; i + 8 <= k; i += 8) {
    const __m256 a = _mm256_loadu_ps(v + i), b = _mm256_loadu_ps(x + i);
    _mm256_storeu_ps(h + i, _mm256_sqrt_ps(_mm256_add_ps(_mm256_mul_ps(a, a), _mm256_mul_ps(b, b))));
  }
#elif defined(__SSE2__)
  for (; i + 4 <= k; i += 4) {
    const __m128 a = _mm_loadu_ps(v + i), b = _mm_loadu_ps(x + i);
    _mm_storeu_ps(h + i, _mm_sqrt_ps(_mm_add_ps(_mm_mul_ps(a, a), _mm_mul_ps(b, b))));
  }
#endif
  for (; i < k; ++i) h[i] = std::sqrt(v[i] * v[i] + x[i] * x[i]);
}

// Bit c set for each class c (0..63) in cls[0..m). In two 32-bit halves: GCC vectorises that
// (variable 32-bit shifts), not a 64-bit shift by a 32-bit count, which ran as a scalar loop
// (~2 cycles per element, 6-10% of the cheaper box classes' time).
inline std::uint64_t class_mask(int m, const int* cls) {
  std::uint32_t lo = 0, hi = 0;
  for (int i = 0; i < m; ++i) {
    const auto c = static_cast<std::uint32_t>(cls[i]);
    const std::uint32_t bit = 1u << (c & 31u);
    lo |= bit & (0u - static_cast<std::uint32_t>(c < 32u));
    hi |= bit & (0u - static_cast<std::uint32_t>(c >= 32u));
  }
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}

// Appends the indices and operands of the elements of class c to perm/gv/gx; returns their number.
inline int compact(int c, int m, const int* cls, const double* v, const double* x, int* perm,
                   double* gv, double* gx) {
  int p = 0, i = 0;
#if defined(__AVX512F__) && defined(__AVX512VL__)
  // compress 8 lanes at a time (register form: the memory form of vcompress is slow on Zen 4)
  const __m256i cc = _mm256_set1_epi32(c);
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (; i + 8 <= m; i += 8) {
    const __mmask8 k = _mm256_cmpeq_epi32_mask(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(cls + i)), cc);
    if (k == 0) continue;
    const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(i), iota);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(perm + p), _mm256_maskz_compress_epi32(k, idx));
    _mm512_storeu_pd(gv + p, _mm512_maskz_compress_pd(k, _mm512_loadu_pd(v + i)));
    _mm512_storeu_pd(gx + p, _mm512_maskz_compress_pd(k, _mm512_loadu_pd(x + i)));
    p += __builtin_popcount(static_cast<unsigned>(k));  // GCC/Clang only: see KernkitSimd.cmake
  }
#endif
  for (; i < m; ++i) {  // branch-free: store always, advance on a match
    perm[p] = i;
    gv[p] = v[i];
    gx[p] = x[i];
    p += static_cast<int>(cls[i] == c);
  }
  return p;
}

// Runs one class's kernel over k gathered elements. flatten: inline the whole kernel (log,
// polynomials) into the loop so that it vectorises.
template <int Q>
struct ClassRunner {
  int k;
  const double* v;
  const double* x;
  const double* h;
  double* o;
  template <int NT, int KIND>
  KERNKIT_FLATTEN void operator()() const {
#pragma omp simd
    for (int i = 0; i < k; ++i) o[i] = bd::debye_kernel<NT, KIND, Q>(v[i], x[i], h[i]);
  }
};

// A float class's kernel (bessel/debye_float.hpp) over k gathered elements: the operands are
// float values held in double, converted to float buffers so the loop runs on float lanes.
template <int Q>
struct FloatRunner {
  int k;
  const double* v;
  const double* x;
  double* o;
  template <int NT, int KIND>
  KERNKIT_FLATTEN void operator()() const {
    alignas(64) float fv[kGather], fx[kGather], fh[kGather], fo[kGather];
    for (int i = 0; i < k; ++i) {
      fv[i] = static_cast<float>(v[i]);
      fx[i] = static_cast<float>(x[i]);
    }
    hyp_block_f(k, fv, fx, fh);
#pragma omp simd
    for (int i = 0; i < k; ++i) fo[i] = bd::debye_float_kernel<NT, KIND, Q>(fv[i], fx[i], fh[i]);
    for (int i = 0; i < k; ++i) o[i] = static_cast<double>(fo[i]);
  }
};

// A Temme quadrature class's float kernel (bessel/temme_float.hpp, the float functions) over k
// gathered elements: as FloatRunner, float buffers so that the loop runs on float lanes.
struct TemmeFloatRunner {
  int k;
  const double* v;
  const double* x;
  double* o;
  float scaled, dlog;
  template <int NQ, int NREC>
  KERNKIT_FLATTEN void operator()() const {
    alignas(64) float fv[kGather], fx[kGather], fo[kGather];
    for (int i = 0; i < k; ++i) {
      fv[i] = static_cast<float>(v[i]);
      fx[i] = static_cast<float>(x[i]);
    }
    const float sc = scaled, dl = dlog;
#pragma omp simd
    for (int i = 0; i < k; ++i) fo[i] = bd::temme_float<NQ, NREC>(fv[i], fx[i], sc, dl);
    for (int i = 0; i < k; ++i) o[i] = static_cast<double>(fo[i]);
  }
};

// The same for a box series class (log I, log I e^-x) and a box Temme class (log K, log K e^x,
// K'/K). Not templated on Q, with the scaling (and K'/K) a run-time flag: these share their
// instantiations, which are large (unrolled terms and nodes).
struct SeriesRunner {
  int k;
  const double* v;
  const double* x;
  double* o;
  double scaled;  // 1: log I e^-x
  template <int NT, bool LOGSPACE, int NMAX>
  KERNKIT_FLATTEN void operator()() const {
    const double sc = scaled;  // a local: the loop's stores could alias the member
#pragma omp simd
    for (int i = 0; i < k; ++i) o[i] = bd::series_fast<NT, LOGSPACE, NMAX>(v[i], x[i], sc);
  }
};

struct TemmeRunner {
  int k;
  const double* v;
  const double* x;
  double* o;
  double scaled;  // 1: log K e^x
  double dlog;    // 1: K_v'/K_v
  template <int NT, int NQ, int NREC>
  KERNKIT_FLATTEN void operator()() const {
    const double sc = scaled, dl = dlog;
#pragma omp simd
    for (int i = 0; i < k; ++i) o[i] = bd::temme_fast<NT, NQ, NREC>(v[i], x[i], sc, dl);
  }
};

// The box classes of the ratio I_{v+1}/I_v (dlog = 0) and of I_v'/I_v (dlog = 1).
struct SeriesRatioRunner {
  int k;
  const double* v;
  const double* x;
  double* o;
  double dlog;
  template <int NT>
  KERNKIT_FLATTEN void operator()() const {
    const double dl = dlog;
#pragma omp simd
    for (int i = 0; i < k; ++i) o[i] = bd::series_ratio_fast<NT>(v[i], x[i], dl);
  }
};

// Class c's kernel over k gathered elements; h: room for their hyp, which only the double Debye
// classes compute and use (a double sqrt per element that the others skipped).
template <int Q, bool LOWP>
inline void run_class(int c, int k, const double* v, const double* x, double* h, double* o) {
  if constexpr (LOWP) {
    if (c > bd::kFastClasses) return bd::debye_float_visit(c - bd::kFastClasses, FloatRunner<Q>{k, v, x, o});
  }
  const int b = c - bd::kDebyeFastClasses;  // the box class, if positive
  if constexpr (Q == bd::kLogI || Q == bd::kLogIs) {
    if (b > 0) return bd::series_fast_visit<LOWP>(b, SeriesRunner{k, v, x, o, Q == bd::kLogIs ? 1.0 : 0.0});
  } else if constexpr (bd::is_k_quantity(Q)) {
    if (LOWP && b > 0 && bd::temme_class_quad(b))
      return bd::temme_float_visit(b, TemmeFloatRunner{k, v, x, o, Q == bd::kLogKs ? 1.0f : 0.0f, Q == bd::kDlogK ? 1.0f : 0.0f});
    if (b > 0)
      return bd::temme_fast_visit<LOWP>(b, TemmeRunner{k, v, x, o, Q == bd::kLogKs ? 1.0 : 0.0, Q == bd::kDlogK ? 1.0 : 0.0});
  } else {
    if (b > 0) return bd::series_ratio_visit<LOWP>(b, SeriesRatioRunner{k, v, x, o, Q == bd::kDlogI ? 1.0 : 0.0});
  }
  hyp_block(k, v, x, h);
  bd::debye_visit<Q, LOWP>(c, ClassRunner<Q>{k, v, x, h, o});
}

// Q's scalar function for the elements outside every class: bd::log_iv_slow, log_kv_slow,
// iv_ratio_slow, dlog_kv_slow, which is what the scalar functions return there, inlined whole
// (flatten; and without the branch-free kernels, which these elements never take). The header
// functions are inline with one mangled name in every ISA variant of this file; a call that is
// not inlined would bind to whichever variant's copy the linker keeps (slow baseline code here,
// or AVX-512 code on a CPU without it). Inlining keeps each variant's code its own.
template <int Q, class T>
KERNKIT_FLATTEN T slow_call(T v, T x) {
  constexpr bool kScaled = Q == bd::kLogIs || Q == bd::kLogKs;
  const double a = static_cast<double>(v), b = static_cast<double>(x);
  if constexpr (Q == bd::kLogK || Q == bd::kLogKs) {
    return static_cast<T>(bd::log_kv_slow(a, b, kScaled));
  } else if constexpr (Q == bd::kRatioI || Q == bd::kDlogI) {
    return static_cast<T>(bd::iv_ratio_slow(a, b, Q == bd::kDlogI ? 1 : 0));
  } else if constexpr (Q == bd::kDlogK) {
    return static_cast<T>(bd::dlog_kv_slow(a, b));
  } else {
    return static_cast<T>(bd::log_iv_slow(a, b, kScaled));
  }
}

// Q: a bd::DebyeQ (kLogI .. kDlogK).
template <int Q, class T>
void run(std::int64_t n, const T* v, std::int64_t sv, const T* x, std::int64_t sx, T* out,
         std::int64_t so, int nthreads) {
  const std::int64_t nb = (n + kBlock - 1) / kBlock;
  detail::parallel_for(nb, nthreads, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t b = b0; b < b1; ++b) {
      const std::int64_t i0 = b * kBlock;
      const int m = static_cast<int>(std::min<std::int64_t>(kBlock, n - i0));
      double nub[kBlock], xb[kBlock];
      int cls[kBlock];
      for (int i = 0; i < m; ++i) {
        const double vi = static_cast<double>(v[(i0 + i) * sv]);
        nub[i] = bd::is_k_quantity(Q) ? std::fabs(vi) : vi;  // I: negative order is not in the fast set
        xb[i] = static_cast<double>(x[(i0 + i) * sx]);
      }
  #pragma omp simd
      for (int i = 0; i < m; ++i) cls[i] = bd::debye_fast_class(nub[i], xb[i]);
      if constexpr (bd::is_lowp<T>::value) {  // the float kernels' classes
  #pragma omp simd
        for (int i = 0; i < m; ++i) cls[i] = bd::with_float_class<Q>(cls[i], nub[i], xb[i]);
      }
      std::uint64_t present = class_mask(m, cls);  // bit c: class c occurs in the block
      if (present & 1u) {  // the box classes (bd::fast_class), only for blocks that need them
  #pragma omp simd
        for (int i = 0; i < m; ++i) cls[i] += static_cast<int>(cls[i] == 0) * bd::box_class<Q>(nub[i], xb[i]);
        present = class_mask(m, cls);
      }
      double gh[kGather], go[kGather];
      if ((present & (present - 1)) == 0 && present != 1) {
        // one class only (the common case for smooth inputs): no sorting
        int c = 1;
        while (present != (std::uint64_t{1} << c)) ++c;
        run_class<Q, bd::is_lowp<T>::value>(c, m, nub, xb, gh, go);
        for (int i = 0; i < m; ++i) out[(i0 + i) * so] = static_cast<T>(go[i]);
        continue;
      }
      double rb[kBlock + 1];  // the block's results by position; rb[kBlock] takes the padding
      if (present & 1u) {
        for (int i = 0; i < m; ++i)
          if (cls[i] == 0) rb[i] = static_cast<double>(slow_call<Q>(v[(i0 + i) * sv], x[(i0 + i) * sx]));
      }
      // gather each class's operands into a contiguous run, padded to a multiple of kLanes with
      // copies of its first element: a kernel's loop then never reaches its scalar tail, which
      // costs as much as a few hundred vector lanes per class and block
      int perm[kGather];
      double gv[kGather], gx[kGather];
      int start[kClasses + 1];
      int p = 0;
      for (int c = 1; c < kClasses; ++c) {
        start[c] = p;
        if (present & (std::uint64_t{1} << c)) {
          p = compact(c, m, cls, nub, xb, perm + p, gv + p, gx + p) + p;
          for (; p % kLanes != 0; ++p) {
            perm[p] = kBlock;
            gv[p] = gv[start[c]];
            gx[p] = gx[start[c]];
          }
        }
      }
      start[kClasses] = p;
      for (int c = 1; c < kClasses; ++c) {
        const int k = start[c + 1] - start[c];
        if (k != 0)
          run_class<Q, bd::is_lowp<T>::value>(c, k, gv + start[c], gx + start[c], gh + start[c], go + start[c]);
      }
      for (int j = 0; j < p; ++j) rb[perm[j]] = go[j];
      for (int i = 0; i < m; ++i) out[(i0 + i) * so] = static_cast<T>(rb[i]);
    }
  });
}

}  // namespace bessel_blocks
}  // namespace kernkit::KERNKIT_ISA_NS
