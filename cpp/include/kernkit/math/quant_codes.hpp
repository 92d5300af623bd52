// Reading packed quantization codes: shared verbatim by the CPU reference loop and CUDA.
#pragma once
#include <cstdint>

#include "kernkit/math/config.hpp"

namespace kernkit {

// Code c of a row packed LSB-first at code_bits bits per code (8: one byte per code). A 3-bit
// code may straddle two bytes; the second is then part of the row's ceil(cols*bits/8) bytes.
KERNKIT_INLINE int packed_code_at(const std::uint8_t* row, std::int64_t c, int code_bits) {
  if (code_bits == 8) return row[c];
  const std::int64_t bit = c * code_bits;
  const std::int64_t byte = bit >> 3;
  const int sh = static_cast<int>(bit & 7);
  unsigned v = row[byte];
  if (sh + code_bits > 8) v |= static_cast<unsigned>(row[byte + 1]) << 8;
  return static_cast<int>((v >> sh) & ((1u << code_bits) - 1u));
}

}  // namespace kernkit
