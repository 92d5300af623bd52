// The floating element type of a DLPack array, for bindings that take float16/bfloat16 too.
#pragma once
#include <nanobind/ndarray.h>

#include <cstdint>

namespace kernkit_bindings {

enum Code { F32, F64, F16, BF16, OTHER };

template <class A>
Code code_of(const A& a) {
  namespace nb = nanobind;
  const nb::dlpack::dtype d = a.dtype();
  if (d == nb::dtype<float>()) return F32;
  if (d == nb::dtype<double>()) return F64;
  if (d.lanes == 1 && d.bits == 16 && d.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::Float)) return F16;
  if (d.lanes == 1 && d.bits == 16 && d.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::Bfloat)) return BF16;
  return OTHER;
}

}  // namespace kernkit_bindings
