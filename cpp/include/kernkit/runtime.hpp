// Runtime facts and settings of the kernkit core: threads, SIMD level, CUDA.
#pragma once
#include <string>

namespace kernkit {

// Threads used by the CPU drivers. n <= 0 restores the default (OpenMP's, which honours
// OMP_NUM_THREADS and threadpoolctl). Without OpenMP everything runs serially.
void set_num_threads(int n);
int get_num_threads();
bool openmp_enabled();

// Instruction set the CPU drivers dispatch to: "baseline", "avx2" or "avx512".
// The environment variable KERNKIT_SIMD (baseline|avx2|avx512) caps it, for measuring.
std::string simd_level();
// Instruction sets this build carries variants for, comma-separated.
std::string simd_built();

std::string version();
std::string compiler();

// CUDA: whether this build has the CUDA kernels, and how many devices the driver sees
// (0 without a driver or GPU; never throws).
bool cuda_built();
int cuda_device_count();

}  // namespace kernkit
