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
inline void map2(std::int64_t n, const T* a, std::int64_t sa, const T* b, std::int64_t sb,
                 T* out, std::int64_t so, int nthreads, F f) {
  if (sa == 1 && sb == 1 && so == 1) {
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1)
    for (std::int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
  } else {
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1)
    for (std::int64_t i = 0; i < n; ++i) out[i * so] = f(a[i * sa], b[i * sb]);
  }
}

}  // namespace kernkit::detail
