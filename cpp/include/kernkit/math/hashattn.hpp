// Binary hash codes (bit r of a word set = +1, clear = -1): scalar helpers shared verbatim by
// the CPU loops and the CUDA kernels, and usable per token from C++.
#pragma once
#include <cstdint>

#include "kernkit/math/config.hpp"

namespace kernkit {

// Bits per pattern group in the table-driven attention (16 patterns per group).
constexpr int kHashGroupBits = 4;

// The low `bits` bits set (bits in 1..64).
KERNKIT_INLINE std::uint64_t hash_code_mask(int bits) {
  return bits >= 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << bits) - 1u);
}

// Number of set bits of w.
KERNKIT_INLINE int hash_popcount(std::uint64_t w) {
#if defined(KERNKIT_DEVICE_COMPILE) && defined(__CUDA_ARCH__)
  return __popcll(w);
#elif defined(__GNUC__) || defined(__clang__)
  return __builtin_popcountll(w);
#else
  int n = 0;
  for (; w; w &= w - 1) ++n;
  return n;
#endif
}

// h_a^T h_b of two ±1 codes of `bits` bits: bits - 2 * Hamming distance.
KERNKIT_INLINE int hash_code_dot(std::uint64_t a, std::uint64_t b, int bits) {
  return bits - 2 * hash_popcount((a ^ b) & hash_code_mask(bits));
}

// Sum of the code's ±1 entries: 2 * popcount - bits.
KERNKIT_INLINE int hash_code_sum(std::uint64_t w, int bits) {
  return 2 * hash_popcount(w & hash_code_mask(bits)) - bits;
}

// The 4-bit pattern of group g (bits [4g, 4g + 4) of the word), bits at and past `bits` cleared.
KERNKIT_INLINE unsigned hash_group_pattern(std::uint64_t w, int g, int bits) {
  const int lo = g * kHashGroupBits;
  const int nb = bits - lo < kHashGroupBits ? bits - lo : kHashGroupBits;
  return static_cast<unsigned>((w >> lo) & ((std::uint64_t{1} << nb) - 1u));
}

}  // namespace kernkit
