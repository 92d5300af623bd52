// Toeplitz products on the CPU: argument checks, the choice of path and block width, ISA
// dispatch. The kernels are in fft_loops.cpp.
#include "kernkit/toeplitz.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "fft_plan.hpp"
#include "kernkit/fft.hpp"
#include "parallel.hpp"

namespace kernkit::toeplitz {
namespace {

using i64 = std::int64_t;

void check(bool ok, const std::string& msg) {
  if (!ok) throw std::invalid_argument(msg);
}

void check_common(const char* fn, i64 n, i64 nb, i64 k) {
  check(n >= 0, std::string(fn) + ": n must be >= 0");
  check(nb >= 0, std::string(fn) + ": the batch count must be >= 0");
  check(k >= 0, std::string(fn) + ": k (columns of X) must be >= 0");
}

// Columns per FFT block: at least a cache line of each row of X (8 doubles, 16 floats: a
// narrower block would read every line of X once per block), up to twice that while the
// block's working set (4 arrays of L/2 x V numbers) stays in a 768 KiB share of the L2 cache.
template <class T>
i64 lanes_for(i64 L, i64 k) {
  const i64 line = 64 / static_cast<i64>(sizeof(T));
  i64 v = 768 * 1024 / std::max<i64>(1, 2 * L * static_cast<i64>(sizeof(T)));
  v = std::min<i64>(std::max<i64>(v, line), 2 * line) / 4 * 4;
  return std::min<i64>(v, std::max<i64>(k, 1));
}

}  // namespace

std::int64_t fft_length(std::int64_t n) {
  if (n <= 1) return 2;
  return 2 * fft::next_fast_len(n);
}

// Measured crossover (bench/toeplitz/bench_toeplitz.py, 1 thread): the direct sum wins to n ~ 16-20
// for k from 1 to 256, float32 and float64.
bool use_direct(std::int64_t n, std::int64_t /*k*/) { return n <= 16; }

template <class T>
void spectrum(const T* c, i64 c_bs, const T* r, i64 r_bs, bool causal, i64 n, i64 nb, i64 L,
              T* spec) {
  check_common("toeplitz spectrum", n, nb, 1);
  check(L >= 2 * n - 1 && L % 2 == 0 && L >= 2, "toeplitz spectrum: L must be even and >= 2n - 1");
  check(causal || r != nullptr || n <= 1, "toeplitz spectrum: r is required unless causal");
  // In double for either type (once per batch; the products are the cost), rounded once.
  const double inv = 1.0 / static_cast<double>(L);
  const auto plan = fft_detail::real_plan<double>(L);  // built before the threads start, held
  const int nt = detail::threads_for(nb, 1.5 * static_cast<double>(L) * std::log2(static_cast<double>(L)));
  detail::parallel_for(nb, nt, [&](i64 begin, i64 end) {
    if (begin >= end) return;
    std::vector<double> h(L), s(L + 2);
    for (i64 b = begin; b < end; ++b) {
      std::fill(h.begin(), h.end(), 0.0);
      const T* cb = c + b * c_bs;
      for (i64 d = 0; d < n; ++d) h[d] = static_cast<double>(cb[d]);
      if (!causal && r)
        for (i64 d = 1; d < n; ++d) h[L - d] = static_cast<double>(r[b * r_bs + d]);
      fft::rfft(h.data(), L, L, L, 1, s.data(), L + 2);
      T* out = spec + b * (L + 2);
      for (i64 q = 0; q < L + 2; ++q) out[q] = static_cast<T>(s[q] * inv);
    }
  });
}

template <class T>
void matmul_spectrum(const T* spec, i64 spec_bs, i64 L, i64 n, const T* X, i64 nb, i64 k,
                     i64 xsb, i64 xsr, i64 xsc, T* Y) {
  check_common("toeplitz matmul", n, nb, k);
  check(L >= 2 * n - 1 && L % 2 == 0 && L >= 2, "toeplitz matmul: L must be even and >= 2n - 1");
  if (n == 0 || nb == 0 || k == 0) return;
  const auto plan = fft_detail::real_plan<T>(L);  // (held for the call)
  const auto& p = *plan;
  const i64 V = lanes_for<T>(L, k);
  const i64 tasks = nb * ((k + V - 1) / V);
  // ~0.6 ns per number and log2 L (measured, AVX-512, both types: bench_toeplitz.py)
  const double ns_per_task = 0.6 * static_cast<double>(L) * static_cast<double>(V) *
                             std::log2(static_cast<double>(L));
  const int nt = detail::threads_for(tasks, ns_per_task);
  KERNKIT_ISA_RETURN(toeplitz_fft_loop(p, spec, spec_bs, n, X, nb, k, xsb, xsr, xsc, Y, V, nt))
}

template <class T>
void matmul_direct(const T* c, i64 c_bs, const T* r, i64 r_bs, bool causal, i64 n, const T* X,
                   i64 nb, i64 k, i64 xsb, i64 xsr, i64 xsc, T* Y) {
  check_common("toeplitz matmul", n, nb, k);
  check(causal || r != nullptr || n <= 1, "toeplitz matmul: r is required unless causal");
  if (n == 0 || nb == 0 || k == 0) return;
  if (causal || !r) r = c, r_bs = c_bs;  // never read above the diagonal
  const int nt = detail::threads_for(nb * n, static_cast<double>(n) * static_cast<double>(k) * 0.5);
  KERNKIT_ISA_RETURN(toeplitz_direct_loop(c, c_bs, r, r_bs, causal, n, X, nb, k, xsb, xsr, xsc, Y, nt))
}

template <class T>
void matmul(const T* c, i64 c_bs, const T* r, i64 r_bs, bool causal, i64 n, const T* X, i64 nb,
            i64 k, i64 xsb, i64 xsr, i64 xsc, T* Y) {
  check_common("toeplitz matmul", n, nb, k);
  if (n == 0 || nb == 0 || k == 0) return;
  if (use_direct(n, k)) return matmul_direct(c, c_bs, r, r_bs, causal, n, X, nb, k, xsb, xsr, xsc, Y);
  matmul_fft(c, c_bs, r, r_bs, causal, n, X, nb, k, xsb, xsr, xsc, Y);
}

template <class T>
void matmul_fft(const T* c, i64 c_bs, const T* r, i64 r_bs, bool causal, i64 n, const T* X,
                i64 nb, i64 k, i64 xsb, i64 xsr, i64 xsc, T* Y) {
  check_common("toeplitz matmul", n, nb, k);
  check(causal || r != nullptr || n <= 1, "toeplitz matmul: r is required unless causal");
  if (n == 0 || nb == 0 || k == 0) return;
  const i64 L = fft_length(n);
  const i64 nspec = c_bs == 0 && (causal || r_bs == 0) ? 1 : nb;
  std::vector<T> spec(static_cast<std::size_t>(nspec * (L + 2)));
  spectrum(c, c_bs, r, r_bs, causal, n, nspec, L, spec.data());
  matmul_spectrum(spec.data(), nspec == 1 ? 0 : L + 2, L, n, X, nb, k, xsb, xsr, xsc, Y);
}

#define KERNKIT_TOEPLITZ_INST(T)                                                                 \
  template void spectrum<T>(const T*, i64, const T*, i64, bool, i64, i64, i64, T*);              \
  template void matmul_spectrum<T>(const T*, i64, i64, i64, const T*, i64, i64, i64, i64, i64, T*); \
  template void matmul_direct<T>(const T*, i64, const T*, i64, bool, i64, const T*, i64, i64, i64, \
                                 i64, i64, T*);                                                  \
  template void matmul_fft<T>(const T*, i64, const T*, i64, bool, i64, const T*, i64, i64, i64, \
                              i64, i64, T*);                                                   \
  template void matmul<T>(const T*, i64, const T*, i64, bool, i64, const T*, i64, i64, i64, i64, \
                          i64, T*);
KERNKIT_TOEPLITZ_INST(float)
KERNKIT_TOEPLITZ_INST(double)
#undef KERNKIT_TOEPLITZ_INST

}  // namespace kernkit::toeplitz
