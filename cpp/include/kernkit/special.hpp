// Array drivers for the elementwise special functions. The scalar functions themselves are
// header-only in <kernkit/math/log_bessel.hpp> and usable per element from C++ or CUDA code.
#pragma once
#include <cstdint>

#include "kernkit/math/log_bessel.hpp"

namespace kernkit {

enum class SpecialFn : int {
  log_iv = 0,   // log I_v(x)
  log_kv,       // log K_v(x)
  log_ive,      // log I_v(x) - |x|
  log_kve,      // log K_v(x) + x
  iv_ratio,     // I_{v+1}(x) / I_v(x)
  dlog_iv,      // d/dx log I_v(x)
  dlog_kv,      // d/dx log K_v(x)
  count_
};

// out[i*so] = f(v[i*sv], x[i*sx]) for i < n; strides in elements (0 broadcasts a scalar).
// Threads and SIMD variant are chosen by the runtime (see runtime.hpp).
// Throws std::invalid_argument for n < 0, an unknown function or a null pointer with n > 0.
template <class T>
void special(SpecialFn fn, std::int64_t n, const T* v, std::int64_t sv, const T* x,
             std::int64_t sx, T* out, std::int64_t so);

namespace cuda {
// The same on device pointers, enqueued on `stream` (a cudaStream_t; nullptr = default
// stream). Throws std::runtime_error in a build without CUDA or on a launch error.
template <class T>
void special(SpecialFn fn, std::int64_t n, const T* v, std::int64_t sv, const T* x,
             std::int64_t sx, T* out, std::int64_t so, void* stream);
}  // namespace cuda

}  // namespace kernkit
