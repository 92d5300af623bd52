// Internal: FFT plans as plain views (raw pointers and counts) that the per-ISA kernels in
// fft_loops.cpp execute, and the declarations of those kernels.
//
// Complex data is in split form with "lanes": a transform of length n over V lanes is two
// arrays re[n*V], im[n*V], element j of lane v at j*V + v. V = 1 is an ordinary 1-D transform;
// V > 1 runs V independent transforms at once (the Toeplitz driver's columns), so that every
// butterfly works on V contiguous numbers.
//
// Algorithm (written from the definitions): Stockham autosort, decimation in time. After the
// stages with radices p_1..p_s, l = p_1...p_s and m = n/l, the working array holds
// y[k][s] = sum_j x[s + m j] w_l^{jk} (k < l, s < m) at index k*m + s. A stage of radix P maps it
// to l' = l P, m' = m/P:  y'[k + l a][s'] = sum_q w_P^{qa} (w_{l'}^{qk} y[k][s' + q m']),
// reading (k P + q) m' + s' and writing (k + l a) m' + s': both runs contiguous in (s', lane).
// Twiddles w_{l'}^{qk} are computed per stage in long double (never by repeated products).
// Other lengths: Bluestein's chirp-z, X_k = w_k sum_j (x_j w_j) conj(w_{k-j}), w_j =
// exp(-i pi j^2 / n), as a cyclic convolution of a smooth length M >= 2n - 1.
// Real input: the half-length complex transform of z_j = x_{2j} + i x_{2j+1} and
// X_k = E_k + w_N^k O_k, E_k = (Z_k + conj Z_{M-k})/2, O_k = (Z_k - conj Z_{M-k})/(2i).
#pragma once
#include <cstdint>
#include <memory>

#include "isa.hpp"

namespace kernkit::fft_detail {

template <class T>
struct CPlanView {
  std::int64_t n = 0;
  int nstages = 0;
  const int* radix = nullptr;          // per stage
  const std::int64_t* l = nullptr;     // per stage: l before the stage
  const std::int64_t* twoff = nullptr; // per stage: offset of its (P-1)*l twiddles
  const T* twr = nullptr;              // twiddles w_{lP}^{qk} at twoff + (q-1)*l + k
  const T* twi = nullptr;
  // Bluestein (when M > 0): a smooth plan of length M and the chirp data.
  std::int64_t M = 0;
  const CPlanView<T>* sub = nullptr;
  const T* chr = nullptr;  // w_j = exp(-i pi j^2/n), j < n
  const T* chi = nullptr;
  const T* bre = nullptr;  // DFT_M of the wrapped conj(w), divided by M
  const T* bim = nullptr;
};

// Scratch (in elements of T) that cfft needs for V lanes, besides the data itself.
template <class T>
static inline std::int64_t cfft_work(const CPlanView<T>& p, std::int64_t V) {
  // + slack for the 4 KiB offsets of the scratch arrays (fft_loops.cpp, offset_4k)
  if (p.M > 0) return 4 * p.M * V + 4 * 4096 / static_cast<std::int64_t>(sizeof(T));
  return 2 * p.n * V + 2 * 4096 / static_cast<std::int64_t>(sizeof(T));
}

// A real transform of length N: even N uses the complex plan of N/2 and the post-processing
// twiddles w_N^k, k = 0..N/2; odd N uses the complex plan of N, except that a single row of odd
// N = P q (N >= 27; P the least of its factors 3, 5, 7, 11, 13) is decimated: the P real
// sub-sequences x_{P j + r}, in pairs through complex transforms of q (z = u_a + i u_b, split as
// for even N) and the last one through the real plan of q (recursively), then X_{s q + j} =
// sum_r w_P^{rs} (w_N^{rj} U_r[j]), one radix-P stage: about half the work of the complex
// transform of N.
template <class T>
struct RPlanView {
  std::int64_t N = 0;
  bool even = false;
  const CPlanView<T>* c = nullptr;
  const T* wr = nullptr;  // cos(2 pi k/N), k = 0..N/2 (even N only)
  const T* wi = nullptr;  // -sin(2 pi k/N)
  int P = 0;                          // the decimation radix of an odd N (0: none)
  const CPlanView<T>* cq = nullptr;   // complex plan of q = N / P
  const RPlanView<T>* sub = nullptr;  // real plan of q
  const T* pwr = nullptr;             // w_N^{r j} at (r - 1) q + j, r = 1..P-1, j < q
  const T* pwi = nullptr;
};

// Per-row scratch (in T) of the row drivers below for one row.
template <class T>
static inline std::int64_t rfft_row_work(const RPlanView<T>& p) {
  if (p.P > 0) {
    // fft_loops.cpp, OddBufs: the pairs' transforms, the last sub-sequence's half spectrum and
    // itself, a padded half spectrum (inverse), the pairs' scratch and the sub plan's
    const std::int64_t q = p.N / p.P;
    return (p.P - 1) * q + 2 * (q / 2 + 1) + q + 2 * ((p.N + 1) / 2) + cfft_work(*p.cq, 1) +
           rfft_row_work(*p.sub) + 16;
  }
  const std::int64_t nc = p.c ? p.c->n : 0;
  return 2 * nc + (p.c ? cfft_work(*p.c, 1) : 0) + 16;
}

// The smallest 2^a 3^b 5^c >= n.
static inline std::int64_t next_fast_len_impl(std::int64_t n) {
  if (n <= 1) return 1;
  std::int64_t best = -1;
  for (std::int64_t p5 = 1;; p5 *= 5) {
    for (std::int64_t p35 = p5;; p35 *= 3) {
      std::int64_t v = p35;
      while (v < n) v *= 2;
      if (best < 0 || v < best) best = v;
      if (p35 >= n) break;
    }
    if (p5 >= n) break;
  }
  return best;
}

// Rows transformed together (lanes) by the row drivers: a cache line of each (8 doubles, 16
// floats) for short transforms (block arrays <= 96 KiB: n <= 512 or so, and Bluestein sizes),
// where the per-transform overheads dominate; longer rows one at a time (the transposition
// into lanes then costs more than it saves: measured, bench/toeplitz/bench_fft.py).
template <class T>
static inline std::int64_t row_lanes(const RPlanView<T>& p, std::int64_t rows) {
  if (rows < 2 || !p.c) return 1;
  const std::int64_t line = 64 / static_cast<std::int64_t>(sizeof(T));
  const std::int64_t nc = p.c->n;
  const std::int64_t per_lane = (p.c->M > 0 ? 6 * p.c->M : 4 * nc) * static_cast<std::int64_t>(sizeof(T));
  std::int64_t v = line;
  if (v * per_lane > 96 * 1024) return 1;
  return rows < v ? rows : v;
}

// A cached plan (fft.cpp) held for the length of a call: the view, and the ownership that keeps
// it and the plans it uses alive even if the cache drops it meanwhile.
template <class V>
struct PlanRef {
  std::shared_ptr<const void> keep;
  const V* view = nullptr;
  const V& operator*() const { return *view; }
};
// Built on first use under a lock, kept while the cache's budget allows (fft.cpp, Cache).
template <class T>
PlanRef<CPlanView<T>> complex_plan(std::int64_t n);
template <class T>
PlanRef<RPlanView<T>> real_plan(std::int64_t N);

}  // namespace kernkit::fft_detail

// Kernels compiled once per ISA (fft_loops.cpp), in namespace kernkit::isa_<name>.
#define KERNKIT_DECLARE_FFT_ISA(ns)                                                            \
  namespace kernkit::ns {                                                                      \
  template <class T>                                                                           \
  void fft_cfft(const fft_detail::CPlanView<T>& p, T* re, T* im, T* work, std::int64_t V,     \
                bool inverse);                                                                 \
  template <class T>                                                                           \
  void fft_rfft_rows(const fft_detail::RPlanView<T>& p, const T* x, std::int64_t m,           \
                     std::int64_t xs, std::int64_t rows, T* out, std::int64_t os,              \
                     std::int64_t V, int nthreads);                                            \
  template <class T>                                                                           \
  void fft_irfft_rows(const fft_detail::RPlanView<T>& p, const T* X, std::int64_t m,          \
                      std::int64_t xs, std::int64_t rows, T* out, std::int64_t os,             \
                      std::int64_t V, int nthreads);                                           \
  template <class T>                                                                           \
  void toeplitz_fft_loop(const fft_detail::RPlanView<T>& p, const T* spec, std::int64_t sbs,  \
                         std::int64_t n, const T* X, std::int64_t nb, std::int64_t k,          \
                         std::int64_t xsb, std::int64_t xsr, std::int64_t xsc, T* Y,           \
                         std::int64_t V, int nthreads);                                        \
  template <class T>                                                                           \
  void toeplitz_direct_loop(const T* c, std::int64_t cbs, const T* r, std::int64_t rbs,       \
                            bool causal, std::int64_t n, const T* X, std::int64_t nb,          \
                            std::int64_t k, std::int64_t xsb, std::int64_t xsr,                \
                            std::int64_t xsc, T* Y, int nthreads);                             \
  }
KERNKIT_DECLARE_FFT_ISA(isa_baseline)
KERNKIT_DECLARE_FFT_ISA(isa_avx2)
KERNKIT_DECLARE_FFT_ISA(isa_avx512)
#undef KERNKIT_DECLARE_FFT_ISA
