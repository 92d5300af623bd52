// kernkit's own real FFT (CPU): mixed radix 2, 3, 4, 5, 7, 8, 9, 11, 13 (Stockham autosort), Bluestein's chirp-z
// for other lengths, real input through the half-length complex transform. Plans (twiddles in
// long double, rounded once) are built on first use and cached per (length, type), thread-safe.
// Conventions are numpy.fft's: forward X_k = sum_j x_j exp(-2 pi i jk/n), unnormalized; the
// inverse divides by n. Complex arrays are interleaved (re, im) pairs of T.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kernkit::fft {

// The smallest 2^a 3^b 5^c >= n (1 for n <= 1).
std::int64_t next_fast_len(std::int64_t n);

// Bytes of twiddle and chirp arrays the plan caches hold (float and double plans). Plans are
// dropped least recently used first beyond KERNKIT_FFT_CACHE_MB (default 512) MiB per type,
// never while a call uses them.
std::size_t plan_cache_bytes();

// out[r] = rfft(x[r], n) for r < rows: row r of x has m real numbers at x + r*x_stride
// (truncated or zero-padded to n); row r of out holds n/2 + 1 complex numbers (2 T each) at
// out + r*out_stride (strides in elements of T). n >= 1.
template <class T>
void rfft(const T* x, std::int64_t m, std::int64_t x_stride, std::int64_t n, std::int64_t rows,
          T* out, std::int64_t out_stride);

// out[r] = irfft(X[r], n): row r of X has m complex numbers (interleaved, truncated or
// zero-padded to n/2 + 1; the imaginary parts of X_0 and, for even n, X_{n/2} are ignored);
// row r of out has n reals. Normalized by 1/n.
template <class T>
void irfft(const T* X, std::int64_t m, std::int64_t X_stride, std::int64_t n, std::int64_t rows,
           T* out, std::int64_t out_stride);

// In-place complex DFT of length n over `lanes` interleaved-by-lane transforms in split form:
// element j of transform v is (re[j*lanes + v], im[j*lanes + v]). inverse: unnormalized
// exp(+2 pi i jk/n).
template <class T>
void cfft_split(T* re, T* im, std::int64_t n, std::int64_t lanes, bool inverse);

}  // namespace kernkit::fft
