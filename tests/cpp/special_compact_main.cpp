// The compact kernels that the CUDA build calls (one instantiation per quantity, term counts and
// kinds at run time: debye_fast_compact, series_fast_compact, series_ratio_compact,
// temme_fast_compact) against the per-class instantiations that the CPU calls (the *_visit
// maps), bit for bit, on random points of every class of every quantity, float counts (LOWP) and
// double, and the float kernels of the float32 functions (debye_float_compact). Built without FMA
// contraction (tests/python/test_special.py), so the same operations must give the same bits.
// Exits non-zero on a mismatch or a class no point reached.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernkit/math/log_bessel.hpp"

namespace bd = kernkit::bessel_detail;

static bool same(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0 || (std::isnan(a) && std::isnan(b)); }

template <int Q, bool LOWP>
static int check(const std::vector<double>& vs, const std::vector<double>& xs) {
  std::vector<long> hits(bd::kFastClasses + 1, 0);
  int bad = 0;
  const double sc = (Q == bd::kLogIs || Q == bd::kLogKs) ? 1.0 : 0.0;
  for (std::size_t i = 0; i < vs.size(); ++i) {
    const double v = vs[i], x = xs[i];
    const int c = bd::fast_class<Q>(v, x);
    if (c == 0) continue;
    ++hits[c];
    double got, want;
    if (c <= bd::kDebyeFastClasses) {
      const double hyp = std::sqrt(v * v + x * x);
      got = bd::debye_fast_compact<Q, LOWP>(c, v, x, hyp);
      want = bd::debye_visit<Q, LOWP>(c, bd::DebyeFastScalar<Q>{v, x, hyp});
    } else if (bd::is_k_quantity(Q)) {
      const int t = c - bd::kDebyeFastClasses;
      const double dl = (Q == bd::kDlogK) ? 1.0 : 0.0;
      got = bd::temme_fast_compact<LOWP>(t, v, x, sc, dl);
      want = bd::temme_fast_visit<LOWP>(t, bd::TemmeFastScalar{v, x, sc, dl});
    } else if (Q == bd::kRatioI || Q == bd::kDlogI) {
      const int t = c - bd::kDebyeFastClasses;
      const double dl = (Q == bd::kDlogI) ? 1.0 : 0.0;
      got = bd::series_ratio_compact<LOWP>(t, v, x, dl);
      want = bd::series_ratio_visit<LOWP>(t, bd::SeriesRatioScalar{v, x, dl});
    } else {
      const int t = c - bd::kDebyeFastClasses;
      got = bd::series_fast_compact<LOWP>(t, v, x, sc);
      want = bd::series_fast_visit<LOWP>(t, bd::SeriesFastScalar{v, x, sc});
    }
    if (!same(got, want) && bad++ < 5)
      std::printf("Q %d LOWP %d class %d v %.17g x %.17g: compact %.17g, per class %.17g\n", Q, LOWP, c, v, x,
                  got, want);
  }
  const int nbox = bd::is_k_quantity(Q) ? bd::kTemmeFastClasses : bd::kSeriesFastClasses;
  for (int c = 1; c <= bd::kDebyeFastClasses + nbox; ++c)
    if (hits[c] == 0 && bad++ < 10) std::printf("Q %d LOWP %d: no point in class %d\n", Q, LOWP, c);
  return bad;
}

// The float kernels (bessel/debye_float.hpp) of the float32 functions: debye_float_compact against
// debye_float_visit on the float classes (logs: kind F for all but log K e^x, kind G below
// x = 0.3 v; ratios: every kind, classes 1..6).
template <int Q>
static int check_float(const std::vector<double>& vs, const std::vector<double>& xs) {
  std::vector<long> hits(bd::kDebyeFloatClasses + 1, 0);
  int bad = 0;
  for (std::size_t i = 0; i < vs.size(); ++i) {
    const float fv = static_cast<float>(vs[i]), fx = static_cast<float>(xs[i]);
    const int c = bd::debye_float_class<Q>(bd::debye_fast_class(fv, fx), fv, fx);
    if (c == 0) continue;
    ++hits[c];
    const float hyp = std::sqrt(fv * fv + fx * fx);
    const float got = bd::debye_float_compact<Q>(c, fv, fx, hyp);
    const float want = bd::debye_float_visit(c, bd::DebyeFloatScalar<Q>{fv, fx, hyp});
    if (std::memcmp(&got, &want, sizeof got) != 0 && bad++ < 5)
      std::printf("float Q %d class %d v %.9g x %.9g: compact %.9g, per class %.9g\n", Q, c, fv, fx, got, want);
  }
  for (int c = (Q == bd::kLogKs ? 7 : 1); c <= (Q >= bd::kRatioI ? 6 : bd::kDebyeFloatClasses); ++c)
    if (hits[c] == 0 && bad++ < 10) std::printf("float Q %d: no point in class %d\n", Q, c);
  return bad;
}

template <bool LOWP>
static int check_all(const std::vector<double>& v, const std::vector<double>& x) {
  return check<bd::kLogI, LOWP>(v, x) + check<bd::kLogIs, LOWP>(v, x) + check<bd::kLogK, LOWP>(v, x) +
         check<bd::kLogKs, LOWP>(v, x) + check<bd::kRatioI, LOWP>(v, x) + check<bd::kDlogI, LOWP>(v, x) +
         check<bd::kDlogK, LOWP>(v, x);
}

int main() {
  std::mt19937_64 rng(12345);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> v, x;
  for (int i = 0; i < 200000; ++i) {
    if (i % 2 == 0) {  // Debye: hyp log-uniform in [25.5, 1e6], x/v log-uniform in [1e-3, 1e3]
      const double hyp = 25.5 * std::exp(u(rng) * std::log(1e6 / 25.5));
      const double a = std::atan(std::exp((2.0 * u(rng) - 1.0) * std::log(1e3)));
      v.push_back(hyp * std::cos(a));
      x.push_back(hyp * std::sin(a));
    } else {  // the box: v in [0, 25.5), x log-uniform in [1e-5, 25.5)
      v.push_back(25.5 * u(rng));
      x.push_back(25.5 * std::exp(u(rng) * std::log(1e-5)));
    }
  }
  const int bad = check_all<false>(v, x) + check_all<true>(v, x) + check_float<bd::kLogI>(v, x) +
                  check_float<bd::kLogIs>(v, x) + check_float<bd::kLogK>(v, x) + check_float<bd::kLogKs>(v, x) +
                  check_float<bd::kRatioI>(v, x) + check_float<bd::kDlogI>(v, x) + check_float<bd::kDlogK>(v, x);
  if (bad != 0) {
    std::printf("%d mismatches or empty classes\n", bad);
    return 1;
  }
  std::printf("all ok\n");
  return 0;
}
