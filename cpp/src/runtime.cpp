#include "kernkit/runtime.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "isa.hpp"
#include "kernkit/version.hpp"
#include "parallel.hpp"

namespace kernkit {

namespace {
std::atomic<int> g_threads{0};  // 0: OpenMP's default (OMP_NUM_THREADS, threadpoolctl)

Isa detect_isa() {
  Isa best = Isa::baseline;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
#ifdef KERNKIT_HAVE_ISA_AVX512
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
    best = Isa::avx512;
  else
#endif
#ifdef KERNKIT_HAVE_ISA_AVX2
      if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    best = Isa::avx2;
#endif
#endif
  // KERNKIT_SIMD caps the level (never raises it above what the CPU has).
  if (const char* cap = std::getenv("KERNKIT_SIMD")) {
    Isa c = best;
    if (!std::strcmp(cap, "baseline")) c = Isa::baseline;
    else if (!std::strcmp(cap, "avx2")) c = Isa::avx2;
    else if (!std::strcmp(cap, "avx512")) c = Isa::avx512;
    best = std::min(best, c);
  }
  return best;
}
}  // namespace

namespace detail {
Isa active_isa() {
  static const Isa isa = detect_isa();
  return isa;
}

int threads_for(std::int64_t n, double work_ns) {
  const int avail = get_num_threads();
  if (avail <= 1) return 1;
  // ~20 us of work per thread pays for waking the team.
  const double per_thread = 20000.0;
  const double want = static_cast<double>(n) * work_ns / per_thread;
  if (want < 2.0) return 1;
  return static_cast<int>(std::min<double>(avail, want));
}
}  // namespace detail

#ifdef _OPENMP
namespace {
// OpenMP's limit when the library was loaded (OMP_NUM_THREADS or the cores): what n <= 0 restores.
// omp_set_num_threads sets the calling thread's limit only, so resetting kernkit's own setting
// alone left that thread at the last n (and other threads at the default).
const int g_omp_default = omp_get_max_threads();
}  // namespace
#endif

void set_num_threads(int n) {
  g_threads.store(n > 0 ? n : 0);
#ifdef _OPENMP
  omp_set_num_threads(n > 0 ? n : g_omp_default);
#endif
}

int get_num_threads() {
#ifdef _OPENMP
  // The smaller of kernkit's own setting and OpenMP's current limit, so that
  // threadpoolctl's limits (which call omp_set_num_threads) take effect too.
  const int omp = omp_get_max_threads();
  const int own = g_threads.load();
  return own > 0 ? std::min(own, omp) : omp;
#else
  return 1;
#endif
}

bool openmp_enabled() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

std::string simd_level() {
  switch (detail::active_isa()) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "baseline";
  }
}

std::string simd_built() {
  std::string s = "baseline";
#ifdef KERNKIT_HAVE_ISA_AVX2
  s += ",avx2";
#endif
#ifdef KERNKIT_HAVE_ISA_AVX512
  s += ",avx512";
#endif
  return s;
}

std::string version() { return KERNKIT_VERSION_STRING; }
std::string compiler() { return KERNKIT_COMPILER_STRING; }

bool cuda_built() {
#ifdef KERNKIT_HAS_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace kernkit
