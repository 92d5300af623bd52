// Helpers of the bindings that take device addresses (the torch / CuPy paths of the CUDA calls,
// whose arrays kernkit's Python side has checked): an address as a typed pointer, and the element
// type chosen by a float64 flag.
#pragma once
#include <cstdint>

namespace kernkit_bindings {

template <class T = void>
T* at(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

// f(T{}) with T = double where f64, else float.
template <class F>
void for_float_type(bool f64, F&& f) {
  if (f64) f(double{});
  else f(float{});
}

}  // namespace kernkit_bindings
