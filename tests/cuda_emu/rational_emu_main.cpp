// Runs cuda/rational.cu's forward and backward kernels on the host emulator (emu.hpp; the source
// converted by make_emu.py) against a long-double reference written out from the definitions of
// forms A, B and C (not from kernkit/math/rational.hpp): float32 and float64 (double arithmetic,
// held to the CPU's bounds), float16 / bfloat16 (float32 arithmetic, within their rounding),
// channels-last and channels-first, separate numerator / denominator group counts, runs of
// several blocks per channel segment, a forward with coefficients too many for shared memory, and
// a form C denominator that cancels. Exits non-zero on a mismatch.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "kernkit/rational.hpp"

namespace emu_cuda {
void rational_forward(const kernkit::RationalShape& s, kernkit::cuda::RationalDtype dtype,
                      const void* x, const void* num, const void* den, void* y, void* stream);
void rational_backward(const kernkit::RationalShape& s, kernkit::cuda::RationalDtype dtype,
                       const void* grad, const void* x, const void* num, const void* den,
                       void* dx, void* dnum, void* dden, void* stream);
void set_forward_max_blocks(int n);
}  // namespace emu_cuda

// The launcher's stream-ordered allocations, answered on the host (no cudart is linked).
extern "C" cudaError_t cudaMallocAsync(void** p, size_t n, cudaStream_t) {
  *p = std::malloc(n ? n : 1);
  return cudaSuccess;
}
extern "C" cudaError_t cudaFreeAsync(void* p, cudaStream_t) {
  std::free(p);
  return cudaSuccess;
}
extern "C" cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t) {
  std::memset(p, v, n);
  return cudaSuccess;
}
extern "C" const char* cudaGetErrorString(cudaError_t) { return "emulated"; }
// The CPU library's shape check is not linked here; the launcher only needs it to pass.
void kernkit::rational_check(const RationalShape&) {}

using kernkit::RationalForm;
using kernkit::RationalShape;
using kernkit::cuda::RationalDtype;
using LD = long double;

struct Ref {
  std::vector<LD> y, dx, dnum, dden;
};

// y = P/Q, dx, dnum = sum g x^k / Q, dden = sum g (-P/Q^2) dQ/db_k, in long double.
Ref reference(const RationalShape& s, const std::vector<double>& x, const std::vector<double>& g,
              const std::vector<double>& a, const std::vector<double>& b) {
  const int na = s.deg_num + 1, nb = s.form == RationalForm::C ? s.deg_den + 1 : s.deg_den;
  Ref r{std::vector<LD>(x.size()), std::vector<LD>(x.size()),
        std::vector<LD>(s.num_groups * na, 0), std::vector<LD>(s.den_groups * nb, 0)};
  for (std::int64_t o = 0; o < s.outer; ++o)
    for (std::int64_t c = 0; c < s.channels; ++c)
      for (std::int64_t i = 0; i < s.inner; ++i) {
        const std::int64_t e = (o * s.channels + c) * s.inner + i;
        const std::int64_t gn = c / (s.channels / s.num_groups), gd = c / (s.channels / s.den_groups);
        const LD xv = x[e], gv = g[e];
        LD p = 0, dp = 0;
        for (int k = na - 1; k >= 0; --k) {
          dp = dp * xv + p;
          p = p * xv + a[gn * na + k];
        }
        LD q, dq;
        std::vector<LD> dqdb(nb);
        if (s.form == RationalForm::A) {
          q = 1;
          dq = 0;
          for (int k = 1; k <= nb; ++k) {
            const LD bk = b[gd * nb + k - 1], ab = std::fabs(bk), t = std::pow(std::fabs(xv), k);
            q += ab * t;
            dq += ab * k * std::pow(std::fabs(xv), k - 1) * (xv > 0 ? 1 : xv < 0 ? -1 : 0);
            dqdb[k - 1] = (bk > 0 ? 1 : bk < 0 ? -1 : 0) * t;
          }
        } else {
          const int k0 = s.form == RationalForm::B ? 1 : 0;
          LD sum = 0, dsum = 0;
          for (int k = k0; k < k0 + nb; ++k) {
            sum += b[gd * nb + k - k0] * std::pow(xv, k);
            if (k > 0) dsum += b[gd * nb + k - k0] * k * std::pow(xv, k - 1);
          }
          const LD sg = sum > 0 ? 1 : sum < 0 ? -1 : 0;
          q = (s.form == RationalForm::B ? 1 : 0.1L) + std::fabs(sum);
          dq = sg * dsum;
          for (int k = k0; k < k0 + nb; ++k) dqdb[k - k0] = sg * std::pow(xv, k);
        }
        r.y[e] = p / q;
        r.dx[e] = gv * (dp * q - p * dq) / (q * q);
        for (int k = 0; k < na; ++k) r.dnum[gn * na + k] += gv * std::pow(xv, k) / q;
        for (int k = 0; k < nb; ++k) r.dden[gd * nb + k] += -gv * p / (q * q) * dqdb[k];
      }
  return r;
}

template <class X> X to_x(double v) { return static_cast<X>(v); }
template <> __half to_x<__half>(double v) { return __float2half_rn(static_cast<float>(v)); }
template <> __nv_bfloat16 to_x<__nv_bfloat16>(double v) { return __float2bfloat16_rn(static_cast<float>(v)); }
template <class X> double from_x(X v) { return static_cast<double>(v); }
template <> double from_x<__half>(__half v) { return __half2float(v); }
template <> double from_x<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

// max |got - want| / max |want|, as the Python tests' rel().
template <class V>
double rel(const V& got, const std::vector<LD>& want) {
  LD e = 0, m = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    e = std::max<LD>(e, std::fabs(static_cast<LD>(got[i]) - want[i]));
    m = std::max<LD>(m, std::fabs(want[i]));
  }
  return static_cast<double>(m > 0 ? e / m : e);
}

template <class X, class C>
int run(RationalDtype dt, RationalShape s, double tol, bool cancel, const char* label,
        bool backward = true) {
  std::mt19937_64 rng(s.outer * 131 + s.channels * 7 + s.inner + static_cast<int>(s.form) * 3 + int(dt));
  std::normal_distribution<double> nd(0.0, 1.0);
  const std::int64_t n = s.outer * s.channels * s.inner;
  const int na = s.deg_num + 1, nb = s.form == RationalForm::C ? s.deg_den + 1 : s.deg_den;
  std::vector<X> x(n), g(n), y(n), dx(n);
  std::vector<double> xd(n), gd(n), ad(s.num_groups * na), bd(s.den_groups * nb);
  for (std::int64_t i = 0; i < n; ++i) {
    x[i] = to_x<X>(nd(rng));
    g[i] = to_x<X>(nd(rng));
    xd[i] = from_x(x[i]);  // the reference sees the rounded inputs
    gd[i] = from_x(g[i]);
  }
  std::vector<C> a(ad.size()), b(bd.size()), dnum(ad.size()), dden(bd.size());
  for (size_t i = 0; i < a.size(); ++i) ad[i] = static_cast<double>(a[i] = static_cast<C>(0.3 * nd(rng) + (i % na == 1)));
  for (size_t i = 0; i < b.size(); ++i) {
    // form C with `cancel`: b0 + b2 x^2 - ... crosses zero inside the sampled range
    const double base = cancel && i % nb == 0 ? 0.9 : cancel && i % nb == 2 ? -0.15 : 0.2 * nd(rng);
    bd[i] = static_cast<double>(b[i] = static_cast<C>(base + (cancel ? 0.01 * nd(rng) : 0.0)));
  }
  emu_cuda::rational_forward(s, dt, x.data(), a.data(), b.data(), y.data(), nullptr);
  if (backward)  // (a block per channel run: thousands of emulated threads for many groups)
    emu_cuda::rational_backward(s, dt, g.data(), x.data(), a.data(), b.data(), dx.data(), dnum.data(),
                                dden.data(), nullptr);
  Ref r = reference(s, xd, gd, ad, bd);
  if (!backward) {  // compare y only (rel() of an empty reference is 0)
    r.dx.clear();
    r.dnum.clear();
    r.dden.clear();
  }
  std::vector<double> yv(n), dxv(n);
  for (std::int64_t i = 0; i < n; ++i) {
    yv[i] = from_x(y[i]);
    dxv[i] = from_x(dx[i]);
  }
  const double e[4] = {rel(yv, r.y), rel(dxv, r.dx), rel(dnum, r.dnum), rel(dden, r.dden)};
  const bool ok = e[0] <= tol && e[1] <= tol && e[2] <= tol && e[3] <= tol;
  std::printf("%s %-5s form %c (%lld, %lld, %lld) groups %lld/%lld%s: y %.1e dx %.1e dnum %.1e dden %.1e\n",
              ok ? "ok  " : "FAIL", label, "ABC"[static_cast<int>(s.form)], (long long)s.outer,
              (long long)s.channels, (long long)s.inner, (long long)s.num_groups,
              (long long)s.den_groups, cancel ? " cancelling" : "", e[0], e[1], e[2], e[3]);
  return ok ? 0 : 1;
}

int main() {
  int bad = 0;
  for (RationalForm f : {RationalForm::A, RationalForm::B, RationalForm::C}) {
    RationalShape last{400, 48, 1, 1, 4, 5, 4, f};   // channels-last; runs of 12 channels, 2 blocks each
    RationalShape first{3, 16, 37, 2, 4, 3, 2, f};   // channels-first, other degrees
    bad += run<float, float>(RationalDtype::f32, last, 2e-7, false, "f32");
    bad += run<float, float>(RationalDtype::f32, first, 2e-7, false, "f32");
    bad += run<double, double>(RationalDtype::f64, last, 1e-13, false, "f64");
    bad += run<double, double>(RationalDtype::f64, first, 1e-13, false, "f64");
    bad += run<__half, float>(RationalDtype::f16, last, 4e-3, false, "f16");
    bad += run<__nv_bfloat16, float>(RationalDtype::bf16, first, 3e-2, false, "bf16");
  }
  // 512 + 1024 groups: 56 KB of double coefficients, past the forward's 32 KB shared-memory copy
  RationalShape many{6, 2048, 1, 512, 1024, 5, 4, RationalForm::B};
  bad += run<float, float>(RationalDtype::f32, many, 2e-7, false, "f32", false);
  // channels-first, runs of 4 x 300 = 1200 elements, longer than a block's step of 256 (the
  // backward's step then stays within a row), degrees (5, 4) in form A (the fast kernels)
  RationalShape wide{5, 8, 300, 1, 2, 5, 4, RationalForm::A};
  bad += run<float, float>(RationalDtype::f32, wide, 2e-7, false, "f32");
  bad += run<double, double>(RationalDtype::f64, wide, 1e-13, false, "f64");
  // a grid of 3 forward blocks: several grid-stride steps per thread, with the step's second
  // vector past the end in the last one
  emu_cuda::set_forward_max_blocks(3);
  for (RationalForm f : {RationalForm::A, RationalForm::C}) {
    RationalShape grid{401, 48, 1, 1, 4, 5, 4, f};
    bad += run<float, float>(RationalDtype::f32, grid, 2e-7, false, "f32");
    bad += run<__half, float>(RationalDtype::f16, grid, 4e-3, false, "f16");
  }
  emu_cuda::set_forward_max_blocks(132 * 32);
  RationalShape c{500, 32, 1, 2, 4, 5, 4, RationalForm::C};
  bad += run<float, float>(RationalDtype::f32, c, 2e-7, true, "f32");  // the case float32 math failed
  // longer backward blocks (KERNKIT_RATIONAL_BWD_PER_THREAD): one chunk per run, and a run
  // of 1400 x 12 elements split over blocks of 8192 and 16384 (the last partial)
  for (const char* per : {"32", "64"}) {
    setenv("KERNKIT_RATIONAL_BWD_PER_THREAD", per, 1);
    std::printf("backward blocks of %s elements per thread\n", per);
    for (RationalForm f : {RationalForm::A, RationalForm::C}) {
      RationalShape last{400, 48, 1, 1, 4, 5, 4, f};
      RationalShape many_rows{1400, 48, 1, 1, 4, 5, 4, f};
      bad += run<float, float>(RationalDtype::f32, last, 2e-7, false, "f32");
      bad += run<float, float>(RationalDtype::f32, many_rows, 2e-7, false, "f32");
      bad += run<__nv_bfloat16, float>(RationalDtype::bf16, many_rows, 3e-2, false, "bf16");
    }
    bad += run<double, double>(RationalDtype::f64, wide, 1e-13, false, "f64");
  }
  unsetenv("KERNKIT_RATIONAL_BWD_PER_THREAD");
  if (bad == 0) std::printf("all ok\n");
  return bad == 0 ? 0 : 1;
}
