#include <nanobind/stl/string.h>

#include "defs.hpp"
#include "kernkit/runtime.hpp"

void def_runtime(nb::module_& m) {
  m.def("set_num_threads", &kernkit::set_num_threads, nb::arg("n"));
  m.def("get_num_threads", &kernkit::get_num_threads);
  m.def("openmp_enabled", &kernkit::openmp_enabled);
  m.def("simd_level", &kernkit::simd_level);
  m.def("simd_built", &kernkit::simd_built);
  m.def("version", &kernkit::version);
  m.def("compiler", &kernkit::compiler);
  m.def("cuda_built", &kernkit::cuda_built);
  m.def("cuda_device_count", &kernkit::cuda_device_count,
        nb::call_guard<nb::gil_scoped_release>());
}
