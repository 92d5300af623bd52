// log I_v(x), log K_v(x), their exponentially scaled forms, the ratio I_{v+1}/I_v and the
// logarithmic derivatives, for real order v and real argument x, in float and double.
// Scalar, header-only, host+device (KERNKIT_HD): the same code runs on CPU and CUDA.
//
//   log_iv(v, x)  = log I_v(x)            log_kv(v, x)  = log K_v(x)
//   log_ive(v, x) = log I_v(x) - |x|      log_kve(v, x) = log K_v(x) + x
//   bessel_iv_ratio(v, x) = I_{v+1}(x) / I_v(x)
//   dlog_iv(v, x) = I_v'(x) / I_v(x)      dlog_kv(v, x) = K_v'(x) / K_v(x)
//
// Precision: the double overloads work in double. The float overloads convert to double,
// compute and round once, with fewer terms in the branch-free kernels (truncation < 1e-9:
// bessel/debye_fast.hpp, series_fast.hpp, temme_fast.hpp), except on the Debye classes and K's
// quadrature classes where float arithmetic is enough (bessel/debye_float.hpp, temme_float.hpp).
//
// Method (v >= 0, x > 0; hyp = sqrt(v^2 + x^2)):
//  * hyp >= 25.5: Debye/Olver uniform expansion (DLMF 10.41) written as a series in 1/hyp
//    (bessel/debye.hpp), 18 terms at hyp = 25.5 down to 0 terms for hyp > 2.5e16. It covers
//    large order at any x and large x at any order (there it is the Hankel expansion). log I,
//    log K, the scaled forms and the ratios I_{v+1}/I_v, K_{v-1}/K_v all come from the same
//    polynomials, the ratios from the analytically differentiated expansion (DLMF 10.41.11).
//    Near the zero of the Debye exponent eta (x/v in (0.45, 0.92)) v*eta is evaluated as
//    v (z - z0) g(z) with z - z0 to ~1e-32 (bessel/eta.hpp), else it would lose ~v ulps; the
//    same for v*eta + x near its zero (x/v ~ 0.448), which the reflected log I_{-v} - x needs.
//    log_iv, log_ive, bessel_iv_ratio, dlog_iv (v >= 0), log_kv, log_kve, dlog_kv take the
//    branch-free form of this (bessel/debye_fast.hpp: fixed term count per class of hyp, own
//    log) for 1e-100 <= x, |v| <= 1e150; the CPU loops run it vectorised over blocks of such
//    inputs.
//  * hyp < 25.5, I: power series with positive terms; its prefactor (x/2)^v/Gamma(v+1) in
//    double-double where log I can be small. log_iv, log_ive, bessel_iv_ratio and dlog_iv
//    (v >= 0, x >= 1e-300) take the branch-free form (bessel/series_fast.hpp), vectorised by the
//    CPU loops like Debye's; negative orders the looped one (bessel/series.hpp).
//  * hyp < 25.5, K: at |mu| <= 1/2, Temme's series (x <= 1) or a trapezoid rule on the integral
//    of K_mu(x) e^x (x > 1, which gives log K + x directly), then the forward recurrence up to v
//    (bessel/temme.hpp). log_kv, log_kve and dlog_kv at x >= 1e-3 take the branch-free form of
//    this (bessel/temme_fast.hpp), vectorised by the CPU loops.
// Negative order: K_{-v} = K_v; I_{-n} = I_n; -1 < v < 0 in the small box: the same positive
// series; otherwise I_{-v} = I_v + (2/pi) sin(pi v) K_v combined in log space.
//
// Special values (scipy.special conventions where it defines them):
//  * NaN in v or x -> NaN.  Where I_v(x) < 0 (negative non-integer v, small x) log_iv is NaN.
//  * x = 0: log_iv = 0 (v = 0), -inf (v > 0 or negative integer v), +inf (negative non-integer v);
//    log_kv = log_kve = +inf; ratio = 0, except +inf for negative integer v (I_{n-1}/I_n);
//    dlog_iv = +inf (v > 0 or negative integer), 0 (v = 0), -inf (negative non-integer);
//    dlog_kv = -inf.
//  * x < 0: I_n(-x) = (-1)^n I_n(x) is real only for integer order: log_iv/log_ive give
//    log I_n(|x|) (-|x|) for even n and NaN for odd n or non-integer v. bessel_iv_ratio and
//    dlog_iv are odd in x for integer v (the true real values I_{n+1}(x)/I_n(x), I_n'(x)/I_n(x))
//    and NaN for non-integer v. log_kv, log_kve, dlog_kv: NaN.
//  * x = +inf (finite v): log_iv = +inf, log_ive = -inf, log_kv = log_kve = -inf, ratio = 1,
//    dlog_iv = 1, dlog_kv = -1 (x = -inf: the odd/even rules above).
//  * v = +-inf, finite x > 0: log_iv = log_ive = -inf, log_kv = log_kve = +inf,
//    ratio(+inf) = 0, dlog_iv(+inf) = +inf, dlog_kv = -inf; ratio and dlog_iv at v = -inf: NaN.
//    Both arguments infinite: NaN.
#pragma once
#include <cmath>
#include <limits>

#include "config.hpp"
#include "bessel/debye.hpp"
#include "bessel/debye_fast.hpp"
#include "bessel/debye_float.hpp"
#include "bessel/eta.hpp"
#include "bessel/logspace.hpp"
#include "bessel/series.hpp"
#include "bessel/series_fast.hpp"
#include "bessel/temme.hpp"
#include "bessel/temme_fast.hpp"
#include "bessel/temme_float.hpp"

namespace kernkit {
namespace bessel_detail {

constexpr double kBox = 25.5;  // hyp below which series / Temme are used instead of Debye

struct LogIK {
  double li = 0.0;   // log I_v(x)
  double lis = 0.0;  // log I_v(x) - x
  double ri = 0.0;   // I_{v+1}(x) / I_v(x)
  double lk = 0.0;   // log K_v(x)
  double lks = 0.0;  // log K_v(x) + x
  double sk = 0.0;   // K_{v-1}(x) / K_v(x)
  double lkm = 0.0;  // log K_v(x) - x (only with both I and K: for reflected log I_{-v} - x)
};

// Number of Debye terms so that the first omitted one, max_s |P_{n+1}(s)| / hyp^{n+1} (and the
// same for Q), is below 2e-17.
KERNKIT_INLINE int debye_terms(double hyp) {
  if (hyp >= 2000.0) {
    if (hyp >= 3.1e5) return (hyp >= 2.5e16) ? 0 : (hyp >= 1.7e8) ? 1 : 2;
    return (hyp >= 13300.0) ? 3 : 4;
  }
  if (hyp >= 115.0) return (hyp >= 650.0) ? 5 : (hyp >= 302.0) ? 6 : 8;
  if (hyp >= 44.6) return (hyp >= 64.5) ? 10 : 12;
  return (hyp >= 34.8) ? 14 : (hyp >= 29.3) ? 16 : 18;
}

// log(1+p) for the Debye correction sums (|p| < 0.006 for hyp >= 25.5); std::log1p as a fallback.
KERNKIT_INLINE double log1p_small(double p) {
  return (std::fabs(p) > 0.0075) ? std::log1p(p) : log1p_tiny(p);
}

// Debye region (hyp >= kBox), v >= 0, x > 0 finite. With z = x/v, w = v/x:
//   v eta = hyp - v asinh(w),   v eta - x = v (w/(1 + sqrt(1+w^2)) - asinh(w)),
//   log I = v eta - log(2 pi hyp)/2 + log(1 + sum P_k y^k),
//   log K = -v eta + log(pi/(2 hyp))/2 + log(1 + sum P_k (-y)^k),
//   I_{v+1}/I_v = x/(hyp+v) + (x/hyp) W/U,  K_{v-1}/K_v = x/(hyp+v) + (x/hyp) Wbar/Ubar,
// the last two from I'/I = (hyp/x) V/U, K'/K = -(hyp/x) Vbar/Ubar with V - U = (1-t^2) W:
// no cancellation even for x << v.
template <bool WI, bool WK, bool WD>
KERNKIT_INLINE void debye(double v, double x, LogIK& r) {
  double e0, e0s, loghyp, s, y, hyp, xh, xhv;
  double e0p = 0.0;  // v eta + x, only for WI && WK
  if (x >= v) {
    const double w = v / x;
    const double w2 = w * w;
    const double r1 = std::sqrt(1.0 + w2);
    // v eta - x = v f(w), f(w) = w/(1+sqrt(1+w^2)) - asinh(w) (Taylor series for small w)
    const double f = (w < 0.2) ? debye_f_taylor(w) : w / (1.0 + r1) - std::asinh(w);
    e0s = v * f;
    e0 = x + e0s;
    e0p = x + e0;
    hyp = x * r1;
    loghyp = (hyp <= 1e308) ? std::log(hyp) : std::log(x) + std::log(r1);
    s = w2 / (1.0 + w2);
    y = (1.0 / x) / r1;
    xh = 1.0 / r1;
    xhv = 1.0 / (r1 + w);
  } else {
    const double z = x / v;
    const double z2 = z * z;
    const double r1 = std::sqrt(1.0 + z2);
    if (z > kEtaZLo && z < kEtaZHi) {
      // near the zero of eta: z - z0 from the exact residual of x/v (see bessel/eta.hpp)
      const double zlo = std::fma(-z, v, x) / v;
      const double h = (z - kEtaZ0Hi) + (zlo - kEtaZ0Lo);
      e0 = v * (h * eta_g((z - 0.685) / 0.235));
    } else {
      const double w = v / x;
      const double as = (w <= 1e300) ? std::asinh(w) : kLn2 + std::log(v) - std::log(x);
      e0 = v * (r1 - as);
    }
    e0s = e0 - x;
    if (WI && WK) {
      // v eta + x: cancels near z1 (bessel/eta.hpp)
      if (z > kZetaZLo && z < kZetaZHi) {
        const double zlo = std::fma(-z, v, x) / v;
        const double h = (z - kZetaZ1Hi) + (zlo - kZetaZ1Lo);
        e0p = v * (h * zeta_g((z - 0.45) / 0.15));
      } else {
        e0p = e0 + x;
      }
    }
    hyp = v * r1;
    loghyp = (hyp <= 1e308) ? std::log(hyp) : std::log(v) + std::log(r1);
    s = 1.0 / (1.0 + z2);
    y = (1.0 / v) / r1;
    xh = z / r1;
    xhv = z / (r1 + 1.0);
  }
  double pu, pk, qu, qk;
  debye_sums<WI, WK, WD>(debye_terms(hyp), s, y, pu, pk, qu, qk);
  const double hl = 0.5 * loghyp;
  if (WI) {
    const double c = log1p_small(pu) - kHalfLog2Pi - hl;
    r.li = e0 + c;
    r.lis = e0s + c;
    if (WD) r.ri = xhv + xh * (qu / (1.0 + pu));
  }
  if (WK) {
    const double c = log1p_small(pk) + kHalfLogPiOver2 - hl;
    r.lk = c - e0;
    r.lks = c - e0s;
    if (WI) r.lkm = c - e0p;
    if (WD) r.sk = xhv + xh * (qk / (1.0 + pk));
  }
}

KERNKIT_INLINE bool in_box(double v, double x) {
  return v < kBox && x < kBox && v * v + x * x < kBox * kBox;
}

// v >= 0, 0 < x < inf. WI/WK: compute the I/K parts; WD: also the ratios.
template <bool WI, bool WK, bool WD>
KERNKIT_INLINE LogIK log_ik(double v, double x) {
  LogIK r;
  if (in_box(v, x)) {
    if (WI) {
      series_i<WD>(v, x, r.li, r.ri);
      r.lis = r.li - x;
    }
    if (WK) {
      k_temme(v, x, r.lk, r.lks, r.sk);
      r.lkm = r.lk - x;
    }
    return r;
  }
  debye<WI, WK, WD>(v, x, r);
  return r;
}

KERNKIT_INLINE double qnan() { return std::numeric_limits<double>::quiet_NaN(); }
KERNKIT_INLINE double pinf() { return std::numeric_limits<double>::infinity(); }
KERNKIT_INLINE bool is_odd_integer(double v) { return v - 2.0 * std::floor(0.5 * v) == 1.0; }

// log(|c| K_nu / I_nu) with c = (2/pi) sin(pi nu): the weight of K in I_{-nu} = I_nu + c K_nu.
KERNKIT_INLINE double reflect_logweight(const LogIK& r, double c, double x) {
  return ((r.lks - r.lis) - 2.0 * x) + std::log(std::fabs(c) * (2.0 / kPi));
}

// The class of (|v|, x) for the branch-free kernels of Q (the CPU block loop and the CUDA
// binning sort by it): 1..kDebyeFastClasses Debye (bessel/debye_fast.hpp), then in the box
// below it the series classes for I's quantities (bessel/series_fast.hpp) or the Temme classes
// for K's (bessel/temme_fast.hpp); 0 for everything else. The Debye and box domains are
// disjoint (hyp >= 25.5 and < 25.5).
constexpr int kFastClasses = kDebyeFastClasses + (kSeriesFastClasses > kTemmeFastClasses ? kSeriesFastClasses : kTemmeFastClasses);

template <int Q>
KERNKIT_INLINE_ALWAYS int box_class(double nu, double x) {  // 0 or kDebyeFastClasses + (1..)
  const int s = is_k_quantity(Q) ? temme_fast_class(nu, x) : series_fast_class(nu, x);
  return static_cast<int>(s != 0) * (kDebyeFastClasses + s);
}

template <int Q>
KERNKIT_INLINE_ALWAYS int fast_class(double nu, double x) {
  const int d = debye_fast_class(nu, x);
  return d + static_cast<int>(d == 0) * box_class<Q>(nu, x);  // never a sum
}

// The classes of the float functions (LOWP): fast_class's, and kFastClasses + (1..12) for the
// Debye classes whose float kernel applies (bessel/debye_float.hpp).
constexpr int kFastClassesLowp = kFastClasses + kDebyeFloatClasses;

// Debye class d (debye_fast_class, 0 outside) as the float functions number it: kFastClasses +
// its float class where Q has a float kernel there, else d (the CPU block loop calls it too).
template <int Q>
KERNKIT_INLINE_ALWAYS int with_float_class(int d, double nu, double x) {
  const int f = debye_float_class<Q>(d, nu, x);
  return d + static_cast<int>(f != 0) * (kFastClasses + f - d);
}

template <int Q, bool LOWP>
KERNKIT_INLINE_ALWAYS int fast_class_p(double nu, double x) {
  const int d = debye_fast_class(nu, x);
  const int c = LOWP ? with_float_class<Q>(d, nu, x) : d;
  return c + static_cast<int>(d == 0) * box_class<Q>(nu, x);  // never a sum
}

// Debye class c's kernel for Q (c = debye_fast_class(nu, x) != 0): the float kernel where the
// float functions (LOWP) have one (bessel/debye_float.hpp), else the double one.
template <int Q, bool LOWP>
KERNKIT_INLINE double debye_dispatch(int c, double nu, double x) {
  if constexpr (LOWP) {
    const int f = debye_float_class<Q>(c, nu, x);
    if (f != 0) return debye_float_dispatch<Q>(f, nu, x);
  }
  return debye_fast_dispatch<Q, LOWP>(c, nu, x);
}

// log I outside the classes of fast_class<kLogI> (also what the CPU block loop calls there).
KERNKIT_INLINE double log_iv_slow(double v, double x, bool scaled) {
  if (std::isnan(v) || std::isnan(x)) return qnan();
  if (x < 0.0) {
    if (std::isinf(v) || !is_integer(v) || is_odd_integer(v)) return qnan();
    x = -x;
  }
  if (std::isinf(v)) return std::isinf(x) ? qnan() : -pinf();
  if (x == 0.0) {
    if (v == 0.0) return 0.0;
    return (v > 0.0 || is_integer(v)) ? -pinf() : pinf();
  }
  if (std::isinf(x)) return scaled ? -pinf() : pinf();
  const double nu = std::fabs(v);
  if (v >= 0.0 || is_integer(v)) {
    const LogIK r = log_ik<true, false, false>(nu, x);
    return scaled ? r.lis : r.li;
  }
  if (v > -1.0 && in_box(nu, x)) {  // positive-term series also holds for -1 < v < 0
    double li, ri;
    series_i<false>(v, x, li, ri);
    return scaled ? li - x : li;
  }
  const LogIK r = log_ik<true, true, false>(nu, x);
  const double c = sinpi(nu);
  const double d = reflect_logweight(r, c, x);
  if (d > 0.0 && c > 0.0) {  // K term dominates: log(c K) + log1p(I/(cK)), no large-term cancellation
    const double lck = std::log(c * (2.0 / kPi)) + std::log1p(std::exp(-d));
    return scaled ? r.lkm + lck : r.lk + lck;
  }
  const double base = scaled ? r.lis : r.li;
  if (c > 0.0) return base + std::log1p(std::exp(d));
  if (d < 0.0) return base + log1mexp(d);
  return (d == 0.0) ? -pinf() : qnan();  // I_{-nu}(x) <= 0
}

// LOWP: the float functions (fewer terms in the branch-free kernels).
template <bool LOWP = false>
KERNKIT_INLINE double log_iv_d(double v, double x, bool scaled) {
  if (v >= 0.0) {  // the bulk: branch-free Debye and box series, also used in blocks
    const int c = debye_fast_class(v, x);
    if (c != 0)
      return scaled ? debye_dispatch<kLogIs, LOWP>(c, v, x) : debye_dispatch<kLogI, LOWP>(c, v, x);
    const int b = series_fast_class(v, x);
    if (b != 0)
      return series_fast_dispatch<LOWP>(b, v, x, scaled ? 1.0 : 0.0);
  }
  return log_iv_slow(v, x, scaled);
}

// log K outside the classes of fast_class<kLogK> (also what the CPU block loop calls there).
KERNKIT_INLINE double log_kv_slow(double v, double x, bool scaled) {
  if (std::isnan(v) || std::isnan(x) || x < 0.0) return qnan();
  if (std::isinf(v)) return std::isinf(x) ? qnan() : pinf();
  if (x == 0.0) return pinf();
  if (std::isinf(x)) return -pinf();
  const LogIK r = log_ik<false, true, false>(std::fabs(v), x);
  return scaled ? r.lks : r.lk;
}

template <bool LOWP = false>
KERNKIT_INLINE double log_kv_d(double v, double x, bool scaled) {
  const double nu = std::fabs(v);
  const int c = debye_fast_class(nu, x);
  if (c != 0)
    return scaled ? debye_dispatch<kLogKs, LOWP>(c, nu, x) : debye_dispatch<kLogK, LOWP>(c, nu, x);
  const int t = temme_fast_class(nu, x);
  if (t != 0) {
    if (LOWP && temme_class_quad(t)) return temme_float_dispatch(t, nu, x, scaled ? 1.0 : 0.0, 0.0);
    return temme_fast_dispatch<LOWP>(t, nu, x, scaled ? 1.0 : 0.0, 0.0);
  }
  return log_kv_slow(v, x, scaled);
}

// which = 0: I_{v+1}/I_v, which = 1: I_v'/I_v, outside the classes of fast_class<kRatioI> (also
// what the CPU block loop calls there).
KERNKIT_INLINE double iv_ratio_slow(double v, double x, int which) {
  if (std::isnan(v) || std::isnan(x)) return qnan();
  double sign = 1.0;
  if (x < 0.0) {
    if (std::isinf(v) || !is_integer(v)) return qnan();
    x = -x;
    sign = -1.0;
  }
  if (std::isinf(v)) {
    if (std::isinf(x) || v < 0.0) return qnan();
    return (which == 0) ? 0.0 : pinf();
  }
  if (x == 0.0) {
    if (which == 0) return (v < 0.0 && is_integer(v)) ? pinf() : 0.0;
    if (v == 0.0) return 0.0;
    return (v > 0.0 || is_integer(v)) ? pinf() : -pinf();
  }
  if (std::isinf(x)) return sign;
  const double nu = std::fabs(v);
  if (v >= 0.0) {
    const LogIK r = log_ik<true, false, true>(nu, x);
    return sign * ((which == 0) ? r.ri : v / x + r.ri);
  }
  if (is_integer(v)) {  // I_{-n} = I_n: I_{1-n}/I_{-n} = I_{n-1}/I_n = 2n/x + I_{n+1}/I_n
    const LogIK r = log_ik<true, false, true>(nu, x);
    return sign * ((which == 0) ? 2.0 * nu / x + r.ri : nu / x + r.ri);
  }
  if (v > -1.0 && in_box(nu, x)) {
    // -1 < v < 0: the series has positive terms; the reflection below would cancel for small x
    // (I_{v+1} = I_{nu-1} - c K_{nu-1} with both terms ~ x^{v})
    double li, ri;
    series_i<true>(v, x, li, ri);
    return sign * ((which == 0) ? ri : v / x + ri);
  }
  // I_{-nu} = I_nu + c K_nu, I_{1-nu} = I_{nu-1} - c K_{nu-1}, I_{-nu}' = I_nu' + c K_nu'.
  // Divide through by I_nu (or by c K_nu when that term dominates).
  const LogIK r = log_ik<true, true, true>(nu, x);
  const double c = sinpi(nu);
  const double d = reflect_logweight(r, c, x);
  double a1, a2, b;  // numerator = a1/x + a2 + e * b, relative to I_nu
  if (which == 0) {
    a1 = 2.0 * nu; a2 = r.ri; b = -r.sk;             // I_{nu-1}/I_nu and -K_{nu-1}/K_nu
  } else {
    a1 = nu; a2 = r.ri; b = -(nu / x + r.sk);        // I_nu'/I_nu and K_nu'/K_nu
  }
  const double sc = (c > 0.0) ? 1.0 : -1.0;
  if (d <= 0.0) {
    const double e = sc * std::exp(d);
    return (a1 / x + a2 + e * b) / (1.0 + e);
  }
  const double ie = sc * std::exp(-d);
  return ((a1 * ie) / x + a2 * ie + b) / (ie + 1.0);
}

// K_v'/K_v outside the classes of fast_class<kDlogK> (also what the CPU block loop calls there).
KERNKIT_INLINE double dlog_kv_slow(double v, double x) {
  if (std::isnan(v) || std::isnan(x) || x < 0.0) return qnan();
  if (std::isinf(v)) return std::isinf(x) ? qnan() : -pinf();
  if (x == 0.0) return -pinf();
  if (std::isinf(x)) return -1.0;
  const double nu = std::fabs(v);
  const LogIK r = log_ik<false, true, true>(nu, x);
  return -(nu / x + r.sk);  // K_v' = -K_{v-1} - (v/x) K_v
}

// The bulk (v >= 0 for I, any v for K; Debye and the box's series / Temme classes): the
// branch-free kernels, also used in blocks.
template <bool LOWP = false>
KERNKIT_INLINE double iv_ratio_d(double v, double x, int which) {
  if (v >= 0.0) {
    const int c = debye_fast_class(v, x);
    if (c != 0)
      return which == 0 ? debye_dispatch<kRatioI, LOWP>(c, v, x) : debye_dispatch<kDlogI, LOWP>(c, v, x);
    const int b = series_fast_class(v, x);
    if (b != 0)
      return series_ratio_dispatch<LOWP>(b, v, x, static_cast<double>(which));
  }
  return iv_ratio_slow(v, x, which);
}

template <bool LOWP = false>
KERNKIT_INLINE double dlog_kv_d(double v, double x) {
  const double nu = std::fabs(v);
  const int c = debye_fast_class(nu, x);
  if (c != 0) return debye_dispatch<kDlogK, LOWP>(c, nu, x);
  const int t = temme_fast_class(nu, x);
  if (t != 0) {
    if (LOWP && temme_class_quad(t)) return temme_float_dispatch(t, nu, x, 0.0, 1.0);
    return temme_fast_dispatch<LOWP>(t, nu, x, 0.0, 1.0);
  }
  return dlog_kv_slow(v, x);
}

template <class T>
struct is_fp {
  static constexpr bool value = false;
};
template <>
struct is_fp<float> {
  static constexpr bool value = true;
};
template <>
struct is_fp<double> {
  static constexpr bool value = true;
};

template <class T>
struct is_lowp {  // float: Debye with fewer terms (truncation < 1e-9, far below float's eps)
  static constexpr bool value = sizeof(T) < sizeof(double);
};

}  // namespace bessel_detail

// float: computed in double (the Debye part with fewer terms, see above), rounded once.
template <class T>
KERNKIT_INLINE T log_iv(T v, T x) {
  static_assert(bessel_detail::is_fp<T>::value, "log_iv: T must be float or double");
  return static_cast<T>(bessel_detail::log_iv_d<bessel_detail::is_lowp<T>::value>(static_cast<double>(v), static_cast<double>(x), false));
}
template <class T>
KERNKIT_INLINE T log_ive(T v, T x) {
  static_assert(bessel_detail::is_fp<T>::value, "log_ive: T must be float or double");
  return static_cast<T>(bessel_detail::log_iv_d<bessel_detail::is_lowp<T>::value>(static_cast<double>(v), static_cast<double>(x), true));
}
template <class T>
KERNKIT_INLINE T log_kv(T v, T x) {
  static_assert(bessel_detail::is_fp<T>::value, "log_kv: T must be float or double");
  return static_cast<T>(bessel_detail::log_kv_d<bessel_detail::is_lowp<T>::value>(static_cast<double>(v), static_cast<double>(x), false));
}
template <class T>
KERNKIT_INLINE T log_kve(T v, T x) {
  static_assert(bessel_detail::is_fp<T>::value, "log_kve: T must be float or double");
  return static_cast<T>(bessel_detail::log_kv_d<bessel_detail::is_lowp<T>::value>(static_cast<double>(v), static_cast<double>(x), true));
}
template <class T>
KERNKIT_INLINE T bessel_iv_ratio(T v, T x) {
  static_assert(bessel_detail::is_fp<T>::value, "bessel_iv_ratio: T must be float or double");
  return static_cast<T>(bessel_detail::iv_ratio_d<bessel_detail::is_lowp<T>::value>(static_cast<double>(v), static_cast<double>(x), 0));
}
template <class T>
KERNKIT_INLINE T dlog_iv(T v, T x) {
  static_assert(bessel_detail::is_fp<T>::value, "dlog_iv: T must be float or double");
  return static_cast<T>(bessel_detail::iv_ratio_d<bessel_detail::is_lowp<T>::value>(static_cast<double>(v), static_cast<double>(x), 1));
}
template <class T>
KERNKIT_INLINE T dlog_kv(T v, T x) {
  static_assert(bessel_detail::is_fp<T>::value, "dlog_kv: T must be float or double");
  return static_cast<T>(bessel_detail::dlog_kv_d<bessel_detail::is_lowp<T>::value>(static_cast<double>(v), static_cast<double>(x)));
}

}  // namespace kernkit
