// CUDA group-rational activations: forward, and a deterministic two-pass backward.
//
// Forward: a grid-stride elementwise kernel; every group's coefficients sit in shared memory and
// each thread handles VEC contiguous elements (16-byte loads and stores) that share one group,
// kForwardLoads such vectors per step, all loaded before any is computed.
// Backward: the input is (outer, channels, inner); channels come in runs of `seg_channels` that
// share one numerator and one denominator group, so a run is `seg` = seg_channels * inner
// contiguous elements per outer index. Block b handles run j = b / nchunk and the elements
// [c*E, (c+1)*E) (c = b % nchunk) of that run's outer*seg elements, so its coefficients are
// fixed (shared memory) and the backward keeps one register accumulator per coefficient per
// thread; each thread takes kBackwardVec contiguous elements per step (one vector load of x and
// of the gradient) when the run length and the pointers allow, else one. The backward then
// reduces in a fixed order: warp shuffle tree -> per-warp shared slots -> one partial per
// coefficient per block (no atomics), and a second kernel sums the partials of every
// coefficient in a fixed order in double. (A first vectorised backward, when the loop was
// 266 instructions per element, ran 1.1-1.35x slower on an H100; at 124 the scalar loop was
// bound by loads in flight instead, and four float32 elements per step ran 1.28x faster on an
// H200: kBackwardVec.)
// Coefficients are float32 for f16/bf16/f32 inputs, float64 for f64. Math (and the backward's
// per-thread and per-block sums) is in float64 for f32 and f64 inputs: float32 inputs and
// coefficients are exact in double and every result is rounded once, because in float32 the
// denominator's inner sum loses up to its condition number when it cancels (form C), and the
// coefficient gradients sum terms up to ~30x larger than the result (measured on the CPU; see
// cpp/src/rational_loops.cpp). f16/bf16 keep float32 math: their own rounding dominates.
// Index arithmetic is 32-bit when the tensor has fewer than 2^31 elements, the forward's four
// divisions (by the row, the run and the group sizes) as multiply-highs (FastDiv): a division by
// a run-time value is a long instruction sequence on the GPU, and the float32 forward (double
// math) was bound by its instructions (ncu on an H200: 78% of SM throughput, 23% of DRAM's).
// The usual degrees (5, 4) in form A (KAT's and PAU's default) are compile-time constants in a
// fast kernel each way (Horner unrolled, no loop counters, one form: with the form a run-time
// value, every element paid for all three denominators, merged by selects). sm_90 SASS of the
// float32 kernels, instructions (FP64 ones) per element in the main loop: forward 134 (57) ->
// 53 (18); backward 266 (96) -> 124 (50) and 96 -> 76 registers, the backward also with one
// division instead of two, 32-bit indices and the next element's loads issued before this one's
// math; the forward with two 16-byte loads in flight per thread. Timed on an H200 (float32, D =
// 3072): forward 0.22 -> 0.21 ms, forward + backward 2.10 -> 0.93 ms (backward 611 -> 212 us in
// ncu at D = 768); then kForwardPipelined and kBackwardVec (below): 0.19 and 0.74 ms.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "check.cuh"
#include "kernkit/rational.hpp"

namespace kernkit::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxCoef = math::rational_max_degree + 1;
constexpr int kForwardMaxBlocks = 132 * 32;  // the forward's grid-stride grid, at most
constexpr int kForwardLoads = 2;  // vectors in flight per thread in the forward loop
constexpr int kFormA = static_cast<int>(RationalForm::A);  // the fast kernels' form template argument

struct Geo {
  std::int64_t outer, row, seg, seg_channels, num_per, den_per, nchunk, per_block;
  std::int64_t num_groups, den_groups;
  int m, n, na, nb;
  RationalForm form;
};

// q = x / d for every 32-bit x by a multiply-high and shifts (Granlund and Montgomery, "Division
// by invariant integers using multiplication", 1994, fig. 4.1), d >= 1.
struct FastDiv {
  std::uint32_t m = 1;
  int s1 = 0, s2 = 0;
  FastDiv() = default;
  explicit FastDiv(std::int64_t d) {
    int l = 0;
    while ((std::int64_t{1} << l) < d) ++l;  // ceil(log2 d)
    m = static_cast<std::uint32_t>(((std::uint64_t{1} << 32) * ((std::uint64_t{1} << l) - d)) / d + 1);
    s1 = l < 1 ? l : 1;
    s2 = l > 1 ? l - 1 : 0;
  }
  __device__ std::uint32_t div(std::uint32_t x) const {
    const std::uint32_t t = __umulhi(m, x);
    return (t + ((x - t) >> s1)) >> s2;
  }
};
// The forward's divisors: the row, the run, the numerator and the denominator group sizes.
struct ForwardDiv {
  FastDiv row, seg, num_per, den_per;
};

// Coefficient (stored) type and arithmetic type per input type X.
template <class X> struct Coef { using type = float; };
template <> struct Coef<double> { using type = double; };
template <class X> struct Math { using type = double; };
template <> struct Math<__half> { using type = float; };
template <> struct Math<__nv_bfloat16> { using type = float; };

template <class X>
__device__ inline typename Math<X>::type to_math(X v) {
  return static_cast<typename Math<X>::type>(v);
}
template <> __device__ inline float to_math<__half>(__half v) { return __half2float(v); }
template <> __device__ inline float to_math<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <class X>
__device__ inline X from_math(typename Math<X>::type v) {
  return static_cast<X>(v);
}
template <> __device__ inline __half from_math<__half>(float v) { return __float2half_rn(v); }
template <> __device__ inline __nv_bfloat16 from_math<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// VEC elements moved as one aligned load/store (16 bytes when VEC * sizeof(X) == 16).
template <class X, int VEC>
struct alignas(sizeof(X) * VEC) Vec {
  X v[VEC];
};
template <class X> constexpr int kVec = 16 / sizeof(X);
// The loop shapes that measured fastest on an H200 (variants side by side in one run at the
// sizes of bench/gpu/bench_rational_gpu.py, bench/results/gpu/rational_variants.md): float32's
// forward issues the next step's loads before this step's math and keeps to 64 registers (4
// blocks of 256 threads per SM): 1.07-1.08x (pipelined without the cap, 72 registers and a block
// less per SM: 1.00-1.04x); pipelined, the 16-bit types' forward ran 1.09-1.12x slower, so it
// loads, then computes. Backward elements per thread and step: float32 4 (1.28x against 1; 2:
// 1.1x; 4 capped to 80 registers spilled: 0.78x), bfloat16 2 (1.06x; 4: 1.03x, 8: 0.92x).
// float64 (not timed) takes 2, one 16-byte load, and the unpipelined forward.
template <class X> constexpr bool kForwardPipelined = std::is_same<X, float>::value;
constexpr int kForwardMinBlocks = 4;
template <class X> constexpr int kBackwardVec = std::is_same<X, float>::value ? 4 : 2;

// Loads run j's coefficients into shared memory, converted to the arithmetic type M.
template <class C, class M>
__device__ inline void load_coef(const Geo& g, std::int64_t j, const C* num, const C* den,
                                 M* sa, M* sb) {
  const std::int64_t ch0 = j * g.seg_channels;
  const C* a = num + (ch0 / g.num_per) * g.na;
  const C* b = den + (ch0 / g.den_per) * g.nb;
  if (threadIdx.x < g.na) sa[threadIdx.x] = static_cast<M>(a[threadIdx.x]);
  if (threadIdx.x < g.nb) sb[threadIdx.x] = static_cast<M>(b[threadIdx.x]);
  __syncthreads();
}

// The forward's grid-stride loop over coefficients A, B of element type P (the arithmetic type
// in shared memory, or the stored type read through the read-only cache). MD, ND, FORM >= 0: the
// degrees and the form as compile-time constants (equal to g.m, g.n, g.form).
template <class X, int VEC, class I, int MD, int ND, int FORM, class P>
__device__ inline void forward_loop(const Geo& g, const ForwardDiv& dv, I total, const X* __restrict__ x,
                                    const P* A, const P* B, X* __restrict__ y) {
  constexpr bool k32 = std::is_same<I, std::uint32_t>::value;
  const int m = MD >= 0 ? MD : g.m, n = ND >= 0 ? ND : g.n;
  const RationalForm form = FORM >= 0 ? static_cast<RationalForm>(FORM) : g.form;
  const I row = static_cast<I>(g.row), seg = static_cast<I>(g.seg);
  const I segc = static_cast<I>(g.seg_channels);
  const I num_per = static_cast<I>(g.num_per), den_per = static_cast<I>(g.den_per);
  const I stride = static_cast<I>(blockDim.x) * gridDim.x * VEC;
  // kForwardLoads vectors per thread and step, all loaded before any is computed; float32 issues
  // the next step's loads before this step's math (kForwardPipelined)
  constexpr bool pipe = kForwardPipelined<X> && k32;
  Vec<X, VEC> next[kForwardLoads];
  const auto load = [&](I i0) {
#pragma unroll
    for (int u = 0; u < kForwardLoads; ++u) {
      const I i = i0 + u * stride;
      if (i < total) next[u] = *reinterpret_cast<const Vec<X, VEC>*>(x + i);
    }
  };
  I i0 = (static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x) * VEC;
  if (pipe) load(i0);
  for (; i0 < total; i0 += kForwardLoads * stride) {
    if (!pipe) load(i0);
    Vec<X, VEC> in[kForwardLoads];
#pragma unroll
    for (int u = 0; u < kForwardLoads; ++u) in[u] = next[u];
    if (pipe) load(i0 + kForwardLoads * stride);  // (32-bit: total < 2^31, so no wrap-around)
#pragma unroll
    for (int u = 0; u < kForwardLoads; ++u) {
      const I i = i0 + u * stride;
      if (i >= total) break;
      I run, ga, gb;  // run of channels within the row; its numerator and denominator groups
      if constexpr (k32) {
        run = dv.seg.div(i - dv.row.div(i) * row);
        ga = dv.num_per.div(run * segc);
        gb = dv.den_per.div(run * segc);
      } else {
        run = (i - (i / row) * row) / seg;
        ga = run * segc / num_per;
        gb = run * segc / den_per;
      }
      const P* a = A + ga * g.na;
      const P* b = B + gb * g.nb;
      Vec<X, VEC> out;
#pragma unroll
      for (int k = 0; k < VEC; ++k)
        out.v[k] = from_math<X>(math::rational_value(form, a, m, b, n, to_math(in[u].v[k])));
      *reinterpret_cast<Vec<X, VEC>*>(y + i) = out;
    }
  }
}

// y = F(x) for `total` elements; VEC contiguous elements per step, all in one channel run
// (the launcher checks seg % VEC == 0 and 16-byte alignment). Coefficients: every group's, in
// shared memory (converted to the arithmetic type) when they fit (`smem`), else read through the
// read-only cache.
template <class X, int VEC, class I, int MD, int ND, int FORM>
__global__ void __launch_bounds__(kThreads, kForwardMinBlocks)
    forward_kernel(Geo g, ForwardDiv dv, I total, bool smem, const X* __restrict__ x,
                   const typename Coef<X>::type* __restrict__ num,
                   const typename Coef<X>::type* __restrict__ den, X* __restrict__ y) {
  using M = typename Math<X>::type;
  extern __shared__ __align__(16) unsigned char shared_raw[];
  if (smem) {
    M* sa = reinterpret_cast<M*>(shared_raw);
    M* sb = sa + g.num_groups * g.na;
    for (int i = threadIdx.x; i < g.num_groups * g.na; i += blockDim.x)
      sa[i] = static_cast<M>(num[i]);
    for (int i = threadIdx.x; i < g.den_groups * g.nb; i += blockDim.x)
      sb[i] = static_cast<M>(den[i]);
    __syncthreads();
    forward_loop<X, VEC, I, MD, ND, FORM>(g, dv, total, x, sa, sb, y);
  } else {
    forward_loop<X, VEC, I, MD, ND, FORM>(g, dv, total, x, num, den, y);
  }
}

// Sums the block's per-thread accumulators acc_a[0, na) and acc_b[0, nb) into out[0, na + nb):
// every slot over each warp by shuffles, one barrier, then thread k adds slot k's warp partials
// in warp order. (One barrier pair per coefficient before, with thread 0 adding while the block
// waited: at 4096 elements per block that tail cost about as much as the 16-bit loop.)
template <int KA, int KB, class C>
__device__ inline void block_sums(const C (&acc_a)[KA], int na, const C (&acc_b)[KB], int nb,
                                  C (*scratch)[KA + KB], C* out) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
#pragma unroll
  for (int k = 0; k < KA + KB; ++k)
    if (k < KA ? k < na : k - KA < nb) {
      C v = k < KA ? acc_a[k] : acc_b[k - KA];
      for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
      if (lane == 0) scratch[warp][k] = v;
    }
  __syncthreads();
  const int k = static_cast<int>(threadIdx.x);
  if (k < na + nb) {
    const int slot = k < na ? k : KA + (k - na);
    C s = C(0);
    for (int w = 0; w < kThreads / 32; ++w) s += scratch[w][slot];
    out[k] = s;
  }
}

// One element of the backward: returns dx and adds the element's terms of the coefficient
// gradients to the thread's accumulators (KA numerator, KB denominator slots).
template <int KA, int KB, class C>
__device__ inline C backward_element(RationalForm form, const C* sa, int m, const C* sb, int n, int nb,
                                     C xv, C gv, C* acc_a, C* acc_b) {
  C p, dp, q, dq, w;
  math::rational_p_dp(sa, m, xv, p, dp);
  math::rational_q_dq(form, sb, n, xv, q, dq, w);
  const C r = C(1) / q;  // one division for F = P/Q and G/Q
  const C yv = p * r, u = gv * r;
  const C d = u * (dp - yv * dq);  // first: dp and dq die here
  C pw = u;
#pragma unroll
  for (int k = 0; k < KA; ++k)
    if (k <= m) {
      acc_a[k] += pw;
      pw *= xv;
    }
  const C v = -(yv * u);
  if (form == RationalForm::A) {
    const C tv = xv < C(0) ? -xv : xv;
    pw = v;
#pragma unroll
    for (int k = 0; k < KB; ++k)
      if (k < nb) {
        pw *= tv;
        acc_b[k] += pw;  // sign(b_k) applied in the final pass
      }
  } else {
    pw = form == RationalForm::B ? v * w * xv : v * w;
#pragma unroll
    for (int k = 0; k < KB; ++k)
      if (k < nb) {
        acc_b[k] += pw;
        pw *= xv;
      }
  }
  return d;
}

// VEC contiguous elements per thread and step (one vector load of x and of the gradient; the
// launcher checks seg % VEC == 0 and alignment). MD, ND >= 0: the degrees as compile-time
// constants (equal to g.m, g.n): Horner unrolled and MD + 1 numerator and ND + 1 denominator
// accumulators per thread instead of kMaxCoef and kMaxCoef + 1 behind run-time predicates.
// FORM >= 0: the form as a constant too (with a run-time form, every element paid for both
// denominator-gradient paths, merged by selects). I: the index type (32-bit below 2^31 elements,
// as the forward).
template <class X, int VEC, class I, int MD, int ND, int FORM>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(Geo g, const X* __restrict__ grad, const X* __restrict__ x,
                    const typename Coef<X>::type* __restrict__ num,
                    const typename Coef<X>::type* __restrict__ den, X* __restrict__ dx,
                    typename Math<X>::type* __restrict__ partial) {
  using C = typename Math<X>::type;  // arithmetic type (the sums' too)
  using V = Vec<X, VEC>;
  constexpr int KA = MD >= 0 ? MD + 1 : kMaxCoef;      // numerator coefficient slots
  constexpr int KB = ND >= 0 ? ND + 1 : kMaxCoef + 1;  // denominator slots (form C: n + 1)
  const int m = MD >= 0 ? MD : g.m, n = ND >= 0 ? ND : g.n;
  const RationalForm form = FORM >= 0 ? static_cast<RationalForm>(FORM) : g.form;
  __shared__ C sa[kMaxCoef], sb[kMaxCoef + 1];
  __shared__ C scratch[kThreads / 32][KA + KB];
  const std::int64_t j = blockIdx.x / g.nchunk, c = blockIdx.x % g.nchunk;
  load_coef(g, j, num, den, sa, sb);
  C acc_a[KA], acc_b[KB];
#pragma unroll
  for (int k = 0; k < KA; ++k) acc_a[k] = C(0);
#pragma unroll
  for (int k = 0; k < KB; ++k) acc_b[k] = C(0);
  const I seg = static_cast<I>(g.seg), rowlen = static_cast<I>(g.row);
  const I total = static_cast<I>(g.outer * g.seg);
  const I t0 = static_cast<I>(c * g.per_block) + threadIdx.x * VEC;
  const I t1 = min(total, static_cast<I>((c + 1) * g.per_block));
  // position (row, off) of element t of the run; a step of blockDim.x vectors moves it by
  // (step_rows, step_off): one compare per step instead of a loop over the rows it crosses
  const I step = blockDim.x * VEC, step_rows = step / seg, step_off = step - step_rows * seg;
  I row = t0 / seg, off = t0 - row * seg;
  const I base = static_cast<I>(j) * seg;
  // The next step's x and gradient are loaded before this one's math: loads in flight through
  // the math, not none (the loop is otherwise one load round trip per step).
  I idx = row * rowlen + base + off;
  V xn{}, gn{};
  if (t0 < t1) {
    xn = *reinterpret_cast<const V*>(x + idx);
    gn = *reinterpret_cast<const V*>(grad + idx);
  }
  for (I t = t0; t < t1; t += step) {  // no early return: barriers follow
    const I cur = idx;
    const V xc = xn, gc = gn;
    off += step_off;
    row += step_rows;
    if (off >= seg) {
      off -= seg;
      ++row;
    }
    idx = row * rowlen + base + off;
    if (t + step < t1) {
      xn = *reinterpret_cast<const V*>(x + idx);
      gn = *reinterpret_cast<const V*>(grad + idx);
    }
    V d;
#pragma unroll
    for (int k = 0; k < VEC; ++k)
      d.v[k] = from_math<X>(backward_element<KA, KB>(form, sa, m, sb, n, g.nb, to_math(xc.v[k]),
                                                     to_math(gc.v[k]), acc_a, acc_b));
    *reinterpret_cast<V*>(dx + cur) = d;
  }
  block_sums(acc_a, g.na, acc_b, g.nb, scratch, partial + static_cast<std::int64_t>(blockIdx.x) * (g.na + g.nb));
}

// One block per output coefficient: sum of its partials (type M) over the runs of its group and
// all chunks, in double, in a fixed order; written in the coefficients' type C.
template <class M, class C>
__global__ void __launch_bounds__(kThreads)
    finalize_kernel(Geo g, std::int64_t num_groups, const M* __restrict__ partial,
                    const C* __restrict__ den, C* __restrict__ dnum, C* __restrict__ dden) {
  __shared__ double red[kThreads];
  const std::int64_t id = blockIdx.x;
  const bool is_num = id < num_groups * g.na;
  const std::int64_t grp = is_num ? id / g.na : (id - num_groups * g.na) / g.nb;
  const int k = static_cast<int>(is_num ? id % g.na : (id - num_groups * g.na) % g.nb);
  const std::int64_t per = is_num ? g.num_per : g.den_per;
  const std::int64_t j0 = grp * per / g.seg_channels, j1 = (grp + 1) * per / g.seg_channels;
  const std::int64_t count = (j1 - j0) * g.nchunk;
  const int col = is_num ? k : g.na + k;
  double s = 0.0;
  for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x)
    s += static_cast<double>(partial[(j0 * g.nchunk + i) * (g.na + g.nb) + col]);
  red[threadIdx.x] = s;
  __syncthreads();
  for (int h = kThreads / 2; h > 0; h >>= 1) {
    if (static_cast<int>(threadIdx.x) < h) red[threadIdx.x] += red[threadIdx.x + h];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    double v = red[0];
    if (is_num) {
      dnum[grp * g.na + k] = static_cast<C>(v);
    } else {
      if (g.form == RationalForm::A) {
        const C b = den[grp * g.nb + k];
        v = b > C(0) ? v : (b < C(0) ? -v : 0.0 * v);
      }
      dden[grp * g.nb + k] = static_cast<C>(v);
    }
  }
}

Geo make_geo(const RationalShape& s, std::int64_t per_block) {
  rational_check(s);
  Geo g{};
  g.outer = s.outer;
  g.row = s.channels * s.inner;
  g.num_per = s.channels / s.num_groups;
  g.den_per = s.channels / s.den_groups;
  std::int64_t a = g.num_per, b = g.den_per;
  while (b) {
    const std::int64_t t = a % b;
    a = b;
    b = t;
  }
  g.seg_channels = a;
  g.seg = a * s.inner;
  g.m = s.deg_num;
  g.n = s.deg_den;
  g.na = s.deg_num + 1;
  g.nb = math::rational_den_count(s.form, s.deg_den);
  g.form = s.form;
  g.num_groups = s.num_groups;
  g.den_groups = s.den_groups;
  g.per_block = per_block;
  const std::int64_t total = g.outer * g.seg;
  g.nchunk = total > 0 ? (total + per_block - 1) / per_block : 0;
  return g;
}

std::int64_t num_blocks(const RationalShape& s, const Geo& g) {
  const std::int64_t nb = (s.channels / g.seg_channels) * g.nchunk;
  if (nb > 0x7fffffffLL) throw std::invalid_argument("kernkit::cuda::rational: input too large");
  return nb;
}

// Whether VEC elements per step can be vector loads: every step stays in one channel run and
// the pointers are aligned to VEC elements (else the kernels take 1).
template <class X, int VEC>
bool vector_ok(const Geo& g, std::initializer_list<const void*> ptrs) {
  if (g.seg % VEC != 0) return false;
  for (const void* p : ptrs)
    if (reinterpret_cast<std::uintptr_t>(p) % (VEC * sizeof(X)) != 0) return false;
  return true;
}

template <class X, int VEC, class I>
void forward_launch(const Geo& g, std::int64_t total, const void* x, const void* num,
                    const void* den, void* y, cudaStream_t st) {
  using C = typename Coef<X>::type;
  using M = typename Math<X>::type;
  const std::size_t coef_bytes = static_cast<std::size_t>(g.num_groups * g.na + g.den_groups * g.nb) * sizeof(M);
  const bool smem = coef_bytes <= 32 * 1024;
  const std::int64_t steps = (total + VEC - 1) / VEC;
  const std::int64_t want = (steps + kThreads - 1) / kThreads;
  const int blocks = static_cast<int>(want < kForwardMaxBlocks ? want : kForwardMaxBlocks);
  ForwardDiv dv;
  if (std::is_same<I, std::uint32_t>::value)
    dv = ForwardDiv{FastDiv(g.row), FastDiv(g.seg), FastDiv(g.num_per), FastDiv(g.den_per)};
  const std::size_t sm = smem ? coef_bytes : 0;
  const auto* xc = static_cast<const X*>(x);
  const auto *nc = static_cast<const C*>(num), *dc = static_cast<const C*>(den);
  auto* yc = static_cast<X*>(y);
  if (g.m == 5 && g.n == 4 && g.form == RationalForm::A)  // the defaults of KAT and PAU
    forward_kernel<X, VEC, I, 5, 4, kFormA><<<blocks, kThreads, sm, st>>>(g, dv, static_cast<I>(total), smem, xc, nc, dc, yc);
  else
    forward_kernel<X, VEC, I, -1, -1, -1><<<blocks, kThreads, sm, st>>>(g, dv, static_cast<I>(total), smem, xc, nc, dc, yc);
  KERNKIT_CUDA_CHECK(cudaGetLastError());
}

template <class X>
void forward_t(const RationalShape& s, const void* x, const void* num, const void* den, void* y,
               cudaStream_t st) {
  const Geo g = make_geo(s, kThreads * 8);
  const std::int64_t total = s.outer * s.channels * s.inner;
  if (total == 0) return;
  const bool small = total < (std::int64_t{1} << 31);
  if (vector_ok<X, kVec<X>>(g, {x, y}))
    small ? forward_launch<X, kVec<X>, std::uint32_t>(g, total, x, num, den, y, st)
          : forward_launch<X, kVec<X>, std::int64_t>(g, total, x, num, den, y, st);
  else
    small ? forward_launch<X, 1, std::uint32_t>(g, total, x, num, den, y, st)
          : forward_launch<X, 1, std::int64_t>(g, total, x, num, den, y, st);
}

// Elements per thread of a backward block (its share of the block's run chunk): 64 from 2^23
// elements on, else 16. Each block pays once for its coefficient loads, its first loads and its
// coefficient sums; on an H200 (one run, bench/results/gpu/rational_gpu.md) blocks of 64 per
// thread took forward + backward 12-16% less time than 16 at (197·128, 768) float32 and at
// D = 3072, 7% at D = 768 bfloat16 (32: 9%); below 2^23 elements they would leave SMs idle.
// KERNKIT_RATIONAL_BWD_PER_THREAD=16|32|64 overrides (for timing one against another).
std::int64_t backward_per_thread(std::int64_t elements) {
  if (const char* e = std::getenv("KERNKIT_RATIONAL_BWD_PER_THREAD")) {
    const std::string v(e);
    if (v == "16" || v == "32" || v == "64") return std::stoi(v);
  }
  return elements >= (std::int64_t{1} << 23) ? 64 : 16;
}

template <class X>
void backward_t(const RationalShape& s, const void* grad, const void* x, const void* num,
                const void* den, void* dx, void* dnum, void* dden, cudaStream_t st) {
  using C = typename Coef<X>::type;
  using M = typename Math<X>::type;
  const Geo g = make_geo(s, kThreads * backward_per_thread(s.outer * s.channels * s.inner));
  const std::int64_t nb = num_blocks(s, g);
  const std::int64_t ncoef = s.num_groups * g.na + s.den_groups * g.nb;
  if (nb == 0 || s.inner == 0) {
    KERNKIT_CUDA_CHECK(cudaMemsetAsync(dnum, 0, s.num_groups * g.na * sizeof(C), st));
    if (g.nb > 0) KERNKIT_CUDA_CHECK(cudaMemsetAsync(dden, 0, s.den_groups * g.nb * sizeof(C), st));
    return;
  }
  void* ws = nullptr;
  KERNKIT_CUDA_CHECK(cudaMallocAsync(&ws, static_cast<std::size_t>(nb) * (g.na + g.nb) * sizeof(M), st));
  const auto *gc = static_cast<const X*>(grad), *xc = static_cast<const X*>(x);
  const auto *nc = static_cast<const C*>(num), *dc = static_cast<const C*>(den);
  const bool small = s.outer * s.channels * s.inner < (std::int64_t{1} << 31);
  const bool vec = vector_ok<X, kBackwardVec<X>>(g, {grad, x, dx});
  auto launch = [&](auto index, auto md, auto nd, auto form) {
    using I = decltype(index);
    constexpr int MD = decltype(md)::value, ND = decltype(nd)::value, F = decltype(form)::value;
    const unsigned blocks = static_cast<unsigned>(nb);
    auto* dxc = static_cast<X*>(dx);
    auto* wsc = static_cast<M*>(ws);
    if constexpr (MD >= 0) {  // (the generic kernel with vectors spilled: 255 registers)
      if (vec) {
        backward_kernel<X, kBackwardVec<X>, I, MD, ND, F><<<blocks, kThreads, 0, st>>>(g, gc, xc, nc, dc, dxc, wsc);
        return;
      }
    }
    backward_kernel<X, 1, I, MD, ND, F><<<blocks, kThreads, 0, st>>>(g, gc, xc, nc, dc, dxc, wsc);
  };
  using Any = std::integral_constant<int, -1>;
  if (small && g.m == 5 && g.n == 4 && g.form == RationalForm::A)  // the defaults of KAT and PAU
    launch(std::uint32_t{}, std::integral_constant<int, 5>{}, std::integral_constant<int, 4>{},
           std::integral_constant<int, kFormA>{});
  else if (small)
    launch(std::uint32_t{}, Any{}, Any{}, Any{});
  else
    launch(std::int64_t{}, Any{}, Any{}, Any{});
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess)
    finalize_kernel<M, C><<<static_cast<unsigned>(ncoef), kThreads, 0, st>>>(
        g, s.num_groups, static_cast<const M*>(ws), static_cast<const C*>(den),
        static_cast<C*>(dnum), static_cast<C*>(dden));
  if (err == cudaSuccess) err = cudaGetLastError();
  KERNKIT_CUDA_CHECK(cudaFreeAsync(ws, st));
  KERNKIT_CUDA_CHECK(err);
}

}  // namespace

void rational_forward(const RationalShape& s, RationalDtype dtype, const void* x,
                      const void* num, const void* den, void* y, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case RationalDtype::f32: return forward_t<float>(s, x, num, den, y, st);
    case RationalDtype::f64: return forward_t<double>(s, x, num, den, y, st);
    case RationalDtype::f16: return forward_t<__half>(s, x, num, den, y, st);
    case RationalDtype::bf16: return forward_t<__nv_bfloat16>(s, x, num, den, y, st);
  }
  throw std::invalid_argument("kernkit::cuda::rational_forward: unknown dtype");
}

void rational_backward(const RationalShape& s, RationalDtype dtype, const void* grad,
                       const void* x, const void* num, const void* den, void* dx, void* dnum,
                       void* dden, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case RationalDtype::f32: return backward_t<float>(s, grad, x, num, den, dx, dnum, dden, st);
    case RationalDtype::f64: return backward_t<double>(s, grad, x, num, den, dx, dnum, dden, st);
    case RationalDtype::f16: return backward_t<__half>(s, grad, x, num, den, dx, dnum, dden, st);
    case RationalDtype::bf16:
      return backward_t<__nv_bfloat16>(s, grad, x, num, den, dx, dnum, dden, st);
  }
  throw std::invalid_argument("kernkit::cuda::rational_backward: unknown dtype");
}

}  // namespace kernkit::cuda
