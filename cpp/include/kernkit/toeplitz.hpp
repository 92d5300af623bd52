// Batched Toeplitz matrix products Y = T(c, r) X by FFT (circulant embedding) or directly.
//
// T[i, j] = c[i - j] for i >= j and r[j - i] for j > i (c[0] == r[0], as scipy.linalg.toeplitz);
// causal: r is ignored (lower triangular). T is embedded in a circulant of an even length
// L = 2 * next_fast_len(n) >= 2n - 1 whose first column is h = (c_0..c_{n-1}, 0.., r_{n-1}..r_1);
// Y = irfft(rfft(h) * rfft(x padded to L))[:n] for every column x of X. The spectrum
// rfft(h)/L ("spec": L/2 + 1 interleaved complex numbers per batch) can be computed once and
// reused (kernkit.ToeplitzOperator). Layouts: batch b's coefficients at c + b*c_bs (c_bs = 0:
// shared by all batches); X[b, i, j] at X + b*xsb + i*xsr + j*xsc; Y is contiguous (nb, n, k).
// Results are the same bits for any thread count.
#pragma once
#include <cstdint>

namespace kernkit::toeplitz {

// The circulant length the FFT path uses for size n: the smallest even 2^a 3^b 5^c >= 2n - 1.
std::int64_t fft_length(std::int64_t n);

// Whether matmul() takes the direct O(n^2 k) product for this (n, k) (faster for small n).
bool use_direct(std::int64_t n, std::int64_t k);

// spec[b] = rfft(h_b) / L, b < nb, at spec + b*(L + 2) (L/2 + 1 complex numbers).
template <class T>
void spectrum(const T* c, std::int64_t c_bs, const T* r, std::int64_t r_bs, bool causal,
              std::int64_t n, std::int64_t nb, std::int64_t L, T* spec);

// Y = T X through a spectrum from spectrum() (spec_bs: batch stride of spec in T, 0 = shared).
template <class T>
void matmul_spectrum(const T* spec, std::int64_t spec_bs, std::int64_t L, std::int64_t n,
                     const T* X, std::int64_t nb, std::int64_t k, std::int64_t xsb,
                     std::int64_t xsr, std::int64_t xsc, T* Y);

// Y = T X by the direct sum y_i = sum_j t_{i-j} x_j.
template <class T>
void matmul_direct(const T* c, std::int64_t c_bs, const T* r, std::int64_t r_bs, bool causal,
                   std::int64_t n, const T* X, std::int64_t nb, std::int64_t k, std::int64_t xsb,
                   std::int64_t xsr, std::int64_t xsc, T* Y);

// Y = T X by the FFT path (spectrum() then matmul_spectrum()).
template <class T>
void matmul_fft(const T* c, std::int64_t c_bs, const T* r, std::int64_t r_bs, bool causal,
                std::int64_t n, const T* X, std::int64_t nb, std::int64_t k, std::int64_t xsb,
                std::int64_t xsr, std::int64_t xsc, T* Y);

// Y = T X, choosing the direct or the FFT path (use_direct).
template <class T>
void matmul(const T* c, std::int64_t c_bs, const T* r, std::int64_t r_bs, bool causal,
            std::int64_t n, const T* X, std::int64_t nb, std::int64_t k, std::int64_t xsb,
            std::int64_t xsr, std::int64_t xsc, T* Y);

}  // namespace kernkit::toeplitz

namespace kernkit::cuda::toeplitz {
// The largest circulant length of the fused one-launch CUDA kernel (cuda/toeplitz_fused.cu):
// what fits the shared memory of an sm_90 block.
template <class T>
constexpr std::int64_t fused_max_length() {
  return sizeof(T) == 4 ? 8192 : 4096;
}
// The fused kernel's length for n: the smallest power of two >= max(2n - 1, 32) if at most
// fused_max_length<T>(), else 0.
template <class T>
inline std::int64_t fused_length(std::int64_t n) {
  std::int64_t L = 32;
  while (L < 2 * n - 1) L *= 2;
  return L <= fused_max_length<T>() ? L : 0;
}
// The circulant length the CUDA products use for n: fused_length<T>(n) where nonzero, else
// kernkit::toeplitz::fft_length(n) (cuFFT).
template <class T>
inline std::int64_t fft_length(std::int64_t n) {
  const std::int64_t L = fused_length<T>(n);
  return L > 0 ? L : kernkit::toeplitz::fft_length(n);
}
// The same on device pointers, enqueued on `stream` (a cudaStream_t): the fused kernel where L
// allows it, else cuFFT with plans cached per (device, stream, length, batch, type); the
// environment variable KERNKIT_TOEPLITZ_CUDA=fused|cufft|auto forces a path (fused: an error
// where it does not apply). Throws std::runtime_error in a build without CUDA.
template <class T>
void spectrum(const T* c, std::int64_t c_bs, const T* r, std::int64_t r_bs, bool causal,
              std::int64_t n, std::int64_t nb, std::int64_t L, T* spec, void* stream);
template <class T>
void matmul_spectrum(const T* spec, std::int64_t spec_bs, std::int64_t L, std::int64_t n,
                     const T* X, std::int64_t nb, std::int64_t k, std::int64_t xsb,
                     std::int64_t xsr, std::int64_t xsc, T* Y, void* stream);
}  // namespace kernkit::cuda::toeplitz
