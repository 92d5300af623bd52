// Internal: the fused one-launch Toeplitz product of cuda/toeplitz_fused.cu, called by
// cuda/toeplitz.cu (which keeps cuFFT for what this does not cover).
#pragma once
#include <cstdint>

namespace kernkit::cuda::toeplitz_fused {

// Y = T X as kernkit::cuda::toeplitz::matmul_spectrum, in one kernel launch; returns false (and
// launches nothing) where the fused kernel does not apply: L not a power of two in
// [32, fused_max_length<T>()] (kernkit/toeplitz.hpp), n > L/2, or more shared memory than the
// device gives a block.
template <class T>
bool matmul_spectrum(const T* spec, std::int64_t spec_bs, std::int64_t L, std::int64_t n,
                     const T* X, std::int64_t nb, std::int64_t k, std::int64_t xsb,
                     std::int64_t xsr, std::int64_t xsc, T* Y, void* stream);

}  // namespace kernkit::cuda::toeplitz_fused
