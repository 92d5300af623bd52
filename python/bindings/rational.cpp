// Group-rational activations: CPU entry points (numpy or any CPU DLPack array, e.g. torch) and
// CUDA entry points (DLPack CUDA arrays: torch, CuPy). No math here; shapes are checked and the
// pointers forwarded to kernkit::rational_* with the GIL released.
#include <nanobind/ndarray.h>

#include <cstdint>
#include <string>

#include "address.hpp"
#include "defs.hpp"
#include "dtype_code.hpp"
#include "kernkit/rational.hpp"

namespace {

using kernkit::RationalForm;
using kernkit::RationalShape;
using In = nb::ndarray<nb::ro, nb::c_contig>;
using Out = nb::ndarray<nb::c_contig>;

using namespace kernkit_bindings;  // Code, code_of, at

template <class A>
void need(const A& a, const char* name, Code c) {
  if (code_of(a) != c)
    throw nb::type_error((std::string("rational: argument '") + name +
                          "' has the wrong dtype for this call").c_str());
}

template <class A>
void need_size(const A& a, const char* name, std::int64_t n) {
  if (static_cast<std::int64_t>(a.size()) != n)
    throw nb::value_error((std::string("rational: argument '") + name + "' must have " +
                           std::to_string(n) + " elements, got " + std::to_string(a.size()))
                              .c_str());
}

template <class A>
void need_device(const A& a, const char* name, bool cuda, int device) {
  const bool is_cuda = a.device_type() == nb::device::cuda::value;
  const bool is_cpu = a.device_type() == nb::device::cpu::value;
  if (cuda ? (!is_cuda || a.device_id() != device) : !is_cpu)
    throw nb::value_error((std::string("rational: argument '") + name + "' is on the wrong device")
                              .c_str());
}

// num: (num_groups, num_cols), den: (den_groups, den_cols).
RationalShape make_shape(std::int64_t num_groups, std::int64_t num_cols, std::int64_t den_groups,
                         std::int64_t den_cols, int form, std::int64_t outer, std::int64_t channels,
                         std::int64_t inner) {
  if (form < 0 || form > 2) throw nb::value_error("rational: 'form' must be 0 (A), 1 (B) or 2 (C)");
  RationalShape s;
  s.outer = outer;
  s.channels = channels;
  s.inner = inner;
  s.form = static_cast<RationalForm>(form);
  s.num_groups = num_groups;
  s.den_groups = den_groups;
  s.deg_num = static_cast<int>(num_cols) - 1;
  s.deg_den = static_cast<int>(den_cols) - (s.form == RationalForm::C ? 1 : 0);
  kernkit::rational_check(s);  // std::invalid_argument -> ValueError
  return s;
}

RationalShape make_shape(const In& num, const In& den, int form, std::int64_t outer,
                         std::int64_t channels, std::int64_t inner) {
  if (num.ndim() != 2) throw nb::value_error("rational: 'num' must be 2-D (groups, m+1)");
  if (den.ndim() != 2) throw nb::value_error("rational: 'den' must be 2-D (groups, n or n+1)");
  return make_shape(static_cast<std::int64_t>(num.shape(0)), static_cast<std::int64_t>(num.shape(1)),
                    static_cast<std::int64_t>(den.shape(0)), static_cast<std::int64_t>(den.shape(1)),
                    form, outer, channels, inner);
}

void forward_cpu(In x, In num, In den, Out y, int form, std::int64_t outer, std::int64_t channels,
                 std::int64_t inner) {
  const RationalShape s = make_shape(num, den, form, outer, channels, inner);
  const std::int64_t n = outer * channels * inner;
  for (auto* a : {&x, &num, &den}) need_device(*a, "x/num/den", false, 0);
  need_device(y, "y", false, 0);
  need_size(x, "x", n);
  need_size(y, "y", n);
  const Code c = code_of(x);
  if (c != F32 && c != F64) throw nb::type_error("rational: 'x' must be float32 or float64");
  need(num, "num", c);
  need(den, "den", c);
  need(y, "y", c);
  nb::gil_scoped_release nogil;
  if (c == F32)
    kernkit::rational_forward<float>(s, static_cast<const float*>(x.data()),
                                     static_cast<const float*>(num.data()),
                                     static_cast<const float*>(den.data()),
                                     static_cast<float*>(y.data()));
  else
    kernkit::rational_forward<double>(s, static_cast<const double*>(x.data()),
                                      static_cast<const double*>(num.data()),
                                      static_cast<const double*>(den.data()),
                                      static_cast<double*>(y.data()));
}

void backward_cpu(In grad, In x, In num, In den, Out dx, Out dnum, Out dden, int form,
                  std::int64_t outer, std::int64_t channels, std::int64_t inner) {
  const RationalShape s = make_shape(num, den, form, outer, channels, inner);
  const std::int64_t n = outer * channels * inner;
  for (auto* a : {&grad, &x, &num, &den}) need_device(*a, "grad_out/x/num/den", false, 0);
  for (auto* a : {&dx, &dnum, &dden}) need_device(*a, "dx/dnum/dden", false, 0);
  need_size(grad, "grad_out", n);
  need_size(x, "x", n);
  need_size(dx, "dx", n);
  need_size(dnum, "dnum", static_cast<std::int64_t>(num.size()));
  need_size(dden, "dden", static_cast<std::int64_t>(den.size()));
  const Code c = code_of(x);
  if (c != F32 && c != F64) throw nb::type_error("rational: 'x' must be float32 or float64");
  need(grad, "grad_out", c);
  need(num, "num", c);
  need(den, "den", c);
  need(dx, "dx", c);
  need(dnum, "dnum", c);
  need(dden, "dden", c);
  nb::gil_scoped_release nogil;
  if (c == F32)
    kernkit::rational_backward<float>(
        s, static_cast<const float*>(grad.data()), static_cast<const float*>(x.data()),
        static_cast<const float*>(num.data()), static_cast<const float*>(den.data()),
        static_cast<float*>(dx.data()), static_cast<float*>(dnum.data()),
        static_cast<float*>(dden.data()));
  else
    kernkit::rational_backward<double>(
        s, static_cast<const double*>(grad.data()), static_cast<const double*>(x.data()),
        static_cast<const double*>(num.data()), static_cast<const double*>(den.data()),
        static_cast<double*>(dx.data()), static_cast<double*>(dnum.data()),
        static_cast<double*>(dden.data()));
}

kernkit::cuda::RationalDtype cuda_dtype(const In& x, const In& num, const In& den) {
  const Code c = code_of(x);
  if (c == OTHER) throw nb::type_error("rational: 'x' must be float16, bfloat16, float32 or float64");
  const Code cc = c == F64 ? F64 : F32;
  need(num, "num", cc);
  need(den, "den", cc);
  switch (c) {
    case F32: return kernkit::cuda::RationalDtype::f32;
    case F64: return kernkit::cuda::RationalDtype::f64;
    case F16: return kernkit::cuda::RationalDtype::f16;
    default: return kernkit::cuda::RationalDtype::bf16;
  }
}

void forward_cuda(In x, In num, In den, Out y, int form, std::int64_t outer,
                  std::int64_t channels, std::int64_t inner, std::uintptr_t stream) {
  const RationalShape s = make_shape(num, den, form, outer, channels, inner);
  const std::int64_t n = outer * channels * inner;
  const int dev = x.device_id();
  for (auto* a : {&x, &num, &den}) need_device(*a, "x/num/den", true, dev);
  need_device(y, "y", true, dev);
  need_size(x, "x", n);
  need_size(y, "y", n);
  const auto dt = cuda_dtype(x, num, den);
  if (code_of(y) != code_of(x)) throw nb::type_error("rational: 'y' must have the dtype of 'x'");
  nb::gil_scoped_release nogil;
  kernkit::cuda::rational_forward(s, dt, x.data(), num.data(), den.data(), y.data(),
                                  reinterpret_cast<void*>(stream));
}

void backward_cuda(In grad, In x, In num, In den, Out dx, Out dnum, Out dden, int form,
                   std::int64_t outer, std::int64_t channels, std::int64_t inner,
                   std::uintptr_t stream) {
  const RationalShape s = make_shape(num, den, form, outer, channels, inner);
  const std::int64_t n = outer * channels * inner;
  const int dev = x.device_id();
  for (auto* a : {&grad, &x, &num, &den}) need_device(*a, "grad_out/x/num/den", true, dev);
  for (auto* a : {&dx, &dnum, &dden}) need_device(*a, "dx/dnum/dden", true, dev);
  need_size(grad, "grad_out", n);
  need_size(x, "x", n);
  need_size(dx, "dx", n);
  need_size(dnum, "dnum", static_cast<std::int64_t>(num.size()));
  need_size(dden, "dden", static_cast<std::int64_t>(den.size()));
  const auto dt = cuda_dtype(x, num, den);
  if (code_of(grad) != code_of(x) || code_of(dx) != code_of(x))
    throw nb::type_error("rational: 'grad_out' and 'dx' must have the dtype of 'x'");
  if (code_of(dnum) != code_of(num) || code_of(dden) != code_of(num))
    throw nb::type_error("rational: 'dnum' and 'dden' must have the dtype of 'num'");
  nb::gil_scoped_release nogil;
  kernkit::cuda::rational_backward(s, dt, grad.data(), x.data(), num.data(), den.data(),
                                   dx.data(), dnum.data(), dden.data(),
                                   reinterpret_cast<void*>(stream));
}

// The CUDA calls on device addresses: for torch / CuPy arrays whose shapes, dtypes, contiguity
// and device kernkit.rational has checked (importing a torch tensor as an nb::ndarray runs torch's
// Python __dlpack__, microseconds each: four per forward, seven per backward). dtype: a
// kernkit::cuda::RationalDtype; num and den are float64 for float64 x, float32 otherwise.
kernkit::cuda::RationalDtype dtype_of(int dtype) {
  if (dtype < 0 || dtype > 3) throw nb::value_error("rational: unknown CUDA dtype code");
  return static_cast<kernkit::cuda::RationalDtype>(dtype);
}

void forward_cuda_ptr(std::uintptr_t x, std::uintptr_t num, std::uintptr_t den, std::uintptr_t y,
                      int dtype, std::int64_t num_groups, std::int64_t num_cols,
                      std::int64_t den_groups, std::int64_t den_cols, int form, std::int64_t outer,
                      std::int64_t channels, std::int64_t inner, std::uintptr_t stream) {
  const RationalShape s = make_shape(num_groups, num_cols, den_groups, den_cols, form, outer, channels, inner);
  const auto dt = dtype_of(dtype);
  nb::gil_scoped_release nogil;
  kernkit::cuda::rational_forward(s, dt, at(x), at(num), at(den), at(y), at(stream));
}

void backward_cuda_ptr(std::uintptr_t grad, std::uintptr_t x, std::uintptr_t num, std::uintptr_t den,
                       std::uintptr_t dx, std::uintptr_t dnum, std::uintptr_t dden, int dtype,
                       std::int64_t num_groups, std::int64_t num_cols, std::int64_t den_groups,
                       std::int64_t den_cols, int form, std::int64_t outer, std::int64_t channels,
                       std::int64_t inner, std::uintptr_t stream) {
  const RationalShape s = make_shape(num_groups, num_cols, den_groups, den_cols, form, outer, channels, inner);
  const auto dt = dtype_of(dtype);
  nb::gil_scoped_release nogil;
  kernkit::cuda::rational_backward(s, dt, at(grad), at(x), at(num), at(den), at(dx), at(dnum), at(dden),
                                   at(stream));
}

}  // namespace

void def_rational(nb::module_& m) {
  m.def("rational_forward", &forward_cpu, nb::arg("x"), nb::arg("num"), nb::arg("den"),
        nb::arg("y"), nb::arg("form"), nb::arg("outer"), nb::arg("channels"), nb::arg("inner"));
  m.def("rational_backward", &backward_cpu, nb::arg("grad_out"), nb::arg("x"), nb::arg("num"),
        nb::arg("den"), nb::arg("dx"), nb::arg("dnum"), nb::arg("dden"), nb::arg("form"),
        nb::arg("outer"), nb::arg("channels"), nb::arg("inner"));
  m.def("rational_forward_cuda", &forward_cuda, nb::arg("x"), nb::arg("num"), nb::arg("den"),
        nb::arg("y"), nb::arg("form"), nb::arg("outer"), nb::arg("channels"), nb::arg("inner"),
        nb::arg("stream"));
  m.def("rational_backward_cuda", &backward_cuda, nb::arg("grad_out"), nb::arg("x"),
        nb::arg("num"), nb::arg("den"), nb::arg("dx"), nb::arg("dnum"), nb::arg("dden"),
        nb::arg("form"), nb::arg("outer"), nb::arg("channels"), nb::arg("inner"),
        nb::arg("stream"));
  m.def("rational_forward_cuda_ptr", &forward_cuda_ptr, nb::arg("x"), nb::arg("num"), nb::arg("den"),
        nb::arg("y"), nb::arg("dtype"), nb::arg("num_groups"), nb::arg("num_cols"),
        nb::arg("den_groups"), nb::arg("den_cols"), nb::arg("form"), nb::arg("outer"),
        nb::arg("channels"), nb::arg("inner"), nb::arg("stream"));
  m.def("rational_backward_cuda_ptr", &backward_cuda_ptr, nb::arg("grad_out"), nb::arg("x"),
        nb::arg("num"), nb::arg("den"), nb::arg("dx"), nb::arg("dnum"), nb::arg("dden"),
        nb::arg("dtype"), nb::arg("num_groups"), nb::arg("num_cols"), nb::arg("den_groups"),
        nb::arg("den_cols"), nb::arg("form"), nb::arg("outer"), nb::arg("channels"),
        nb::arg("inner"), nb::arg("stream"));
}
