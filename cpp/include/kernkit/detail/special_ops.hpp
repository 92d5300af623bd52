// Internal: one functor per SpecialFn, callable on host and device, and the one switch
// that maps a runtime id to its functor (shared by the CPU loops and the CUDA launcher).
#pragma once
#include "kernkit/math/log_bessel.hpp"
#include "kernkit/special.hpp"

namespace kernkit::detail {

#define KERNKIT_SPECIAL_OP(name, call)                                  \
  struct op_##name {                                                     \
    template <class T>                                                   \
    KERNKIT_INLINE T operator()(T v, T x) const { return call(v, x); }   \
  };
KERNKIT_SPECIAL_OP(log_iv, ::kernkit::log_iv)
KERNKIT_SPECIAL_OP(log_kv, ::kernkit::log_kv)
KERNKIT_SPECIAL_OP(log_ive, ::kernkit::log_ive)
KERNKIT_SPECIAL_OP(log_kve, ::kernkit::log_kve)
KERNKIT_SPECIAL_OP(iv_ratio, ::kernkit::bessel_iv_ratio)
KERNKIT_SPECIAL_OP(dlog_iv, ::kernkit::dlog_iv)
KERNKIT_SPECIAL_OP(dlog_kv, ::kernkit::dlog_kv)
#undef KERNKIT_SPECIAL_OP

// Calls visit(op) with the functor for fn; returns false for an unknown id.
template <class Visit>
inline bool visit_special(SpecialFn fn, Visit&& visit) {
  switch (fn) {
    case SpecialFn::log_iv: visit(op_log_iv{}); return true;
    case SpecialFn::log_kv: visit(op_log_kv{}); return true;
    case SpecialFn::log_ive: visit(op_log_ive{}); return true;
    case SpecialFn::log_kve: visit(op_log_kve{}); return true;
    case SpecialFn::iv_ratio: visit(op_iv_ratio{}); return true;
    case SpecialFn::dlog_iv: visit(op_dlog_iv{}); return true;
    case SpecialFn::dlog_kv: visit(op_dlog_kv{}); return true;
    default: return false;
  }
}

}  // namespace kernkit::detail
