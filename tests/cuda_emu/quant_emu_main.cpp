// Runs cuda/quant.cu's LUT matmul kernels on the host emulator (emu.hpp; the source converted
// by make_emu.py) against a double reference built from the unpacked codes: every kernel path
// (code-at-a-time, one word per step with batch tiles, the GEMV split over warps), 2/3/4/8-bit
// codes, a LUT shared by the tensor, per row and per group, and row lengths off the 8- and 16-byte
// alignments. Exits non-zero on a mismatch.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

namespace emu_cuda {
template <class T>
void lut_matmul(const std::uint8_t* packed, std::int64_t row_bytes, int code_bits, int bits,
                std::int64_t rows, std::int64_t cols, std::int64_t group, const T* lut,
                std::int64_t l_sr, std::int64_t l_sg, const T* dscale, const T* x,
                std::int64_t batch, T* y, void* stream);
}  // namespace emu_cuda

// lut: 0 shared by the tensor, 1 per row, 2 per row and group. pad: extra bytes per row.
template <class T>
int run(int cb, std::int64_t rows, std::int64_t cols, std::int64_t group, int lut_kind,
        std::int64_t batch, std::int64_t pad) {
  std::mt19937_64 rng(cb * 1000 + rows + cols + group + lut_kind * 7 + batch * 13 + pad);
  const int bits = cb == 8 ? 5 : cb;  // 8-bit codes holding 5-bit values
  const std::int64_t ng = cols / group, nlut = std::int64_t{1} << bits;
  const std::int64_t row_bytes = (cols * cb + 7) / 8 + pad;
  std::vector<int> code(rows * cols);
  std::vector<std::uint8_t> packed(rows * row_bytes + 16, 0);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) {
      const int u = static_cast<int>(rng() % nlut);
      code[r * cols + c] = u;
      if (cb == 8) {
        packed[r * row_bytes + c] = static_cast<std::uint8_t>(u);
        continue;
      }
      const std::int64_t bit = c * cb;  // LSB first; a 3-bit code may straddle two bytes
      const unsigned v = static_cast<unsigned>(u) << (bit & 7);
      packed[r * row_bytes + (bit >> 3)] |= static_cast<std::uint8_t>(v & 0xFF);
      if ((bit & 7) + cb > 8) packed[r * row_bytes + (bit >> 3) + 1] |= static_cast<std::uint8_t>(v >> 8);
    }
  const std::int64_t l_sr = lut_kind == 0 ? 0 : (lut_kind == 1 ? nlut : ng * nlut);
  const std::int64_t l_sg = lut_kind == 2 ? nlut : 0;
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<T> lut((lut_kind == 0 ? 1 : rows) * (lut_kind == 2 ? ng : 1) * nlut), ds(rows * ng),
      x(batch * cols), y(batch * rows, T(-7));
  for (auto& v : lut) v = static_cast<T>(nd(rng));
  for (auto& v : ds) v = static_cast<T>(0.5 + std::abs(nd(rng)));
  for (auto& v : x) v = static_cast<T>(nd(rng));
  emu_cuda::lut_matmul<T>(packed.data(), row_bytes, cb, bits, rows, cols, group, lut.data(), l_sr,
                          l_sg, ds.data(), x.data(), batch, y.data(), nullptr);
  double worst = 0;
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t r = 0; r < rows; ++r) {
      double s = 0, mag = 0;
      for (std::int64_t c = 0; c < cols; ++c) {
        const std::int64_t g = c / group;
        const double w = double(ds[r * ng + g]) * double(lut[r * l_sr + g * l_sg + code[r * cols + c]]);
        s += w * double(x[b * cols + c]);
        mag += std::abs(w * double(x[b * cols + c]));
      }
      worst = std::max(worst, std::abs(double(y[b * rows + r]) - s) / mag);
    }
  const double tol = sizeof(T) == 4 ? 2e-6 : 1e-14;
  const bool ok = worst <= tol;
  std::printf("%s %s cb=%d rows=%lld cols=%lld group=%lld lut=%d batch=%lld pad=%lld: %.2e\n",
              ok ? "ok  " : "FAIL", sizeof(T) == 4 ? "f32" : "f64", cb, (long long)rows,
              (long long)cols, (long long)group, lut_kind, (long long)batch, (long long)pad, worst);
  return ok ? 0 : 1;
}

int main() {
  int bad = 0;
  for (const char* warps : {"8", "4"}) {  // the GEMV's warps per block (cuda/quant.cu gemv_warps)
  setenv("KERNKIT_QUANT_GEMV_WARPS", warps, 1);
  std::printf("GEMV blocks of %s warps\n", warps);
  for (int cb : {2, 4, 8}) {
    const std::int64_t cols = cb == 2 ? 1024 : 512;
    for (std::int64_t batch : {1, 2, 3, 4, 9}) {  // up to 4: the split kernel (float, 4-/8-bit codes)
      bad += run<float>(cb, 5, cols, 128, 0, batch, 0);
      bad += run<float>(cb, 3, cols, cols, 1, batch, 0);
      bad += run<double>(cb, 3, cols, 256, 2, batch, 0);
    }
    bad += run<float>(cb, 3, cols, 32 / cb, 2, 1, 0);  // groups of 1 word: one word per step
    bad += run<float>(cb, 3, cols, 128, 0, 1, 4);      // rows 4-byte aligned only: likewise
  }
  // GEMV split over warps: rows off the block's 8, units off a warp's 32, groups of one unit, a
  // row longer than one pass of the block's warps
  bad += run<float>(4, 13, 16 * 45, 16, 2, 1, 0);
  bad += run<float>(2, 9, 32 * 37, 32, 1, 1, 0);
  bad += run<double>(8, 17, 8 * 300, 24, 0, 1, 0);
  bad += run<float>(4, 8, 16 * 600, 64, 0, 1, 8);
  // batch tiles of 2 and 4 in the split kernel: rows off the block's 8 (4 for batch 3 and 4),
  // per-group tables, a row longer than one pass, rows 8-byte aligned after padding
  for (std::int64_t batch : {2, 3, 4}) {
    bad += run<float>(4, 13, 16 * 45, 16, 2, batch, 0);
    bad += run<float>(8, 7, 8 * 300, 24, 1, batch, 0);
    bad += run<float>(4, 6, 16 * 600, 64, 0, batch, 8);
  }
  // word path over several blocks (32 float / 16 double rows each, the last partial) and batch
  // tiles of 8 (grid.y, the last partial), shared and per-group tables
  bad += run<float>(4, 70, 512, 64, 0, 17, 0);
  bad += run<float>(2, 45, 1024, 128, 2, 12, 0);
  bad += run<double>(8, 37, 256, 32, 1, 9, 0);
  bad += run<float>(3, 3, 200, 40, 2, 1, 0);  // 3-bit: the code-at-a-time kernel
  bad += run<double>(3, 2, 200, 200, 0, 4, 1);
  bad += run<float>(4, 2, 0 + 48, 16, 0, 1, 1);  // odd row bytes: the code-at-a-time kernel
  }
  if (bad == 0) std::printf("all ok\n");
  return bad == 0 ? 0 : 1;
}
