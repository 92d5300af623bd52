// Portability macros for scalar math shared verbatim by the CPU and CUDA builds.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define KERNKIT_HD __host__ __device__
#define KERNKIT_DEVICE_COMPILE 1
#else
#define KERNKIT_HD
#endif

#define KERNKIT_INLINE KERNKIT_HD inline

// Full unrolling of a loop with a compile-time trip count: GCC vectorises an outer loop over
// elements (#pragma omp simd) only when the inner loops are unrolled away.
#if defined(__CUDACC__) || defined(__clang__)
#define KERNKIT_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define KERNKIT_UNROLL _Pragma("GCC unroll 64")
#else
#define KERNKIT_UNROLL
#endif
