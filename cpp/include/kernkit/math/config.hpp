// Portability macros for scalar math shared verbatim by the CPU and CUDA builds.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define KERNKIT_HD __host__ __device__
#define KERNKIT_DEVICE_COMPILE 1
#else
#define KERNKIT_HD
#endif

#define KERNKIT_INLINE KERNKIT_HD inline

// For the small branch-free class tests that the CPU block loops run over whole blocks: inlined
// whatever the translation unit's size (GCC stops inlining when a unit grows past its limits, and a
// call in a loop keeps the loop from vectorising: the float32 classes ran 1.6x slower so).
#if defined(__GNUC__) || defined(__clang__)
#define KERNKIT_INLINE_ALWAYS KERNKIT_HD inline __attribute__((always_inline))
#else
#define KERNKIT_INLINE_ALWAYS KERNKIT_INLINE
#endif

// Full unrolling of a loop with a compile-time trip count: GCC vectorises an outer loop over
// elements (#pragma omp simd) only when the inner loops are unrolled away.
#if defined(__CUDACC__) || defined(__clang__)
#define KERNKIT_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define KERNKIT_UNROLL _Pragma("GCC unroll 64")
#else
#define KERNKIT_UNROLL
#endif
