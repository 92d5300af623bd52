// Branch-free log, exp, sinh(u)/u, sin(y)/y and exact product for the vectorised kernels
// (bessel/debye_fast.hpp, series_fast.hpp, temme_fast.hpp) and the K quadrature
// (bessel/temme.hpp). Only +, -, *, / and integer bit operations (mul_err: an FMA where there
// is one, exact either way): no table and no libm call, so GCC vectorises a loop that calls
// them, and the result is bitwise the same scalar or vector, on every x86-64 level (the build
// uses -ffp-contract=off). Arguments as stated per function; the callers guarantee them.
//
// log, method: x = 2^k m with m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact), s = f / (2 + f), so
//   log m = 2 atanh(s) = 2 s + s z R(z),  z = s^2 <= 0.0295,  and 2 s = f - s f, hence
//   log m = f - s (f - z R(z)),
// where the exact leading f keeps the rounding error near 1/2 ulp. R is a degree-6 Chebyshev
// fit of (2 atanh(s) - 2 s)/(s z) on z in [0, 0.0295] (mpmath.chebyfit at 40 digits, scratch
// script; max error 3.1e-16, which enters log m scaled by z s: < 1e-18 relative).
// log 2 = kLn2Hi + kLn2Lo with kLn2Hi's low 21 bits zero, so k * kLn2Hi is exact.
// Measured: <= 1.03 ulp (about 0.5 typical) against a correctly rounded log.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../config.hpp"

namespace kernkit {
namespace bessel_detail {

constexpr double kLn2Hi = 0.6931471803691238;
constexpr double kLn2Lo = 1.9082149292705877e-10;

// The bits of x as a U of the same size (U = std::uint64_t for double, std::uint32_t for float),
// or back.
template <class U, class T>
KERNKIT_INLINE U bits_as(T x) {
  static_assert(sizeof(U) == sizeof(T), "bits_as: the same size");
  U u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
KERNKIT_INLINE std::uint64_t f64_bits(double x) { return bits_as<std::uint64_t>(x); }
KERNKIT_INLINE double f64_from_bits(std::uint64_t u) { return bits_as<double>(u); }

// The shared reduction of log_pos / log_pos_parts: x = 2^k (1 + f), s = f / (2 + f),
// and r(z) with log(1 + f) = f - s (f - z r), z = s^2.
struct LogReduced {
  double k, f, s, zr;
};
KERNKIT_INLINE LogReduced log_reduce(double x) {
  // shift so that the exponent field of t is that of x * sqrt(2)
  const std::uint64_t t = f64_bits(x) + 0x00095F619980C433ull;  // 0x3FF0... - bits(sqrt(1/2))
  const std::uint64_t e = t >> 52;                                // biased k, 1..2046
  const double m = f64_from_bits((t & 0x000FFFFFFFFFFFFFull) + 0x3FE6A09E667F3BCDull);
  // k as a double without an int64 -> double conversion (AVX2 has none): 2^52 + e - (2^52 + 1023)
  const double k = f64_from_bits(0x4330000000000000ull | e) - 4503599627371519.0;
  const double f = m - 1.0;
  const double s = f / (2.0 + f);
  const double z = s * s;
  const double r = (((((0.14616449685043406 * z + 0.15331721600556042) * z + 0.18182889125261723) * z +
                      0.2222221113479508) * z + 0.28571428625975487) * z + 0.39999999999899505) * z +
                   0.666666666666667;
  return {k, f, s, z * r};
}

// log(x) for normal 0 < x < inf.
KERNKIT_INLINE double log_pos(double x) {
  const LogReduced q = log_reduce(x);
  const double lm = q.f - q.s * (q.f - q.zr);
  return q.k * kLn2Hi + (lm + q.k * kLn2Lo);
}

// log(x) = a + b + c for normal 0 < x < inf with a = k log2_hi and b = m - 1 exact and |c| small
// (error ~1e-17 absolute at most): for sums where log(x) cancels against another large term.
KERNKIT_INLINE void log_pos_parts(double x, double& a, double& b, double& c) {
  const LogReduced q = log_reduce(x);
  a = q.k * kLn2Hi;
  b = q.f;
  c = q.k * kLn2Lo - q.s * (q.f - q.zr);
}

// exp(x) for -708 <= x <= 709 (callers clamp). x = k log 2 + r, |r| <= log(2)/2, with k from
// the 1.5 * 2^52 rounding trick (its low mantissa bits are k, used again for 2^k); exp(r) by its
// Taylor polynomial of degree 13 (truncation 4e-18 relative). Measured <= 1 ulp.
KERNKIT_INLINE double exp_clamped(double x) {
  constexpr double kShift = 6755399441055744.0;  // 1.5 * 2^52
  const double t = x * 1.4426950408889634 + kShift;
  const double k = t - kShift;
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;
  const double q = (((((((((((1.6059043836821613e-10) * r + 2.08767569878681e-09) * r + 2.505210838544172e-08) * r + 2.755731922398589e-07) * r + 2.7557319223985893e-06) * r + 2.48015873015873e-05) * r + 0.0001984126984126984) * r + 0.001388888888888889) * r + 0.008333333333333333) * r + 0.041666666666666664) * r + 0.16666666666666666) * r + 0.5;
  const double er = 1.0 + (r + (r * r) * q);
  // 2^k: k + 1023 into the exponent field (bits(t) = bits(kShift) + k)
  const double scale = f64_from_bits((f64_bits(t) + (1023ull - 0x4338000000000000ull)) << 52);
  return er * scale;
}

// sinh(u)/u for s = u^2, |u| <= 3.8: Taylor series to u^30 (first omitted term < 1e-19
// relative), ~1 ulp; no cancellation at small u, unlike (e^u - e^-u)/(2u).
KERNKIT_INLINE double sinhc(double s) {
  return 1.0 + s * (0.16666666666666666 + s * (0.008333333333333333 + s * (0.0001984126984126984 +
         s * (2.7557319223985893e-06 + s * (2.505210838544172e-08 + s * (1.6059043836821613e-10 +
         s * (7.647163731819816e-13 + s * (2.8114572543455206e-15 + s * (8.22063524662433e-18 +
         s * (1.9572941063391263e-20 + s * (3.8681701706306835e-23 + s * (6.446950284384474e-26 +
         s * (9.183689863795546e-29 + s * (1.1309962886447718e-31 + s * 1.2161250415535181e-34))))))))))))));
}

// sin(y)/y for s = y^2, |y| <= pi/2: Taylor series to y^22 (first omitted term < 1e-20
// relative; the terms alternate but sin(y)/y >= 0.63, so nothing cancels).
KERNKIT_INLINE double sinc_sq(double s) {
  return 1.0 + s * (-0.16666666666666666 + s * (0.008333333333333333 + s * (-0.0001984126984126984 +
         s * (2.7557319223985893e-06 + s * (-2.505210838544172e-08 + s * (1.6059043836821613e-10 +
         s * (-7.647163731819816e-13 + s * (2.8114572543455206e-15 + s * (-8.22063524662433e-18 +
         s * (1.9572941063391263e-20 + s * -3.868170170630684e-23))))))))));
}

// Exact a*b = p + e without FMA (Dekker's product with Veltkamp's split; |a|, |b| < 1e300).
KERNKIT_INLINE void two_prod(double a, double b, double& p, double& e) {
  p = a * b;
  const double ca = 134217729.0 * a, cb = 134217729.0 * b;
  const double ah = ca - (ca - a), al = a - ah;
  const double bh = cb - (cb - b), bl = b - bh;
  e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

// The rounding error a*b - p of p = a*b (exact; |a|, |b| < 1e300 and no underflow in the error):
// the FMA where the target has one, else Dekker's product. Both are exact, so the bits do not
// depend on the instruction set, and both vectorise (std::fma without FMA hardware is a call).
KERNKIT_INLINE double mul_err(double a, double b, double p) {
#if defined(__CUDA_ARCH__) || defined(__FMA__)
  return std::fma(a, b, -p);
#else
  double q, e;
  two_prod(a, b, q, e);  // q == p
  (void)p;
  return e;
#endif
}

// c - a*b for a residual that is representable (a = c/b rounded, or c = a*b rounded): exactly
// what std::fma(-a, b, c) gives, as c - a*b rounded cancels exactly (Sterbenz).
KERNKIT_INLINE double fms_exact(double a, double b, double c) {
  const double p = a * b;
  return (c - p) - mul_err(a, b, p);
}

// The same two in float (Dekker's split by 2^12 + 1): for the float kernels.
KERNKIT_INLINE float mul_err_f(float a, float b, float p) {
#if defined(__CUDA_ARCH__) || defined(__FMA__)
  return std::fma(a, b, -p);
#else
  const float ca = 4097.0f * a, cb = 4097.0f * b;
  const float ah = ca - (ca - a), al = a - ah;
  const float bh = cb - (cb - b), bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
#endif
}

KERNKIT_INLINE float fms_exact_f(float a, float b, float c) {
  const float p = a * b;
  return (c - p) - mul_err_f(a, b, p);
}

}  // namespace bessel_detail
}  // namespace kernkit
