// Runs cuda/toeplitz_fused.cu's one-launch Toeplitz product on the host emulator (emu.hpp; the
// source converted by make_emu.py) against the dense product in double: every circulant length
// the kernel has (32 .. 8192 float32, .. 4096 float64; 2, 3 and 4 passes, first-pass radix 2, 4,
// 8, 16), causal and not, a spectrum shared or per batch, column counts off the column group,
// column-major and strided X, an L above the minimum, NaN / inf entries of X (confined to their
// column); and the cases it must decline. The spectrum is a direct DFT in double here
// (independent of cuFFT). Exits non-zero on a mismatch.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "kernkit/toeplitz.hpp"

namespace emu_cuda {
template <class T>
bool matmul_spectrum(const T* spec, std::int64_t spec_bs, std::int64_t L, std::int64_t n,
                     const T* X, std::int64_t nb, std::int64_t k, std::int64_t xsb,
                     std::int64_t xsr, std::int64_t xsc, T* Y, void* stream);
}  // namespace emu_cuda

// The runtime calls the launcher makes, answered as an sm_90 device would.
extern "C" cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
// Two SMs with one block each: the persistent blocks loop over several column groups (batch
// changes, per-batch spectra reloaded, the staging reused) in every test with over 2 groups.
extern "C" cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int) {
  *v = a == cudaDevAttrMaxSharedMemoryPerBlockOptin ? 227 * 1024 : a == cudaDevAttrMultiProcessorCount ? 2 : 0;
  return cudaSuccess;
}
extern "C" cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, const void*, int, size_t) {
  *blocks = 1;
  return cudaSuccess;
}
extern "C" const char* cudaGetErrorString(cudaError_t) { return "emulated"; }

using i64 = std::int64_t;

// layout: 0 row-major X, 1 column-major per batch, 2 row-major with row stride 2k + 3 and column
// stride 2 (a strided view).
// poison: X[0, n/2, 1] = NaN and X[0, 0, 4] = inf (k > 4): those columns of Y[0] must be all NaN
// and every other column (their complex-pair partners 0 and 5 included) exact.
template <class T>
int run(i64 n, i64 k, i64 nb, bool causal, bool shared, int layout, i64 L = 0, bool poison = false) {
  if (L == 0) L = kernkit::cuda::toeplitz::fused_length<T>(n);
  std::mt19937_64 rng(n * 131 + k * 7 + nb + causal * 3 + shared * 5 + layout * 11 + L);
  std::normal_distribution<double> nd(0.0, 1.0);
  const i64 ncoef = shared ? 1 : nb;
  std::vector<double> c(ncoef * n), r(ncoef * n);
  for (auto& v : c) v = nd(rng);
  for (auto& v : r) v = nd(rng);
  for (i64 b = 0; b < ncoef; ++b) r[b * n] = c[b * n];
  // spec[b] = rfft(h_b) / L by a direct DFT in double, rounded to T.
  std::vector<double> cs(L), sn(L);
  for (i64 m = 0; m < L; ++m) {
    cs[m] = std::cos(2 * M_PI * double(m) / double(L));
    sn[m] = std::sin(2 * M_PI * double(m) / double(L));
  }
  std::vector<T> spec(ncoef * (L + 2));
  for (i64 b = 0; b < ncoef; ++b) {
    std::vector<double> h(L, 0.0);
    for (i64 i = 0; i < n; ++i) h[i] = c[b * n + i];
    if (!causal)
      for (i64 i = L - n + 1; i < L; ++i) h[i] = r[b * n + (L - i)];
    for (i64 q = 0; q <= L / 2; ++q) {
      double re = 0, im = 0;
      for (i64 i = 0; i < L; ++i) {
        const i64 m = (i * q) % L;
        re += h[i] * cs[m];
        im -= h[i] * sn[m];
      }
      spec[b * (L + 2) + 2 * q] = static_cast<T>(re / double(L));
      spec[b * (L + 2) + 2 * q + 1] = static_cast<T>(im / double(L));
    }
  }
  i64 xsb, xsr, xsc;
  if (layout == 0) { xsr = k; xsc = 1; xsb = n * k; }
  else if (layout == 1) { xsr = 1; xsc = n; xsb = n * k; }
  else { xsr = 2 * k + 3; xsc = 2; xsb = n * xsr + 5; }
  std::vector<T> X(nb * xsb + 8, T(std::numeric_limits<double>::quiet_NaN()));  // gaps poisoned
  for (i64 b = 0; b < nb; ++b)
    for (i64 i = 0; i < n; ++i)
      for (i64 j = 0; j < k; ++j) X[b * xsb + i * xsr + j * xsc] = static_cast<T>(nd(rng));
  auto poisoned = [&](i64 b, i64 j) { return poison && b == 0 && (j == 1 || (j == 4 && k > 4)); };
  if (poison) {
    X[n / 2 * xsr + 1 * xsc] = std::numeric_limits<T>::quiet_NaN();
    if (k > 4) X[4 * xsc] = std::numeric_limits<T>::infinity();
  }
  std::vector<T> Y(nb * n * k, T(std::numeric_limits<double>::quiet_NaN()));
  const bool took = emu_cuda::matmul_spectrum<T>(spec.data(), shared ? 0 : L + 2, L, n, X.data(), nb,
                                                 k, xsb, xsr, xsc, Y.data(), nullptr);
  double worst = 0, scale = 0;
  for (i64 b = 0; b < nb; ++b) {
    const double* cb = c.data() + (shared ? 0 : b * n);
    const double* rb = r.data() + (shared ? 0 : b * n);
    for (i64 i = 0; i < n; ++i)
      for (i64 j = 0; j < k; ++j) {
        if (poisoned(b, j)) {
          if (!std::isnan(double(Y[(b * n + i) * k + j]))) worst = INFINITY;
          continue;
        }
        double s = 0;
        for (i64 m = 0; m < n; ++m) {
          const double t = m <= i ? cb[i - m] : (causal ? 0.0 : rb[m - i]);
          s += t * double(X[b * xsb + m * xsr + j * xsc]);
        }
        scale = std::max(scale, std::abs(s));
        const double d = std::abs(double(Y[(b * n + i) * k + j]) - s);
        worst = std::isnan(d) ? INFINITY : std::max(worst, d);
      }
  }
  const double err = worst / scale;
  const double tol = sizeof(T) == 4 ? 1e-5 : 1e-12;
  const bool ok = took && err <= tol;
  std::printf("%s %s n=%lld L=%lld k=%lld nb=%lld causal=%d shared=%d layout=%d%s: rel err %.2e\n",
              ok ? "ok  " : "FAIL", sizeof(T) == 4 ? "f32" : "f64", (long long)n, (long long)L,
              (long long)k, (long long)nb, causal, shared, layout, poison ? " NaN/inf in X" : "", err);
  std::fflush(stdout);
  return ok ? 0 : 1;
}

// The kernel must decline (return false, write nothing) outside its range.
template <class T>
int declines(i64 n, i64 L) {
  std::vector<T> spec(L + 2, T(0)), X(n * 3, T(1)), Y(n * 3, T(-7));
  const bool took = emu_cuda::matmul_spectrum<T>(spec.data(), 0, L, n, X.data(), 1, 3, n * 3, 3, 1,
                                                 Y.data(), nullptr);
  const bool ok = !took && std::all_of(Y.begin(), Y.end(), [](T v) { return v == T(-7); });
  std::printf("%s %s declines n=%lld L=%lld\n", ok ? "ok  " : "FAIL", sizeof(T) == 4 ? "f32" : "f64",
              (long long)n, (long long)L);
  return ok ? 0 : 1;
}

int main() {
  int bad = 0;
  // Lengths chosen on CUDA: powers of two >= max(2n - 1, 32) up to 8192 / 4096, else 0.
  bad += kernkit::cuda::toeplitz::fused_length<float>(1) == 32 ? 0 : 1;
  bad += kernkit::cuda::toeplitz::fused_length<float>(17) == 64 ? 0 : 1;
  bad += kernkit::cuda::toeplitz::fused_length<float>(1000) == 2048 ? 0 : 1;
  bad += kernkit::cuda::toeplitz::fused_length<float>(4096) == 8192 ? 0 : 1;
  bad += kernkit::cuda::toeplitz::fused_length<float>(4097) == 0 ? 0 : 1;
  bad += kernkit::cuda::toeplitz::fused_length<double>(2048) == 4096 ? 0 : 1;
  bad += kernkit::cuda::toeplitz::fused_length<double>(2049) == 0 ? 0 : 1;
  if (bad) std::printf("FAIL fft_length\n");

  bad += run<float>(1, 3, 1, false, true, 0);      // L = 32: 2 passes, first radix 2
  bad += run<float>(5, 3, 1, false, true, 0);
  bad += run<float>(17, 8, 2, true, false, 0);     // L = 64 (radix 4 first), causal, per batch
  bad += run<float>(64, 13, 2, false, false, 1);   // L = 128, column-major X, 13 = 8 + 5 columns
  bad += run<float>(100, 9, 3, false, true, 2);    // L = 256, strided X, shared spectrum
  bad += run<float>(100, 4, 1, true, true, 0, 1024);  // an L above the minimum
  bad += run<float>(256, 5, 1, false, true, 0);    // L = 512: 3 passes, first radix 2
  bad += run<float>(1000, 11, 1, true, true, 0);   // L = 2048 (radix 8 first)
  bad += run<float>(2048, 3, 2, false, false, 0);  // L = 4096 (radix 16 first)
  bad += run<float>(4096, 9, 1, false, true, 0);   // L = 8192: 4 passes, 512 threads
  bad += run<float>(4096, 1, 1, true, true, 1);
  bad += run<float>(100, 6, 2, false, false, 0, 0, true);  // non-finite X entries stay in their column
  bad += run<float>(64, 3, 1, true, true, 1, 0, true);
  bad += run<double>(100, 7, 1, false, true, 2, 0, true);
  bad += run<double>(5, 3, 1, false, true, 0);
  bad += run<double>(64, 13, 2, true, false, 0);
  bad += run<double>(100, 6, 2, false, true, 2);
  bad += run<double>(1000, 5, 1, false, true, 1);
  bad += run<double>(2048, 5, 1, true, true, 0);   // L = 4096, the float64 maximum
  bad += declines<float>(100, 200);                // not a power of two
  bad += declines<float>(100, 16);                 // below 32 / n > L/2
  bad += declines<float>(8192, 16384);             // beyond float32's maximum
  bad += declines<double>(4096, 8192);             // beyond float64's maximum
  bad += declines<float>(600, 1024);               // n > L/2
  if (bad == 0) std::printf("all ok\n");
  return bad == 0 ? 0 : 1;
}
