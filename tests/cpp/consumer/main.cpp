// Calls kernkit both ways: header-only scalar math and the array driver in the library.
// Prints the values; exits non-zero if the two ways disagree or a known value is off.
#include <kernkit/kernkit.hpp>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

int main() {
  const std::vector<double> v = {0.0, 0.5, 10.0, 1000.0};
  const std::vector<double> x = {1.0, 2.0, 30.0, 5000.0};
  std::vector<double> out(v.size());
  kernkit::special<double>(kernkit::SpecialFn::log_iv, static_cast<std::int64_t>(v.size()),
                           v.data(), 1, x.data(), 1, out.data(), 1);
  int bad = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double scalar = kernkit::log_iv(v[i], x[i]);
    std::printf("log_iv(%g, %g) = %.17g (library %.17g)\n", v[i], x[i], scalar, out[i]);
    if (!(scalar == out[i])) ++bad;
  }
  // I_{1/2}(x) = sqrt(2/(pi x)) sinh(x): an exact closed form to check against.
  const double closed = std::log(std::sqrt(2.0 / (3.14159265358979323846 * 2.0)) * std::sinh(2.0));
  if (std::fabs(out[1] - closed) > 1e-14 * std::fabs(closed)) ++bad;
  // A Toeplitz product by FFT (n = 100 > the direct-path size) against the direct sum.
  {
    const std::int64_t n = 100, k = 3;
    std::vector<double> c(n), r(n), X(n * k), Y(n * k);
    for (std::int64_t i = 0; i < n; ++i) {
      c[i] = std::cos(0.3 * i);
      r[i] = i == 0 ? c[0] : std::sin(0.7 * i);
    }
    for (std::int64_t i = 0; i < n * k; ++i) X[i] = std::cos(1.1 * i);
    kernkit::toeplitz::matmul<double>(c.data(), 0, r.data(), 0, false, n, X.data(), 1, k, 0, k, 1,
                                      Y.data());
    double err = 0.0;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t q = 0; q < k; ++q) {
        double s = 0.0;
        for (std::int64_t j = 0; j < n; ++j) s += (j <= i ? c[i - j] : r[j - i]) * X[j * k + q];
        err = std::fmax(err, std::fabs(s - Y[i * k + q]));
      }
    std::printf("toeplitz max error %.3g (fft length %lld)\n", err,
                static_cast<long long>(kernkit::toeplitz::fft_length(n)));
    if (!(err < 1e-12)) ++bad;
  }
  // Hashed attention from C++: 3 tokens, 2-bit codes (bit set = +1), c = 3, values 1, 2, 4.
  // h = (+,+), (-,+), (+,+): weights h_i.h_j + 3 for query 0 are 5, 3, 5 -> (5 + 6 + 20) / 13.
  const std::vector<std::uint8_t> codes = {3, 2, 3};
  const std::vector<float> vals = {1.0f, 2.0f, 4.0f};
  std::vector<float> att(3);
  kernkit::hashattn::attention<float>(codes.data(), codes.data(), 1, 2, vals.data(), att.data(), 1,
                                      3, 3, 1, 3.0, false, kernkit::hashattn::Mode::consistent);
  std::printf("hashed attention: %g %g %g\n", att[0], att[1], att[2]);
  if (kernkit::hash_code_dot(codes[0], codes[1], 2) != 0 || kernkit::hash_code_dot(3, 3, 2) != 2) ++bad;
  if (std::fabs(att[0] - 31.0f / 13.0f) > 1e-6f) ++bad;
  // vMF row statistics on rows padded to a stride of 4: x = (0.6, 0.8, 0), mu = (1, 0, 0).
  {
    const std::vector<double> xs = {0.6, 0.8, 0.0, -1.0, 0.0, 0.0, 1.0, -1.0};
    const std::vector<double> mu = {1.0, 0.0, 0.0};
    double n2[2], dot[2], d2[2];
    kernkit::vmf::row_stats(2, 3, xs.data(), 4, mu.data(), n2, dot, d2);
    std::printf("vmf row stats: %g %g %g | %g %g %g\n", n2[0], dot[0], d2[0], n2[1], dot[1], d2[1]);
    if (std::fabs(n2[0] - 1.0) > 1e-15 || std::fabs(dot[0] - 0.6) > 1e-15 ||
        std::fabs(d2[0] - 0.8) > 1e-15 || n2[1] != 1.0 || dot[1] != 0.0 || d2[1] != 2.0)
      ++bad;
    bool threw = false;
    try {
      kernkit::vmf::row_stats(2, 3, xs.data(), 2, mu.data(), n2, dot, d2);  // stride < row length
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    if (!threw) ++bad;
    // A_3(kappa) = coth(kappa) - 1/kappa in closed form; the kappa MLE inverts it (below the
    // large-kappa threshold 60 of p = 3 no expansion coefficient is read).
    const double c1[1] = {1.0};
    const kernkit::VmfAU a = kernkit::vmf_a_u_da(3, 2.5, 60.0, c1, 1);
    const double exact = 1.0 / std::tanh(2.5) - 1.0 / 2.5;
    const double k = kernkit::vmf_kappa_newton(3, a.A, a.u, 60.0, c1, 1);
    std::printf("vmf A_3(2.5) %.17g (exact %.17g), kappa %.17g\n", a.A, exact, k);
    if (std::fabs(a.A - exact) > 4e-16 || std::fabs(k - 2.5) > 1e-14) ++bad;
  }
  std::printf("version %s, simd %s, threads %d\n", kernkit::version().c_str(),
              kernkit::simd_level().c_str(), kernkit::get_num_threads());
  return bad;
}
