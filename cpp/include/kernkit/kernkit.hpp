// kernkit: the whole public C++ API.
#pragma once
#include "kernkit/version.hpp"
#include "kernkit/runtime.hpp"
#include "kernkit/math/log_bessel.hpp"
#include "kernkit/special.hpp"
#include "kernkit/math/rational.hpp"
#include "kernkit/rational.hpp"
#include "kernkit/math/quant_codes.hpp"
#include "kernkit/quant.hpp"
#include "kernkit/fft.hpp"
#include "kernkit/toeplitz.hpp"
#include "kernkit/math/hashattn.hpp"
#include "kernkit/hashattn.hpp"
