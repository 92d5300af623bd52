// kernkit: the whole public C++ API.
#pragma once
#include "kernkit/version.hpp"
#include "kernkit/runtime.hpp"
#include "kernkit/math/log_bessel.hpp"
#include "kernkit/special.hpp"
#include "kernkit/quant.hpp"
