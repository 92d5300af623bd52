// Internal: turn CUDA errors into exceptions with the call that failed.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#define KERNKIT_CUDA_CHECK(expr)                                                           \
  do {                                                                                      \
    cudaError_t err_ = (expr);                                                              \
    if (err_ != cudaSuccess)                                                                \
      throw std::runtime_error(std::string("kernkit CUDA error in ") + #expr + ": " +       \
                               cudaGetErrorString(err_));                                   \
  } while (0)
