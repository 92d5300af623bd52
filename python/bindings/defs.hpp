// One def_<family>(module) per binding file; module.cpp calls them all.
#pragma once
#include <nanobind/nanobind.h>

namespace nb = nanobind;

void def_runtime(nb::module_& m);
void def_special(nb::module_& m);
void def_rational(nb::module_& m);
void def_quant(nb::module_& m);
void def_toeplitz(nb::module_& m);
void def_hashattn(nb::module_& m);
void def_vmf(nb::module_& m);
