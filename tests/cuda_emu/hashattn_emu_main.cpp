// Runs cuda/hashattn.cu's kernels on the host emulator (emu.hpp; the source converted by
// make_emu.py) against the dense O(n^2) formula in double: every dtype path, both modes,
// causal, key_lengths, several code widths and partial column tiles. Exits non-zero on a mismatch.
#include <cuda_fp16.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "kernkit/hashattn.hpp"
#include "kernkit/math/hashattn.hpp"

namespace emu_cuda {
void attention(const void* hq, const void* hk, int word_bytes, int bits, const void* v, void* out,
               kernkit::cuda::hashattn::Dtype dtype, std::int64_t batch_heads, std::int64_t nq,
               std::int64_t nk, std::int64_t d, double offset, bool causal,
               kernkit::hashattn::Mode mode, void* workspace, std::int64_t ws_bytes, void* stream,
               const std::int64_t* key_lengths);
std::int64_t workspace_bytes(int bits, std::int64_t batch_heads, std::int64_t nq,
                             std::int64_t nk, std::int64_t d, bool causal,
                             kernkit::cuda::hashattn::Dtype dtype);
void set_target_blocks(int n);  // the kernels' grid-size target (1024 on the GPU)
}  // namespace emu_cuda

// The CPU library's argument check is not linked here (the CUDA path's own checks suffice).
void kernkit::hashattn::check_args(int, int, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                                   bool, Mode) {}

template <class W>
int run(int bits, std::int64_t bh, std::int64_t n, std::int64_t d, bool causal, int mode,
        bool use_lens, int dt) {
  std::mt19937_64 rng(bits * 1000 + n + d + causal * 7 + mode * 13 + dt);
  std::vector<W> hq(bh * n), hk(bh * n);
  for (auto& w : hq) w = static_cast<W>(rng());
  for (auto& w : hk) w = static_cast<W>(rng());
  std::normal_distribution<double> nd(0.2, 1.0);
  std::vector<double> v(bh * n * d);
  for (auto& x : v) x = nd(rng);
  std::vector<std::int64_t> lens(bh);
  for (std::int64_t b = 0; b < bh; ++b) lens[b] = 1 + static_cast<std::int64_t>(rng() % n);
  const std::int64_t* lp = use_lens ? lens.data() : nullptr;
  const double c = bits + 1.0;
  // dense reference: out_i = sum_j w_ij v_j / sum_j w_ij (consistent) or the ecoformer form
  std::vector<double> ref(bh * n * d);
  for (std::int64_t s = 0; s < bh; ++s)
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t jn = causal ? i + 1 : (use_lens ? lens[s] : n);
      std::vector<double> num(d, 0.0);
      double den = 0;
      for (std::int64_t j = 0; j < jn; ++j) {
        const double g = kernkit::hash_code_dot(hq[s * n + i], hk[s * n + j], bits);
        const double w = mode == 0 ? g + c : g;
        for (std::int64_t e = 0; e < d; ++e) num[e] += w * v[(s * n + j) * d + e];
        den += w;
      }
      if (mode == 1) den += c * static_cast<double>(jn);
      for (std::int64_t e = 0; e < d; ++e)
        ref[(s * n + i) * d + e] = (num[e] + (mode == 1 ? c * v[(s * n + i) * d + e] : 0.0)) / den;
    }
  using kernkit::cuda::hashattn::Dtype;
  const Dtype dtype = static_cast<Dtype>(dt);
  std::vector<double> got(bh * n * d);
  const std::int64_t wsb = emu_cuda::workspace_bytes(bits, bh, n, n, d, causal, dtype);
  std::vector<unsigned char> ws(wsb + 256);
  const auto m = static_cast<kernkit::hashattn::Mode>(mode);
  if (dt == 1) {
    emu_cuda::attention(hq.data(), hk.data(), sizeof(W), bits, v.data(), got.data(), dtype, bh, n, n,
                        d, c, causal, m, ws.data(), wsb, nullptr, lp);
  } else if (dt == 0) {
    std::vector<float> vf(v.begin(), v.end()), of(v.size());
    emu_cuda::attention(hq.data(), hk.data(), sizeof(W), bits, vf.data(), of.data(), dtype, bh, n, n,
                        d, c, causal, m, ws.data(), wsb, nullptr, lp);
    for (size_t i = 0; i < of.size(); ++i) got[i] = of[i];
  } else {
    std::vector<__half> vh(v.size()), oh(v.size());
    for (size_t i = 0; i < v.size(); ++i) vh[i] = __double2half(v[i]);
    emu_cuda::attention(hq.data(), hk.data(), sizeof(W), bits, vh.data(), oh.data(), dtype, bh, n, n,
                        d, c, causal, m, ws.data(), wsb, nullptr, lp);
    for (size_t i = 0; i < oh.size(); ++i) got[i] = __half2float(oh[i]);
  }
  double err = 0, scale = 0;
  for (std::int64_t s = 0; s < bh; ++s)
    for (std::int64_t i = 0; i < n; ++i) {
      if (use_lens && mode == 1 && i >= lens[s]) continue;  // padded query rows
      for (std::int64_t e = 0; e < d; ++e) {
        const std::size_t k = (s * n + i) * d + e;
        err = std::fmax(err, std::fabs(got[k] - ref[k]));
        scale = std::fmax(scale, std::fabs(ref[k]));
      }
    }
  const double rel = err / scale;
  const double tol = dt == 1 ? 1e-12 : dt == 0 ? 1e-5 : 4e-3;
  std::printf("bits %2d bh %lld n %lld d %lld causal %d mode %d lens %d dtype %d: rel %.3g %s\n", bits,
              (long long)bh, (long long)n, (long long)d, causal, mode, use_lens, dt, rel,
              rel <= tol ? "ok" : "FAIL");
  return rel <= tol ? 0 : 1;
}

int main() {
  int bad = 0;
  // f64 (1), f32 (0), f16 (2); n = 300 spans 2 scatter chunks and 3 causal chunks; d = 72 two tiles
  for (int dt : {1, 0, 2}) {
    bad += run<std::uint16_t>(16, 2, 300, 72, false, 0, false, dt);
    bad += run<std::uint16_t>(16, 2, 300, 72, true, 1, false, dt);
  }
  bad += run<std::uint16_t>(16, 2, 300, 72, false, 1, true, 1);
  bad += run<std::uint16_t>(16, 2, 300, 72, true, 0, false, 0);
  bad += run<std::uint8_t>(5, 2, 300, 64, false, 0, true, 1);
  bad += run<std::uint8_t>(8, 2, 300, 64, true, 0, false, 1);
  bad += run<std::uint64_t>(33, 1, 400, 65, false, 1, false, 0);
  bad += run<std::uint64_t>(64, 1, 280, 64, true, 1, false, 0);
  bad += run<std::uint64_t>(64, 1, 300, 31, false, 0, true, 1);
  bad += run<std::uint32_t>(20, 1, 600, 8, true, 0, false, 0);
  // Few, long blocks: a warp walks several 32-row code batches and a partial value batch in the
  // scatter and output kernels (one chunk of 600 rows per slice; 75 rows per warp).
  emu_cuda::set_target_blocks(4);
  bad += run<std::uint16_t>(16, 2, 600, 72, false, 0, true, 0);
  bad += run<std::uint16_t>(16, 2, 600, 72, false, 1, false, 2);
  bad += run<std::uint64_t>(64, 1, 520, 64, false, 0, false, 1);
  bad += run<std::uint8_t>(7, 2, 600, 64, false, 1, true, 1);
  emu_cuda::set_target_blocks(1024);
  std::printf("%s\n", bad ? "FAILURES" : "all ok");
  return bad;
}
