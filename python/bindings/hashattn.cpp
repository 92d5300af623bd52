// Binary-hash attention: nanobind wrappers only (dtypes and shapes checked, GIL released).
// Codes are any 1/2/4/8-byte integer array (numpy uint8/16/32/64; torch may pass the signed
// types of the same width, whose bits are the same).
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>

#include <cstdint>
#include <optional>
#include <string>

#include "address.hpp"
#include "defs.hpp"
#include "dtype_code.hpp"
#include "kernkit/hashattn.hpp"

namespace {

using In = nb::ndarray<nb::ro, nb::c_contig>;
using Out = nb::ndarray<nb::c_contig>;
namespace ha = kernkit::hashattn;
namespace cha = kernkit::cuda::hashattn;

using namespace kernkit_bindings;  // Code, code_of, at

template <class A>
int word_bytes(const A& a, const char* name) {
  const nb::dlpack::dtype d = a.dtype();
  const bool is_int = d.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::UInt) ||
                      d.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::Int);
  if (!is_int || d.lanes != 1 || (d.bits != 8 && d.bits != 16 && d.bits != 32 && d.bits != 64))
    throw nb::type_error((std::string("hashed_attention: '") + name + "' must hold integer code words").c_str());
  return d.bits / 8;
}

struct Shape {
  std::int64_t bh, nq, nk, d;
  int wb;
};

Shape shape_of(const In& hq, const In& hk, const In& v, const Out& out, int bits) {
  if (v.ndim() != 3 || out.ndim() != 3 || hq.ndim() != 2 || hk.ndim() != 2)
    throw nb::value_error("hashed_attention: expects hq, hk (slices, n) and v, out (slices, n, d)");
  Shape s{};
  s.bh = static_cast<std::int64_t>(v.shape(0));
  s.nk = static_cast<std::int64_t>(v.shape(1));
  s.d = static_cast<std::int64_t>(v.shape(2));
  s.nq = static_cast<std::int64_t>(hq.shape(1));
  if (static_cast<std::int64_t>(hq.shape(0)) != s.bh || static_cast<std::int64_t>(hk.shape(0)) != s.bh ||
      static_cast<std::int64_t>(hk.shape(1)) != s.nk)
    throw nb::value_error("hashed_attention: hq/hk/v shapes disagree");
  if (static_cast<std::int64_t>(out.shape(0)) != s.bh || static_cast<std::int64_t>(out.shape(1)) != s.nq ||
      static_cast<std::int64_t>(out.shape(2)) != s.d)
    throw nb::value_error("hashed_attention: out must be (slices, nq, d)");
  const int wq = word_bytes(hq, "hq"), wk = word_bytes(hk, "hk");
  if (wq != wk) throw nb::value_error("hashed_attention: 'hq' and 'hk' have different code widths");
  s.wb = wq;
  ha::check_args(s.wb, bits, s.bh, s.nq, s.nk, s.d, false, ha::Mode::consistent);
  return s;
}

template <class A>
const std::int64_t* lengths_of(const std::optional<A>& lens, std::int64_t bh, bool cuda) {
  if (!lens) return nullptr;
  const auto d = lens->dtype();
  if (d != nb::dtype<std::int64_t>() || lens->ndim() != 1 ||
      static_cast<std::int64_t>(lens->shape(0)) != bh)
    throw nb::value_error("hashed_attention: 'key_lengths' must be int64 of shape (slices,)");
  if ((lens->device_type() == nb::device::cuda::value) != cuda)
    throw nb::value_error("hashed_attention: 'key_lengths' is on the wrong device");
  return static_cast<const std::int64_t*>(lens->data());
}

void attention_cpu(In hq, In hk, In v, Out out, int bits, double offset, bool causal, int mode,
                   std::optional<In> key_lengths) {
  const Shape s = shape_of(hq, hk, v, out, bits);
  const std::int64_t* lens = lengths_of(key_lengths, s.bh, false);
  for (const auto* a : {&hq, &hk, &v})
    if (a->device_type() != nb::device::cpu::value) throw nb::value_error("hashed_attention: CPU arrays expected");
  const Code c = code_of(v);
  if (c != F32 && c != F64) throw nb::type_error("hashed_attention: 'v' must be float32 or float64");
  if (code_of(out) != c) throw nb::type_error("hashed_attention: 'out' must have the dtype of 'v'");
  const auto m = static_cast<ha::Mode>(mode);
  nb::gil_scoped_release nogil;
  if (c == F32)
    ha::attention<float>(hq.data(), hk.data(), s.wb, bits, static_cast<const float*>(v.data()),
                         static_cast<float*>(out.data()), s.bh, s.nq, s.nk, s.d, offset, causal, m,
                         lens);
  else
    ha::attention<double>(hq.data(), hk.data(), s.wb, bits, static_cast<const double*>(v.data()),
                          static_cast<double*>(out.data()), s.bh, s.nq, s.nk, s.d, offset, causal, m,
                          lens);
}

cha::Dtype cuda_dtype(const In& v) {
  switch (code_of(v)) {
    case F32: return cha::Dtype::f32;
    case F64: return cha::Dtype::f64;
    case F16: return cha::Dtype::f16;
    case BF16: return cha::Dtype::bf16;
    default: throw nb::type_error("hashed_attention: 'v' must be float16, bfloat16, float32 or float64");
  }
}

std::int64_t workspace_cuda(int bits, std::int64_t bh, std::int64_t nq, std::int64_t nk,
                            std::int64_t d, bool causal, int dtype) {
  if (dtype < 0 || dtype > 3) throw nb::value_error("hashed_attention: unknown CUDA dtype code");
  return cha::workspace_bytes(bits, bh, nq, nk, d, causal, static_cast<cha::Dtype>(dtype));
}

void attention_cuda(In hq, In hk, In v, Out out, Out workspace, int bits, double offset,
                    bool causal, int mode, std::uintptr_t stream, std::optional<In> key_lengths) {
  const Shape s = shape_of(hq, hk, v, out, bits);
  const std::int64_t* lens = lengths_of(key_lengths, s.bh, true);
  const int dev = v.device_id();
  for (const auto* a : {&hq, &hk, &v})
    if (a->device_type() != nb::device::cuda::value || a->device_id() != dev)
      throw nb::value_error("hashed_attention: all arrays must be on one CUDA device");
  if (out.device_type() != nb::device::cuda::value || workspace.device_type() != nb::device::cuda::value)
    throw nb::value_error("hashed_attention: out and workspace must be CUDA arrays");
  const auto dt = cuda_dtype(v);
  if (code_of(out) != code_of(v)) throw nb::type_error("hashed_attention: 'out' must have the dtype of 'v'");
  const std::int64_t wsb = static_cast<std::int64_t>(workspace.nbytes());
  nb::gil_scoped_release nogil;
  cha::attention(hq.data(), hk.data(), s.wb, bits, v.data(), out.data(), dt, s.bh, s.nq, s.nk, s.d,
                 offset, causal, static_cast<ha::Mode>(mode), workspace.data(), wsb,
                 reinterpret_cast<void*>(stream), lens);
}

// The same call on device addresses: for torch / CuPy arrays whose shapes, dtypes, contiguity and
// device kernkit.hashattn has already checked. Importing a torch tensor as an nb::ndarray runs
// torch's Python __dlpack__ (microseconds per tensor, six per call), which dominated short calls.
void attention_cuda_ptr(std::uintptr_t hq, std::uintptr_t hk, std::uintptr_t v, std::uintptr_t out,
                        std::uintptr_t workspace, std::int64_t ws_bytes, int word_bytes, int bits,
                        int dtype, std::int64_t bh, std::int64_t nq, std::int64_t nk, std::int64_t d,
                        double offset, bool causal, int mode, std::uintptr_t stream,
                        std::uintptr_t key_lengths) {
  if (dtype < 0 || dtype > 3) throw nb::value_error("hashed_attention: unknown CUDA dtype code");
  nb::gil_scoped_release nogil;
  cha::attention(at(hq), at(hk), word_bytes, bits, at(v), at(out), static_cast<cha::Dtype>(dtype), bh, nq,
                 nk, d, offset, causal, static_cast<ha::Mode>(mode), at(workspace), ws_bytes, at(stream),
                 at<const std::int64_t>(key_lengths));
}

void pack_cpu(In x, Out codes, int bits) {
  if (x.ndim() != 2 || codes.ndim() != 1 || x.shape(0) != codes.shape(0) ||
      static_cast<int>(x.shape(1)) != bits)
    throw nb::value_error("pack: x must be (tokens, bits) and codes (tokens,)");
  const int wb = word_bytes(codes, "codes");
  const Code c = code_of(x);
  if (c != F32 && c != F64) throw nb::type_error("pack: 'x' must be float32 or float64");
  const std::int64_t n = static_cast<std::int64_t>(x.shape(0));
  nb::gil_scoped_release nogil;
  if (c == F32) ha::pack_signs<float>(static_cast<const float*>(x.data()), n, bits, codes.data(), wb);
  else ha::pack_signs<double>(static_cast<const double*>(x.data()), n, bits, codes.data(), wb);
}

void unpack_cpu(In codes, Out out, int bits) {
  if (codes.ndim() != 1 || out.ndim() != 2 || out.shape(0) != codes.shape(0) ||
      static_cast<int>(out.shape(1)) != bits)
    throw nb::value_error("unpack: codes must be (tokens,) and out (tokens, bits)");
  const auto d = out.dtype();
  if (d.code != static_cast<std::uint8_t>(nb::dlpack::dtype_code::Int) || d.bits != 8)
    throw nb::type_error("unpack: 'out' must be int8");
  const int wb = word_bytes(codes, "codes");
  const std::int64_t n = static_cast<std::int64_t>(codes.shape(0));
  nb::gil_scoped_release nogil;
  ha::unpack(codes.data(), wb, n, bits, static_cast<std::int8_t*>(out.data()));
}

}  // namespace

void def_hashattn(nb::module_& m) {
  m.def("hashattn_attention", &attention_cpu, nb::arg("hq"), nb::arg("hk"), nb::arg("v"),
        nb::arg("out"), nb::arg("bits"), nb::arg("offset"), nb::arg("causal"), nb::arg("mode"),
        nb::arg("key_lengths") = nb::none());
  m.def("hashattn_attention_cuda", &attention_cuda, nb::arg("hq"), nb::arg("hk"), nb::arg("v"),
        nb::arg("out"), nb::arg("workspace"), nb::arg("bits"), nb::arg("offset"),
        nb::arg("causal"), nb::arg("mode"), nb::arg("stream"),
        nb::arg("key_lengths") = nb::none());
  m.def("hashattn_attention_cuda_ptr", &attention_cuda_ptr, nb::arg("hq"), nb::arg("hk"), nb::arg("v"),
        nb::arg("out"), nb::arg("workspace"), nb::arg("workspace_bytes"), nb::arg("word_bytes"),
        nb::arg("bits"), nb::arg("dtype"), nb::arg("bh"), nb::arg("nq"), nb::arg("nk"), nb::arg("d"),
        nb::arg("offset"), nb::arg("causal"), nb::arg("mode"), nb::arg("stream"),
        nb::arg("key_lengths"));
  m.def("hashattn_workspace_cuda", &workspace_cuda, nb::arg("bits"), nb::arg("bh"), nb::arg("nq"),
        nb::arg("nk"), nb::arg("d"), nb::arg("causal"), nb::arg("dtype"));
  m.def("hashattn_pack", &pack_cpu, nb::arg("x"), nb::arg("codes"), nb::arg("bits"));
  m.def("hashattn_unpack", &unpack_cpu, nb::arg("codes"), nb::arg("out"), nb::arg("bits"));
  m.def("hashattn_word_bytes", &ha::word_bytes_for, nb::arg("bits"));
}
