// Group-rational (Padé) activations: F(x) = P(x) / Q(x) per channel group, forward and backward
// (input and coefficient gradients). The scalar math is in <kernkit/math/rational.hpp>.
//
// Layout: the input is viewed as (outer, channels, inner) in C order: channels-last (..., D) is
// inner = 1; channels-first (B, C, H, W) is outer = B, channels = C, inner = H*W. Channel d uses
// numerator group d / (channels / num_groups) and denominator group d / (channels / den_groups).
// Coefficients: num[num_groups][deg_num + 1] = a_0..a_m; den[den_groups][nd] with nd = deg_den
// (b_1..b_n, forms A and B) or deg_den + 1 (b_0..b_n, form C).
#pragma once
#include <cstdint>

#include "kernkit/math/rational.hpp"

namespace kernkit {

struct RationalShape {
  std::int64_t outer = 1, channels = 1, inner = 1;
  std::int64_t num_groups = 1, den_groups = 1;
  int deg_num = 5, deg_den = 4;
  RationalForm form = RationalForm::A;
};

// Throws std::invalid_argument (naming the field) unless the shape is valid: sizes >= 0,
// group counts >= 1 dividing `channels`, degrees in [0, math::rational_max_degree].
void rational_check(const RationalShape& s);

// y = F(x), elementwise over outer*channels*inner contiguous elements.
template <class T>
void rational_forward(const RationalShape& s, const T* x, const T* num, const T* den, T* y);

// Gradients of sum(grad * F(x)): dx (same layout as x), dnum (num_groups x (deg_num+1)) and
// dden (den_groups x nd). Coefficient gradients are reduced per fixed chunk in double and the
// chunks summed in a fixed order: bitwise identical for any thread count. dx may be null
// (coefficient gradients only); dnum/dden may be null (dx only).
template <class T>
void rational_backward(const RationalShape& s, const T* grad, const T* x, const T* num,
                       const T* den, T* dx, T* dnum, T* dden);

namespace cuda {
// Element types of the CUDA entry points. Coefficients and their gradients are float32 for
// f32/f16/bf16 inputs and float64 for f64 inputs; the math is in float64 for f32 and f64 inputs
// and in float32 for f16/bf16.
enum class RationalDtype : int { f32 = 0, f64 = 1, f16 = 2, bf16 = 3 };

// The same on device pointers, enqueued on `stream` (a cudaStream_t; nullptr = default stream).
// Throws std::runtime_error in a build without CUDA or on a launch error.
void rational_forward(const RationalShape& s, RationalDtype dtype, const void* x,
                      const void* num, const void* den, void* y, void* stream);
// Deterministic two-pass reduction (per-block partials in a stream-ordered workspace, then a
// fixed-order sum): bitwise identical run to run.
void rational_backward(const RationalShape& s, RationalDtype dtype, const void* grad,
                       const void* x, const void* num, const void* den, void* dx, void* dnum,
                       void* dden, void* stream);
}  // namespace cuda

}  // namespace kernkit
