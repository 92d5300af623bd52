// Runs cuda/special.cu on the host emulator (emu.hpp; the source converted by make_emu.py): each
// block sorts its tile by the class of the branch-free kernels (shared-memory counts, a warp scan
// and a permutation) and evaluates the sorted elements. Every function, float and double,
// contiguous and strided, on inputs that mix every class with the scalar path's special values,
// must give bit for bit the header's scalar function of each element (each result is computed
// alone, so the binning may change no bit), also where whole tiles fall in one region and skip
// the sort. Exits non-zero on a mismatch.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernkit/detail/special_ops.hpp"

namespace emu_cuda {
template <class T>
void special(kernkit::SpecialFn fn, std::int64_t n, const T* v, std::int64_t sv, const T* x,
             std::int64_t sx, T* out, std::int64_t so, void* stream);
}  // namespace emu_cuda

template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0 || (std::isnan(a) && std::isnan(b));
}

// uniform = 1: every element in one region (v = 5, x in [1000, 1010]: one Debye class), the
// tiles that skip the sort; 2: uniform but for the last element (the sort again).
template <class T>
int run(kernkit::SpecialFn fn, std::int64_t n, std::int64_t stride, int uniform = 0) {
  std::mt19937_64 rng(static_cast<unsigned>(fn) * 7919 + n + stride);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  const double specials[] = {0.0, -0.0, 1e-310, 1e-300, 0.5, 1.0, 25.5, 1e150, 1e300, inf, -inf, nan, -2.0, -2.5};
  std::vector<T> v(n * stride), x(n * stride), out(n * stride, T(-7)), want(n);
  for (std::int64_t i = 0; i < n; ++i) {
    const double r = u(rng);
    double a = std::exp(std::log(1e-3) + u(rng) * std::log(1e9));  // v in [1e-3, 1e6]
    double b = std::exp(std::log(1e-4) + u(rng) * std::log(1e11));  // x in [1e-4, 1e7]
    if (r < 0.3) {  // the small box below the Debye region: series / Temme classes
      a = 25.0 * u(rng);
      b = 25.0 * std::exp(std::log(1e-5) * u(rng));
    }
    if (r > 0.9) a = -a;  // negative orders (reflection, scalar path)
    if (r > 0.97) a = specials[rng() % std::size(specials)];
    if (r < 0.02) b = specials[rng() % std::size(specials)];
    if (uniform != 0 && !(uniform == 2 && i == n - 1)) {
      a = 5.0;
      b = 1000.0 + 10.0 * u(rng);
    }
    v[i * stride] = static_cast<T>(a);
    x[i * stride] = static_cast<T>(b);
  }
  for (std::int64_t i = 0; i < n; ++i)
    kernkit::detail::visit_special(fn, [&](auto op) { want[i] = op(v[i * stride], x[i * stride]); });
  emu_cuda::special<T>(fn, n, v.data(), stride, x.data(), stride, out.data(), stride, nullptr);
  int bad = 0;
  for (std::int64_t i = 0; i < n; ++i)
    if (!same_bits(out[i * stride], want[i]) && bad++ < 3)
      std::printf("fn %d %s n %lld stride %lld: element %lld (v=%.17g x=%.17g) got %.17g want %.17g\n",
                  static_cast<int>(fn), sizeof(T) == 4 ? "float" : "double", static_cast<long long>(n),
                  static_cast<long long>(stride), static_cast<long long>(i), double(v[i * stride]),
                  double(x[i * stride]), double(out[i * stride]), double(want[i]));
  for (std::int64_t i = 0; i < n * stride; ++i)  // strided: the gaps are left alone
    if (i % stride != 0 && out[i] != T(-7) && bad++ < 3) std::printf("wrote a gap at %lld\n", static_cast<long long>(i));
  return bad;
}

int main() {
  int bad = 0;
  for (int f = 0; f < static_cast<int>(kernkit::SpecialFn::count_); ++f) {
    const auto fn = static_cast<kernkit::SpecialFn>(f);
    bad += run<double>(fn, 3000, 1) + run<float>(fn, 3000, 1);  // 2 full tiles and a partial one
    bad += run<double>(fn, 777, 3) + run<float>(fn, 777, 2);
    bad += run<double>(fn, 2100, 1, 1) + run<float>(fn, 1500, 2, 1);  // tiles of one region
    bad += run<double>(fn, 2048, 1, 2) + run<float>(fn, 1024, 1, 2);  // all but one element
  }
  if (bad) {
    std::printf("%d mismatches\n", bad);
    return 1;
  }
  std::printf("all ok\n");
  return 0;
}
