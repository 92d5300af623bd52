// CPU-only builds: every CUDA entry point exists and says clearly that CUDA is absent.
#include <stdexcept>

#include "kernkit/runtime.hpp"
#include "kernkit/rational.hpp"
#include "kernkit/quant.hpp"
#include "kernkit/special.hpp"

namespace kernkit {

int cuda_device_count() { return 0; }

namespace cuda {
template <class T>
void special(SpecialFn, std::int64_t, const T*, std::int64_t, const T*, std::int64_t, T*,
             std::int64_t, void*) {
  throw std::runtime_error("kernkit was built without CUDA (KERNKIT_CUDA=OFF or nvcc/cuFFT not found)");
}
template void special<float>(SpecialFn, std::int64_t, const float*, std::int64_t, const float*,
                             std::int64_t, float*, std::int64_t, void*);
template void special<double>(SpecialFn, std::int64_t, const double*, std::int64_t,
                              const double*, std::int64_t, double*, std::int64_t, void*);

void rational_forward(const RationalShape&, RationalDtype, const void*, const void*, const void*,
                      void*, void*) {
  throw std::runtime_error("kernkit was built without CUDA (KERNKIT_CUDA=OFF or nvcc/cuFFT not found)");
}
void rational_backward(const RationalShape&, RationalDtype, const void*, const void*,
                       const void*, const void*, void*, void*, void*, void*) {
  throw std::runtime_error("kernkit was built without CUDA (KERNKIT_CUDA=OFF or nvcc/cuFFT not found)");
}
}  // namespace cuda

}  // namespace kernkit

namespace kernkit::cuda::quant {
template <class T>
void lut_matmul(const std::uint8_t*, std::int64_t, int, int, std::int64_t, std::int64_t,
                std::int64_t, const T*, std::int64_t, std::int64_t, const T*, const T*,
                std::int64_t, T*, void*) {
  throw std::runtime_error("kernkit was built without CUDA (KERNKIT_CUDA=OFF or nvcc/cuFFT not found)");
}
template void lut_matmul<float>(const std::uint8_t*, std::int64_t, int, int, std::int64_t,
                                std::int64_t, std::int64_t, const float*, std::int64_t,
                                std::int64_t, const float*, const float*, std::int64_t, float*,
                                void*);
template void lut_matmul<double>(const std::uint8_t*, std::int64_t, int, int, std::int64_t,
                                 std::int64_t, std::int64_t, const double*, std::int64_t,
                                 std::int64_t, const double*, const double*, std::int64_t,
                                 double*, void*);
}  // namespace kernkit::cuda::quant

#include "kernkit/toeplitz.hpp"

namespace kernkit::cuda::toeplitz {
template <class T>
void spectrum(const T*, std::int64_t, const T*, std::int64_t, bool, std::int64_t, std::int64_t,
              std::int64_t, T*, void*) {
  throw std::runtime_error("kernkit was built without CUDA (KERNKIT_CUDA=OFF or nvcc/cuFFT not found)");
}
template <class T>
void matmul_spectrum(const T*, std::int64_t, std::int64_t, std::int64_t, const T*, std::int64_t,
                     std::int64_t, std::int64_t, std::int64_t, std::int64_t, T*, void*) {
  throw std::runtime_error("kernkit was built without CUDA (KERNKIT_CUDA=OFF or nvcc/cuFFT not found)");
}
template void spectrum<float>(const float*, std::int64_t, const float*, std::int64_t, bool,
                              std::int64_t, std::int64_t, std::int64_t, float*, void*);
template void spectrum<double>(const double*, std::int64_t, const double*, std::int64_t, bool,
                               std::int64_t, std::int64_t, std::int64_t, double*, void*);
template void matmul_spectrum<float>(const float*, std::int64_t, std::int64_t, std::int64_t,
                                     const float*, std::int64_t, std::int64_t, std::int64_t,
                                     std::int64_t, std::int64_t, float*, void*);
template void matmul_spectrum<double>(const double*, std::int64_t, std::int64_t, std::int64_t,
                                      const double*, std::int64_t, std::int64_t, std::int64_t,
                                      std::int64_t, std::int64_t, double*, void*);
}  // namespace kernkit::cuda::toeplitz
#include "kernkit/hashattn.hpp"

namespace kernkit::cuda::hashattn {
std::int64_t workspace_bytes(int, std::int64_t, std::int64_t, std::int64_t, std::int64_t, bool,
                             Dtype) {
  throw std::runtime_error("kernkit was built without CUDA (KERNKIT_CUDA=OFF or nvcc/cuFFT not found)");
}
void attention(const void*, const void*, int, int, const void*, void*, Dtype, std::int64_t,
               std::int64_t, std::int64_t, std::int64_t, double, bool, kernkit::hashattn::Mode,
               void*, std::int64_t, void*, const std::int64_t*) {
  throw std::runtime_error("kernkit was built without CUDA (KERNKIT_CUDA=OFF or nvcc/cuFFT not found)");
}
}  // namespace kernkit::cuda::hashattn
