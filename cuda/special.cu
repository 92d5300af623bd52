// CUDA driver of the special functions: the same scalar code as the CPU loops.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "check.cuh"
#include "kernkit/detail/special_ops.hpp"
#include "kernkit/special.hpp"

namespace kernkit::cuda {
namespace {

template <class T, class F>
__global__ void map2_kernel(std::int64_t n, const T* __restrict__ v, std::int64_t sv,
                            const T* __restrict__ x, std::int64_t sx, T* __restrict__ out,
                            std::int64_t so, F f) {
  const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += stride)
    out[i * so] = f(v[i * sv], x[i * sx]);
}

template <class T, class F>
void launch(std::int64_t n, const T* v, std::int64_t sv, const T* x, std::int64_t sx, T* out,
            std::int64_t so, cudaStream_t stream, F f) {
  constexpr int threads = 256;
  const std::int64_t want = (n + threads - 1) / threads;
  const int blocks = static_cast<int>(want < 65535 * 32 ? want : 65535 * 32);
  map2_kernel<<<blocks, threads, 0, stream>>>(n, v, sv, x, sx, out, so, f);
  KERNKIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

template <class T>
void special(SpecialFn fn, std::int64_t n, const T* v, std::int64_t sv, const T* x,
             std::int64_t sx, T* out, std::int64_t so, void* stream_) {
  if (n < 0) throw std::invalid_argument("kernkit::cuda::special: n must be >= 0");
  if (n == 0) return;
  auto s = static_cast<cudaStream_t>(stream_);
  const bool known = detail::visit_special(
      fn, [&](auto op) { launch(n, v, sv, x, sx, out, so, s, op); });
  if (!known)
    throw std::invalid_argument("kernkit::cuda::special: unknown function id " +
                                std::to_string(static_cast<int>(fn)));
}

template void special<float>(SpecialFn, std::int64_t, const float*, std::int64_t, const float*,
                             std::int64_t, float*, std::int64_t, void*);
template void special<double>(SpecialFn, std::int64_t, const double*, std::int64_t,
                              const double*, std::int64_t, double*, std::int64_t, void*);

}  // namespace kernkit::cuda
