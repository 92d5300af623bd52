#include <cuda_runtime.h>

#include "kernkit/runtime.hpp"

namespace kernkit {

int cuda_device_count() {
  int n = 0;
  // No driver or no GPU: report 0 and clear the sticky error state.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

}  // namespace kernkit
