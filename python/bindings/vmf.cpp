// The vMF row statistics (kernkit.vmf's log-density and fit), A_p(kappa) and the kappa MLE. No
// math here: shapes are checked and the pointers forwarded to kernkit::vmf with the GIL released.
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

#include "defs.hpp"
#include "kernkit/vmf.hpp"

namespace {

using Rows = nb::ndarray<const double, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
using Vec = nb::ndarray<const double, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using OutVec = nb::ndarray<double, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using OutInts = nb::ndarray<int, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

void row_stats(Rows x, Vec mu, OutVec norm2, OutVec dot, OutVec dist2) {
  const std::int64_t n = static_cast<std::int64_t>(x.shape(0)), p = static_cast<std::int64_t>(x.shape(1));
  if (static_cast<std::int64_t>(mu.shape(0)) != p)
    throw nb::value_error("vmf_row_stats: mu must have as many elements as x has columns");
  for (const OutVec* o : {&norm2, &dot, &dist2})
    if (static_cast<std::int64_t>(o->shape(0)) != n)
      throw nb::value_error("vmf_row_stats: each output must have one element per row of x");
  nb::gil_scoped_release nogil;
  kernkit::vmf::row_stats(n, p, x.data(), p, mu.data(), norm2.data(), dot.data(), dist2.data());
}

void check_same(const char* what, std::size_t n, std::initializer_list<std::size_t> sizes) {
  for (std::size_t m : sizes)
    if (m != n) throw nb::value_error((std::string(what) + ": every array must have the same length").c_str());
}

void a_u_da(int p, Vec kappa, double thr, Vec c, OutVec A, OutVec u, OutVec dA) {
  const std::size_t n = kappa.shape(0);
  check_same("vmf_a_u_da", n, {A.shape(0), u.shape(0), dA.shape(0)});
  nb::gil_scoped_release nogil;
  kernkit::vmf::a_u_da(static_cast<std::int64_t>(n), p, kappa.data(), thr, c.data(), static_cast<int>(c.shape(0)),
                       A.data(), u.data(), dA.data());
}

void kappa_mle(int p, Vec r, Vec d, double thr, Vec c, OutVec kappa, std::optional<OutInts> evals) {
  const std::size_t n = r.shape(0);
  check_same("vmf_kappa_mle", n, {d.shape(0), kappa.shape(0), evals ? evals->shape(0) : n});
  int* ev = evals ? evals->data() : nullptr;
  nb::gil_scoped_release nogil;
  kernkit::vmf::kappa_mle(static_cast<std::int64_t>(n), p, r.data(), d.data(), thr, c.data(),
                          static_cast<int>(c.shape(0)), kappa.data(), ev);
}

}  // namespace

void def_vmf(nb::module_& m) {
  m.def("vmf_row_stats", &row_stats, nb::arg("x"), nb::arg("mu"), nb::arg("norm2"), nb::arg("dot"),
        nb::arg("dist2"),
        "Per row of the float64 (n, p) array x: sum x^2, sum mu x and sum (x - mu)^2 into the "
        "float64 (n,) outputs (kernkit::vmf::row_stats).");
  m.def("vmf_a_u_da", &a_u_da, nb::arg("p"), nb::arg("kappa"), nb::arg("thr"), nb::arg("c"), nb::arg("A"),
        nb::arg("u"), nb::arg("dA"),
        "A_p(kappa), 1 - A_p(kappa) and A_p'(kappa) into the float64 outputs (kernkit::vmf::a_u_da).");
  m.def("vmf_kappa_mle", &kappa_mle, nb::arg("p"), nb::arg("r"), nb::arg("d"), nb::arg("thr"), nb::arg("c"),
        nb::arg("kappa"), nb::arg("evals").none() = nb::none(),
        "The root kappa of A_p(kappa) = r for r in (0, 1), d = 1 - r > 0, and optionally each "
        "element's number of A_p evaluations into the int32 evals (kernkit::vmf::kappa_mle).");
}
