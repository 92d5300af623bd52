// The special functions as numpy ufuncs (CPU) and a CUDA entry point. No math here: the loops
// forward numpy's pointers and strides to kernkit::special.
#define PY_SSIZE_T_CLEAN
#define NPY_NO_DEPRECATED_API NPY_1_23_API_VERSION
#define NPY_TARGET_VERSION NPY_1_23_API_VERSION
#include <numpy/arrayobject.h>
#include <numpy/ufuncobject.h>

#include <nanobind/ndarray.h>

#include <cfenv>
#include <cstdint>

#include "address.hpp"
#include "defs.hpp"
#include "kernkit/special.hpp"

namespace {

using kernkit::SpecialFn;

template <class T>
void ufunc_loop(char** args, npy_intp const* dims, npy_intp const* steps, void* data) {
  const auto fn = static_cast<SpecialFn>(reinterpret_cast<std::intptr_t>(data));
  const std::int64_t n = dims[0];
  constexpr npy_intp sz = sizeof(T);
  if (steps[0] % sz == 0 && steps[1] % sz == 0 && steps[2] % sz == 0) {
    kernkit::special<T>(fn, n, reinterpret_cast<const T*>(args[0]), steps[0] / sz,
                        reinterpret_cast<const T*>(args[1]), steps[1] / sz,
                        reinterpret_cast<T*>(args[2]), steps[2] / sz);
  } else {
    // Byte strides that are not whole elements (views into packed records): one at a time.
    for (std::int64_t i = 0; i < n; ++i)
      kernkit::special<T>(fn, 1, reinterpret_cast<const T*>(args[0] + i * steps[0]), 0,
                          reinterpret_cast<const T*>(args[1] + i * steps[1]), 0,
                          reinterpret_cast<T*>(args[2] + i * steps[2]), 0);
  }
  // Like scipy.special: exact limits (log 0 = -inf) and NaN for invalid input raise no
  // numpy warnings, so the flags intermediate steps set are cleared here.
  std::feclearexcept(FE_ALL_EXCEPT);
}

struct UfuncSpec {
  SpecialFn fn;
  const char* name;
  const char* doc;
};

// Static storage: numpy keeps pointers to these for the lifetime of the ufuncs.
PyUFuncGenericFunction g_loops[2] = {&ufunc_loop<float>, &ufunc_loop<double>};
char g_types[6] = {NPY_FLOAT, NPY_FLOAT, NPY_FLOAT, NPY_DOUBLE, NPY_DOUBLE, NPY_DOUBLE};
void* g_data[static_cast<int>(SpecialFn::count_)][2];

const UfuncSpec g_specs[] = {
    {SpecialFn::log_iv, "log_iv", "log_iv(v, x)\n\nlog I_v(x), the logarithm of the modified Bessel function of the first kind."},
    {SpecialFn::log_kv, "log_kv", "log_kv(v, x)\n\nlog K_v(x), the logarithm of the modified Bessel function of the second kind."},
    {SpecialFn::log_ive, "log_ive", "log_ive(v, x)\n\nlog I_v(x) - |x|."},
    {SpecialFn::log_kve, "log_kve", "log_kve(v, x)\n\nlog K_v(x) + x."},
    {SpecialFn::iv_ratio, "bessel_iv_ratio", "bessel_iv_ratio(v, x)\n\nI_{v+1}(x) / I_v(x)."},
    {SpecialFn::dlog_iv, "dlog_iv", "dlog_iv(v, x)\n\nd/dx log I_v(x)."},
    {SpecialFn::dlog_kv, "dlog_kv", "dlog_kv(v, x)\n\nd/dx log K_v(x)."},
};

template <class T>
using CudaArray = nb::ndarray<T, nb::device::cuda, nb::c_contig>;

template <class T>
void special_cuda(int fn, CudaArray<const T> v, CudaArray<const T> x, CudaArray<T> out,
                  std::uintptr_t stream) {
  const std::int64_t n = static_cast<std::int64_t>(out.size());
  if (v.size() != out.size() || x.size() != out.size())
    throw nb::value_error("special_cuda: v, x and out must have the same number of elements");
  if (v.device_id() != out.device_id() || x.device_id() != out.device_id())
    throw nb::value_error("special_cuda: v, x and out must be on the same CUDA device");
  nb::gil_scoped_release nogil;
  kernkit::cuda::special<T>(static_cast<SpecialFn>(fn), n, v.data(), 1, x.data(), 1, out.data(), 1,
                            reinterpret_cast<void*>(stream));
}

// The same on device addresses of n contiguous elements each: for torch / CuPy arrays that
// kernkit._dispatch has checked and made (importing a torch tensor as an nb::ndarray runs its
// Python __dlpack__, microseconds each, three per call and three more for float64, whose import
// as float32 is tried first).
void special_cuda_ptr(int fn, std::int64_t n, std::uintptr_t v, std::uintptr_t x, std::uintptr_t out,
                      bool f64, std::uintptr_t stream) {
  if (n < 0) throw nb::value_error("special_cuda: n must be >= 0");
  using kernkit_bindings::at;
  nb::gil_scoped_release nogil;
  kernkit_bindings::for_float_type(f64, [&](auto t) {
    using T = decltype(t);
    kernkit::cuda::special<T>(static_cast<SpecialFn>(fn), n, at<const T>(v), 1, at<const T>(x), 1, at<T>(out),
                              1, at(stream));
  });
}

}  // namespace

void def_special(nb::module_& m) {
  if (PyArray_ImportNumPyAPI() < 0) throw nb::python_error();
  if (PyUFunc_ImportUFuncAPI() < 0) throw nb::python_error();
  nb::dict ufuncs;
  for (const auto& s : g_specs) {
    const int id = static_cast<int>(s.fn);
    g_data[id][0] = g_data[id][1] = reinterpret_cast<void*>(static_cast<std::intptr_t>(id));
    PyObject* uf = PyUFunc_FromFuncAndData(g_loops, g_data[id], g_types, 2, 2, 1, PyUFunc_None,
                                           s.name, s.doc, 0);
    if (!uf) throw nb::python_error();
    ufuncs[s.name] = nb::make_tuple(nb::steal(uf), id);
  }
  m.attr("special_ufuncs") = ufuncs;  // name -> (numpy.ufunc, function id)
  m.def("special_cuda", &special_cuda<float>, nb::arg("fn"), nb::arg("v"), nb::arg("x"),
        nb::arg("out"), nb::arg("stream"));
  m.def("special_cuda", &special_cuda<double>, nb::arg("fn"), nb::arg("v"), nb::arg("x"),
        nb::arg("out"), nb::arg("stream"));
  m.def("special_cuda_ptr", &special_cuda_ptr, nb::arg("fn"), nb::arg("n"), nb::arg("v"), nb::arg("x"),
        nb::arg("out"), nb::arg("f64"), nb::arg("stream"));
}
