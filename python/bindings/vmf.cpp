// The vMF row statistics (kernkit.vmf's log-density and fit). No math here: shapes are checked
// and the pointers forwarded to kernkit::vmf::row_stats with the GIL released.
#include <nanobind/ndarray.h>

#include <cstdint>

#include "defs.hpp"
#include "kernkit/vmf.hpp"

namespace {

using Rows = nb::ndarray<const double, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
using Vec = nb::ndarray<const double, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using OutVec = nb::ndarray<double, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

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

}  // namespace

void def_vmf(nb::module_& m) {
  m.def("vmf_row_stats", &row_stats, nb::arg("x"), nb::arg("mu"), nb::arg("norm2"), nb::arg("dot"),
        nb::arg("dist2"),
        "Per row of the float64 (n, p) array x: sum x^2, sum mu x and sum (x - mu)^2 into the "
        "float64 (n,) outputs (kernkit::vmf::row_stats).");
}
