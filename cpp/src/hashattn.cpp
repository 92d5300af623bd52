// CPU drivers of binary-hash attention: argument checks, sign packing / unpacking, and dispatch
// of the attention loops to the ISA variants (hashattn_loops.cpp).
#include "kernkit/hashattn.hpp"

#include <stdexcept>
#include <type_traits>
#include <string>

#include "hashattn_isa.hpp"
#include "isa.hpp"
#include "parallel.hpp"

namespace kernkit::hashattn {

int word_bytes_for(int bits) {
  if (bits < 1 || bits > 64) throw std::invalid_argument("bits: must be in 1..64, got " + std::to_string(bits));
  return bits <= 8 ? 1 : bits <= 16 ? 2 : bits <= 32 ? 4 : 8;
}

void check_args(int word_bytes, int bits, std::int64_t batch_heads, std::int64_t nq,
                std::int64_t nk, std::int64_t d, bool causal, Mode mode) {
  const int want = word_bytes_for(bits);
  if (word_bytes != want)
    throw std::invalid_argument("hq/hk: codes of " + std::to_string(bits) + " bits are stored in " +
                                std::to_string(want) + "-byte words, got " +
                                std::to_string(word_bytes) + "-byte words");
  if (batch_heads < 0 || nq < 0 || nk < 0 || d < 0)
    throw std::invalid_argument("hq/hk/v: negative size");
  if (nk == 0 && nq > 0)
    throw std::invalid_argument("hk: at least one key is needed (n = 0)");
  if ((causal || mode == Mode::ecoformer) && nq != nk)
    throw std::invalid_argument(std::string("hq: ") + (causal ? "causal" : "ecoformer-mode") +
                                " attention needs as many queries as keys (" +
                                std::to_string(nq) + " vs " + std::to_string(nk) + ")");
  if (mode != Mode::consistent && mode != Mode::ecoformer)
    throw std::invalid_argument("mode: must be consistent (0) or ecoformer (1)");
}

template <class T>
void attention(const void* hq, const void* hk, int word_bytes, int bits, const T* v, T* out,
               std::int64_t batch_heads, std::int64_t nq, std::int64_t nk, std::int64_t d,
               double offset, bool causal, Mode mode, const std::int64_t* key_lengths) {
  check_args(word_bytes, bits, batch_heads, nq, nk, d, causal, mode);
  if (key_lengths) {
    if (causal)
      throw std::invalid_argument("key_lengths: not used with causal attention (padding keys "
                                  "after the last valid token are never attended by valid queries)");
    for (std::int64_t b = 0; b < batch_heads; ++b)
      if (key_lengths[b] < 1 || key_lengths[b] > nk)
        throw std::invalid_argument("key_lengths: every length must be in 1..n_k (" +
                                    std::to_string(nk) + "), got " + std::to_string(key_lengths[b]));
  }
  if (batch_heads * nq * d == 0) return;
  if (!hq || !hk || !v || !out) throw std::invalid_argument("hashattn::attention: null pointer");
  const double per_slice = static_cast<double>(nq + nk) * static_cast<double>(d) *
                           (causal ? 2.0 * bits : (bits + 3) / 4 + 1.0);
  const int nt = detail::threads_for(batch_heads, per_slice * 0.15);
  const int m = static_cast<int>(mode);
  if constexpr (std::is_same_v<T, float>) {
    KERNKIT_ISA_RETURN(hashattn_f32(hq, hk, word_bytes, bits, v, out, batch_heads, nq, nk, d, offset, causal, m, key_lengths, nt))
  } else {
    KERNKIT_ISA_RETURN(hashattn_f64(hq, hk, word_bytes, bits, v, out, batch_heads, nq, nk, d, offset, causal, m, key_lengths, nt))
  }
}

namespace {
template <class W, class T>
void pack_words(const T* x, std::int64_t tokens, int bits, W* codes) {
  const int nt = detail::threads_for(tokens * bits, 0.5);
  detail::parallel_for_each(tokens, nt, [&](std::int64_t t) {
    const T* xt = x + t * bits;
    std::uint64_t w = 0;
    for (int r = 0; r < bits; ++r) w |= static_cast<std::uint64_t>(xt[r] >= T(0)) << r;
    codes[t] = static_cast<W>(w);
  });
}
template <class W>
void unpack_words(const W* codes, std::int64_t tokens, int bits, std::int8_t* out) {
  const int nt = detail::threads_for(tokens * bits, 0.5);
  detail::parallel_for_each(tokens, nt, [&](std::int64_t t) {
    const std::uint64_t w = static_cast<std::uint64_t>(codes[t]);
    std::int8_t* o = out + t * bits;
    for (int r = 0; r < bits; ++r) o[r] = ((w >> r) & 1u) ? std::int8_t(1) : std::int8_t(-1);
  });
}
}  // namespace

template <class T>
void pack_signs(const T* x, std::int64_t tokens, int bits, void* codes, int word_bytes) {
  const int want = word_bytes_for(bits);
  if (word_bytes != want) throw std::invalid_argument("codes: wrong word size for bits");
  if (tokens < 0) throw std::invalid_argument("x: negative size");
  if (tokens == 0) return;
  switch (word_bytes) {
    case 1: return pack_words(x, tokens, bits, static_cast<std::uint8_t*>(codes));
    case 2: return pack_words(x, tokens, bits, static_cast<std::uint16_t*>(codes));
    case 4: return pack_words(x, tokens, bits, static_cast<std::uint32_t*>(codes));
    default: return pack_words(x, tokens, bits, static_cast<std::uint64_t*>(codes));
  }
}

void unpack(const void* codes, int word_bytes, std::int64_t tokens, int bits, std::int8_t* out) {
  const int want = word_bytes_for(bits);
  if (word_bytes != want) throw std::invalid_argument("codes: wrong word size for bits");
  if (tokens < 0) throw std::invalid_argument("codes: negative size");
  if (tokens == 0) return;
  switch (word_bytes) {
    case 1: return unpack_words(static_cast<const std::uint8_t*>(codes), tokens, bits, out);
    case 2: return unpack_words(static_cast<const std::uint16_t*>(codes), tokens, bits, out);
    case 4: return unpack_words(static_cast<const std::uint32_t*>(codes), tokens, bits, out);
    default: return unpack_words(static_cast<const std::uint64_t*>(codes), tokens, bits, out);
  }
}

#define KERNKIT_HASHATTN_INST(T)                                                              \
  template void attention<T>(const void*, const void*, int, int, const T*, T*, std::int64_t,  \
                             std::int64_t, std::int64_t, std::int64_t, double, bool, Mode,     \
                             const std::int64_t*);                                             \
  template void pack_signs<T>(const T*, std::int64_t, int, void*, int);
KERNKIT_HASHATTN_INST(float)
KERNKIT_HASHATTN_INST(double)

}  // namespace kernkit::hashattn
