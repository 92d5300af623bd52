// Binary-hash linear attention (EcoFormer, Liu et al. NeurIPS 2022): attention from b-bit codes
// packed into machine words, accumulated with additions and subtractions only.
//
// Codes. Token t's code is one unsigned word of `word_bytes` (1, 2, 4 or 8) bytes; bit r (LSB
// first, r < bits) set means s_r = +1, clear means s_r = -1. Bits at and above `bits` are ignored.
// For ±1 codes h_i^T h_j = sum_r s_ir s_jr = bits - 2 popcount(h_i xor h_j).
//
// Attention per (batch*head) slice, queries i < nq, keys j < nk (nk == nq when causal or in the
// ecoformer mode), values v (nk x d, row-major), c = `offset`:
//   consistent: out_i = sum_j (h_i^T h_j + c) v_j / sum_j (h_i^T h_j + c)
//   ecoformer : out_i = (sum_j (h_i^T h_j) v_j + c v_i) / (sum_j h_i^T h_j + N_i c)
// where the sums run over j < nk, or j <= i when causal (then N_i = i + 1, else N_i = nk).
// Evaluated in O(n b d) through h_i^T (sum_j h_j v_j^T): per bit r the signed value sum
// S_r = sum_j s_jr v_j and the integer k_r = sum_j s_jr; then out_i = (sum_r s_ir S_r + ...) /
// (sum_r s_ir k_r + ...). The CPU non-causal path scatters value rows into 2^4 buckets per
// 4-bit group of the code (one add per row and group) and reads the output from 16-entry tables
// per group (one add per row and group); the causal path keeps the running S_r. Denominators
// are computed exactly from integer counts; float inputs accumulate value sums in double.
#pragma once
#include <cstdint>

namespace kernkit::hashattn {

enum class Mode : int { consistent = 0, ecoformer = 1 };

// Throws std::invalid_argument (naming the argument) unless the shape is valid.
void check_args(int word_bytes, int bits, std::int64_t batch_heads, std::int64_t nq,
                std::int64_t nk, std::int64_t d, bool causal, Mode mode);

// The smallest word (1, 2, 4 or 8 bytes) holding `bits` bits (1..64).
int word_bytes_for(int bits);

// out (batch_heads x nq x d) from codes hq (batch_heads x nq words), hk (batch_heads x nk
// words) and v (batch_heads x nk x d); all contiguous. Threads over batch*heads; each slice is
// computed by one thread in a fixed order, so results do not depend on the thread count.
// key_lengths (optional, non-causal only): slice s attends to its first key_lengths[s] keys
// (1..nk; padding keys after them get no weight, and N = key_lengths[s] in the ecoformer mode).
template <class T>
void attention(const void* hq, const void* hk, int word_bytes, int bits, const T* v, T* out,
               std::int64_t batch_heads, std::int64_t nq, std::int64_t nk, std::int64_t d,
               double offset, bool causal, Mode mode,
               const std::int64_t* key_lengths = nullptr);

// Pack signs: codes[t] has bit r set iff x[t*bits + r] >= 0 (sign(0) = +1; NaN counts as -1).
template <class T>
void pack_signs(const T* x, std::int64_t tokens, int bits, void* codes, int word_bytes);

// Unpack: out[t*bits + r] = +1 if bit r of codes[t] is set, else -1.
void unpack(const void* codes, int word_bytes, std::int64_t tokens, int bits, std::int8_t* out);

}  // namespace kernkit::hashattn

namespace kernkit::cuda::hashattn {

enum class Dtype : int { f32 = 0, f64 = 1, f16 = 2, bf16 = 3 };

// Scratch bytes the CUDA attention needs (the caller allocates them on the device).
std::int64_t workspace_bytes(int bits, std::int64_t batch_heads, std::int64_t nq,
                             std::int64_t nk, std::int64_t d, bool causal, Dtype dtype);

// The same attention on device pointers; v and out of `dtype` (f16/bf16/f32 accumulate in
// float32, f64 in float64), codes as on the CPU; enqueued on `stream` (a cudaStream_t).
// key_lengths: optional device array (batch_heads int64, values clamped to [0, nk]).
// Throws std::runtime_error in a build without CUDA.
void attention(const void* hq, const void* hk, int word_bytes, int bits, const void* v, void* out,
               Dtype dtype, std::int64_t batch_heads, std::int64_t nq, std::int64_t nk,
               std::int64_t d, double offset, bool causal, kernkit::hashattn::Mode mode,
               void* workspace, std::int64_t workspace_bytes, void* stream,
               const std::int64_t* key_lengths = nullptr);

}  // namespace kernkit::cuda::hashattn
