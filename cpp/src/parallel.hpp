// Internal: how CPU drivers split a loop over threads.
//
// Files compiled once per ISA (kernkit_add_isa_variants) must keep every function they call
// inlined or named in their own ISA namespace: an out-of-line inline/template function with
// the same mangled name in several variants is merged by the linker into one (arbitrary)
// variant's code. Lambdas passed from inside an ISA namespace make parallel_for's
// instantiations distinct; tests/python/test_build.py checks the objects for shared symbols.
#pragma once
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace kernkit::detail {

// Threads for a loop of n elements that each cost about `work` ns: one thread for small
// loops, where starting a team costs more than it saves.
int threads_for(std::int64_t n, double work_ns);

// body(begin, end) over [0, n) in nthreads contiguous chunks. A serial call never enters an
// OpenMP region: even an if(false) region costs ~1 us, more than a small ufunc call.
template <class Body>
inline void parallel_for(std::int64_t n, int nthreads, Body&& body) {
  if (nthreads <= 1 || n <= 1) {
    body(std::int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(nthreads)
  {
#ifdef _OPENMP
    const std::int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
#else
    const std::int64_t nt = 1, t = 0;
#endif
    body(n * t / nt, n * (t + 1) / nt);
  }
}

// f(i) for every i in [0, n), split as parallel_for does.
template <class F>
inline void parallel_for_each(std::int64_t n, int nthreads, F&& f) {
  parallel_for(n, nthreads, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) f(i);
  });
}

}  // namespace kernkit::detail
