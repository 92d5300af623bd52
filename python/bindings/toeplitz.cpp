// The real FFT and the Toeplitz products: nanobind wrappers only (shapes checked, GIL released,
// no math). Python (kernkit/fft.py, kernkit/toeplitz.py) validates and allocates.
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>

#include <cstdint>
#include <optional>
#include <string>

#include "address.hpp"
#include "defs.hpp"
#include "kernkit/fft.hpp"
#include "kernkit/toeplitz.hpp"

namespace {

using i64 = std::int64_t;
template <class T>
using CpuC = nb::ndarray<T, nb::numpy, nb::device::cpu, nb::c_contig>;
template <class T>
using CpuAny = nb::ndarray<T, nb::numpy, nb::device::cpu>;
template <class T>
using CudaC = nb::ndarray<T, nb::device::cuda, nb::c_contig>;
template <class T>
using CudaAny = nb::ndarray<T, nb::device::cuda>;

void need(bool ok, const std::string& msg) {
  if (!ok) throw nb::value_error(msg.c_str());
}

template <class T>
void rfft(CpuC<const T> x, i64 n, CpuC<T> out) {
  need(x.ndim() == 2 && out.ndim() == 2, "fft_rfft: x and out must be 2-d");
  need(out.shape(0) == x.shape(0) && static_cast<i64>(out.shape(1)) == 2 * (n / 2 + 1),
       "fft_rfft: out must be (rows, 2*(n//2+1))");
  const i64 rows = x.shape(0), m = x.shape(1);
  nb::gil_scoped_release nogil;
  kernkit::fft::rfft<T>(x.data(), m, m, n, rows, out.data(), 2 * (n / 2 + 1));
}

template <class T>
void irfft(CpuC<const T> X, i64 n, CpuC<T> out) {
  need(X.ndim() == 2 && out.ndim() == 2 && X.shape(1) % 2 == 0,
       "fft_irfft: X must be (rows, 2*m) and out 2-d");
  need(out.shape(0) == X.shape(0) && static_cast<i64>(out.shape(1)) == n,
       "fft_irfft: out must be (rows, n)");
  const i64 rows = X.shape(0), m2 = X.shape(1);
  nb::gil_scoped_release nogil;
  kernkit::fft::irfft<T>(X.data(), m2 / 2, m2, n, rows, out.data(), n);
}

// (1|nb, n) coefficient arrays: batch stride 0 when shared.
template <class A>
i64 coef_stride(const char* name, const A& a, i64 nb, i64 n) {
  need(a.ndim() == 2 && static_cast<i64>(a.shape(1)) == n &&
           (a.shape(0) == 1 || static_cast<i64>(a.shape(0)) == nb),
       std::string(name) + " must be (1 or batch, n)");
  return a.shape(0) == 1 ? 0 : n;
}

template <class T, class C, class Opt>
void spectrum_common(const C& c, const Opt& r, bool causal, i64 L, i64 nb, i64 n, i64& cbs,
                     i64& rbs) {
  cbs = coef_stride("c", c, nb, n);
  rbs = 0;
  if (!causal) {
    need(r.has_value(), "r is required unless causal");
    rbs = coef_stride("r", *r, nb, n);
  }
  need(L >= 2 * n - 1 && L % 2 == 0, "L must be even and >= 2n - 1");
}

template <class T>
void spectrum(CpuC<const T> c, std::optional<CpuC<const T>> r, bool causal, i64 L, CpuC<T> spec) {
  need(spec.ndim() == 2 && static_cast<i64>(spec.shape(1)) == L + 2, "spec must be (batch, L+2)");
  const i64 nb = spec.shape(0), n = c.ndim() == 2 ? static_cast<i64>(c.shape(1)) : -1;
  i64 cbs, rbs;
  spectrum_common<T>(c, r, causal, L, nb, n, cbs, rbs);
  const T* rp = r ? r->data() : nullptr;
  nb::gil_scoped_release nogil;
  kernkit::toeplitz::spectrum<T>(c.data(), cbs, rp, rbs, causal, n, nb, L, spec.data());
}

template <class XA, class YA, class SA>
void product_shapes(const XA& X, const YA& Y, const SA* spec, i64 L, i64& nb, i64& n, i64& k,
                    i64& sbs) {
  need(X.ndim() == 3 && Y.ndim() == 3, "X and Y must be 3-d (batch, n, k)");
  nb = X.shape(0), n = X.shape(1), k = X.shape(2);
  need(Y.shape(0) == X.shape(0) && Y.shape(1) == X.shape(1) && Y.shape(2) == X.shape(2),
       "Y must have X's shape");
  sbs = 0;
  if (spec) {
    need(spec->ndim() == 2 && static_cast<i64>(spec->shape(1)) == L + 2 &&
             (spec->shape(0) == 1 || static_cast<i64>(spec->shape(0)) == nb),
         "spec must be (1 or batch, L+2)");
    sbs = spec->shape(0) == 1 ? 0 : L + 2;
    need(L >= 2 * n - 1 && L % 2 == 0, "L must be even and >= 2n - 1");
  }
}

template <class T>
void matmul_spectrum(CpuC<const T> spec, i64 L, CpuAny<const T> X, CpuC<T> Y) {
  i64 nb, n, k, sbs;
  product_shapes(X, Y, &spec, L, nb, n, k, sbs);
  nb::gil_scoped_release nogil;
  kernkit::toeplitz::matmul_spectrum<T>(spec.data(), sbs, L, n, X.data(), nb, k, X.stride(0),
                                        X.stride(1), X.stride(2), Y.data());
}

template <class T>
void matmul(CpuC<const T> c, std::optional<CpuC<const T>> r, bool causal, CpuAny<const T> X,
            CpuC<T> Y, int path) {
  i64 nb, n, k, sbs;
  product_shapes(X, Y, static_cast<CpuC<const T>*>(nullptr), 0, nb, n, k, sbs);
  i64 cbs, rbs;
  spectrum_common<T>(c, r, causal, 2 * n + 2, nb, n, cbs, rbs);
  const T* rp = r ? r->data() : nullptr;
  nb::gil_scoped_release nogil;
  if (path == 1)
    kernkit::toeplitz::matmul_direct<T>(c.data(), cbs, rp, rbs, causal, n, X.data(), nb, k,
                                        X.stride(0), X.stride(1), X.stride(2), Y.data());
  else if (path == 2)
    kernkit::toeplitz::matmul_fft<T>(c.data(), cbs, rp, rbs, causal, n, X.data(), nb, k,
                                     X.stride(0), X.stride(1), X.stride(2), Y.data());
  else
    kernkit::toeplitz::matmul<T>(c.data(), cbs, rp, rbs, causal, n, X.data(), nb, k, X.stride(0),
                                 X.stride(1), X.stride(2), Y.data());
}

template <class T>
void spectrum_cuda(CudaC<const T> c, std::optional<CudaC<const T>> r, bool causal, i64 L,
                   CudaC<T> spec, std::uintptr_t stream) {
  need(spec.ndim() == 2 && static_cast<i64>(spec.shape(1)) == L + 2, "spec must be (batch, L+2)");
  need(c.device_id() == spec.device_id() && (!r || r->device_id() == spec.device_id()),
       "c, r and spec must be on the same CUDA device");
  const i64 nb = spec.shape(0), n = c.ndim() == 2 ? static_cast<i64>(c.shape(1)) : -1;
  i64 cbs, rbs;
  spectrum_common<T>(c, r, causal, L, nb, n, cbs, rbs);
  const T* rp = r ? r->data() : nullptr;
  nb::gil_scoped_release nogil;
  kernkit::cuda::toeplitz::spectrum<T>(c.data(), cbs, rp, rbs, causal, n, nb, L, spec.data(),
                                       reinterpret_cast<void*>(stream));
}

template <class T>
void matmul_spectrum_cuda(CudaC<const T> spec, i64 L, CudaAny<const T> X, CudaC<T> Y,
                          std::uintptr_t stream) {
  need(spec.device_id() == Y.device_id() && X.device_id() == Y.device_id(),
       "spec, X and Y must be on the same CUDA device");
  i64 nb, n, k, sbs;
  product_shapes(X, Y, &spec, L, nb, n, k, sbs);
  nb::gil_scoped_release nogil;
  kernkit::cuda::toeplitz::matmul_spectrum<T>(spec.data(), sbs, L, n, X.data(), nb, k,
                                              X.stride(0), X.stride(1), X.stride(2), Y.data(),
                                              reinterpret_cast<void*>(stream));
}

// The CUDA calls on device addresses: for torch / CuPy arrays whose shapes, dtypes and device
// kernkit.toeplitz has checked and made (importing a torch tensor as an nb::ndarray runs its
// Python __dlpack__, microseconds each: three per call, twice for float64, whose import as
// float32 is tried first). Strides in elements; a coefficient or spectrum batch stride 0 shares
// one row.
void spectrum_cuda_ptr(std::uintptr_t c, i64 cbs, std::uintptr_t r, i64 rbs, bool causal, i64 n,
                       i64 nb, i64 L, std::uintptr_t spec, bool f64, std::uintptr_t stream) {
  need(causal || r != 0, "r is required unless causal");
  need(L >= 2 * n - 1 && L % 2 == 0, "L must be even and >= 2n - 1");
  using kernkit_bindings::at;
  nb::gil_scoped_release nogil;
  kernkit_bindings::for_float_type(f64, [&](auto t) {
    using T = decltype(t);
    kernkit::cuda::toeplitz::spectrum<T>(at<const T>(c), cbs, causal ? nullptr : at<const T>(r), rbs, causal,
                                         n, nb, L, at<T>(spec), at(stream));
  });
}

void matmul_spectrum_cuda_ptr(std::uintptr_t spec, i64 sbs, i64 L, i64 n, std::uintptr_t X, i64 nb,
                              i64 k, i64 xs0, i64 xs1, i64 xs2, std::uintptr_t Y, bool f64,
                              std::uintptr_t stream) {
  need(L >= 2 * n - 1 && L % 2 == 0, "L must be even and >= 2n - 1");
  using kernkit_bindings::at;
  nb::gil_scoped_release nogil;
  kernkit_bindings::for_float_type(f64, [&](auto t) {
    using T = decltype(t);
    kernkit::cuda::toeplitz::matmul_spectrum<T>(at<const T>(spec), sbs, L, n, at<const T>(X), nb, k, xs0, xs1,
                                                xs2, at<T>(Y), at(stream));
  });
}

}  // namespace

void def_toeplitz(nb::module_& m) {
  m.def("fft_next_fast_len", &kernkit::fft::next_fast_len, nb::arg("n"));
  m.def("fft_plan_cache_bytes", &kernkit::fft::plan_cache_bytes);
  m.def("fft_rfft", &rfft<float>, nb::arg("x"), nb::arg("n"), nb::arg("out"));
  m.def("fft_rfft", &rfft<double>, nb::arg("x"), nb::arg("n"), nb::arg("out"));
  m.def("fft_irfft", &irfft<float>, nb::arg("X"), nb::arg("n"), nb::arg("out"));
  m.def("fft_irfft", &irfft<double>, nb::arg("X"), nb::arg("n"), nb::arg("out"));
  m.def("toeplitz_fft_length", &kernkit::toeplitz::fft_length, nb::arg("n"));
  m.def(
      "toeplitz_cuda_fft_length",
      [](i64 n, bool dbl) {
        return dbl ? kernkit::cuda::toeplitz::fft_length<double>(n) : kernkit::cuda::toeplitz::fft_length<float>(n);
      },
      nb::arg("n"), nb::arg("float64"));
  m.def("toeplitz_use_direct", &kernkit::toeplitz::use_direct, nb::arg("n"), nb::arg("k"));
  m.def("toeplitz_spectrum", &spectrum<float>, nb::arg("c"), nb::arg("r").none(),
        nb::arg("causal"), nb::arg("L"), nb::arg("spec"));
  m.def("toeplitz_spectrum", &spectrum<double>, nb::arg("c"), nb::arg("r").none(),
        nb::arg("causal"), nb::arg("L"), nb::arg("spec"));
  m.def("toeplitz_matmul_spectrum", &matmul_spectrum<float>, nb::arg("spec"), nb::arg("L"),
        nb::arg("X"), nb::arg("Y"));
  m.def("toeplitz_matmul_spectrum", &matmul_spectrum<double>, nb::arg("spec"), nb::arg("L"),
        nb::arg("X"), nb::arg("Y"));
  // path: 0 automatic, 1 direct, 2 FFT
  m.def("toeplitz_matmul", &matmul<float>, nb::arg("c"), nb::arg("r").none(), nb::arg("causal"),
        nb::arg("X"), nb::arg("Y"), nb::arg("path") = 0);
  m.def("toeplitz_matmul", &matmul<double>, nb::arg("c"), nb::arg("r").none(), nb::arg("causal"),
        nb::arg("X"), nb::arg("Y"), nb::arg("path") = 0);
  m.def("toeplitz_spectrum_cuda", &spectrum_cuda<float>, nb::arg("c"), nb::arg("r").none(),
        nb::arg("causal"), nb::arg("L"), nb::arg("spec"), nb::arg("stream"));
  m.def("toeplitz_spectrum_cuda", &spectrum_cuda<double>, nb::arg("c"), nb::arg("r").none(),
        nb::arg("causal"), nb::arg("L"), nb::arg("spec"), nb::arg("stream"));
  m.def("toeplitz_matmul_spectrum_cuda", &matmul_spectrum_cuda<float>, nb::arg("spec"),
        nb::arg("L"), nb::arg("X"), nb::arg("Y"), nb::arg("stream"));
  m.def("toeplitz_matmul_spectrum_cuda", &matmul_spectrum_cuda<double>, nb::arg("spec"),
        nb::arg("L"), nb::arg("X"), nb::arg("Y"), nb::arg("stream"));
  m.def("toeplitz_spectrum_cuda_ptr", &spectrum_cuda_ptr, nb::arg("c"), nb::arg("c_batch_stride"),
        nb::arg("r"), nb::arg("r_batch_stride"), nb::arg("causal"), nb::arg("n"), nb::arg("batch"),
        nb::arg("L"), nb::arg("spec"), nb::arg("f64"), nb::arg("stream"));
  m.def("toeplitz_matmul_spectrum_cuda_ptr", &matmul_spectrum_cuda_ptr, nb::arg("spec"),
        nb::arg("spec_batch_stride"), nb::arg("L"), nb::arg("n"), nb::arg("X"), nb::arg("batch"),
        nb::arg("k"), nb::arg("x_stride0"), nb::arg("x_stride1"), nb::arg("x_stride2"), nb::arg("Y"),
        nb::arg("f64"), nb::arg("stream"));
}
