// Portability macros for scalar math shared verbatim by the CPU and CUDA builds.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define KERNKIT_HD __host__ __device__
#define KERNKIT_DEVICE_COMPILE 1
#else
#define KERNKIT_HD
#endif

#define KERNKIT_INLINE KERNKIT_HD inline
