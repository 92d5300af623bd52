// Group-rational activation loops over blocks of contiguous elements that share one numerator
// and one denominator group. Each intermediate is a short array and every Horner step is a loop
// over the block, so the compiler vectorizes it for any degree; runs shorter than
// detail::rational_short_run take the short-run path instead (vectors across channels).
// Compiled once per ISA (KERNKIT_ISA_NS) by CMake; the AVX2/AVX-512 variants contract a*b+c into
// FMA (CMakeLists.txt), so results are deterministic per machine but may differ in the last bits
// between ISA levels.
// All arithmetic is in double whatever the storage type T: float32 inputs and the coefficients
// (converted to double by the driver) are exact in double, y and dx are rounded once at the end
// and the coefficient gradients are double sums of double terms. In float32, Q's inner sum loses
// up to its condition number (~50 for drifted form C fits, where 0.1 + |S| nears 0.1) and put y
// and dx past 1e-6 of the float64 reference; the coefficient-gradient sums cancel terms up to
// ~30x larger than the result, so even a few float32 roundings per term reach ~1e-6 there
// (emulated: Q alone, or P and Q, in double left the denominator gradient at 1.1-1.3e-6).
#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "isa_local.hpp"
#include "kernkit/math/rational.hpp"
#include "parallel.hpp"
#include "rational_plan.hpp"

namespace kernkit::KERNKIT_ISA_NS {
namespace {

using detail::RationalPlan;
constexpr int kB = detail::rational_block;
constexpr int kL = detail::rational_lanes;

inline double sgn(double v) {
  return double(v > 0.0) - double(v < 0.0);
}

// d[j] = double(s[j]), j < len.
template <class T>
inline void widen(int len, const T* __restrict s, double* __restrict d) {
  for (int j = 0; j < len; ++j) d[j] = static_cast<double>(s[j]);
}

// p = P(x) (and dp = P'(x) when dp != nullptr).
template <class T>
inline void horner_p(int len, const T* __restrict x, const T* a, int m, T* __restrict p,
                     T* __restrict dp) {
  const T am = a[m];
  for (int j = 0; j < len; ++j) p[j] = am;
  if (dp) {
    for (int j = 0; j < len; ++j) dp[j] = T(0);
    for (int k = m - 1; k >= 0; --k) {
      const T ak = a[k];
      for (int j = 0; j < len; ++j) {
        dp[j] = dp[j] * x[j] + p[j];
        p[j] = p[j] * x[j] + ak;
      }
    }
  } else {
    for (int k = m - 1; k >= 0; --k) {
      const T ak = a[k];
      for (int j = 0; j < len; ++j) p[j] = p[j] * x[j] + ak;
    }
  }
}

// q = Q(x); with dq != nullptr also dq = dQ/dx and (forms B, C) w = sign of the inner sum.
// For form A, c holds |b_1|..|b_n| and t receives |x|.
template <class T, RationalForm F>
inline void horner_q(int len, const T* __restrict x, const T* c, int n, T* __restrict q,
                     T* __restrict dq, T* __restrict w, T* __restrict t) {
  if (F == RationalForm::A) {
    for (int j = 0; j < len; ++j) t[j] = std::abs(x[j]);
    if (n == 0) {
      for (int j = 0; j < len; ++j) q[j] = T(1);
      if (dq)
        for (int j = 0; j < len; ++j) dq[j] = T(0);
      return;
    }
    const T cn = c[n - 1];
    for (int j = 0; j < len; ++j) q[j] = cn;  // running s(t)
    if (dq) {
      for (int j = 0; j < len; ++j) dq[j] = T(0);
      for (int k = n - 1; k >= 1; --k) {
        const T ck = c[k - 1];
        for (int j = 0; j < len; ++j) {
          dq[j] = dq[j] * t[j] + q[j];
          q[j] = q[j] * t[j] + ck;
        }
      }
      for (int j = 0; j < len; ++j) {
        dq[j] = sgn(x[j]) * (q[j] + t[j] * dq[j]);
        q[j] = T(1) + t[j] * q[j];
      }
    } else {
      for (int k = n - 1; k >= 1; --k) {
        const T ck = c[k - 1];
        for (int j = 0; j < len; ++j) q[j] = q[j] * t[j] + ck;
      }
      for (int j = 0; j < len; ++j) q[j] = T(1) + t[j] * q[j];
    }
    return;
  }
  if (F == RationalForm::B && n == 0) {
    for (int j = 0; j < len; ++j) q[j] = T(1);
    if (dq)
      for (int j = 0; j < len; ++j) dq[j] = w[j] = T(0);
    return;
  }
  // Forms B and C: s = inner polynomial; B: s = x * r(x), r = b_1 + ... + b_n x^(n-1).
  const int top = F == RationalForm::B ? n - 1 : n;   // index of the top stored coefficient
  const int bottom = F == RationalForm::B ? 1 : 0;    // power of the bottom stored coefficient
  const T cn = c[top];
  for (int j = 0; j < len; ++j) q[j] = cn;  // running r (B) or s (C)
  if (dq) {
    for (int j = 0; j < len; ++j) dq[j] = T(0);
    for (int k = top - 1; k >= 0; --k) {
      const T ck = c[k];
      for (int j = 0; j < len; ++j) {
        dq[j] = dq[j] * x[j] + q[j];
        q[j] = q[j] * x[j] + ck;
      }
    }
    const T q0 = F == RationalForm::B ? T(1) : T(0.1);
    for (int j = 0; j < len; ++j) {
      T s = q[j], ds = dq[j];
      if (bottom == 1) {
        ds = s + x[j] * ds;
        s = s * x[j];
      }
      const T ws = sgn(s);
      w[j] = ws;
      dq[j] = ws * ds;
      q[j] = q0 + std::abs(s);
    }
  } else {
    for (int k = top - 1; k >= 0; --k) {
      const T ck = c[k];
      for (int j = 0; j < len; ++j) q[j] = q[j] * x[j] + ck;
    }
    const T q0 = F == RationalForm::B ? T(1) : T(0.1);
    if (bottom == 1) {
      for (int j = 0; j < len; ++j) q[j] = q0 + std::abs(q[j] * x[j]);
    } else {
      for (int j = 0; j < len; ++j) q[j] = q0 + std::abs(q[j]);
    }
  }
}

template <class T, RationalForm F>
inline void fwd_block(int len, const T* __restrict xs, T* __restrict y, const double* a, int m,
                      const double* c, int n) {
  alignas(64) double x[kB], p[kB], q[kB], t[kB];
  widen(len, xs, x);
  horner_p(len, x, a, m, p, static_cast<double*>(nullptr));
  horner_q<double, F>(len, x, c, n, q, nullptr, nullptr, t);
  for (int j = 0; j < len; ++j) y[j] = static_cast<T>(p[j] / q[j]);
}

// lanes[l] += v[j] for j = l (mod kL), in a fixed order.
inline void lane_add(double* __restrict lanes, const double* __restrict v, int len) {
  double acc[kL];
  for (int l = 0; l < kL; ++l) acc[l] = lanes[l];
  int j0 = 0;
  for (; j0 + kL <= len; j0 += kL)
    for (int l = 0; l < kL; ++l) acc[l] += v[j0 + l];
  for (int l = 0; j0 + l < len; ++l) acc[l] += v[j0 + l];
  for (int l = 0; l < kL; ++l) lanes[l] = acc[l];
}

template <class T, RationalForm F>
inline void bwd_block(int len, const T* __restrict gs, const T* __restrict xs, T* __restrict dx,
                      const double* a, int m, const double* c, int n, double* lane_a,
                      double* lane_b) {
  alignas(64) double x[kB], p[kB], dp[kB], q[kB], dq[kB], w[kB], t[kB], u[kB], v[kB];
  widen(len, xs, x);
  widen(len, gs, u);
  horner_p(len, x, a, m, p, dp);
  horner_q<double, F>(len, x, c, n, q, dq, w, t);
  for (int j = 0; j < len; ++j) {
    const double y = p[j] / q[j];
    const double uj = u[j] / q[j];
    u[j] = uj;
    v[j] = -(y * uj);
    dp[j] = uj * (dp[j] - y * dq[j]);  // dx
  }
  if (dx)
    for (int j = 0; j < len; ++j) dx[j] = static_cast<T>(dp[j]);
  if (!lane_a) return;
  // dL/da_k = sum g x^k / Q
  for (int k = 0; k <= m; ++k) {
    lane_add(lane_a + k * kL, u, len);
    if (k < m)
      for (int j = 0; j < len; ++j) u[j] *= x[j];
  }
  // dL/db_k = sum (-P/Q^2) g dQ/db_k
  if (F == RationalForm::A) {
    for (int k = 1; k <= n; ++k) {
      for (int j = 0; j < len; ++j) v[j] *= t[j];
      lane_add(lane_b + (k - 1) * kL, v, len);  // sign(b_k) applied to the total
    }
  } else {
    for (int j = 0; j < len; ++j) v[j] *= w[j];
    const int k0 = F == RationalForm::B ? 1 : 0;
    const int nb = F == RationalForm::B ? n : n + 1;
    for (int i = 0; i < nb; ++i) {
      if (i > 0 || k0 == 1)
        for (int j = 0; j < len; ++j) v[j] *= x[j];
      lane_add(lane_b + i * kL, v, len);
    }
  }
}


#if defined(__GNUC__) && !defined(KERNKIT_RATIONAL_NO_VECEXT)  // (the define tests the portable path)
// ---- Register path (GCC/Clang vector extensions): one AVX-512, AVX2 or SSE register of doubles
// per vector (lane layout per ISA, so coefficient sums may differ in the last bits between ISAs);
// float32 elements are widened on load and rounded on store. Every Horner step stays in
// registers for any degree. Same operation order as the scalar header (used for the tails).
#define KK_AI inline __attribute__((always_inline))
// One native register per vector: wider generic vectors are split badly on AVX2/SSE.
#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif
typedef double V __attribute__((vector_size(kVecBytes)));  // the arithmetic type
constexpr int W = kVecBytes / 8;
// W elements of the storage type T, converted to and from V.
template <class T> struct Lanes;
template <> struct Lanes<float> { typedef float type __attribute__((vector_size(kVecBytes / 2))); };
template <> struct Lanes<double> { typedef double type __attribute__((vector_size(kVecBytes))); };

template <class V, class T>
KK_AI V bc(T v) {
  V r;
  for (int l = 0; l < static_cast<int>(sizeof(V) / sizeof(T)); ++l) r[l] = v;
  return r;
}
template <class T>
KK_AI V vld(const T* p) {
  typename Lanes<T>::type r;
  std::memcpy(&r, p, sizeof(r));
  return __builtin_convertvector(r, V);
}
#if defined(__SSE2__)
// float32 -> double in one instruction: GCC 12 lowers the generic conversion above to two
// half-width conversions and an insert (~10% of the backward's instructions at degrees (5, 4)).
template <>
KK_AI V vld<float>(const float* p) {
#if defined(__AVX512F__)
  return (V)_mm512_cvtps_pd(_mm256_loadu_ps(p));
#elif defined(__AVX__)
  return (V)_mm256_cvtps_pd(_mm_loadu_ps(p));
#else
  return (V)_mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
#endif
}
#endif
template <class T>
KK_AI void vst(T* p, V v) {
  const auto r = __builtin_convertvector(v, typename Lanes<T>::type);
  std::memcpy(p, &r, sizeof(r));
}
KK_AI V vabs(V v) {
  const V z = v - v;  // NaN lanes stay NaN below
  return v < z ? -v : v;
}
KK_AI V vsgn(V v) {
  const V one = bc<V>(1.0), mone = bc<V>(-1.0), zero = bc<V>(0.0);
  return v > zero ? one : (v < zero ? mone : zero);
}

// A coefficient as a vector: broadcast (one group for the whole vector) or per lane as is.
KK_AI V splat(double v) { return bc<V>(v); }
KK_AI V splat(V v) { return v; }

// CP: const double* (the runs path: every lane in one group) or const V* (the short-run path:
// lane l's coefficients in lane l). Same operations in the same order either way.
template <RationalForm F, class CP>
KK_AI V fwd_v(V xv, CP a, int m, CP c, int n) {
  using T = double;
  V p = splat(a[m]);
  for (int k = m - 1; k >= 0; --k) p = p * xv + a[k];
  V q;
  if (F == RationalForm::A) {
    if (n == 0) return p;  // p / 1
    const V t = vabs(xv);
    V s = splat(c[n - 1]);
    for (int k = n - 1; k >= 1; --k) s = s * t + c[k - 1];
    q = T(1) + t * s;
  } else if (F == RationalForm::B) {
    if (n == 0) return p;
    V r = splat(c[n - 1]);
    for (int k = n - 1; k >= 1; --k) r = r * xv + c[k - 1];
    q = T(1) + vabs(r * xv);
  } else {
    V s = splat(c[n]);
    for (int k = n - 1; k >= 0; --k) s = s * xv + c[k];
    q = T(0.1) + vabs(s);
  }
  return p / q;
}

template <class T, RationalForm F>
inline void fwd_block_v(int len, const T* __restrict x, T* __restrict y, const double* a, int m,
                        const double* c, int n) {
  int j = 0;
  if (m == 5 && n == 4) {  // KAT's and PAU's default: constant degrees, fully unrolled
    for (; j + W <= len; j += W) vst(y + j, fwd_v<F>(vld(x + j), a, 5, c, 4));
  } else {
    for (; j + W <= len; j += W) vst(y + j, fwd_v<F>(vld(x + j), a, m, c, n));
  }
  for (; j < len; ++j)
    y[j] = static_cast<T>(math::rational_value(F, a, m, c, n, static_cast<double>(x[j])));
}

// One vector of elements: dx, and the per-coefficient terms added to acc[0..na+nb).
template <RationalForm F, class CP>
KK_AI V bwd_v(V xv, V gv, CP a, int m, CP c, int n, V* acc) {
  using T = double;
  V p = splat(a[m]), dp = bc<V>(T(0));
  for (int k = m - 1; k >= 0; --k) {
    dp = dp * xv + p;
    p = p * xv + a[k];
  }
  V q, dq, w = bc<V>(T(1)), t = bc<V>(T(0));
  if (F == RationalForm::A) {
    t = vabs(xv);
    if (n == 0) {
      q = bc<V>(T(1));
      dq = bc<V>(T(0));
    } else {
      V s = splat(c[n - 1]), ds = bc<V>(T(0));
      for (int k = n - 1; k >= 1; --k) {
        ds = ds * t + s;
        s = s * t + c[k - 1];
      }
      q = T(1) + t * s;
      dq = vsgn(xv) * (s + t * ds);
    }
  } else if (F == RationalForm::B && n == 0) {
    q = bc<V>(T(1));
    dq = bc<V>(T(0));
  } else {
    V s, ds;
    if (F == RationalForm::B) {
      V r = splat(c[n - 1]), dr = bc<V>(T(0));
      for (int k = n - 1; k >= 1; --k) {
        dr = dr * xv + r;
        r = r * xv + c[k - 1];
      }
      s = r * xv;
      ds = r + xv * dr;
      q = T(1) + vabs(s);
    } else {
      s = splat(c[n]);
      ds = bc<V>(T(0));
      for (int k = n - 1; k >= 0; --k) {
        ds = ds * xv + s;
        s = s * xv + c[k];
      }
      q = T(0.1) + vabs(s);
    }
    w = vsgn(s);
    dq = w * ds;
  }
  const V r = T(1) / q;
  const V yv = p * r, u = gv * r;
  const V dxv = u * (dp - yv * dq);
  V pw = u;
  for (int k = 0; k <= m; ++k) {
    acc[k] += pw;
    if (k < m) pw *= xv;
  }
  V v = -(yv * u);
  V* ab = acc + (m + 1);
  if (F == RationalForm::A) {
    for (int k = 0; k < n; ++k) {
      v *= t;
      ab[k] += v;
    }
  } else if (F == RationalForm::B) {
    v *= w;
    for (int k = 0; k < n; ++k) {
      v *= xv;
      ab[k] += v;
    }
  } else {
    v *= w;
    for (int k = 0; k <= n; ++k) {
      if (k > 0) v *= xv;
      ab[k] += v;
    }
  }
  return dxv;
}

// The same for one element (tails), with the header's scalar math; terms go to lane `l`.
template <RationalForm F>
inline double bwd_s(double x, double g, const double* a, int m, const double* c, int n,
                    double* lane_terms /*[na+nb]*/) {
  using T = double;
  T p, dp, q, dq, w;
  math::rational_p_dp(a, m, x, p, dp);
  math::rational_q_dq(F, c, n, x, q, dq, w);
  const T r = T(1) / q;
  const T y = p * r, u = g * r;
  const T dxv = u * (dp - y * dq);
  T pw = u;
  for (int k = 0; k <= m; ++k) {
    lane_terms[k] = pw;
    if (k < m) pw *= x;
  }
  T v = -(y * u);
  T* tb = lane_terms + (m + 1);
  if (F == RationalForm::A) {
    const T t = std::abs(x);
    for (int k = 0; k < n; ++k) {
      v *= t;
      tb[k] = v;
    }
  } else if (F == RationalForm::B) {
    v *= w;
    for (int k = 0; k < n; ++k) {
      v *= x;
      tb[k] = v;
    }
  } else {
    v *= w;
    for (int k = 0; k <= n; ++k) {
      if (k > 0) v *= x;
      tb[k] = v;
    }
  }
  return dxv;
}

// Block of len <= kB elements of one group pair: dx, and the coefficient sums added to the
// double lanes lane_a[k*kL + l], lane_b[k*kL + l] (lane l = element index mod W).
template <class T, RationalForm F>
inline void bwd_block_v(int len, const T* __restrict g, const T* __restrict x, T* __restrict dx,
                        const double* a, int m, const double* c, int n, double* lane_a,
                        double* lane_b) {
  const int na = m + 1;
  const int nb = F == RationalForm::C ? n + 1 : n;
  V acc[2 * (math::rational_max_degree + 1) + 1];
  for (int k = 0; k < na + nb; ++k) acc[k] = bc<V>(0.0);
  int j = 0;
  if (m == 5 && n == 4) {  // the default degrees: constant, fully unrolled, acc in registers
    for (; j + W <= len; j += W) {
      const V d = bwd_v<F>(vld(x + j), vld(g + j), a, 5, c, 4, acc);
      if (dx) vst(dx + j, d);
    }
  } else {
    for (; j + W <= len; j += W) {
      const V d = bwd_v<F>(vld(x + j), vld(g + j), a, m, c, n, acc);
      if (dx) vst(dx + j, d);
    }
  }
  double terms[2 * (math::rational_max_degree + 1) + 1];
  if (!lane_a) {
    for (; j < len; ++j)
      dx[j] = static_cast<T>(bwd_s<F>(x[j], g[j], a, m, c, n, terms));
    return;
  }
  for (int l = 0; j < len; ++j, ++l) {
    const double d = bwd_s<F>(x[j], g[j], a, m, c, n, terms);
    if (dx) dx[j] = static_cast<T>(d);
    for (int k = 0; k < na + nb; ++k) acc[k][l] += terms[k];
  }
  for (int k = 0; k < na; ++k)
    for (int l = 0; l < W; ++l) lane_a[k * kL + l] += acc[k][l];
  for (int k = 0; k < nb; ++k)
    for (int l = 0; l < W; ++l) lane_b[k * kL + l] += acc[na + k][l];
}

// ---- Short-run path (plan.period > 0): runs of a few channels, channels-last mostly. A run of
// 1-15 elements leaves the vectors above mostly idle (the scalar tail) and costs a call and its
// set-up per run, so here each vector spans channels instead: the stream of `period` elements
// (whole rows) is cut into vectors at fixed positions, and tab holds, for vector v and
// coefficient k, the coefficient of each lane's own group. The math is fwd_v/bwd_v's: lane by
// lane the same operations as the runs path's vectors, so y and dx are bitwise those of a long
// run (the runs path's scalar tail may differ from both in the last bit where it fuses fewer
// multiply-adds). The coefficient gradients are summed in another (fixed) order.

// tab[v * (na + nb) + k], lane l = the coefficient k of position v * W + l of the period
// (numerator first, then denominator); lanes past the period hold 0 (finite results, unused).
inline isa_vector<V> short_table(const RationalPlan& p, const double* a, const double* c) {
  const std::int64_t nc = p.na + p.nb, nv = (p.period + W - 1) / W;
  isa_vector<V> tab(static_cast<std::size_t>(nv * nc), bc<V>(0.0));
  for (std::int64_t pos = 0; pos < p.period; ++pos) {
    const std::int64_t d = pos % p.row / p.shape.inner;  // channel
    const double* an = a + d / p.num_per * p.na;
    const double* cd = c + d / p.den_per * p.nb;
    V* t = tab.data() + pos / W * nc;
    const int l = static_cast<int>(pos % W);
    for (int k = 0; k < p.na; ++k) t[k][l] = an[k];
    for (int k = 0; k < p.nb; ++k) t[p.na + k][l] = cd[k];
  }
  return tab;
}

// cnt (< W) elements through a W-wide call: zero-padded in, cnt out. Padded lanes have x = 0 and
// g = 0, so their coefficient-gradient terms are exact zeros.
template <class T, class Fn>
KK_AI void partial_vec(int cnt, const T* x, const T* g, T* out, Fn&& fn) {
  T xb[W] = {}, gb[W] = {}, ob[W];
  std::memcpy(xb, x, cnt * sizeof(T));
  if (g) std::memcpy(gb, g, cnt * sizeof(T));
  vst(ob, fn(vld(xb), vld(gb)));
  if (out) std::memcpy(out, ob, cnt * sizeof(T));
}

// Rows [r0, r1) in stream order, period by period (the last may be cut short).
template <class T, RationalForm F, bool Fixed>
inline void fwd_short_rows(const RationalPlan& p, std::int64_t r0, std::int64_t r1, const T* x,
                           const V* tab, T* y) {
  const int m = Fixed ? 5 : p.shape.deg_num, n = Fixed ? 4 : p.shape.deg_den;
  const std::int64_t nc = p.na + p.nb;
  for (std::int64_t r = r0; r < r1; r += p.period_rows) {
    const std::int64_t len = std::min(r1 - r, p.period_rows) * p.row;
    const T* xs = x + r * p.row;
    T* ys = y + r * p.row;
    const V* t = tab;
    std::int64_t j = 0;
    for (; j + W <= len; j += W, t += nc) vst(ys + j, fwd_v<F>(vld(xs + j), t, m, t + p.na, n));
    if (j < len)
      partial_vec<T>(static_cast<int>(len - j), xs + j, nullptr, ys + j,
                     [&](V xv, V) { return fwd_v<F>(xv, t, m, t + p.na, n); });
  }
}

// Rows [r0, r1) in tiles of a few periods (~kShortTile elements), each tile vector position by
// vector position (column order): one position's coefficient-gradient sums stay in registers
// across the tile's periods and are then added to acc (nv * nc vectors, that position's lanes).
// Tiles keep the strided walk within a few pages, where the prefetchers follow it. At the end each
// lane's sums go to its groups in `partial`, positions ascending: a fixed order, and the chunk
// depends on the shape only.
constexpr std::int64_t kShortTile = 4096;

template <class T, RationalForm F, bool Fixed>
inline void bwd_short_rows(const RationalPlan& p, std::int64_t r0, std::int64_t r1, const T* g,
                           const T* x, const V* tab, T* dx, double* partial, V* acc) {
  const auto& s = p.shape;
  const int m = Fixed ? 5 : s.deg_num, n = Fixed ? 4 : s.deg_den;
  const int na = p.na, nb = p.nb, nc = na + nb;
  const std::int64_t per = p.period, nv = (per + W - 1) / W, base = r0 * p.row;
  const std::int64_t nfull = (r1 - r0) / p.period_rows;        // whole periods
  const std::int64_t rem = (r1 - r0) % p.period_rows * p.row;  // elements of the cut one
  const std::int64_t nper = nfull + (rem > 0);
  const std::int64_t tile = std::max<std::int64_t>(1, kShortTile / per);
  if (partial) std::fill(acc, acc + nv * nc, bc<V>(0.0));
  for (std::int64_t b0 = 0; b0 < nper; b0 += tile) {
    const std::int64_t b1 = std::min(nper, b0 + tile), bf = std::min(b1, nfull);
    for (std::int64_t v = 0; v < nv; ++v) {
      const V* ta = tab + v * nc;
      const V* tc = ta + na;
      const std::int64_t off = v * W;
      const int cnt = static_cast<int>(std::min<std::int64_t>(W, per - off));  // lanes in use
      V sum[2 * (math::rational_max_degree + 1) + 1];
      for (int k = 0; k < nc; ++k) sum[k] = bc<V>(0.0);
      auto cut = [&](std::int64_t e, int c) {
        partial_vec<T>(c, x + e, g + e, dx ? dx + e : nullptr,
                       [&](V xv, V gv) { return bwd_v<F>(xv, gv, ta, m, tc, n, sum); });
      };
      std::int64_t b = b0;
      if (cnt == W) {
        for (; b < bf; ++b) {
          const std::int64_t e = base + b * per + off;
          const V d = bwd_v<F>(vld(x + e), vld(g + e), ta, m, tc, n, sum);
          if (dx) vst(dx + e, d);
        }
      } else {
        for (; b < bf; ++b) cut(base + b * per + off, cnt);
      }
      if (b < b1 && rem > off) {  // the cut period
        const int c = static_cast<int>(std::min<std::int64_t>(cnt, rem - off));
        const std::int64_t e = base + b * per + off;
        if (c == W) {
          const V d = bwd_v<F>(vld(x + e), vld(g + e), ta, m, tc, n, sum);
          if (dx) vst(dx + e, d);
        } else {
          cut(e, c);
        }
      }
      if (partial)
        for (int k = 0; k < nc; ++k) acc[v * nc + k] += sum[k];
    }
  }
  if (!partial) return;
  std::fill(partial, partial + p.ncoef, 0.0);
  double* pb = partial + s.num_groups * na;
  for (std::int64_t pos = 0; pos < per; ++pos) {
    const std::int64_t d = pos % p.row / s.inner;  // channel
    const V* av = acc + pos / W * nc;
    const int l = static_cast<int>(pos % W);
    double* pa = partial + d / p.num_per * na;
    double* pd = pb + d / p.den_per * nb;
    for (int k = 0; k < na; ++k) pa[k] += av[k][l];
    for (int k = 0; k < nb; ++k) pd[k] += av[na + k][l];
  }
}

template <class T, RationalForm F>
inline void fwd_chunk_short(const RationalPlan& p, std::int64_t ch, const T* x, const V* tab,
                            T* y) {
  const std::int64_t r0 = ch * p.rows_per_chunk;
  const std::int64_t r1 = std::min(p.shape.outer, r0 + p.rows_per_chunk);
  if (p.shape.deg_num == 5 && p.shape.deg_den == 4)  // the default degrees, unrolled
    fwd_short_rows<T, F, true>(p, r0, r1, x, tab, y);
  else
    fwd_short_rows<T, F, false>(p, r0, r1, x, tab, y);
}

template <class T, RationalForm F>
inline void bwd_chunk_short(const RationalPlan& p, std::int64_t ch, const T* g, const T* x,
                            const V* tab, T* dx, double* partial, V* acc) {
  const std::int64_t r0 = ch * p.rows_per_chunk;
  const std::int64_t r1 = std::min(p.shape.outer, r0 + p.rows_per_chunk);
  if (p.shape.deg_num == 5 && p.shape.deg_den == 4)
    bwd_short_rows<T, F, true>(p, r0, r1, g, x, tab, dx, partial, acc);
  else
    bwd_short_rows<T, F, false>(p, r0, r1, g, x, tab, dx, partial, acc);
}
#define KK_SHORT_RUNS 1
#define KK_FWD_BLOCK fwd_block_v
#define KK_BWD_BLOCK bwd_block_v
#else
#define KK_SHORT_RUNS 0  // the portable path keeps the run-wise loops for every run length
#define KK_FWD_BLOCK fwd_block
#define KK_BWD_BLOCK bwd_block
#endif

template <class T, RationalForm F>
void fwd_chunk(const RationalPlan& p, std::int64_t ch, const T* x, const double* a,
               const double* c, T* y) {
  const auto& s = p.shape;
  const std::int64_t r0 = ch * p.rows_per_chunk;
  const std::int64_t r1 = std::min(s.outer, r0 + p.rows_per_chunk);
  for (std::int64_t r = r0; r < r1; ++r)
    for (std::int64_t j = 0; j < p.nseg; ++j) {
      const std::int64_t ch0 = j * p.seg_channels;
      const double* aj = a + (ch0 / p.num_per) * p.na;
      const double* cj = c + (ch0 / p.den_per) * p.nb;
      const std::int64_t base = r * p.row + j * p.seg;
      for (std::int64_t off = 0; off < p.seg; off += kB) {
        const int len = static_cast<int>(std::min<std::int64_t>(kB, p.seg - off));
        KK_FWD_BLOCK<T, F>(len, x + base + off, y + base + off, aj, s.deg_num, cj, s.deg_den);
      }
    }
}

template <class T, RationalForm F>
void bwd_chunk(const RationalPlan& p, std::int64_t ch, const T* g, const T* x, const double* a,
               const double* c, T* dx, double* partial, double* lanes) {
  const auto& s = p.shape;
  const std::int64_t r0 = ch * p.rows_per_chunk;
  const std::int64_t r1 = std::min(s.outer, r0 + p.rows_per_chunk);
  if (lanes) std::fill(lanes, lanes + p.ncoef * kL, 0.0);
  for (std::int64_t r = r0; r < r1; ++r)
    for (std::int64_t j = 0; j < p.nseg; ++j) {
      const std::int64_t ch0 = j * p.seg_channels;
      const std::int64_t gn = ch0 / p.num_per, gd = ch0 / p.den_per;
      double* la = lanes ? lanes + gn * p.na * kL : nullptr;
      double* lb = lanes ? lanes + (s.num_groups * p.na + gd * p.nb) * kL : nullptr;
      const std::int64_t base = r * p.row + j * p.seg;
      for (std::int64_t off = 0; off < p.seg; off += kB) {
        const int len = static_cast<int>(std::min<std::int64_t>(kB, p.seg - off));
        KK_BWD_BLOCK<T, F>(len, g + base + off, x + base + off, dx ? dx + base + off : nullptr,
                        a + gn * p.na, s.deg_num, c + gd * p.nb, s.deg_den, la, lb);
      }
    }
  if (!lanes) return;
  for (std::int64_t i = 0; i < p.ncoef; ++i) {
    const double* l = lanes + i * kL;
    static_assert(kL == 16, "fixed reduction tree");
    partial[i] = (((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))) +
                 (((l[8] + l[9]) + (l[10] + l[11])) + ((l[12] + l[13]) + (l[14] + l[15])));
  }
}

template <class T, RationalForm F>
void forward_form(const RationalPlan& p, const T* x, const double* a, const double* c, T* y,
                  int nt) {
#if KK_SHORT_RUNS
  if (p.period > 0) {
    const isa_vector<V> tab = short_table(p, a, c);
    detail::parallel_for_each(p.nchunks, nt, [&](std::int64_t ch) {
      fwd_chunk_short<T, F>(p, ch, x, tab.data(), y);
    });
    return;
  }
#endif
  detail::parallel_for_each(p.nchunks, nt, [&](std::int64_t ch) { fwd_chunk<T, F>(p, ch, x, a, c, y); });
}

template <class T, RationalForm F>
void backward_form(const RationalPlan& p, const T* g, const T* x, const double* a,
                   const double* c, T* dx, double* partials, bool coef, int nt) {
#if KK_SHORT_RUNS
  if (p.period > 0) {
    const isa_vector<V> tab = short_table(p, a, c);
    detail::parallel_for(p.nchunks, nt, [&](std::int64_t ch0, std::int64_t ch1) {
      isa_vector<V> acc(coef ? tab.size() : 0);  // per-position sums, reused chunk to chunk
      for (std::int64_t ch = ch0; ch < ch1; ++ch)
        bwd_chunk_short<T, F>(p, ch, g, x, tab.data(), dx,
                              coef ? partials + ch * p.ncoef : nullptr, acc.data());
    });
    return;
  }
#endif
  // Each thread's range of chunks reuses one scratch of lanes; the partials are per chunk, so
  // the result does not depend on the split.
  detail::parallel_for(p.nchunks, nt, [&](std::int64_t ch0, std::int64_t ch1) {
    isa_vector<double> lanes(coef ? static_cast<std::size_t>(p.ncoef * kL) : 0);
    double* l = coef ? lanes.data() : nullptr;
    for (std::int64_t ch = ch0; ch < ch1; ++ch)
      bwd_chunk<T, F>(p, ch, g, x, a, c, dx, coef ? partials + ch * p.ncoef : nullptr, l);
  });
}

}  // namespace

template <class T>
void rational_forward_loop(const RationalPlan& p, const T* x, const double* a, const double* c,
                           T* y, int nthreads) {
  switch (p.shape.form) {
    case RationalForm::A: return forward_form<T, RationalForm::A>(p, x, a, c, y, nthreads);
    case RationalForm::B: return forward_form<T, RationalForm::B>(p, x, a, c, y, nthreads);
    default: return forward_form<T, RationalForm::C>(p, x, a, c, y, nthreads);
  }
}

template <class T>
void rational_backward_loop(const RationalPlan& p, const T* g, const T* x, const double* a,
                            const double* c, T* dx, double* partials, bool coef, int nthreads) {
  switch (p.shape.form) {
    case RationalForm::A:
      return backward_form<T, RationalForm::A>(p, g, x, a, c, dx, partials, coef, nthreads);
    case RationalForm::B:
      return backward_form<T, RationalForm::B>(p, g, x, a, c, dx, partials, coef, nthreads);
    default:
      return backward_form<T, RationalForm::C>(p, g, x, a, c, dx, partials, coef, nthreads);
  }
}

template void rational_forward_loop<float>(const RationalPlan&, const float*, const double*,
                                           const double*, float*, int);
template void rational_forward_loop<double>(const RationalPlan&, const double*, const double*,
                                            const double*, double*, int);
template void rational_backward_loop<float>(const RationalPlan&, const float*, const float*,
                                            const double*, const double*, float*, double*, bool,
                                            int);
template void rational_backward_loop<double>(const RationalPlan&, const double*, const double*,
                                             const double*, const double*, double*, double*,
                                             bool, int);

}  // namespace kernkit::KERNKIT_ISA_NS
