// Power-exponent quantization: nanobind wrappers only (shapes checked, GIL released, no math).
#include <nanobind/ndarray.h>

#include <cstdint>
#include <string>

#include "address.hpp"
#include "defs.hpp"
#include "kernkit/quant.hpp"

namespace {

template <class T>
using CpuArr = nb::ndarray<T, nb::numpy, nb::device::cpu, nb::c_contig>;
template <class T>
using CudaArr = nb::ndarray<T, nb::device::cuda, nb::c_contig>;

// Row / group strides of a (1|rows, 1|ngroups, ...) parameter array (0 where broadcast).
template <class A>
void param_strides(const char* name, const A& p, std::int64_t rows, std::int64_t ng,
                   std::int64_t inner, std::int64_t& sr, std::int64_t& sg) {
  const std::size_t want_ndim = inner > 0 ? 3 : 2;
  if (p.ndim() != want_ndim)
    throw nb::value_error((std::string(name) + ": wrong number of dimensions").c_str());
  const std::int64_t pr = static_cast<std::int64_t>(p.shape(0));
  const std::int64_t pg = static_cast<std::int64_t>(p.shape(1));
  const std::int64_t pin = inner > 0 ? static_cast<std::int64_t>(p.shape(2)) : 1;
  if ((pr != 1 && pr != rows) || (pg != 1 && pg != ng) || (inner > 0 && pin != inner))
    throw nb::value_error((std::string(name) + ": shape does not broadcast to (rows, ngroups)").c_str());
  sg = pg == 1 ? 0 : pin;
  sr = pr == 1 ? 0 : pg * pin;
}

template <class T>
void encode(CpuArr<const T> w, std::int64_t group, int bits, bool full, CpuArr<const T> a,
            CpuArr<std::uint8_t> codes, CpuArr<T> scales) {
  if (w.ndim() != 2 || codes.ndim() != 2 || scales.ndim() != 2)
    throw nb::value_error("quant_encode: w, codes and scales must be 2-d");
  const std::int64_t rows = w.shape(0), cols = w.shape(1);
  const std::int64_t ng = group > 0 ? cols / group : 0;
  if (codes.shape(0) != w.shape(0) || codes.shape(1) != w.shape(1))
    throw nb::value_error("quant_encode: codes must have w's shape");
  if (static_cast<std::int64_t>(scales.shape(0)) != rows || static_cast<std::int64_t>(scales.shape(1)) != ng)
    throw nb::value_error("quant_encode: scales must be (rows, ngroups)");
  std::int64_t sr, sg;
  param_strides("quant_encode: a", a, rows, ng, 0, sr, sg);
  nb::gil_scoped_release nogil;
  kernkit::quant::encode<T>(w.data(), rows, cols, group, bits, full, a.data(), sr, sg,
                            codes.data(), scales.data());
}

template <class T>
void decode(CpuArr<const std::uint8_t> codes, std::int64_t group, int bits, CpuArr<const T> scales,
            CpuArr<const T> a, CpuArr<T> out) {
  if (codes.ndim() != 2 || out.ndim() != 2) throw nb::value_error("quant_decode: codes and out must be 2-d");
  const std::int64_t rows = codes.shape(0), cols = codes.shape(1);
  const std::int64_t ng = group > 0 ? cols / group : 0;
  if (out.shape(0) != codes.shape(0) || out.shape(1) != codes.shape(1))
    throw nb::value_error("quant_decode: out must have codes' shape");
  std::int64_t ssr, ssg, asr, asg;
  param_strides("quant_decode: scales", scales, rows, ng, 0, ssr, ssg);
  param_strides("quant_decode: a", a, rows, ng, 0, asr, asg);
  nb::gil_scoped_release nogil;
  kernkit::quant::decode<T>(codes.data(), rows, cols, group, bits, scales.data(), ssr, ssg,
                            a.data(), asr, asg, out.data());
}

void search_errors(CpuArr<const float> w, std::int64_t group, int bits, bool full,
                   CpuArr<const float> a, CpuArr<double> err) {
  if (w.ndim() != 2 || a.ndim() != 3 || err.ndim() != 3)
    throw nb::value_error("quant_search_errors: w must be 2-d, a and err 3-d");
  const std::int64_t rows = w.shape(0), cols = w.shape(1);
  const std::int64_t ng = group > 0 ? cols / group : 0;
  const std::int64_t K = a.shape(2);
  if (static_cast<std::int64_t>(err.shape(0)) != rows || static_cast<std::int64_t>(err.shape(1)) != ng ||
      static_cast<std::int64_t>(err.shape(2)) != K)
    throw nb::value_error("quant_search_errors: err must be (rows, ngroups, K)");
  std::int64_t sr, sg;
  param_strides("quant_search_errors: a", a, rows, ng, K, sr, sg);
  nb::gil_scoped_release nogil;
  kernkit::quant::search_errors(w.data(), rows, cols, group, bits, full, a.data(), sr, sg, 1, K,
                                err.data());
}

template <class Arr8, class ArrT, class ArrTc, class F>
void matmul_common(const char* fn, const Arr8& packed, int code_bits, int bits, std::int64_t cols,
                   std::int64_t group, const ArrTc& lut, const ArrTc& dscale, const ArrTc& x,
                   ArrT& y, F call) {
  const std::string f(fn);
  if (packed.ndim() != 2 || x.ndim() != 2 || y.ndim() != 2 || dscale.ndim() != 2)
    throw nb::value_error((f + ": packed, dscale, x and y must be 2-d").c_str());
  const std::int64_t rows = packed.shape(0), row_bytes = packed.shape(1), batch = x.shape(0);
  const std::int64_t ng = group > 0 ? cols / group : 0;
  if (static_cast<std::int64_t>(x.shape(1)) != cols)
    throw nb::value_error((f + ": x must be (batch, cols)").c_str());
  if (static_cast<std::int64_t>(y.shape(0)) != batch || static_cast<std::int64_t>(y.shape(1)) != rows)
    throw nb::value_error((f + ": y must be (batch, rows)").c_str());
  if (static_cast<std::int64_t>(dscale.shape(0)) != rows || static_cast<std::int64_t>(dscale.shape(1)) != ng)
    throw nb::value_error((f + ": dscale must be (rows, ngroups)").c_str());
  std::int64_t sr, sg;
  param_strides((f + ": lut").c_str(), lut, rows, ng, std::int64_t(1) << bits, sr, sg);
  call(rows, row_bytes, batch, sr, sg);
}

template <class T>
void lut_matmul(CpuArr<const std::uint8_t> packed, int code_bits, int bits, std::int64_t cols,
                std::int64_t group, CpuArr<const T> lut, CpuArr<const T> dscale,
                CpuArr<const T> x, CpuArr<T> y) {
  matmul_common("quant_lut_matmul", packed, code_bits, bits, cols, group, lut, dscale, x, y,
                [&](std::int64_t rows, std::int64_t row_bytes, std::int64_t batch, std::int64_t sr,
                    std::int64_t sg) {
                  nb::gil_scoped_release nogil;
                  kernkit::quant::lut_matmul<T>(packed.data(), row_bytes, code_bits, bits, rows,
                                                cols, group, lut.data(), sr, sg, dscale.data(),
                                                x.data(), batch, y.data());
                });
}

template <class T>
void lut_matmul_cuda(CudaArr<const std::uint8_t> packed, int code_bits, int bits,
                     std::int64_t cols, std::int64_t group, CudaArr<const T> lut,
                     CudaArr<const T> dscale, CudaArr<const T> x, CudaArr<T> y,
                     std::uintptr_t stream) {
  if (packed.device_id() != y.device_id() || x.device_id() != y.device_id() ||
      lut.device_id() != y.device_id() || dscale.device_id() != y.device_id())
    throw nb::value_error("quant_lut_matmul_cuda: all arrays must be on the same CUDA device");
  matmul_common("quant_lut_matmul_cuda", packed, code_bits, bits, cols, group, lut, dscale, x, y,
                [&](std::int64_t rows, std::int64_t row_bytes, std::int64_t batch, std::int64_t sr,
                    std::int64_t sg) {
                  nb::gil_scoped_release nogil;
                  kernkit::cuda::quant::lut_matmul<T>(packed.data(), row_bytes, code_bits, bits,
                                                      rows, cols, group, lut.data(), sr, sg,
                                                      dscale.data(), x.data(), batch, y.data(),
                                                      reinterpret_cast<void*>(stream));
                });
}

// The same call on device addresses: for torch / CuPy arrays whose shapes, dtypes, contiguity and
// device kernkit.quant has checked (the tables were made by PowerQuantized.to). Importing a torch
// tensor as an nb::ndarray runs torch's Python __dlpack__ (microseconds each, five per call).
void lut_matmul_cuda_ptr(std::uintptr_t packed, std::int64_t row_bytes, int code_bits, int bits,
                         std::int64_t rows, std::int64_t cols, std::int64_t group, std::uintptr_t lut,
                         std::int64_t l_sr, std::int64_t l_sg, std::uintptr_t dscale, std::uintptr_t x,
                         std::int64_t batch, std::uintptr_t y, bool f64, std::uintptr_t stream) {
  using kernkit_bindings::at;
  nb::gil_scoped_release nogil;
  kernkit_bindings::for_float_type(f64, [&](auto t) {
    using T = decltype(t);
    kernkit::cuda::quant::lut_matmul<T>(at<const std::uint8_t>(packed), row_bytes, code_bits, bits, rows,
                                        cols, group, at<const T>(lut), l_sr, l_sg, at<const T>(dscale),
                                        at<const T>(x), batch, at<T>(y), at(stream));
  });
}

}  // namespace

void def_quant(nb::module_& m) {
  m.def("quant_encode", &encode<float>, nb::arg("w"), nb::arg("group"), nb::arg("bits"),
        nb::arg("full"), nb::arg("a"), nb::arg("codes"), nb::arg("scales"));
  m.def("quant_encode", &encode<double>, nb::arg("w"), nb::arg("group"), nb::arg("bits"),
        nb::arg("full"), nb::arg("a"), nb::arg("codes"), nb::arg("scales"));
  m.def("quant_decode", &decode<float>, nb::arg("codes"), nb::arg("group"), nb::arg("bits"),
        nb::arg("scales"), nb::arg("a"), nb::arg("out"));
  m.def("quant_decode", &decode<double>, nb::arg("codes"), nb::arg("group"), nb::arg("bits"),
        nb::arg("scales"), nb::arg("a"), nb::arg("out"));
  m.def("quant_search_errors", &search_errors, nb::arg("w"), nb::arg("group"), nb::arg("bits"),
        nb::arg("full"), nb::arg("a"), nb::arg("err"));
  m.def("quant_lut_matmul", &lut_matmul<float>, nb::arg("packed"), nb::arg("code_bits"),
        nb::arg("bits"), nb::arg("cols"), nb::arg("group"), nb::arg("lut"), nb::arg("dscale"),
        nb::arg("x"), nb::arg("y"));
  m.def("quant_lut_matmul", &lut_matmul<double>, nb::arg("packed"), nb::arg("code_bits"),
        nb::arg("bits"), nb::arg("cols"), nb::arg("group"), nb::arg("lut"), nb::arg("dscale"),
        nb::arg("x"), nb::arg("y"));
  m.def("quant_lut_matmul_cuda", &lut_matmul_cuda<float>, nb::arg("packed"), nb::arg("code_bits"),
        nb::arg("bits"), nb::arg("cols"), nb::arg("group"), nb::arg("lut"), nb::arg("dscale"),
        nb::arg("x"), nb::arg("y"), nb::arg("stream"));
  m.def("quant_lut_matmul_cuda", &lut_matmul_cuda<double>, nb::arg("packed"), nb::arg("code_bits"),
        nb::arg("bits"), nb::arg("cols"), nb::arg("group"), nb::arg("lut"), nb::arg("dscale"),
        nb::arg("x"), nb::arg("y"), nb::arg("stream"));
  m.def("quant_lut_matmul_cuda_ptr", &lut_matmul_cuda_ptr, nb::arg("packed"), nb::arg("row_bytes"),
        nb::arg("code_bits"), nb::arg("bits"), nb::arg("rows"), nb::arg("cols"), nb::arg("group"),
        nb::arg("lut"), nb::arg("l_sr"), nb::arg("l_sg"), nb::arg("dscale"), nb::arg("x"),
        nb::arg("batch"), nb::arg("y"), nb::arg("f64"), nb::arg("stream"));
}
