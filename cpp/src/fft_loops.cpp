// FFT and Toeplitz-product kernels, compiled once per instruction set (KERNKIT_ISA_NS) from the
// plan views of fft_plan.hpp. Only raw pointers cross into this file; every helper here has
// internal linkage or lives in this ISA's namespace (see parallel.hpp).
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "fft_plan.hpp"
#include "parallel.hpp"

// The loops below never write what they read in the same pass (Stockham ping-pong; distinct
// rows in the Toeplitz pass): say so, or the compiler versions them on too many alias checks
// and runs them scalar.
// The butterflies must be inlined into the stage loops (or those loops run scalar).
#if defined(__GNUC__) || defined(__clang__)
#define KK_INLINE inline __attribute__((always_inline))
#else
#define KK_INLINE inline
#endif

#if defined(__clang__)
#define KK_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define KK_IVDEP _Pragma("GCC ivdep")
#else
#define KK_IVDEP
#endif

namespace kernkit::KERNKIT_ISA_NS {
namespace {

using fft_detail::CPlanView;
using fft_detail::RPlanView;
using i64 = std::int64_t;

// Per-thread scratch: malloc/free only (no templated container code shared between variants).
template <class T>
struct Scratch {
  T* p = nullptr;
  explicit Scratch(i64 count) {
    const std::size_t bytes = (static_cast<std::size_t>(count > 0 ? count : 1) * sizeof(T) + 63) / 64 * 64;
    p = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (!p) std::abort();
  }
  ~Scratch() { std::free(p); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

// ---- the butterflies: in-place forward DFT of P points (w = exp(-2 pi i / P)) ----------------
template <class T>
KK_INLINE void dft2(T* r, T* i) {
  const T r0 = r[0], i0 = i[0];
  r[0] = r0 + r[1]; i[0] = i0 + i[1];
  r[1] = r0 - r[1]; i[1] = i0 - i[1];
}

template <class T>
KK_INLINE void dft4(T* r, T* i) {
  const T ar0 = r[0] + r[2], ai0 = i[0] + i[2];
  const T ar1 = r[0] - r[2], ai1 = i[0] - i[2];
  const T ar2 = r[1] + r[3], ai2 = i[1] + i[3];
  const T ar3 = r[1] - r[3], ai3 = i[1] - i[3];
  r[0] = ar0 + ar2; i[0] = ai0 + ai2;
  r[2] = ar0 - ar2; i[2] = ai0 - ai2;
  // Z1 = a1 - i a3, Z3 = a1 + i a3
  r[1] = ar1 + ai3; i[1] = ai1 - ar3;
  r[3] = ar1 - ai3; i[3] = ai1 + ar3;
}

template <class T>
KK_INLINE void dft3(T* r, T* i) {
  const T s = T(0.866025403784438646763723170752936183L);  // sin(2 pi/3)
  const T tr1 = r[1] + r[2], ti1 = i[1] + i[2];
  const T tr2 = r[0] - T(0.5) * tr1, ti2 = i[0] - T(0.5) * ti1;
  const T tr3 = s * (r[1] - r[2]), ti3 = s * (i[1] - i[2]);
  r[0] = r[0] + tr1; i[0] = i[0] + ti1;
  // Z1 = t2 - i t3, Z2 = t2 + i t3
  r[1] = tr2 + ti3; i[1] = ti2 - tr3;
  r[2] = tr2 - ti3; i[2] = ti2 + tr3;
}

template <class T>
KK_INLINE void dft5(T* r, T* i) {
  const T c1 = T(0.309016994374947424102293417182819059L);   // cos(2 pi/5)
  const T c2 = T(-0.809016994374947424102293417182819059L);  // cos(4 pi/5)
  const T s1 = T(0.951056516295153572116439333379382143L);   // sin(2 pi/5)
  const T s2 = T(0.587785252292473129168705954639072769L);   // sin(4 pi/5)
  const T tr1 = r[1] + r[4], ti1 = i[1] + i[4];
  const T tr2 = r[2] + r[3], ti2 = i[2] + i[3];
  const T tr3 = r[1] - r[4], ti3 = i[1] - i[4];
  const T tr4 = r[2] - r[3], ti4 = i[2] - i[3];
  const T ar1 = r[0] + c1 * tr1 + c2 * tr2, ai1 = i[0] + c1 * ti1 + c2 * ti2;
  const T ar2 = r[0] + c2 * tr1 + c1 * tr2, ai2 = i[0] + c2 * ti1 + c1 * ti2;
  const T br1 = s1 * tr3 + s2 * tr4, bi1 = s1 * ti3 + s2 * ti4;
  const T br2 = s2 * tr3 - s1 * tr4, bi2 = s2 * ti3 - s1 * ti4;
  r[0] = r[0] + tr1 + tr2; i[0] = i[0] + ti1 + ti2;
  // Z1 = a1 - i b1, Z4 = a1 + i b1, Z2 = a2 - i b2, Z3 = a2 + i b2
  r[1] = ar1 + bi1; i[1] = ai1 - br1;
  r[4] = ar1 - bi1; i[4] = ai1 + br1;
  r[2] = ar2 + bi2; i[2] = ai2 - br2;
  r[3] = ar2 - bi2; i[3] = ai2 + br2;
}

// DFT8 = two DFT4 (even / odd points) and the twiddles w8^a, w8 = (1 - i)/sqrt 2.
template <class T>
KK_INLINE void dft8(T* r, T* i) {
  const T h = T(0.707106781186547524400844362104849039L);  // 1/sqrt 2
  T er[4] = {r[0], r[2], r[4], r[6]}, ei[4] = {i[0], i[2], i[4], i[6]};
  T orr[4] = {r[1], r[3], r[5], r[7]}, oi[4] = {i[1], i[3], i[5], i[7]};
  dft4(er, ei);
  dft4(orr, oi);
  // w8^1 (x + iy) = ((x + y) + i (y - x)) / sqrt 2
  const T o1r = h * (orr[1] + oi[1]), o1i = h * (oi[1] - orr[1]);
  // w8^2 (x + iy) = y - i x
  const T o2r = oi[2], o2i = -orr[2];
  // w8^3 (x + iy) = ((y - x) - i (x + y)) / sqrt 2
  const T o3r = h * (oi[3] - orr[3]), o3i = -h * (orr[3] + oi[3]);
  r[0] = er[0] + orr[0]; i[0] = ei[0] + oi[0];
  r[4] = er[0] - orr[0]; i[4] = ei[0] - oi[0];
  r[1] = er[1] + o1r; i[1] = ei[1] + o1i;
  r[5] = er[1] - o1r; i[5] = ei[1] - o1i;
  r[2] = er[2] + o2r; i[2] = ei[2] + o2i;
  r[6] = er[2] - o2r; i[6] = ei[2] - o2i;
  r[3] = er[3] + o3r; i[3] = ei[3] + o3i;
  r[7] = er[3] - o3r; i[7] = ei[3] - o3i;
}

// DFT9 = 3 x 3: DFT3 of x[n1 + 3 n2] over n2, the twiddles w9^(n1 k2), DFT3 over n1 into
// X[k2 + 3 k1]. One radix-9 stage instead of two radix-3 ones: half the passes over the data.
template <class T>
KK_INLINE void dft9(T* r, T* i) {
  const T c1 = T(0.766044443118978035202392650555416674L), s1 = T(0.642787609686539326322643409907263433L);
  const T c2 = T(0.173648177666930348851716626769314796L), s2 = T(0.984807753012208059366743024589523014L);
  const T c4 = T(-0.93969262078590838405410927732473147L), s4 = T(0.342020143325668733044099614682259581L);
  T ar[3][3], ai[3][3];  // [k2][n1]
  for (int n1 = 0; n1 < 3; ++n1) {
    T tr[3] = {r[n1], r[n1 + 3], r[n1 + 6]}, ti[3] = {i[n1], i[n1 + 3], i[n1 + 6]};
    dft3(tr, ti);
    for (int k2 = 0; k2 < 3; ++k2) { ar[k2][n1] = tr[k2]; ai[k2][n1] = ti[k2]; }
  }
  // w9^e (x + iy) = (x c + y s) + i (y c - x s), c - i s = exp(-2 pi i e / 9)
  const auto rot = [](T& x, T& y, T c, T s_) {
    const T xr = x * c + y * s_, yi = y * c - x * s_;
    x = xr; y = yi;
  };
  rot(ar[1][1], ai[1][1], c1, s1);
  rot(ar[2][1], ai[2][1], c2, s2);
  rot(ar[1][2], ai[1][2], c2, s2);
  rot(ar[2][2], ai[2][2], c4, s4);
  for (int k2 = 0; k2 < 3; ++k2) {
    dft3(ar[k2], ai[k2]);
    for (int k1 = 0; k1 < 3; ++k1) { r[k2 + 3 * k1] = ar[k2][k1]; i[k2 + 3 * k1] = ai[k2][k1]; }
  }
}

// DFT of an odd prime P = 7, 11, 13 from its real symmetry: with a_j = x_j + x_{P-j} and b_j = x_j
// - x_{P-j} (j = 1 .. H = (P-1)/2), X_k = A_k - i B_k and X_{P-k} = A_k + i B_k, A_k = x_0 + sum_j
// a_j cos(2 pi jk/P), B_k = sum_j b_j sin(2 pi jk/P): H^2 complex multiply-adds per half. (Without
// these radices, lengths with a factor 7, 11 or 13 took Bluestein at 2-4x pocketfft's time.)
template <int P>
struct OddRoots;  // cos and sin of 2 pi m / P, m = 1 .. (P-1)/2
template <>
struct OddRoots<7> {
  static constexpr long double c[3] = {0.623489801858733530525004884004239811L, -0.222520933956314404288902564496794759L,
                                       -0.900968867902419126236102319507445051L};
  static constexpr long double s[3] = {0.78183148246802980870844452667405775L, 0.974927912181823607018131682993931217L,
                                       0.433883739117558120475768332848358755L};
};
template <>
struct OddRoots<11> {
  static constexpr long double c[5] = {0.841253532831181168861811648919367718L, 0.415415013001886425529274149229623204L,
                                       -0.142314838273285140443792668616369669L, -0.654860733945285064056925072466293553L,
                                       -0.959492973614497389890368057066327699L};
  static constexpr long double s[5] = {0.540640817455597582107635954318691695L, 0.90963199535451837141171538307902846L,
                                       0.989821441880932732376092037776718787L, 0.75574957435425828377403584397234442L,
                                       0.281732556841429697711417915346616899L};
};
template <>
struct OddRoots<13> {
  static constexpr long double c[6] = {0.885456025653209895900375522015098879L, 0.568064746731155802511807559127516625L,
                                       0.120536680255323053349067687452543582L, -0.354604887042535625969637892600018474L,
                                       -0.748510748171101098634630599701351384L, -0.970941817426052027156982276293789227L};
  static constexpr long double s[6] = {0.464723172043768545656015335133104778L, 0.822983865893656394579617423439381991L,
                                       0.992708874098053992800751649492520179L, 0.935016242685414823439784599837830729L,
                                       0.66312265824079520237678549266676628L, 0.239315664287557767148753726260211895L};
};

template <int P, class T>
KK_INLINE void dft_odd(T* r, T* i) {
  constexpr int H = (P - 1) / 2;
  T ar[H], ai[H], br[H], bi[H];
  T r0 = r[0], i0 = i[0];
  for (int j = 0; j < H; ++j) {
    ar[j] = r[j + 1] + r[P - 1 - j]; ai[j] = i[j + 1] + i[P - 1 - j];
    br[j] = r[j + 1] - r[P - 1 - j]; bi[j] = i[j + 1] - i[P - 1 - j];
    r0 += ar[j]; i0 += ai[j];
  }
  for (int k = 1; k <= H; ++k) {
    T Ar = r[0], Ai = i[0], Br = 0, Bi = 0;
    for (int j = 1; j <= H; ++j) {
      const int m = (j * k) % P;  // cos is even in m -> P - m, sin odd
      const T c = T(OddRoots<P>::c[(m <= H ? m : P - m) - 1]);
      const T sn = m <= H ? T(OddRoots<P>::s[m - 1]) : -T(OddRoots<P>::s[P - m - 1]);
      Ar += c * ar[j - 1]; Ai += c * ai[j - 1];
      Br += sn * br[j - 1]; Bi += sn * bi[j - 1];
    }
    r[k] = Ar + Bi; i[k] = Ai - Br;          // A - i B
    r[P - k] = Ar - Bi; i[P - k] = Ai + Br;  // A + i B
  }
  r[0] = r0; i[0] = i0;
}

template <int P, class T>
KK_INLINE void dft(T* r, T* i) {
  if constexpr (P == 2) dft2(r, i);
  else if constexpr (P == 3) dft3(r, i);
  else if constexpr (P == 4) dft4(r, i);
  else if constexpr (P == 8) dft8(r, i);
  else if constexpr (P == 9) dft9(r, i);
  else if constexpr (P == 5) dft5(r, i);
  else dft_odd<P>(r, i);
}

// A pointer into `base` at the first position >= base whose address is `want` bytes (mod 4096)
// past `ref`: the stores of a stage then never sit a multiple of 4 KiB from its loads (4K
// aliasing stalls every load behind the stores with the same low address bits).
template <class T>
inline T* offset_4k(T* base, const T* ref, std::uintptr_t want) {
  const std::uintptr_t b = reinterpret_cast<std::uintptr_t>(base);
  const std::uintptr_t r = reinterpret_cast<std::uintptr_t>(ref);
  const std::uintptr_t delta = (want + 4096 * 2 - ((b - r) & 4095)) & 4095;
  return reinterpret_cast<T*>(b + (delta / sizeof(T)) * sizeof(T));
}

// One Stockham stage of radix P: x (l blocks of P runs of R numbers) -> y. HZ: the inputs of
// the upper half (q >= P/2) are zero and are not read (first stage of a zero-padded
// transform); HO: only the outputs of the lower half (a < P/2) are wanted (last stage of a
// transform whose upper half is discarded).
template <int P, class T, bool HZ = false, bool HO = false>
void stage(const T* __restrict xr, const T* __restrict xi, T* __restrict yr,
           T* __restrict yi, i64 l, i64 R, const T* __restrict twr, const T* __restrict twi) {
  const i64 lR = l * R;
  if (R >= 4 || l == 1) {
    for (i64 k = 0; k < l; ++k) {
      const T* __restrict ar = xr + k * P * R;
      const T* __restrict ai = xi + k * P * R;
      T* __restrict br = yr + k * R;
      T* __restrict bi = yi + k * R;
      if (k == 0) {
        KK_IVDEP
        for (i64 t = 0; t < R; ++t) {
          T zr[P], zi[P];
          for (int q = 0; q < P; ++q) {
            const bool zero = HZ && 2 * q >= P;
            zr[q] = zero ? T(0) : ar[q * R + t];
            zi[q] = zero ? T(0) : ai[q * R + t];
          }
          dft<P>(zr, zi);
          for (int a = 0; a < P; ++a) {
            if (HO && 2 * a >= P) continue;
            br[a * lR + t] = zr[a]; bi[a * lR + t] = zi[a];
          }
        }
        continue;
      }
      T wr[P], wi[P];
      for (int q = 1; q < P; ++q) { wr[q] = twr[(q - 1) * l + k]; wi[q] = twi[(q - 1) * l + k]; }
      KK_IVDEP
      for (i64 t = 0; t < R; ++t) {
        T zr[P], zi[P];
        zr[0] = ar[t]; zi[0] = ai[t];
        for (int q = 1; q < P; ++q) {
          const T xr_ = ar[q * R + t], xi_ = ai[q * R + t];
          zr[q] = wr[q] * xr_ - wi[q] * xi_;
          zi[q] = wr[q] * xi_ + wi[q] * xr_;
        }
        dft<P>(zr, zi);
        for (int a = 0; a < P; ++a) {
          if (HO && 2 * a >= P) continue;
          br[a * lR + t] = zr[a]; bi[a * lR + t] = zi[a];
        }
      }
    }
  } else {
    // Short runs (the last stages of a single transform): the loop over k is the long one.
    for (i64 t = 0; t < R; ++t) {
      KK_IVDEP
      for (i64 k = 0; k < l; ++k) {
        T zr[P], zi[P];
        zr[0] = xr[k * P * R + t]; zi[0] = xi[k * P * R + t];
        for (int q = 1; q < P; ++q) {
          const T wr = twr[(q - 1) * l + k], wi = twi[(q - 1) * l + k];
          const T xr_ = xr[(k * P + q) * R + t], xi_ = xi[(k * P + q) * R + t];
          zr[q] = wr * xr_ - wi * xi_;
          zi[q] = wr * xi_ + wi * xr_;
        }
        dft<P>(zr, zi);
        for (int a = 0; a < P; ++a) {
          if (HO && 2 * a >= P) continue;
          yr[(k + a * l) * R + t] = zr[a]; yi[(k + a * l) * R + t] = zi[a];
        }
      }
    }
  }
}

// Pruning flags of cfft_smooth (Toeplitz products): the input's upper half is zero (and need
// not be written), or only the output's lower half is wanted. Both need an even first / last
// radix; the caller checks with prunable().
constexpr int kHalfZeroIn = 1, kHalfOut = 2;

template <class T>
inline bool prunable_in(const CPlanView<T>& p) {
  return p.M == 0 && p.nstages > 0 && p.radix[0] % 2 == 0;
}
template <class T>
inline bool prunable_out(const CPlanView<T>& p) {
  return p.M == 0 && p.nstages > 0 && p.radix[p.nstages - 1] % 2 == 0;
}

// Smooth-length forward transform in place (re, im); work holds 2 n V numbers.
template <class T>
void cfft_smooth(const CPlanView<T>& p, T* re, T* im, T* work, i64 V, int prune = 0) {
  const i64 n = p.n;
  T *xr = re, *xi = im;
  T* yr = offset_4k(work, re, 1024);
  T* yi = offset_4k(yr + n * V, im, 3072);
  for (int s = 0; s < p.nstages; ++s) {
    const int P = p.radix[s];
    const i64 l = p.l[s];
    const i64 R = n / (l * P) * V;
    const T* twr = p.twr + p.twoff[s];
    const T* twi = p.twi + p.twoff[s];
    const bool hz = s == 0 && (prune & kHalfZeroIn) && P % 2 == 0;
    const bool ho = s == p.nstages - 1 && (prune & kHalfOut) && P % 2 == 0;
    if (hz || ho) {
      switch (P * 4 + (hz ? 1 : 0) + (ho ? 2 : 0)) {
        case 2 * 4 + 1: stage<2, T, true, false>(xr, xi, yr, yi, l, R, twr, twi); break;
        case 2 * 4 + 2: stage<2, T, false, true>(xr, xi, yr, yi, l, R, twr, twi); break;
        case 2 * 4 + 3: stage<2, T, true, true>(xr, xi, yr, yi, l, R, twr, twi); break;
        case 4 * 4 + 1: stage<4, T, true, false>(xr, xi, yr, yi, l, R, twr, twi); break;
        case 4 * 4 + 2: stage<4, T, false, true>(xr, xi, yr, yi, l, R, twr, twi); break;
        case 4 * 4 + 3: stage<4, T, true, true>(xr, xi, yr, yi, l, R, twr, twi); break;
        case 8 * 4 + 1: stage<8, T, true, false>(xr, xi, yr, yi, l, R, twr, twi); break;
        case 8 * 4 + 2: stage<8, T, false, true>(xr, xi, yr, yi, l, R, twr, twi); break;
        default: stage<8, T, true, true>(xr, xi, yr, yi, l, R, twr, twi); break;
      }
      T* tr = xr; xr = yr; yr = tr;
      T* ti = xi; xi = yi; yi = ti;
      continue;
    }
    switch (P) {
      case 2: stage<2>(xr, xi, yr, yi, l, R, twr, twi); break;
      case 3: stage<3>(xr, xi, yr, yi, l, R, twr, twi); break;
      case 4: stage<4>(xr, xi, yr, yi, l, R, twr, twi); break;
      case 8: stage<8>(xr, xi, yr, yi, l, R, twr, twi); break;
      case 9: stage<9>(xr, xi, yr, yi, l, R, twr, twi); break;
      case 5: stage<5>(xr, xi, yr, yi, l, R, twr, twi); break;
      case 7: stage<7>(xr, xi, yr, yi, l, R, twr, twi); break;
      case 11: stage<11>(xr, xi, yr, yi, l, R, twr, twi); break;
      default: stage<13>(xr, xi, yr, yi, l, R, twr, twi); break;
    }
    T* tr = xr; xr = yr; yr = tr;
    T* ti = xi; xi = yi; yi = ti;
  }
  if (xr != re) {
    const i64 keep = (prune & kHalfOut) && prunable_out(p) ? n / 2 : n;
    std::memcpy(re, xr, sizeof(T) * keep * V);
    std::memcpy(im, xi, sizeof(T) * keep * V);
  }
}

// y_j = x_j * chirp_j for the plan's n rows of V values (Bluestein's pre- and post-multiply).
template <class T>
void chirp_mul(const CPlanView<T>& p, const T* xr, const T* xi, T* yr, T* yi, i64 V) {
  for (i64 j = 0; j < p.n; ++j) {
    const T cr = p.chr[j], ci = p.chi[j];
    const T* __restrict ar = xr + j * V;
    const T* __restrict ai = xi + j * V;
    T* __restrict br = yr + j * V;
    T* __restrict bi = yi + j * V;
    for (i64 v = 0; v < V; ++v) {
      br[v] = ar[v] * cr - ai[v] * ci;
      bi[v] = ar[v] * ci + ai[v] * cr;
    }
  }
}

// Any length, forward, in place; work: cfft_work(p, V) numbers.
template <class T>
void cfft_fwd(const CPlanView<T>& p, T* re, T* im, T* work, i64 V) {
  if (p.M == 0) {
    cfft_smooth(p, re, im, work, V);
    return;
  }
  const i64 n = p.n, M = p.M;
  T* ar = work;
  T* ai = offset_4k(work + M * V, ar, 2048);
  T* rest = ai + M * V;
  chirp_mul(p, re, im, ar, ai, V);
  std::memset(ar + n * V, 0, sizeof(T) * (M - n) * V);
  std::memset(ai + n * V, 0, sizeof(T) * (M - n) * V);
  cfft_smooth(*p.sub, ar, ai, rest, V);
  for (i64 j = 0; j < M; ++j) {
    const T br = p.bre[j], bi = p.bim[j];
    T* __restrict yr = ar + j * V;
    T* __restrict yi = ai + j * V;
    for (i64 v = 0; v < V; ++v) {
      const T r = yr[v], i = yi[v];
      yr[v] = r * br - i * bi;
      yi[v] = r * bi + i * br;
    }
  }
  cfft_smooth(*p.sub, ai, ar, rest, V);  // inverse by swapping re and im
  chirp_mul(p, ar, ai, re, im, V);
}

// ---- real rows (V = 1) -------------------------------------------------------------------------
template <class T>
void rfft_row(const RPlanView<T>& p, const T* __restrict x, i64 m, T* __restrict out, T* buf);
template <class T>
void irfft_row(const RPlanView<T>& p, const T* __restrict X, i64 m, T* __restrict out, T* buf);

// Odd N = P q decimated (fft_plan.hpp, RPlanView). The spectra U_r (length q) of the P
// sub-sequences u_r[j] = x[P j + r] are never stored as rows: pair p (a = 2p, b = a + 1) is kept as
// the complex transform Z of u_a + i u_b, with U_a[j] = (Z_j + conj Z_{q-j}) / 2 and U_b[j] =
// (Z_j - conj Z_{q-j}) / 2i, and the last (r = P - 1) as the half spectrum h of the real transform
// of u_{P-1}, U[j] = conj U[q - j] above q/2; the radix-P stage converts as it reads (forward) or
// writes those forms directly (inverse). (Rows of U cost an extra pass and twice the scratch:
// float64 3^10 then ran from L3, 1.4-1.6x pocketfft's inverse.)
template <class T>
struct OddBufs {
  T* zr;    // pair p's Z at zr + p q, zi + p q (p < (P - 1) / 2)
  T* zi;
  T* h;     // the last sub-sequence's half spectrum: 2 (q / 2 + 1)
  T* u;     // the last sub-sequence: q
  T* xpad;  // inverse: a zero-padded copy of a short half spectrum, 2 ((N + 1) / 2)
  T* work;  // cfft_work(cq, 1)
  T* rest;  // the sub plan's scratch (fft_plan.hpp, rfft_row_work)
  OddBufs(const RPlanView<T>& p, T* buf) {
    const i64 q = p.N / p.P, pairs = (p.P - 1) / 2;
    zr = buf;
    zi = zr + pairs * q;
    h = zi + pairs * q;
    u = h + 2 * (q / 2 + 1);
    xpad = u + q;
    work = xpad + 2 * ((p.N + 1) / 2);
    rest = work + fft_detail::cfft_work(*p.cq, 1);
  }
};

// X_{s q + j} = DFT_P over r of w_N^{r j} U_r[j], stored for s < S (k = s q + j <= N/2): S =
// (P + 1) / 2 for j <= (q - 1) / 2 (Low), (P - 1) / 2 above. k = q - j (0 for j = 0).
template <int P, bool Low, class T>
KK_INLINE void odd_fwd_at(const T* __restrict zr, const T* __restrict zi, const T* __restrict h,
                          const T* __restrict twr, const T* __restrict twi, i64 q, i64 j, i64 k,
                          T* __restrict out) {
  constexpr int S = Low ? (P + 1) / 2 : (P - 1) / 2;
  T vr[P], vi[P];  // U_r[j]
  for (int a = 0; a + 1 < P; a += 2) {
    const i64 o = (a / 2) * q;
    const T zjr = zr[o + j], zji = zi[o + j], zkr = zr[o + k], zki = zi[o + k];
    vr[a] = T(0.5) * (zjr + zkr); vi[a] = T(0.5) * (zji - zki);
    vr[a + 1] = T(0.5) * (zji + zki); vi[a + 1] = T(-0.5) * (zjr - zkr);
  }
  if (Low) { vr[P - 1] = h[2 * j]; vi[P - 1] = h[2 * j + 1]; }
  else { vr[P - 1] = h[2 * k]; vi[P - 1] = -h[2 * k + 1]; }
  T yr[P], yi[P];
  yr[0] = vr[0]; yi[0] = vi[0];
  for (int r = 1; r < P; ++r) {
    const T wr = twr[(r - 1) * q + j], wi = twi[(r - 1) * q + j];
    yr[r] = wr * vr[r] - wi * vi[r];
    yi[r] = wr * vi[r] + wi * vr[r];
  }
  dft<P>(yr, yi);
  for (int s = 0; s < S; ++s) { out[2 * (s * q + j)] = yr[s]; out[2 * (s * q + j) + 1] = yi[s]; }
}

// The sub-sequences u_r[j] = x[P j + r] (zero past the input's m values) in one pass (a whole
// interleave group vectorizes; one sub-sequence at a time did not): u_a, u_{a+1} into pair a / 2's
// Z, u_{P-1} into u. The inverse's odd_scatter writes them back the same way.
template <int P, class T>
KK_INLINE void odd_gather(const T* __restrict x, i64 m, i64 q, T* __restrict zr, T* __restrict zi,
                          T* __restrict u) {
  const i64 full = m >= P * q ? q : m / P;  // groups wholly inside x
  KK_IVDEP
  for (i64 j = 0; j < full; ++j) {
    for (int a = 0; a + 1 < P; a += 2) {
      zr[(a / 2) * q + j] = x[P * j + a];
      zi[(a / 2) * q + j] = x[P * j + a + 1];
    }
    u[j] = x[P * j + P - 1];
  }
  const auto at = [&](i64 i) { return i < m ? x[i] : T(0); };
  for (i64 j = full; j < q; ++j) {
    for (int a = 0; a + 1 < P; a += 2) {
      zr[(a / 2) * q + j] = at(P * j + a);
      zi[(a / 2) * q + j] = at(P * j + a + 1);
    }
    u[j] = at(P * j + P - 1);
  }
}

template <int P, class T>
KK_INLINE void odd_scatter(const T* __restrict zr, const T* __restrict zi, const T* __restrict u,
                           i64 q, T* __restrict out) {
  KK_IVDEP
  for (i64 j = 0; j < q; ++j) {
    for (int a = 0; a + 1 < P; a += 2) {
      out[P * j + a] = zr[(a / 2) * q + j];
      out[P * j + a + 1] = zi[(a / 2) * q + j];
    }
    out[P * j + P - 1] = u[j];
  }
}

template <int P, class T>
void rfft_row_odd(const RPlanView<T>& p, const T* __restrict x, i64 m, T* __restrict out, T* buf) {
  const i64 q = p.N / P;
  const OddBufs<T> b(p, buf);
  odd_gather<P>(x, m, q, b.zr, b.zi, b.u);
  for (int a = 0; a + 1 < P; a += 2)  // z = u_a + i u_{a+1}
    cfft_fwd(*p.cq, b.zr + (a / 2) * q, b.zi + (a / 2) * q, b.work, 1);
  rfft_row(*p.sub, b.u, q, b.h, b.rest);
  const i64 jh = (q - 1) / 2 + 1;  // q is odd: j < jh is j <= q / 2
  odd_fwd_at<P, true>(b.zr, b.zi, b.h, p.pwr, p.pwi, q, 0, 0, out);
  KK_IVDEP
  for (i64 j = 1; j < jh; ++j) odd_fwd_at<P, true>(b.zr, b.zi, b.h, p.pwr, p.pwi, q, j, q - j, out);
  KK_IVDEP
  for (i64 j = jh; j < q; ++j) odd_fwd_at<P, false>(b.zr, b.zi, b.h, p.pwr, p.pwi, q, j, q - j, out);
  out[1] = 0;
}

// The inverse stage at j: V_r = (1/P) sum_s w_P^{-r s} X_{s q + j} (the conjugate of a forward DFT
// of the conjugates), U_r[j] = w_N^{-r j} V_r, times 1/q as well for the pairs (their inverse
// transform is unscaled); written as the pairs' Z = U_a + i U_b and, for j <= q/2 (Low), the last
// one's half spectrum. X_k (interleaved) is read for s < S and as conj X_{N-k} for s >= S (S as
// in odd_fwd_at); dc: j = 0, whose X_0 has its imaginary part ignored.
template <int P, bool Low, class T>
KK_INLINE void odd_inv_at(const T* __restrict X, const T* __restrict twr, const T* __restrict twi,
                          i64 N, i64 q, i64 j, bool dc, T* __restrict zr, T* __restrict zi,
                          T* __restrict h) {
  constexpr int S = Low ? (P + 1) / 2 : (P - 1) / 2;
  const T sp = T(1) / static_cast<T>(P), sn = T(1) / static_cast<T>(N);
  T yr[P], yi[P];
  for (int s = 0; s < P; ++s) {
    if (s < S) { yr[s] = X[2 * (s * q + j)]; yi[s] = -X[2 * (s * q + j) + 1]; }
    else { yr[s] = X[2 * (N - s * q - j)]; yi[s] = X[2 * (N - s * q - j) + 1]; }
  }
  if (dc) yi[0] = 0;
  dft<P>(yr, yi);
  T ur[P], ui[P];
  ur[0] = yr[0] * sn;
  ui[0] = -yi[0] * sn;
  for (int r = 1; r < (Low ? P : P - 1); ++r) {
    const T sc = r == P - 1 ? sp : sn;
    const T vr = yr[r] * sc, vi = -yi[r] * sc;
    const T wr = twr[(r - 1) * q + j], wi = -twi[(r - 1) * q + j];
    ur[r] = wr * vr - wi * vi;
    ui[r] = wr * vi + wi * vr;
  }
  for (int a = 0; a + 1 < P; a += 2) {
    const i64 o = (a / 2) * q;
    zr[o + j] = ur[a] - ui[a + 1];
    zi[o + j] = ui[a] + ur[a + 1];
  }
  if (Low) { h[2 * j] = ur[P - 1]; h[2 * j + 1] = ui[P - 1]; }
}

template <int P, class T>
void irfft_row_odd(const RPlanView<T>& p, const T* __restrict X, i64 m, T* __restrict out, T* buf) {
  const i64 N = p.N, q = N / P, h2 = (N + 1) / 2;  // X_k given for k < h2
  const OddBufs<T> b(p, buf);
  const T* src = X;
  if (m < h2) {
    if (m > 0) std::memcpy(b.xpad, X, sizeof(T) * 2 * m);
    std::memset(b.xpad + 2 * m, 0, sizeof(T) * 2 * (h2 - m));
    src = b.xpad;
  }
  const i64 jh = (q - 1) / 2 + 1;
  odd_inv_at<P, true>(src, p.pwr, p.pwi, N, q, 0, true, b.zr, b.zi, b.h);
  KK_IVDEP
  for (i64 j = 1; j < jh; ++j) odd_inv_at<P, true>(src, p.pwr, p.pwi, N, q, j, false, b.zr, b.zi, b.h);
  KK_IVDEP
  for (i64 j = jh; j < q; ++j) odd_inv_at<P, false>(src, p.pwr, p.pwi, N, q, j, false, b.zr, b.zi, b.h);
  for (int a = 0; a + 1 < P; a += 2)  // Z -> z = u_a + i u_{a+1}, inverse by swapping re and im
    cfft_fwd(*p.cq, b.zi + (a / 2) * q, b.zr + (a / 2) * q, b.work, 1);
  irfft_row(*p.sub, b.h, q / 2 + 1, b.u, b.rest);  // (its 1/q completes the 1/P above)
  odd_scatter<P>(b.zr, b.zi, b.u, q, out);
}

// f(std::integral_constant<int, P>{}) for a decimated odd row's radix P (fft_plan.hpp: 3, 5, 7,
// 11 or 13); false where the row is not decimated (P = 0).
template <class F>
KK_INLINE bool odd_radix(int P, F&& f) {
  switch (P) {
    case 3: f(std::integral_constant<int, 3>{}); return true;
    case 5: f(std::integral_constant<int, 5>{}); return true;
    case 7: f(std::integral_constant<int, 7>{}); return true;
    case 11: f(std::integral_constant<int, 11>{}); return true;
    case 13: f(std::integral_constant<int, 13>{}); return true;
    default: return false;
  }
}

template <class T>
void rfft_row(const RPlanView<T>& p, const T* __restrict x, i64 m, T* __restrict out, T* buf) {
  if (odd_radix(p.P, [&](auto P) { rfft_row_odd<decltype(P)::value>(p, x, m, out, buf); })) return;
  const i64 N = p.N;
  if (N == 1) {
    out[0] = m > 0 ? x[0] : T(0);
    out[1] = 0;
    return;
  }
  const i64 nc = p.c->n;
  T* re = buf;
  T* im = buf + nc;
  T* work = buf + 2 * nc;
  if (p.even) {
    const i64 M = nc;
    const i64 full = (m < N ? m : N) / 2;  // pairs fully inside x
    for (i64 j = 0; j < full; ++j) { re[j] = x[2 * j]; im[j] = x[2 * j + 1]; }
    for (i64 j = full; j < M; ++j) {
      re[j] = 2 * j < m ? x[2 * j] : T(0);
      im[j] = 2 * j + 1 < m ? x[2 * j + 1] : T(0);
    }
    cfft_fwd(*p.c, re, im, work, 1);
    out[0] = re[0] + im[0];
    out[1] = 0;
    out[2 * M] = re[0] - im[0];
    out[2 * M + 1] = 0;
    for (i64 k = 1; k < M; ++k) {
      const i64 j = M - k;
      const T er = T(0.5) * (re[k] + re[j]), ei = T(0.5) * (im[k] - im[j]);
      const T orr = T(0.5) * (im[k] + im[j]), oi = T(-0.5) * (re[k] - re[j]);
      const T wr = p.wr[k], wi = p.wi[k];
      out[2 * k] = er + (wr * orr - wi * oi);
      out[2 * k + 1] = ei + (wr * oi + wi * orr);
    }
  } else {
    const i64 mm = m < N ? m : N;
    for (i64 j = 0; j < mm; ++j) { re[j] = x[j]; im[j] = 0; }
    for (i64 j = mm; j < N; ++j) { re[j] = 0; im[j] = 0; }
    cfft_fwd(*p.c, re, im, work, 1);
    for (i64 k = 0; k <= N / 2; ++k) { out[2 * k] = re[k]; out[2 * k + 1] = im[k]; }
    out[1] = 0;
  }
}

template <class T>
void irfft_row(const RPlanView<T>& p, const T* __restrict X, i64 m, T* __restrict out, T* buf) {
  if (odd_radix(p.P, [&](auto P) { irfft_row_odd<decltype(P)::value>(p, X, m, out, buf); })) return;
  const i64 N = p.N;
  auto xr = [&](i64 k) { return k < m ? X[2 * k] : T(0); };
  auto xi = [&](i64 k) { return k < m ? X[2 * k + 1] : T(0); };
  if (N == 1) {
    out[0] = xr(0);
    return;
  }
  const i64 nc = p.c->n;
  T* re = buf;
  T* im = buf + nc;
  T* work = buf + 2 * nc;
  const T scale = T(1) / static_cast<T>(N);
  if (p.even) {
    const i64 M = nc;
    {
      const T a = xr(0), b = xr(M);  // imaginary parts of X_0, X_M do not enter
      re[0] = (a + b) * scale;
      im[0] = (a - b) * scale;
    }
    for (i64 k = 1; k < M; ++k) {
      const i64 j = M - k;
      const T ykr = xr(k), yki = xi(k), yjr = xr(j), yji = xi(j);
      const T Ar = ykr + yjr, Ai = yki - yji;
      const T Br = ykr - yjr, Bi = yki + yji;
      const T wr = p.wr[k], wi = p.wi[k];
      // C = i conj(w) B
      const T Cr = wi * Br - wr * Bi, Ci = wr * Br + wi * Bi;
      re[k] = (Ar + Cr) * scale;
      im[k] = (Ai + Ci) * scale;
    }
    cfft_fwd(*p.c, im, re, work, 1);  // inverse by swapping re and im
    for (i64 j = 0; j < M; ++j) { out[2 * j] = re[j]; out[2 * j + 1] = im[j]; }
  } else {
    const i64 h = N / 2;
    re[0] = xr(0) * scale;
    im[0] = 0;
    for (i64 k = 1; k <= h; ++k) {
      re[k] = xr(k) * scale;
      im[k] = xi(k) * scale;
      re[N - k] = re[k];
      im[N - k] = -im[k];
    }
    cfft_fwd(*p.c, im, re, work, 1);
    for (i64 j = 0; j < N; ++j) out[j] = re[j];
  }
}

// ---- real rows, V at a time (lanes: row v of the block is lane v) -----------------------------
// buf: 2 nc V + cfft_work(c, V) numbers.
template <class T>
void rfft_block(const RPlanView<T>& p, const T* __restrict x, i64 m, i64 xs, i64 V,
                T* __restrict out, i64 os, T* buf) {
  const i64 N = p.N;
  const i64 nc = p.c->n;
  T* re = buf;
  T* im = buf + nc * V;
  T* work = buf + 2 * nc * V;
  if (p.even) {
    const i64 M = nc;
    // Rows are read and written contiguously; the lanes side is the cache-resident buffer.
    const i64 full = (m < N ? m : N) / 2;
    for (i64 v = 0; v < V; ++v) {
      const T* __restrict xv = x + v * xs;
      for (i64 j = 0; j < full; ++j) {
        re[j * V + v] = xv[2 * j];
        im[j * V + v] = xv[2 * j + 1];
      }
      for (i64 j = full; j < M; ++j) {
        re[j * V + v] = 2 * j < m ? xv[2 * j] : T(0);
        im[j * V + v] = 2 * j + 1 < m ? xv[2 * j + 1] : T(0);
      }
    }
    cfft_fwd(*p.c, re, im, work, V);
    for (i64 v = 0; v < V; ++v) {
      T* __restrict o = out + v * os;
      o[0] = re[v] + im[v];
      o[1] = 0;
      o[2 * M] = re[v] - im[v];
      o[2 * M + 1] = 0;
      for (i64 k = 1; k < M; ++k) {
        const i64 j = M - k;
        const T rk = re[k * V + v], ik = im[k * V + v], rj = re[j * V + v], ij = im[j * V + v];
        const T er = T(0.5) * (rk + rj), ei = T(0.5) * (ik - ij);
        const T orr = T(0.5) * (ik + ij), oi = T(-0.5) * (rk - rj);
        const T wr = p.wr[k], wi = p.wi[k];
        o[2 * k] = er + (wr * orr - wi * oi);
        o[2 * k + 1] = ei + (wr * oi + wi * orr);
      }
    }
  } else {
    for (i64 v = 0; v < V; ++v)
      for (i64 j = 0; j < N; ++j) {
        re[j * V + v] = j < m ? x[v * xs + j] : T(0);
        im[j * V + v] = 0;
      }
    cfft_fwd(*p.c, re, im, work, V);
    for (i64 v = 0; v < V; ++v)
      for (i64 k = 0; k <= N / 2; ++k) {
        out[v * os + 2 * k] = re[k * V + v];
        out[v * os + 2 * k + 1] = k == 0 ? T(0) : im[k * V + v];
      }
  }
}

template <class T>
void irfft_block(const RPlanView<T>& p, const T* __restrict X, i64 m, i64 xs, i64 V,
                 T* __restrict out, i64 os, T* buf) {
  const i64 N = p.N;
  const i64 nc = p.c->n;
  T* re = buf;
  T* im = buf + nc * V;
  T* work = buf + 2 * nc * V;
  const T scale = T(1) / static_cast<T>(N);
  auto xr = [&](i64 v, i64 k) { return k < m ? X[v * xs + 2 * k] : T(0); };
  auto xi = [&](i64 v, i64 k) { return k < m ? X[v * xs + 2 * k + 1] : T(0); };
  if (p.even) {
    const i64 M = nc;
    for (i64 v = 0; v < V; ++v) {
      const T a = xr(v, 0), b = xr(v, M);
      re[v] = (a + b) * scale;
      im[v] = (a - b) * scale;
      for (i64 k = 1; k < M; ++k) {
        const i64 j = M - k;
        const T wr = p.wr[k], wi = p.wi[k];
        const T ykr = xr(v, k), yki = xi(v, k), yjr = xr(v, j), yji = xi(v, j);
        const T Ar = ykr + yjr, Ai = yki - yji;
        const T Br = ykr - yjr, Bi = yki + yji;
        const T Cr = wi * Br - wr * Bi, Ci = wr * Br + wi * Bi;
        re[k * V + v] = (Ar + Cr) * scale;
        im[k * V + v] = (Ai + Ci) * scale;
      }
    }
    cfft_fwd(*p.c, im, re, work, V);
    for (i64 v = 0; v < V; ++v)
      for (i64 j = 0; j < M; ++j) {
        out[v * os + 2 * j] = re[j * V + v];
        out[v * os + 2 * j + 1] = im[j * V + v];
      }
  } else {
    const i64 h = N / 2;
    for (i64 v = 0; v < V; ++v) {
      re[v] = xr(v, 0) * scale;
      im[v] = 0;
    }
    for (i64 v = 0; v < V; ++v)
      for (i64 k = 1; k <= h; ++k) {
        const T a = xr(v, k) * scale, b = xi(v, k) * scale;
        re[k * V + v] = a;
        im[k * V + v] = b;
        re[(N - k) * V + v] = a;
        im[(N - k) * V + v] = -b;
      }
    cfft_fwd(*p.c, im, re, work, V);
    for (i64 v = 0; v < V; ++v)
      for (i64 j = 0; j < N; ++j) out[v * os + j] = re[j * V + v];
  }
}

// ---- Toeplitz blocks -------------------------------------------------------------------------
// Y[b] (n x k, contiguous) = T_b X[b], columns [c0, c0 + V) of batch b: load the even/odd rows of
// the block into the half-length complex lanes (zero padded to L), forward FFT, multiply by the
// spectrum (rfft of the circulant's first column, scaled by 1/L) in the real-FFT domain, inverse
// FFT, write the n rows. buf: 2 M V + cfft_work(M, V) numbers.
template <class T>
void toeplitz_block(const RPlanView<T>& p, const T* __restrict H, i64 n, const T* Xb, i64 xsr,
                    i64 xsc, i64 c0, i64 V, T* Yb, i64 k, T* buf) {
  const CPlanView<T>& cp = *p.c;
  const i64 M = cp.n;
  T* re = buf;
  T* im = buf + M * V;
  T* work = buf + 2 * M * V;
  const i64 rows_used = (n + 1) / 2;
  for (i64 j = 0; j < rows_used; ++j) {
    T* __restrict dr = re + j * V;
    T* __restrict di = im + j * V;
    const T* __restrict s0 = Xb + (2 * j) * xsr + c0 * xsc;
    if (xsc == 1) {
      for (i64 v = 0; v < V; ++v) dr[v] = s0[v];
    } else {
      for (i64 v = 0; v < V; ++v) dr[v] = s0[v * xsc];
    }
    if (2 * j + 1 < n) {
      const T* __restrict s1 = s0 + xsr;
      if (xsc == 1) {
        for (i64 v = 0; v < V; ++v) di[v] = s1[v];
      } else {
        for (i64 v = 0; v < V; ++v) di[v] = s1[v * xsc];
      }
    } else {
      for (i64 v = 0; v < V; ++v) di[v] = 0;
    }
  }
  // The upper half of the padded input is zero: the first stage skips it (not even written)
  // where its radix is even; likewise the inverse's last stage computes the lower half only.
  const bool hz = prunable_in(cp) && 2 * rows_used <= M;
  const bool ho = prunable_out(cp) && 2 * rows_used <= M;
  const i64 zero_end = hz ? M / 2 : M;
  std::memset(re + rows_used * V, 0, sizeof(T) * (zero_end - rows_used) * V);
  std::memset(im + rows_used * V, 0, sizeof(T) * (zero_end - rows_used) * V);
  cfft_smooth(cp, re, im, work, V, hz ? kHalfZeroIn : 0);
  {
    const T h0 = H[0], hM = H[2 * M];
    for (i64 v = 0; v < V; ++v) {
      const T a = re[v], b = im[v];
      const T y0 = h0 * (a + b), yM = hM * (a - b);
      re[v] = y0 + yM;
      im[v] = y0 - yM;
    }
  }
  for (i64 kk = 1; 2 * kk <= M; ++kk) {
    const i64 j = M - kk;
    const T wr = p.wr[kk], wi = p.wi[kk];
    const T hkr = H[2 * kk], hki = H[2 * kk + 1];
    const T hjr = H[2 * j], hji = H[2 * j + 1];
    T* __restrict rk = re + kk * V;
    T* __restrict ik = im + kk * V;
    T* __restrict rj = re + j * V;
    T* __restrict ij = im + j * V;
    KK_IVDEP
    for (i64 v = 0; v < V; ++v) {
      const T zkr = rk[v], zki = ik[v], zjr = rj[v], zji = ij[v];
      const T er = T(0.5) * (zkr + zjr), ei = T(0.5) * (zki - zji);
      const T orr = T(0.5) * (zki + zji), oi = T(-0.5) * (zkr - zjr);
      const T tr = wr * orr - wi * oi, ti = wr * oi + wi * orr;
      const T xkr = er + tr, xki = ei + ti;
      const T xjr = er - tr, xji = ti - ei;
      const T ykr = hkr * xkr - hki * xki, yki = hkr * xki + hki * xkr;
      const T yjr = hjr * xjr - hji * xji, yji = hjr * xji + hji * xjr;
      const T Ar = ykr + yjr, Ai = yki - yji;
      const T Br = ykr - yjr, Bi = yki + yji;
      const T Cr = wi * Br - wr * Bi, Ci = wr * Br + wi * Bi;
      rk[v] = Ar + Cr;
      ik[v] = Ai + Ci;
      rj[v] = Ar - Cr;
      ij[v] = Ci - Ai;
    }
  }
  cfft_smooth(cp, im, re, work, V, ho ? kHalfOut : 0);  // inverse (re/im swapped)
  for (i64 j = 0; j < rows_used; ++j) {
    const T* __restrict sr = re + j * V;
    const T* __restrict si = im + j * V;
    T* __restrict d0 = Yb + (2 * j) * k + c0;
    for (i64 v = 0; v < V; ++v) d0[v] = sr[v];
    if (2 * j + 1 < n) {
      T* __restrict d1 = d0 + k;
      for (i64 v = 0; v < V; ++v) d1[v] = si[v];
    }
  }
}

}  // namespace

template <class T>
void fft_cfft(const CPlanView<T>& p, T* re, T* im, T* work, i64 V, bool inverse) {
  if (inverse)
    cfft_fwd(p, im, re, work, V);
  else
    cfft_fwd(p, re, im, work, V);
}

// Rows V at a time where V > 1 (fft_detail::row_lanes), else one by one; forward (rfft) or
// inverse (irfft) rows.
template <bool Inverse, class T>
void real_rows(const RPlanView<T>& p, const T* in, i64 m, i64 is, i64 rows, T* out, i64 os, i64 V,
               int nthreads) {
  if (V <= 1 || p.N == 1) {
    const i64 w = fft_detail::rfft_row_work(p);
    detail::parallel_for(rows, nthreads, [&](i64 begin, i64 end) {
      if (begin >= end) return;
      Scratch<T> buf(w);
      for (i64 r = begin; r < end; ++r) {
        if constexpr (Inverse)
          irfft_row(p, in + r * is, m, out + r * os, buf.p);
        else
          rfft_row(p, in + r * is, m, out + r * os, buf.p);
      }
    });
    return;
  }
  const i64 nblk = (rows + V - 1) / V;
  const i64 w = 2 * p.c->n * V + fft_detail::cfft_work(*p.c, V);
  detail::parallel_for(nblk, nthreads, [&](i64 begin, i64 end) {
    if (begin >= end) return;
    Scratch<T> buf(w);
    for (i64 b = begin; b < end; ++b) {
      const i64 r0 = b * V, vv = rows - r0 < V ? rows - r0 : V;
      if constexpr (Inverse)
        irfft_block(p, in + r0 * is, m, is, vv, out + r0 * os, os, buf.p);
      else
        rfft_block(p, in + r0 * is, m, is, vv, out + r0 * os, os, buf.p);
    }
  });
}

template <class T>
void fft_rfft_rows(const RPlanView<T>& p, const T* x, i64 m, i64 xs, i64 rows, T* out, i64 os,
                   i64 V, int nthreads) {
  real_rows<false>(p, x, m, xs, rows, out, os, V, nthreads);
}

template <class T>
void fft_irfft_rows(const RPlanView<T>& p, const T* X, i64 m, i64 xs, i64 rows, T* out, i64 os,
                    i64 V, int nthreads) {
  real_rows<true>(p, X, m, xs, rows, out, os, V, nthreads);
}

template <class T>
void toeplitz_fft_loop(const RPlanView<T>& p, const T* spec, i64 sbs, i64 n, const T* X, i64 nb,
                       i64 k, i64 xsb, i64 xsr, i64 xsc, T* Y, i64 V, int nthreads) {
  const i64 nblk = (k + V - 1) / V;
  const i64 M = p.c->n;
  const i64 w = 2 * M * V + fft_detail::cfft_work(*p.c, V);
  detail::parallel_for(nb * nblk, nthreads, [&](i64 begin, i64 end) {
    if (begin >= end) return;
    Scratch<T> buf(w);
    for (i64 t = begin; t < end; ++t) {
      const i64 b = t / nblk, blk = t % nblk;
      const i64 c0 = blk * V;
      const i64 vv = k - c0 < V ? k - c0 : V;
      toeplitz_block(p, spec + b * sbs, n, X + b * xsb, xsr, xsc, c0, vv, Y + b * n * k, k, buf.p);
    }
  });
}

template <class T>
void toeplitz_direct_loop(const T* c, i64 cbs, const T* r, i64 rbs, bool causal, i64 n,
                          const T* X, i64 nb, i64 k, i64 xsb, i64 xsr, i64 xsc, T* Y,
                          int nthreads) {
  // y_i = sum_j t_{i-j} x_j, t_d = c[d] (d >= 0), r[-d] (d < 0); rows split over threads.
  detail::parallel_for(nb * n, nthreads, [&](i64 begin, i64 end) {
    for (i64 t = begin; t < end; ++t) {
      const i64 b = t / n, i = t % n;
      const T* cb = c + b * cbs;
      const T* rb = r + b * rbs;
      const T* Xb = X + b * xsb;
      T* __restrict y = Y + (b * n + i) * k;
      for (i64 q = 0; q < k; ++q) y[q] = 0;
      const i64 jend = causal ? i + 1 : n;
      for (i64 j = 0; j < jend; ++j) {
        const T a = j <= i ? cb[i - j] : rb[j - i];
        const T* __restrict xj = Xb + j * xsr;
        if (xsc == 1) {
          for (i64 q = 0; q < k; ++q) y[q] += a * xj[q];
        } else {
          for (i64 q = 0; q < k; ++q) y[q] += a * xj[q * xsc];
        }
      }
    }
  });
}

#define KERNKIT_FFT_INST(T)                                                                   \
  template void fft_cfft<T>(const CPlanView<T>&, T*, T*, T*, i64, bool);                      \
  template void fft_rfft_rows<T>(const RPlanView<T>&, const T*, i64, i64, i64, T*, i64, i64, int); \
  template void fft_irfft_rows<T>(const RPlanView<T>&, const T*, i64, i64, i64, T*, i64, i64, int); \
  template void toeplitz_fft_loop<T>(const RPlanView<T>&, const T*, i64, i64, const T*, i64,  \
                                     i64, i64, i64, i64, T*, i64, int);                        \
  template void toeplitz_direct_loop<T>(const T*, i64, const T*, i64, bool, i64, const T*, i64, \
                                        i64, i64, i64, i64, T*, int);
KERNKIT_FFT_INST(float)
KERNKIT_FFT_INST(double)
#undef KERNKIT_FFT_INST

}  // namespace kernkit::KERNKIT_ISA_NS
