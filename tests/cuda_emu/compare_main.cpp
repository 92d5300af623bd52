// Bit-for-bit comparison of two versions of cuda/hashattn.cu on the host emulator (emu_old: an
// earlier revision, emu_cuda: the working tree), built by compare_versions.py: for kernel changes
// that must not change results (every dtype, mode, causal, key_lengths, cross attention, code
// widths, odd and multi-tile d, grids of many short or few long blocks).
#include <cuda_fp16.h>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>
#include "kernkit/hashattn.hpp"
using kernkit::cuda::hashattn::Dtype;
#define DECL(NS) namespace NS { \
void attention(const void*, const void*, int, int, const void*, void*, Dtype, std::int64_t, std::int64_t, \
               std::int64_t, std::int64_t, double, bool, kernkit::hashattn::Mode, void*, std::int64_t, void*, \
               const std::int64_t*); \
std::int64_t workspace_bytes(int, std::int64_t, std::int64_t, std::int64_t, std::int64_t, bool, Dtype); \
void set_target_blocks(int); }
DECL(emu_cuda)
DECL(emu_old)
void kernkit::hashattn::check_args(int, int, std::int64_t, std::int64_t, std::int64_t, std::int64_t, bool, Mode) {}

template <class W>
int run(int bits, std::int64_t bh, std::int64_t n, std::int64_t d, bool causal, int mode, bool use_lens, int dt, std::int64_t nq_ = -1) {
  const std::int64_t nq = nq_ < 0 ? n : nq_;
  std::mt19937_64 rng(bits * 7 + n + d + causal + mode * 3 + dt);
  std::vector<W> hq(bh * nq), hk(bh * n);
  for (auto& w : hq) w = static_cast<W>(rng());
  for (auto& w : hk) w = static_cast<W>(rng());
  std::normal_distribution<double> nd(0.2, 1.0);
  std::vector<std::int64_t> lens(bh);
  for (auto& l : lens) l = 1 + static_cast<std::int64_t>(rng() % n);
  const std::int64_t* lp = use_lens ? lens.data() : nullptr;
  const size_t esz = dt == 1 ? 8 : dt == 0 ? 4 : 2;
  std::vector<unsigned char> v(bh * n * d * esz), o1(bh * nq * d * esz, 0xAB), o2(o1.size(), 0xCD);
  for (std::int64_t i = 0; i < bh * n * d; ++i) {
    const double x = nd(rng);
    if (dt == 1) std::memcpy(&v[i * 8], &x, 8);
    else if (dt == 0) { float f = x; std::memcpy(&v[i * 4], &f, 4); }
    else { __half h = __double2half(x); std::memcpy(&v[i * 2], &h, 2); }
  }
  const auto m = static_cast<kernkit::hashattn::Mode>(mode);
  const Dtype t = static_cast<Dtype>(dt);
  std::vector<unsigned char> w1(emu_old::workspace_bytes(bits, bh, nq, n, d, causal, t) + 256);
  std::vector<unsigned char> w2(emu_cuda::workspace_bytes(bits, bh, nq, n, d, causal, t) + 256);
  emu_old::attention(hq.data(), hk.data(), sizeof(W), bits, v.data(), o1.data(), t, bh, nq, n, d, bits + 1.0, causal, m, w1.data(), w1.size(), nullptr, lp);
  emu_cuda::attention(hq.data(), hk.data(), sizeof(W), bits, v.data(), o2.data(), t, bh, nq, n, d, bits + 1.0, causal, m, w2.data(), w2.size(), nullptr, lp);
  const bool same = o1 == o2;
  std::printf("bits %2d bh %lld n %lld d %lld causal %d mode %d lens %d dtype %d: %s (ws %zu -> %zu bytes)\n", bits, (long long)bh,
              (long long)n, (long long)d, causal, mode, use_lens, dt, same ? "identical" : "DIFFERENT", w1.size() - 256, w2.size() - 256);
  return same ? 0 : 1;
}
int main() {
  int bad = 0;
  for (int dt : {0, 1, 2}) {
    bad += run<std::uint8_t>(1, 2, 300, 1, false, 0, true, dt, 170);
    bad += run<std::uint8_t>(1, 2, 300, 3, true, 1, false, dt);
    bad += run<std::uint64_t>(64, 1, 290, 64, false, 0, false, dt, 411);
    bad += run<std::uint16_t>(12, 2, 300, 130, false, 0, true, dt, 77);
  }
  for (int tb : {1024, 4}) {
    emu_old::set_target_blocks(tb);
    emu_cuda::set_target_blocks(tb);
    std::printf("target blocks %d\n", tb);
    for (int dt : {0, 1, 2})
      for (int causal : {0, 1})
        for (int mode : {0, 1}) {
          bad += run<std::uint16_t>(16, 2, 600, 72, causal, mode, !causal && mode == 0, dt);
          bad += run<std::uint8_t>(5, 1, 300, 31, causal, mode, !causal, dt);
        }
    bad += run<std::uint64_t>(64, 1, 520, 65, false, 0, true, 0);
    bad += run<std::uint64_t>(64, 1, 300, 64, true, 1, false, 1);
    bad += run<std::uint32_t>(33 - 1, 1, 400, 64, false, 1, false, 2);
    bad += run<std::uint64_t>(33, 1, 400, 64, true, 0, false, 0);
  }
  std::printf("%s\n", bad ? "DIFFERENCES" : "all identical");
  return bad;
}
