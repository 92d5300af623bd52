// CPU drivers of power-exponent quantization: argument checks, encode / decode (scalar, in
// the input precision), and dispatch of the search and LUT-matmul loops to the ISA variants.
#include "kernkit/quant.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "isa.hpp"
#include "kernkit/math/quant_codes.hpp"
#include "parallel.hpp"
#include "quant_isa.hpp"

namespace kernkit::quant {
namespace {

void check_shape(const char* fn, std::int64_t rows, std::int64_t cols, std::int64_t group,
                 int bits) {
  const std::string f(fn);
  if (rows < 0 || cols < 0) throw std::invalid_argument(f + ": rows and cols must be >= 0");
  if (group <= 0 || (cols > 0 && cols % group != 0))
    throw std::invalid_argument(f + ": group must be > 0 and divide cols");
  if (bits < 2 || bits > 8) throw std::invalid_argument(f + ": bits must be in [2, 8]");
}


}  // namespace

template <class T>
void encode(const T* w, std::int64_t rows, std::int64_t cols, std::int64_t group, int bits,
            bool full, const T* a, std::int64_t a_sr, std::int64_t a_sg, std::uint8_t* codes,
            T* scales) {
  check_shape("quant::encode", rows, cols, group, bits);
  if (rows * cols == 0) return;
  if (!w || !a || !codes || !scales) throw std::invalid_argument("quant::encode: null pointer");
  const std::int64_t ng = cols / group;
  const int off = 1 << (bits - 1);
  const int nhi = full ? off : off - 1;
  const int nt = detail::threads_for(rows * cols, 30.0);
  detail::parallel_for_each(rows * ng, nt, [&](std::int64_t idx) {
    const std::int64_t r = idx / ng, g = idx % ng;
    const T* wg = w + r * cols + g * group;
    std::uint8_t* cg = codes + r * cols + g * group;
    const T ag = a[r * a_sr + g * a_sg];
    T gmax = 0, wstar = 0;
    for (std::int64_t j = 0; j < group; ++j) {
      const T v = std::fabs(wg[j]);
      if (v > gmax) { gmax = v; wstar = wg[j]; }
    }
    if (!(gmax > 0)) {
      scales[idx] = 0;
      std::fill(cg, cg + group, static_cast<std::uint8_t>(off));
      return;
    }
    // s = max|P| / nhi (symmetric), -sign(w*) max|P| / 2^{b-1} (full grid).
    const T smag = std::pow(gmax, ag) / static_cast<T>(nhi);
    const T sneg = full ? (wstar < 0 ? T(1) : T(-1)) : T(1);  // sign of s
    scales[idx] = sneg * smag;
    for (std::int64_t j = 0; j < group; ++j) {
      const T v = wg[j];
      if (v == 0) { cg[j] = static_cast<std::uint8_t>(off); continue; }
      // q = P_a(w) / s = sign(w) sign(s) nhi (|w| / gmax)^a.
      T m = std::nearbyint(static_cast<T>(nhi) * std::pow(std::fabs(v) / gmax, ag));
      const bool neg = (v < 0) != (sneg < 0);
      const T cap = (!full || neg) ? static_cast<T>(nhi) : static_cast<T>(nhi - 1);
      m = std::min(m, cap);
      const int q = neg ? -static_cast<int>(m) : static_cast<int>(m);
      cg[j] = static_cast<std::uint8_t>(q + off);
    }
  });
}

template <class T>
void decode(const std::uint8_t* codes, std::int64_t rows, std::int64_t cols,
            std::int64_t group, int bits, const T* scales, std::int64_t s_sr, std::int64_t s_sg,
            const T* a, std::int64_t a_sr, std::int64_t a_sg, T* out) {
  check_shape("quant::decode", rows, cols, group, bits);
  if (rows * cols == 0) return;
  if (!codes || !scales || !a || !out) throw std::invalid_argument("quant::decode: null pointer");
  const std::int64_t ng = cols / group;
  const int off = 1 << (bits - 1);
  const int nt = detail::threads_for(rows * cols, 20.0);
  detail::parallel_for_each(rows * ng, nt, [&](std::int64_t idx) {
    const std::int64_t r = idx / ng, g = idx % ng;
    const T s = scales[r * s_sr + g * s_sg];
    const T inv = T(1) / a[r * a_sr + g * a_sg];
    const std::uint8_t* cg = codes + r * cols + g * group;
    T* og = out + r * cols + g * group;
    for (std::int64_t j = 0; j < group; ++j) {
      const T v = s * static_cast<T>(static_cast<int>(cg[j]) - off);  // s q
      og[j] = v == 0 ? T(0) : std::copysign(std::pow(std::fabs(v), inv), v);
    }
  });
}

void search_errors(const float* w, std::int64_t rows, std::int64_t cols, std::int64_t group,
                   int bits, bool full, const float* a, std::int64_t a_sr, std::int64_t a_sg,
                   std::int64_t a_sk, std::int64_t K, double* err) {
  check_shape("quant::search_errors", rows, cols, group, bits);
  if (K < 0) throw std::invalid_argument("quant::search_errors: K must be >= 0");
  if (rows * cols == 0 || K == 0) return;
  if (!w || !a || !err) throw std::invalid_argument("quant::search_errors: null pointer");
  const int nt = detail::threads_for(rows * cols * K, 3.0);
  KERNKIT_ISA_RETURN(quant_search_errors(w, rows, cols, group, bits, full, a, a_sr, a_sg, a_sk, K, err, nt))
}

template <class T>
void lut_matmul(const std::uint8_t* packed, std::int64_t row_bytes, int code_bits, int bits,
                std::int64_t rows, std::int64_t cols, std::int64_t group, const T* lut,
                std::int64_t l_sr, std::int64_t l_sg, const T* dscale, const T* x,
                std::int64_t batch, T* y) {
  check_shape("quant::lut_matmul", rows, cols, group, bits);
  if (code_bits != 2 && code_bits != 3 && code_bits != 4 && code_bits != 8)
    throw std::invalid_argument("quant::lut_matmul: code_bits must be 2, 3, 4 or 8");
  if (bits > code_bits || (code_bits < 8 && bits != code_bits))
    throw std::invalid_argument("quant::lut_matmul: bits must equal code_bits (2-4) or be <= 8");
  if (batch < 0) throw std::invalid_argument("quant::lut_matmul: batch must be >= 0");
  if (row_bytes < (cols * code_bits + 7) / 8)
    throw std::invalid_argument("quant::lut_matmul: row_bytes is too small for cols codes");
  if (rows * batch == 0) return;
  if (cols == 0) {
    std::fill(y, y + rows * batch, T(0));
    return;
  }
  if (!packed || !lut || !dscale || !x || !y) throw std::invalid_argument("quant::lut_matmul: null pointer");
  const int nt = detail::threads_for(rows * cols * (batch < 4 ? 1 : batch / 2), 0.15);
  if constexpr (std::is_same_v<T, float>) {
    // false where the variant has no vector kernel for this layout (always in the baseline)
    const bool done = [&] {
      KERNKIT_ISA_RETURN(quant_lut_matmul_f32(packed, row_bytes, code_bits, bits, rows, cols, group, lut, l_sr, l_sg, dscale, x, batch, y, nt))
    }();
    if (done) return;
  }
  KERNKIT_ISA_RETURN(quant_lut_matmul_decode(packed, row_bytes, code_bits, rows, cols, group, lut, l_sr, l_sg, dscale, x, batch, y, nt))
}

#define KERNKIT_QUANT_INST(T)                                                                   \
  template void encode<T>(const T*, std::int64_t, std::int64_t, std::int64_t, int, bool,        \
                          const T*, std::int64_t, std::int64_t, std::uint8_t*, T*);             \
  template void decode<T>(const std::uint8_t*, std::int64_t, std::int64_t, std::int64_t, int,   \
                          const T*, std::int64_t, std::int64_t, const T*, std::int64_t,         \
                          std::int64_t, T*);                                                    \
  template void lut_matmul<T>(const std::uint8_t*, std::int64_t, int, int, std::int64_t,        \
                              std::int64_t, std::int64_t, const T*, std::int64_t, std::int64_t, \
                              const T*, const T*, std::int64_t, T*);
KERNKIT_QUANT_INST(float)
KERNKIT_QUANT_INST(double)
#undef KERNKIT_QUANT_INST

}  // namespace kernkit::quant
