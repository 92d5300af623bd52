// Toeplitz products Y = T X in one kernel launch (no workspace) for power-of-two circulant lengths
// L <= 8192 (float32) / 4096 (float64); cuda/toeplitz.cu keeps cuFFT for everything else.
//
// A column group is G adjacent columns of one batch (G * sizeof(T) = 32 bytes: every row read or
// written is one whole sector); a block (one per SM slot, looping over groups) works through a
// group's columns in pairs:
//  1. X[b, :, j0:j0+G] -> shared staging, lanes along the columns (coalesced), pair p of columns
//     stored as n complex numbers x_{2p} + i x_{2p+1};
//  2. per pair, a complex FFT of length L of that sequence zero-padded: the circulant product
//     with the real h is linear over the reals, so irfft-style post-processing is not needed:
//     IFFT(FFT(x_a + i x_b) * H) = (h (*) x_a) + i (h (*) x_b), with H[q] = spec[q] for q <= L/2
//     and conj(spec[L - q]) above (spec = rfft(h)/L from toeplitz.cu's spectrum(), so the inverse
//     needs no scaling). One complex FFT of L per two columns costs what one real FFT of L per
//     column does, and needs neither the half-length twist nor a separate buffer per column.
//     Forward: in-place decimation in frequency (radix 2^r1 first, then radix 16), which leaves
//     the spectrum digit-reversed; the last forward pass, the product with H (in registers for
//     the thread's fixed positions, loaded when the batch changes) and the first inverse pass
//     work on the same 16 registers; the inverse is the mirror image (decimation in time from
//     digit-reversed order to natural order), so no reordering pass exists. Every other pass reads and
//     writes the padded work buffer (one complex per 16 skipped: the strides 16 and 256 of the
//     radix-16 passes hit distinct banks). The first forward pass reads the staging directly
//     (positions >= n are the zero padding) and the last inverse pass writes only positions < n
//     back over the pair's staging;
//  3. the staging -> Y[b, :, j0:j0+G] (coalesced).
// Twiddles: w_L^m = hi[m >> lb] * lo[m & (2^lb - 1)] from two small tables a block builds in
// shared memory with sincospi in double; a radix-16 butterfly reads w^1, w^2, w^4, w^8 (w = w_S^j)
// that way and forms the others by at most 3 multiplications.
// Shared memory: tables + (L + L/16) complex work + (G/2)(n + 4) complex staging + a flag per
// thread: 200 KiB for float32 at L = 8192, n = 4096 (one block of 512 threads per SM on sm_90;
// 126 registers), 135 KiB for float64 at L = 4096 (256 threads, 255 registers); float32 below
// L = 8192 fits two or more blocks per SM (<= 128 registers).
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>

#include "check.cuh"
#include "kernkit/math/sincospi.hpp"
#include "kernkit/toeplitz.hpp"
#include "toeplitz_fused.hpp"

namespace kernkit::cuda::toeplitz_fused {
namespace {

using i64 = std::int64_t;

// The largest L (kernkit/toeplitz.hpp): float32 8192 takes 200 KiB of shared memory, float64 4096
// 135 KiB (float64 8192 would take 269 KiB).
using kernkit::cuda::toeplitz::fused_max_length;

template <class T>
struct alignas(2 * sizeof(T)) Cx {  // one 8- / 16-byte shared-memory access per element
  T re, im;
};
template <class T>
__device__ __forceinline__ Cx<T> operator+(Cx<T> a, Cx<T> b) { return {a.re + b.re, a.im + b.im}; }
template <class T>
__device__ __forceinline__ Cx<T> operator-(Cx<T> a, Cx<T> b) { return {a.re - b.re, a.im - b.im}; }
template <class T>
__device__ __forceinline__ Cx<T> operator*(Cx<T> a, Cx<T> b) {
  return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}
template <class T>
__device__ __forceinline__ Cx<T> conj_mul(Cx<T> a, Cx<T> w) {  // a * conj(w)
  return {a.re * w.re + a.im * w.im, a.im * w.re - a.re * w.im};
}

constexpr int kPadShift = 4;  // one padding complex per 16 in the work buffer
__device__ __forceinline__ int pad(int x) { return x + (x >> kPadShift); }

// cos and sin of 2 pi m / 16, m < 8: the constant twiddles inside a radix-16 butterfly (a chain
// of conditionals, not an array, so that the constant index folds and nothing goes to local memory).
__device__ __forceinline__ double cos16(int m) {
  return m == 0 ? 1.0 : m == 1 ? 0.92387953251128675613 : m == 2 ? 0.70710678118654752440
       : m == 3 ? 0.38268343236508977173 : m == 4 ? 0.0 : m == 5 ? -0.38268343236508977173
       : m == 6 ? -0.70710678118654752440 : -0.92387953251128675613;
}
__device__ __forceinline__ double sin16(int m) { return cos16(m < 4 ? 4 - m : m - 4); }  // sin(x) = cos(pi/2 - x)

// d * w_R^m (INV: d * w_R^-m), w_R = exp(-2 pi i / R), m < R/2; m = 0 and R/4 without multiplies.
template <int R, bool INV, class T>
__device__ __forceinline__ Cx<T> rot(int m, Cx<T> d) {
  if (m == 0) return d;
  if (4 * m == R) return INV ? Cx<T>{-d.im, d.re} : Cx<T>{d.im, -d.re};
  const int m16 = m * (16 / R);
  const T c = static_cast<T>(cos16(m16)), s = static_cast<T>(sin16(m16));
  return INV ? Cx<T>{d.re * c - d.im * s, d.im * c + d.re * s} : Cx<T>{d.re * c + d.im * s, d.im * c - d.re * s};
}

// In-register DFT of R = 2^r points by radix-2 decimation in frequency: natural order in,
// a[bitrev(p)] = sum_q a_q w_R^{+-pq} out (INV: the conjugate kernel, unscaled).
template <int R, bool INV, class T>
__device__ __forceinline__ void dft(Cx<T>* a) {
#pragma unroll
  for (int st = 1; st < R; st *= 2) {  // stage of half-span R / (2 st); constant trip counts
#pragma unroll
    for (int i = 0; i < R / 2; ++i) {
      const int half = R / (2 * st);
      const int j = i % half, lo = (i / half) * 2 * half + j;
      const Cx<T> u = a[lo], v = a[lo + half];
      a[lo] = u + v;
      a[lo + half] = rot<R, INV>(j * st, u - v);
    }
  }
}

template <int R>
__device__ __forceinline__ int bitrev(int p) {
  int q = 0;
#pragma unroll
  for (int b = 1; b < R; b *= 2) q = q * 2 + ((p / b) & 1);
  return q;
}

template <class T, int LOG2L>
struct Shape {
  static constexpr int L = 1 << LOG2L;
  static constexpr int P = (LOG2L + 3) / 4;             // passes per transform
  static constexpr int R1B = LOG2L - 4 * (P - 1);        // first pass radix 2^R1B (1..4)
  static constexpr int R1 = 1 << R1B;
  static constexpr int NT = L / 16 < 32 ? 32 : (L / 16 > 512 ? 512 : L / 16);  // threads
  static constexpr int U = (L / 16 + NT - 1) / NT;       // last-pass groups per thread
  static constexpr int LB = (LOG2L + 1) / 2;             // twiddle table split: lo 2^LB entries
  static constexpr int HB = LOG2L - LB;
  static constexpr int G = 32 / static_cast<int>(sizeof(T));  // columns per block
  static constexpr int WORK = L + (L >> kPadShift);
  // Blocks per SM the registers must allow: float32 at <= 128 registers a thread (what the
  // shared memory allows too below L = 8192); float64 needs ~240 and is held to one block.
  static constexpr int MIN_BLOCKS = sizeof(T) == 4 ? 65536 / (128 * NT) : 1;
};

// Spectrum index of position x after the forward passes (digits of x read in reverse).
template <int LOG2L, int R1B, int P>
__device__ __forceinline__ int digitrev(int x) {
  int k = x >> (LOG2L - R1B), mult = 1 << R1B;
#pragma unroll
  for (int s = 2; s <= P; ++s) {
    k += ((x >> (LOG2L - R1B - 4 * (s - 1))) & 15) * mult;
    mult *= 16;
  }
  return k;
}

// One forward (decimation in frequency) or inverse (its mirror) radix-R pass of span S over the
// padded work buffer `src` -> `dst`. FIRST: the forward reads the staging (positions < n, else
// zero) / the inverse writes the staging (positions < n only).
template <class T, int LOG2L, int R, bool INV, bool FIRST>
__device__ __forceinline__ void pass(int S, const Cx<T>* __restrict__ tlo, const Cx<T>* __restrict__ thi,
                                     Cx<T>* work, Cx<T>* stg, int n) {
  using Sh = Shape<T, LOG2L>;
  const int stride = S / R;
  for (int bf = threadIdx.x; bf < Sh::L / R; bf += Sh::NT) {
    const int j = bf % stride;
    const int base = (bf / stride) * S + j;
    // w[p] = w_S^{pj} = w_L^{p m}, m = j L / S: the powers of two from the tables (hi * lo, about
    // 1 ulp), the others w[p - top] * w[top] (<= 3 multiplications deep). Squaring w_S^j up (fewer
    // table reads) gave 5x the float32 error at L = 8192 (1.5e-6 vs 3.5e-7 in the emulator test).
    const int m = j * (Sh::L / S);
    Cx<T> w[R];
#pragma unroll
    for (int t = 1; t < R; t *= 2) {
      const int mt = (t * m) & (Sh::L - 1);
      w[t] = thi[mt >> Sh::LB] * tlo[mt & ((1 << Sh::LB) - 1)];
    }
#pragma unroll
    for (int p = 3; p < R; ++p) {
      const int top = p >= 8 ? 8 : p >= 4 ? 4 : 2;
      if (p != top) w[p] = w[p - top] * w[top];
    }
    Cx<T> a[R];
    if constexpr (!INV) {
#pragma unroll
      for (int q = 0; q < R; ++q) {
        const int x = base + q * stride;
        a[q] = FIRST ? (x < n ? stg[x] : Cx<T>{T(0), T(0)}) : work[pad(x)];
      }
      dft<R, false>(a);
#pragma unroll
      for (int p = 0; p < R; ++p) work[pad(base + p * stride)] = p == 0 ? a[0] : a[bitrev<R>(p)] * w[p];
    } else {
#pragma unroll
      for (int p = 0; p < R; ++p) {
        const Cx<T> v = work[pad(base + p * stride)];
        a[p] = p == 0 ? v : conj_mul(v, w[p]);
      }
      dft<R, true>(a);
#pragma unroll
      for (int q = 0; q < R; ++q) {
        const int x = base + q * stride;
        if constexpr (FIRST) {
          if (x < n) stg[x] = a[bitrev<R>(q)];
        } else {
          work[pad(x)] = a[bitrev<R>(q)];
        }
      }
    }
  }
}

// A block per SM slot (persistent): column groups grp = blockIdx.x, + gridDim.x, ...; the twiddle
// tables are built once, H is reloaded only when the batch changes, and while a group is
// transformed the next one's X rows are prefetched into L2, so that its staging reads L2 rather
// than DRAM (one 200 KiB block per SM cannot otherwise overlap its loads with its FFTs).
template <class T, int LOG2L>
__global__ void __launch_bounds__(Shape<T, LOG2L>::NT, Shape<T, LOG2L>::MIN_BLOCKS)
fused_kernel(const T* __restrict__ spec, i64 spec_bs, i64 n64, const T* __restrict__ X, i64 k,
             i64 xsb, i64 xsr, i64 xsc, i64 ngrp, i64 ntot, bool prefetch, T* __restrict__ Y) {
  using Sh = Shape<T, LOG2L>;
  constexpr int L = Sh::L, NT = Sh::NT, G = Sh::G;
  const int n = static_cast<int>(n64);
  const int tid = threadIdx.x;
  const int ns = n + 4;  // staging pair stride (banks)

  extern __shared__ __align__(16) unsigned char smem_raw[];
  Cx<T>* tlo = reinterpret_cast<Cx<T>*>(smem_raw);
  Cx<T>* thi = tlo + (1 << Sh::LB);
  Cx<T>* work = thi + (1 << Sh::HB);
  Cx<T>* stg = work + Sh::WORK;
  T* stgr = reinterpret_cast<T*>(stg);
  int* badf = reinterpret_cast<int*>(stg + (G / 2) * ns);  // [NT]: a non-finite X entry seen

  // Twiddle tables w_L^m: lo for m < 2^LB, hi for m = t 2^LB (made visible by the first group's
  // barrier after staging).
  for (int t = tid; t < (1 << Sh::LB) + (1 << Sh::HB); t += NT) {
    const int m = t < (1 << Sh::LB) ? t : (t - (1 << Sh::LB)) << Sh::LB;
    double s, co;
    kernkit::math::sincospi(-2.0 * m / L, &s, &co);
    tlo[t] = {static_cast<T>(co), static_cast<T>(s)};
  }

  const int c = tid % G;  // this thread's column in staging and output (NT % G == 0)
  Cx<T> h[Sh::U][16];     // H at this thread's last-pass positions 16 g + p, g = tid + u NT
  i64 hb = -1;            // the batch h holds
  for (i64 grp = blockIdx.x; grp < ntot; grp += gridDim.x) {
    const i64 b = grp / ngrp;
    const i64 j0 = (grp % ngrp) * G;
    const int gc = static_cast<int>(k - j0 < G ? k - j0 : G);  // columns of this group

    // 1. X tile -> staging. A non-finite entry is staged as 0 and its column flagged (written
    // all NaN at the end, as the other paths give), so that it does not spill into the other
    // column of its complex pair.
    {
      int bad = 0;
      const T* xc = X + b * xsb + (j0 + c) * xsc;
      T* sc = stgr + (c / 2) * 2 * ns + (c & 1);
      const bool live = c < gc;
      constexpr int kBatch = 16;  // loads in flight per thread (32 KB per SM at L = 8192)
      for (int i0 = tid / G; i0 < n; i0 += kBatch * (NT / G)) {
        T v[kBatch];
#pragma unroll
        for (int u = 0; u < kBatch; ++u) {
          const int i = i0 + u * (NT / G);
          v[u] = live && i < n ? xc[i * xsr] : T(0);
        }
#pragma unroll
        for (int u = 0; u < kBatch; ++u) {
          const int i = i0 + u * (NT / G);
          const bool finite = v[u] - v[u] == T(0);
          bad |= !finite;
          if (i < n) sc[2 * i] = finite ? v[u] : T(0);
        }
      }
      badf[tid] = bad;
    }
    if (b != hb && (hb < 0 || spec_bs != 0)) {
      const T* sp = spec + b * spec_bs;
#pragma unroll
      for (int u = 0; u < Sh::U; ++u)
#pragma unroll
        for (int p = 0; p < 16; ++p) {
          const int g = tid + u * NT;
          const int q = digitrev<LOG2L, Sh::R1B, Sh::P>((g < L / 16 ? g : 0) * 16 + p);
          h[u][p] = q <= L / 2 ? Cx<T>{sp[2 * q], sp[2 * q + 1]} : Cx<T>{sp[2 * (L - q)], -sp[2 * (L - q) + 1]};
        }
      hb = b;
    }
#if defined(__CUDA_ARCH__)
    if (prefetch && grp + gridDim.x < ntot && xsc == 1) {  // the next group's rows (32 bytes each)
      const i64 nx = grp + gridDim.x;
      const T* xn = X + (nx / ngrp) * xsb + (nx % ngrp) * G;
      for (int i = tid; i < n; i += NT) asm volatile("prefetch.global.L2 [%0];" ::"l"(xn + i * xsr));
    }
#endif
    __syncthreads();

    // 2. per pair of columns: FFT, times H, inverse FFT, back into the pair's staging.
    for (int pr = 0; 2 * pr < gc; ++pr) {
      Cx<T>* sp = stg + pr * ns;
      pass<T, LOG2L, Sh::R1, false, true>(L, tlo, thi, work, sp, n);
      __syncthreads();
#pragma unroll
      for (int s = 2; s < Sh::P; ++s) {
        pass<T, LOG2L, 16, false, false>(L >> (Sh::R1B + 4 * (s - 2)), tlo, thi, work, sp, n);
        __syncthreads();
      }
      // Last forward pass (span 16, no twiddles), times H, first inverse pass.
#pragma unroll
      for (int u = 0; u < Sh::U; ++u) {
        const int g = tid + u * NT;
        if (g < L / 16) {
          Cx<T> a[16], y[16];
#pragma unroll
          for (int q = 0; q < 16; ++q) a[q] = work[pad(16 * g + q)];
          dft<16, false>(a);
#pragma unroll
          for (int p = 0; p < 16; ++p) y[p] = a[bitrev<16>(p)] * h[u][p];
          dft<16, true>(y);
#pragma unroll
          for (int q = 0; q < 16; ++q) work[pad(16 * g + q)] = y[bitrev<16>(q)];
        }
      }
      __syncthreads();
#pragma unroll
      for (int s = Sh::P - 1; s >= 2; --s) {
        pass<T, LOG2L, 16, true, false>(L >> (Sh::R1B + 4 * (s - 2)), tlo, thi, work, sp, n);
        __syncthreads();
      }
      pass<T, LOG2L, Sh::R1, true, true>(L, tlo, thi, work, sp, n);
      __syncthreads();
    }

    // 3. staging -> Y (contiguous (nb, n, k)).
    if (c < gc) {
      int bad = 0;
      for (int t = c; t < NT; t += G) bad |= badf[t];
      T* yc = Y + b * n64 * k + j0 + c;
      const T* sc = stgr + (c / 2) * 2 * ns + (c & 1);
      const T nan = std::numeric_limits<T>::quiet_NaN();
      for (int i = tid / G; i < n; i += NT / G) yc[i * k] = bad ? nan : sc[2 * i];
    }
    __syncthreads();  // the staging and flags are the next group's
  }
}

template <class T, int LOG2L>
std::size_t smem_bytes(i64 n) {
  using Sh = Shape<T, LOG2L>;
  return sizeof(Cx<T>) * static_cast<std::size_t>((1 << Sh::LB) + (1 << Sh::HB) + Sh::WORK +
                                                   (Sh::G / 2) * (n + 4)) +
         sizeof(int) * Sh::NT;
}

template <class T, int LOG2L>
bool launch(const T* spec, i64 spec_bs, i64 n, const T* X, i64 nb, i64 k, i64 xsb, i64 xsr,
            i64 xsc, T* Y, cudaStream_t stream) {
  using Sh = Shape<T, LOG2L>;
  const std::size_t bytes = smem_bytes<T, LOG2L>(n);
  int dev = 0, optin = 0;
  KERNKIT_CUDA_CHECK(cudaGetDevice(&dev));
  KERNKIT_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  if (bytes > static_cast<std::size_t>(optin)) return false;
  KERNKIT_CUDA_CHECK(cudaFuncSetAttribute(fused_kernel<T, LOG2L>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(bytes)));
  int sms = 0, per_sm = 0;
  KERNKIT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  KERNKIT_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      &per_sm, reinterpret_cast<const void*>(fused_kernel<T, LOG2L>), Sh::NT, bytes));
  if (per_sm < 1) return false;
  const i64 ngrp = (k + Sh::G - 1) / Sh::G, ntot = nb * ngrp;
  const i64 slots = static_cast<i64>(sms) * per_sm;
  const unsigned grid = static_cast<unsigned>(ntot < slots ? ntot : slots);
  // KERNKIT_TOEPLITZ_PREFETCH=0 turns the L2 prefetch off (for timing it against prefetching).
  const char* pf = std::getenv("KERNKIT_TOEPLITZ_PREFETCH");
  const bool prefetch = !(pf && std::string(pf) == "0");
  fused_kernel<T, LOG2L><<<grid, Sh::NT, bytes, stream>>>(spec, spec_bs, n, X, k, xsb, xsr, xsc, ngrp, ntot,
                                                          prefetch, Y);
  KERNKIT_CUDA_CHECK(cudaGetLastError());
  return true;
}

int log2_exact(i64 L) {
  int e = 0;
  while ((i64{1} << e) < L) ++e;
  return (i64{1} << e) == L ? e : -1;
}

}  // namespace

template <class T>
bool matmul_spectrum(const T* spec, i64 spec_bs, i64 L, i64 n, const T* X, i64 nb, i64 k, i64 xsb,
                     i64 xsr, i64 xsc, T* Y, void* stream_) {
  if (n < 1 || 2 * n > L || L > fused_max_length<T>()) return false;
  auto stream = static_cast<cudaStream_t>(stream_);
  switch (log2_exact(L)) {
#define KERNKIT_FUSED_CASE(E) \
  case E: return launch<T, E>(spec, spec_bs, n, X, nb, k, xsb, xsr, xsc, Y, stream);
    KERNKIT_FUSED_CASE(5)
    KERNKIT_FUSED_CASE(6)
    KERNKIT_FUSED_CASE(7)
    KERNKIT_FUSED_CASE(8)
    KERNKIT_FUSED_CASE(9)
    KERNKIT_FUSED_CASE(10)
    KERNKIT_FUSED_CASE(11)
    KERNKIT_FUSED_CASE(12)
    case 13:
      if constexpr (fused_max_length<T>() >= 8192) return launch<T, 13>(spec, spec_bs, n, X, nb, k, xsb, xsr, xsc, Y, stream);
      return false;
#undef KERNKIT_FUSED_CASE
    default:
      return false;
  }
}

template bool matmul_spectrum<float>(const float*, i64, i64, i64, const float*, i64, i64, i64, i64,
                                     i64, float*, void*);
template bool matmul_spectrum<double>(const double*, i64, i64, i64, const double*, i64, i64, i64,
                                      i64, i64, double*, void*);

}  // namespace kernkit::cuda::toeplitz_fused
