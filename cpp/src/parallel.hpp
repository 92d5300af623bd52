// Internal: the one elementwise loop every CPU driver uses (threads over contiguous chunks).
#pragma once
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace kernkit::detail {

// Threads for a loop of n elements that each cost about `work` ns: one thread for small
// loops, where starting a team costs more than it saves.
int threads_for(std::int64_t n, double work_ns);

template <class T, class F>
inline void map2_serial(std::int64_t begin, std::int64_t end, const T* a, std::int64_t sa,
                        const T* b, std::int64_t sb, T* out, std::int64_t so, F f) {
  if (sa == 1 && sb == 1 && so == 1) {
    for (std::int64_t i = begin; i < end; ++i) out[i] = f(a[i], b[i]);
  } else {
    for (std::int64_t i = begin; i < end; ++i) out[i * so] = f(a[i * sa], b[i * sb]);
  }
}

template <class T, class F>
inline void map2(std::int64_t n, const T* a, std::int64_t sa, const T* b, std::int64_t sb,
                 T* out, std::int64_t so, int nthreads, F f) {
  // A serial loop never enters an OpenMP region: even an if(false) region costs ~1 us.
  if (nthreads <= 1) return map2_serial(0, n, a, sa, b, sb, out, so, f);
#pragma omp parallel num_threads(nthreads)
  {
#ifdef _OPENMP
    const std::int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
#else
    const std::int64_t nt = 1, t = 0;
#endif
    map2_serial(n * t / nt, n * (t + 1) / nt, a, sa, b, sb, out, so, f);
  }
}

}  // namespace kernkit::detail
