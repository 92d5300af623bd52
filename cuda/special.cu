// CUDA driver of the special functions: the same scalar code as the CPU loops.
//
// The functions branch by region of (v, x) (Debye classes with their own term counts, the small
// box's series and Temme paths), so a warp whose lanes fall in different regions runs every
// branch one after the other: random inputs ran 5x slower than the same inputs sorted by v on
// an H100. Each block therefore sorts its tile of 1024 elements by region in shared memory
// (a counting sort on the class of the branch-free kernels, bessel_detail::fast_class_p: Debye
// classes, float32's float-arithmetic ones among them, and in the small box I's series or K's
// Temme classes by x and v) and its warps
// evaluate the sorted elements, writing each result to its own index; a tile whose elements all
// fall in one region skips the sort. Every element's value is computed alone, so neither the
// order within a region (shared-memory atomics) nor the skip changes any result.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "check.cuh"
#include "kernkit/detail/special_ops.hpp"
#include "kernkit/special.hpp"

namespace kernkit::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kPer = 4;  // elements per thread and tile
constexpr int kTile = kThreads * kPer;
constexpr int kKeys = 64;  // region keys: fast_class_p is 0..kFastClassesLowp (two per lane of a warp)
static_assert(bessel_detail::kFastClassesLowp < kKeys, "region keys: one per fast class");
static_assert(kKeys == 2 * 32, "the counts' scan takes two keys per lane of one warp");

// Each function sorts by its own quantity's classes (K's: Temme's in the box; the float32 float
// kernels' classes differ by quantity).
template <class F> constexpr int kKeyQ = bessel_detail::kLogI;
template <> constexpr int kKeyQ<detail::op_log_ive> = bessel_detail::kLogIs;
template <> constexpr int kKeyQ<detail::op_log_kv> = bessel_detail::kLogK;
template <> constexpr int kKeyQ<detail::op_log_kve> = bessel_detail::kLogKs;
template <> constexpr int kKeyQ<detail::op_dlog_kv> = bessel_detail::kDlogK;
template <> constexpr int kKeyQ<detail::op_iv_ratio> = bessel_detail::kRatioI;
template <> constexpr int kKeyQ<detail::op_dlog_iv> = bessel_detail::kDlogI;

template <int Q, class T>
__device__ inline int region_key(T v, T x) {
  const double nu = fabs(static_cast<double>(v));
  return bessel_detail::fast_class_p<Q, bessel_detail::is_lowp<T>::value>(nu, static_cast<double>(x));
}

template <class T, class F>
__global__ void __launch_bounds__(kThreads)
    map2_binned(std::int64_t n, const T* __restrict__ v, std::int64_t sv, const T* __restrict__ x,
                std::int64_t sx, T* __restrict__ out, std::int64_t so, F f) {
  __shared__ T tv[kTile], tx[kTile];
  __shared__ unsigned short perm[kTile];
  __shared__ int count[kKeys], start[kKeys];
  const std::int64_t ntiles = (n + kTile - 1) / kTile;
  for (std::int64_t tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
    const std::int64_t base = tile * kTile;
    const int len = static_cast<int>(n - base < kTile ? n - base : kTile);
    if (threadIdx.x < kKeys) count[threadIdx.x] = 0;
    // A tile of one region (uniform or sorted inputs) needs no sort: each thread evaluates its
    // own elements, with no shared-memory atomics (all on one counter there), scan or scatter.
    const int key0 = region_key<kKeyQ<F>>(v[base * sv], x[base * sx]);
    T a[kPer], b[kPer];
    int key[kPer], pos[kPer];
    bool one = true;
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int li = k * kThreads + threadIdx.x;
      if (li < len) {
        a[k] = v[(base + li) * sv];
        b[k] = x[(base + li) * sx];
        key[k] = region_key<kKeyQ<F>>(a[k], b[k]);
        one = one && key[k] == key0;
      }
    }
    if (__syncthreads_and(one)) {  // (also orders the counts' reset before the atomics below)
#pragma unroll
      for (int k = 0; k < kPer; ++k) {
        const int li = k * kThreads + threadIdx.x;
        if (li < len) out[(base + li) * so] = f(a[k], b[k]);
      }
      continue;  // the shared arrays were not used: no barrier before the next tile
    }
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int li = k * kThreads + threadIdx.x;
      if (li < len) {
        tv[li] = a[k];
        tx[li] = b[k];
        pos[k] = atomicAdd(&count[key[k]], 1);
      }
    }
    __syncthreads();
    if (threadIdx.x < 32) {  // exclusive scan of the counts by the first warp, keys 2i and 2i+1 in lane i
      const int c0 = count[2 * threadIdx.x], c = c0 + count[2 * threadIdx.x + 1];
      int incl = c;
      for (int o = 1; o < 32; o <<= 1) {
        const int y = __shfl_up_sync(0xffffffffu, incl, o);
        if (static_cast<int>(threadIdx.x) >= o) incl += y;
      }
      start[2 * threadIdx.x] = incl - c;
      start[2 * threadIdx.x + 1] = incl - c + c0;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int li = k * kThreads + threadIdx.x;
      if (li < len) perm[start[key[k]] + pos[k]] = static_cast<unsigned short>(li);
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int slot = k * kThreads + threadIdx.x;
      if (slot < len) {
        const int li = perm[slot];
        out[(base + li) * so] = f(tv[li], tx[li]);
      }
    }
    __syncthreads();  // the next tile reuses the shared arrays
  }
}

template <class T, class F>
void launch(std::int64_t n, const T* v, std::int64_t sv, const T* x, std::int64_t sx, T* out,
            std::int64_t so, cudaStream_t stream, F f) {
  const std::int64_t want = (n + kTile - 1) / kTile;
  const int blocks = static_cast<int>(want < 65535 * 16 ? want : 65535 * 16);
  map2_binned<<<blocks, kThreads, 0, stream>>>(n, v, sv, x, sx, out, so, f);
  KERNKIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

template <class T>
void special(SpecialFn fn, std::int64_t n, const T* v, std::int64_t sv, const T* x,
             std::int64_t sx, T* out, std::int64_t so, void* stream_) {
  if (n < 0) throw std::invalid_argument("kernkit::cuda::special: n must be >= 0");
  if (n == 0) return;
  auto s = static_cast<cudaStream_t>(stream_);
  const bool known = detail::visit_special(
      fn, [&](auto op) { launch(n, v, sv, x, sx, out, so, s, op); });
  if (!known)
    throw std::invalid_argument("kernkit::cuda::special: unknown function id " +
                                std::to_string(static_cast<int>(fn)));
}

template void special<float>(SpecialFn, std::int64_t, const float*, std::int64_t, const float*,
                             std::int64_t, float*, std::int64_t, void*);
template void special<double>(SpecialFn, std::int64_t, const double*, std::int64_t,
                              const double*, std::int64_t, double*, std::int64_t, void*);

}  // namespace kernkit::cuda
