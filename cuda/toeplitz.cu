// Toeplitz products on CUDA with cuFFT (layout and math of kernkit/toeplitz.hpp).
//
// Spectrum: a kernel writes the circulant embedding h_b / L of every batch ([nb][L]) and one
// batched R2C plan transforms it straight into spec ([nb][L/2 + 1] complex = (nb, L + 2) reals).
// Product: the (batch, column) pairs are flattened into f = b*k + j and processed in chunks of
// w columns that bound the workspace: a kernel transposes X into W[f - f0][i] (i < L, zeros for
// i >= n) through shared-memory tiles, one contiguous batched R2C plan (stride 1, idist = L,
// batch = w: cuFFT's fast layout; the strided layout with idist = 1 ran 2.7x slower than
// torch.fft on an H100), a pointwise multiply by spec[b(f)], one C2R plan, and a transposing
// kernel writes rows i < n to Y.
// Plans are cached per (device, stream, L, w, type) under a mutex; they are created without
// their own work area, which comes with the workspace from cudaMallocAsync on the caller's
// stream, so everything is stream-ordered and nothing is held between calls but the plans.
// cuFFT is loaded at run time (dlopen; KERNKIT_CUFFT_LIB or libcufft.so.12/.11/.so) so the
// module imports, and the rest of kernkit runs, where cuFFT is absent.
// Products with a power-of-two L <= 8192 (float32) / 4096 (float64) go to the one-launch fused
// kernel of toeplitz_fused.cu instead (fft_length() in kernkit/toeplitz.hpp picks such an L
// where n allows);
// KERNKIT_TOEPLITZ_CUDA=fused|cufft|auto (default auto) forces either path for timing.
#include <cuda_runtime.h>
#include <cufft.h>
#include <dlfcn.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>

#include "check.cuh"
#include "kernkit/toeplitz.hpp"
#include "toeplitz_fused.hpp"

namespace kernkit::cuda::toeplitz {
namespace {

using i64 = std::int64_t;

// ---- cuFFT, loaded on first use -----------------------------------------------------------------
struct CufftApi {
  decltype(&cufftCreate) create = nullptr;
  decltype(&cufftDestroy) destroy = nullptr;
  decltype(&cufftSetAutoAllocation) set_auto_allocation = nullptr;
  decltype(&cufftMakePlanMany64) make_plan_many64 = nullptr;
  decltype(&cufftSetStream) set_stream = nullptr;
  decltype(&cufftSetWorkArea) set_work_area = nullptr;
  decltype(&cufftExecR2C) exec_r2c = nullptr;
  decltype(&cufftExecC2R) exec_c2r = nullptr;
  decltype(&cufftExecD2Z) exec_d2z = nullptr;
  decltype(&cufftExecZ2D) exec_z2d = nullptr;
};

template <class F>
void load_sym(void* lib, const char* name, F& f) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  if (!f) throw std::runtime_error(std::string("kernkit: cuFFT has no symbol ") + name);
}

const CufftApi& cufft() {
  static std::once_flag once;
  static CufftApi api;
  static std::string error;
  std::call_once(once, [] {
    void* lib = nullptr;
    std::string tried;
    // An explicit path first, then the sonames (found when torch / CuPy already loaded one, or
    // on the loader path), then the toolkit's own directory.
    std::string names[8];
    int count = 0;
    if (const char* env = std::getenv("KERNKIT_CUFFT_LIB")) names[count++] = env;
    names[count++] = "libcufft.so.12";
    names[count++] = "libcufft.so.11";
    names[count++] = "libcufft.so";
    for (const char* var : {"CUDA_HOME", "CUDA_PATH"})
      if (const char* home = std::getenv(var)) names[count++] = std::string(home) + "/lib64/libcufft.so";
    names[count++] = "/usr/local/cuda/lib64/libcufft.so";
    for (int i = 0; i < count; ++i) {
      if (names[i].empty()) continue;
      lib = dlopen(names[i].c_str(), RTLD_NOW | RTLD_GLOBAL);
      if (lib) break;
      tried += (tried.empty() ? "" : ", ") + names[i];
    }
    if (!lib) {
      error = "kernkit: cannot load cuFFT (tried " + tried +
              "); install nvidia-cufft or set KERNKIT_CUFFT_LIB to libcufft.so's path";
      return;
    }
    try {
      load_sym(lib, "cufftCreate", api.create);
      load_sym(lib, "cufftDestroy", api.destroy);
      load_sym(lib, "cufftSetAutoAllocation", api.set_auto_allocation);
      load_sym(lib, "cufftMakePlanMany64", api.make_plan_many64);
      load_sym(lib, "cufftSetStream", api.set_stream);
      load_sym(lib, "cufftSetWorkArea", api.set_work_area);
      load_sym(lib, "cufftExecR2C", api.exec_r2c);
      load_sym(lib, "cufftExecC2R", api.exec_c2r);
      load_sym(lib, "cufftExecD2Z", api.exec_d2z);
      load_sym(lib, "cufftExecZ2D", api.exec_z2d);
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  if (!error.empty()) throw std::runtime_error(error);
  return api;
}

void cufft_check(cufftResult r, const char* what) {
  if (r != CUFFT_SUCCESS)
    throw std::runtime_error(std::string("kernkit cuFFT error ") + std::to_string(static_cast<int>(r)) +
                             " in " + what);
}

// ---- plan cache ---------------------------------------------------------------------------------
struct Plan {
  cufftHandle handle = 0;
  std::size_t work = 0;
};

// (device, stream, forward?, double?, L, howmany, stride, dist, odist)
using PlanKey = std::tuple<int, std::uintptr_t, bool, bool, i64, i64, i64, i64, i64>;

std::mutex& plan_mutex() {
  static std::mutex* m = new std::mutex();
  return *m;
}
std::map<PlanKey, Plan>& plan_cache() {
  static auto* c = new std::map<PlanKey, Plan>();  // never destroyed: plans outlive static teardown
  return *c;
}

// A 1-D batched real plan of length L: `howmany` transforms, element stride `stride`, the
// transforms `idist` (real side) / `odist` (complex side) apart.
template <class T>
Plan get_plan(int device, cudaStream_t stream, bool forward, i64 L, i64 howmany, i64 stride,
              i64 idist, i64 odist) {
  const bool dbl = std::is_same_v<T, double>;
  const PlanKey key{device, reinterpret_cast<std::uintptr_t>(stream), forward, dbl, L, howmany,
                    stride, idist, odist};
  const CufftApi& api = cufft();
  std::lock_guard<std::mutex> lock(plan_mutex());
  auto& cache = plan_cache();
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  Plan p;
  cufft_check(api.create(&p.handle), "cufftCreate");
  cufft_check(api.set_auto_allocation(p.handle, 0), "cufftSetAutoAllocation");
  long long n[1] = {static_cast<long long>(L)};
  long long rembed[1] = {static_cast<long long>(L)};
  long long cembed[1] = {static_cast<long long>(L / 2 + 1)};
  const cufftType type = forward ? (dbl ? CUFFT_D2Z : CUFFT_R2C) : (dbl ? CUFFT_Z2D : CUFFT_C2R);
  std::size_t work = 0;
  const cufftResult r = api.make_plan_many64(
      p.handle, 1, n, forward ? rembed : cembed, stride, forward ? idist : odist,
      forward ? cembed : rembed, stride, forward ? odist : idist, type, howmany, &work);
  if (r != CUFFT_SUCCESS) {
    api.destroy(p.handle);
    cufft_check(r, "cufftMakePlanMany64");
  }
  p.work = work;
  cache.emplace(key, p);
  return p;
}

template <class T>
void exec(const Plan& p, cudaStream_t stream, void* work, bool forward, void* in, void* out) {
  const CufftApi& api = cufft();
  cufft_check(api.set_stream(p.handle, stream), "cufftSetStream");
  cufft_check(api.set_work_area(p.handle, work), "cufftSetWorkArea");
  if constexpr (std::is_same_v<T, float>) {
    if (forward)
      cufft_check(api.exec_r2c(p.handle, static_cast<cufftReal*>(in), static_cast<cufftComplex*>(out)), "cufftExecR2C");
    else
      cufft_check(api.exec_c2r(p.handle, static_cast<cufftComplex*>(in), static_cast<cufftReal*>(out)), "cufftExecC2R");
  } else {
    if (forward)
      cufft_check(api.exec_d2z(p.handle, static_cast<cufftDoubleReal*>(in), static_cast<cufftDoubleComplex*>(out)), "cufftExecD2Z");
    else
      cufft_check(api.exec_z2d(p.handle, static_cast<cufftDoubleComplex*>(in), static_cast<cufftDoubleReal*>(out)), "cufftExecZ2D");
  }
}

// The device of a pointer, made current for the call (restored after).
struct DeviceGuard {
  int prev = 0, dev = 0;
  explicit DeviceGuard(const void* ptr) {
    KERNKIT_CUDA_CHECK(cudaGetDevice(&prev));
    cudaPointerAttributes attr{};
    KERNKIT_CUDA_CHECK(cudaPointerGetAttributes(&attr, ptr));
    dev = attr.type == cudaMemoryTypeUnregistered ? prev : attr.device;
    if (dev != prev) KERNKIT_CUDA_CHECK(cudaSetDevice(dev));
  }
  ~DeviceGuard() {
    if (dev != prev) cudaSetDevice(prev);
  }
};

// Stream-ordered scratch.
struct Workspace {
  void* p = nullptr;
  cudaStream_t s;
  Workspace(std::size_t bytes, cudaStream_t stream) : s(stream) {
    KERNKIT_CUDA_CHECK(cudaMallocAsync(&p, bytes > 0 ? bytes : 1, stream));
  }
  ~Workspace() {
    if (p) cudaFreeAsync(p, s);
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
};

std::size_t align_up(std::size_t b) { return (b + 255) / 256 * 256; }

constexpr int kTx = 32, kTy = 8;

unsigned grid_y(i64 rows) {  // blocks over rows in tiles of kTx
  const i64 g = (rows + kTx - 1) / kTx;
  return static_cast<unsigned>(g < 65535 ? (g > 0 ? g : 1) : 65535);
}

// ---- kernels ------------------------------------------------------------------------------------
// h[b][i] = (c_b[i] (i < n), r_b[L - i] (i > L - n, not causal), 0 otherwise) / L.
template <class T>
__global__ void embed_kernel(const T* __restrict__ c, i64 cbs, const T* __restrict__ r, i64 rbs,
                             bool causal, i64 n, i64 nb, i64 L, T inv, T* __restrict__ h) {
  const i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (i64 b = blockIdx.y; b < nb; b += gridDim.y) {
    if (i >= L) continue;
    T v = T(0);
    if (i < n)
      v = c[b * cbs + i];
    else if (!causal && i > L - n)
      v = r[b * rbs + (L - i)];
    h[b * L + i] = v * inv;
  }
}

// W[f - f0][i] = X[b, i, j] for i < n, 0 for n <= i < L; f = b*k + j. A 32 x 32 tile of
// (f, i) per block goes through shared memory: reads coalesced along j (f), writes along i.
template <class T>
__global__ void pad_kernel(const T* __restrict__ X, i64 k, i64 xsb, i64 xsr, i64 xsc, i64 n,
                           i64 L, i64 f0, i64 w, T* __restrict__ W) {
  __shared__ T tile[kTx][kTx + 1];
  const i64 c0 = static_cast<i64>(blockIdx.x) * kTx;  // first column (f - f0) of the tile
  for (i64 i0 = static_cast<i64>(blockIdx.y) * kTx; i0 < L; i0 += static_cast<i64>(gridDim.y) * kTx) {
    const i64 col = c0 + threadIdx.x;
    for (int r = threadIdx.y; r < kTx; r += kTy) {
      const i64 i = i0 + r;
      T v = T(0);
      if (col < w && i < n) {
        const i64 f = f0 + col;
        v = X[(f / k) * xsb + i * xsr + (f % k) * xsc];
      }
      tile[r][threadIdx.x] = v;
    }
    __syncthreads();
    for (int cc = threadIdx.y; cc < kTx; cc += kTy) {
      const i64 i = i0 + threadIdx.x;
      if (c0 + cc < w && i < L) W[(c0 + cc) * L + i] = tile[threadIdx.x][cc];
    }
    __syncthreads();
  }
}

// Wc[f - f0][q] *= spec[b(f)][q], q < L/2 + 1 (complex).
template <class T>
__global__ void multiply_kernel(const T* __restrict__ spec, i64 sbs, i64 k, i64 nq, i64 f0,
                                i64 w, T* __restrict__ Wc) {
  const i64 q = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= nq) return;
  for (i64 col = blockIdx.y; col < w; col += gridDim.y) {
    const T* s = spec + ((f0 + col) / k) * sbs;
    const T hr = s[2 * q], hi = s[2 * q + 1];
    T* z = Wc + 2 * (col * nq + q);
    const T zr = z[0], zi = z[1];
    z[0] = hr * zr - hi * zi;
    z[1] = hr * zi + hi * zr;
  }
}

// Y[b, i, j] = W[f - f0][i], i < n: the transpose of pad_kernel's tiles.
template <class T>
__global__ void unpad_kernel(const T* __restrict__ W, i64 k, i64 n, i64 L, i64 f0, i64 w,
                             T* __restrict__ Y) {
  __shared__ T tile[kTx][kTx + 1];
  const i64 c0 = static_cast<i64>(blockIdx.x) * kTx;
  for (i64 i0 = static_cast<i64>(blockIdx.y) * kTx; i0 < n; i0 += static_cast<i64>(gridDim.y) * kTx) {
    for (int cc = threadIdx.y; cc < kTx; cc += kTy) {
      const i64 i = i0 + threadIdx.x;
      tile[cc][threadIdx.x] = (c0 + cc < w && i < n) ? W[(c0 + cc) * L + i] : T(0);
    }
    __syncthreads();
    const i64 col = c0 + threadIdx.x;
    if (col < w) {
      const i64 f = f0 + col;
      T* yc = Y + (f / k) * n * k + (f % k);
      for (int r = threadIdx.y; r < kTx; r += kTy)
        if (i0 + r < n) yc[(i0 + r) * k] = tile[threadIdx.x][r];
    }
    __syncthreads();
  }
}

void check_args(const char* fn, i64 n, i64 nb, i64 L) {
  if (n < 0 || nb < 0) throw std::invalid_argument(std::string(fn) + ": negative n or batch count");
  if (L < 2 * n - 1 || L % 2 != 0 || L < 2)
    throw std::invalid_argument(std::string(fn) + ": L must be even and >= 2n - 1");
}

constexpr std::size_t kWorkspaceBudget = std::size_t(512) << 20;  // bytes per chunk

enum class Path { automatic, fused, cufft };

// KERNKIT_TOEPLITZ_CUDA, read on every call so one process can time both paths.
Path path_from_env() {
  const char* v = std::getenv("KERNKIT_TOEPLITZ_CUDA");
  if (!v || !*v || std::string(v) == "auto") return Path::automatic;
  if (std::string(v) == "fused") return Path::fused;
  if (std::string(v) == "cufft") return Path::cufft;
  throw std::invalid_argument(std::string("KERNKIT_TOEPLITZ_CUDA must be fused, cufft or auto, got '") + v + "'");
}

}  // namespace

template <class T>
void spectrum(const T* c, i64 c_bs, const T* r, i64 r_bs, bool causal, i64 n, i64 nb, i64 L,
              T* spec, void* stream_) {
  check_args("kernkit::cuda::toeplitz::spectrum", n, nb, L);
  if (!causal && !r && n > 1) throw std::invalid_argument("kernkit::cuda::toeplitz::spectrum: r is required unless causal");
  if (nb == 0) return;
  auto stream = static_cast<cudaStream_t>(stream_);
  DeviceGuard guard(spec);
  const Plan p = get_plan<T>(guard.dev, stream, true, L, nb, 1, L, L / 2 + 1);
  const std::size_t hbytes = align_up(sizeof(T) * static_cast<std::size_t>(nb * L));
  Workspace ws(hbytes + align_up(p.work), stream);
  T* h = static_cast<T*>(ws.p);
  const dim3 grid(static_cast<unsigned>((L + 255) / 256), static_cast<unsigned>(nb < 65535 ? nb : 65535));
  embed_kernel<T><<<grid, 256, 0, stream>>>(c, c_bs, causal ? c : r, r_bs, causal, n, nb, L,
                                            T(1) / static_cast<T>(L), h);
  KERNKIT_CUDA_CHECK(cudaGetLastError());
  exec<T>(p, stream, static_cast<char*>(ws.p) + hbytes, true, h, spec);
}

template <class T>
void matmul_spectrum(const T* spec, i64 spec_bs, i64 L, i64 n, const T* X, i64 nb, i64 k,
                     i64 xsb, i64 xsr, i64 xsc, T* Y, void* stream_) {
  check_args("kernkit::cuda::toeplitz::matmul_spectrum", n, nb, L);
  if (k < 0) throw std::invalid_argument("kernkit::cuda::toeplitz::matmul_spectrum: negative k");
  if (n == 0 || nb == 0 || k == 0) return;
  auto stream = static_cast<cudaStream_t>(stream_);
  DeviceGuard guard(Y);
  const Path path = path_from_env();
  if (path != Path::cufft &&
      toeplitz_fused::matmul_spectrum<T>(spec, spec_bs, L, n, X, nb, k, xsb, xsr, xsc, Y, stream_))
    return;
  if (path == Path::fused)
    throw std::invalid_argument("kernkit::cuda::toeplitz::matmul_spectrum: KERNKIT_TOEPLITZ_CUDA=fused, but the fused "
                                "kernel takes power-of-two L in [32, 8192] (float32) / [32, 4096] (float64) only, "
                                "got L = " + std::to_string(L));
  const i64 nq = L / 2 + 1;
  const i64 total = nb * k;
  const std::size_t per_col = sizeof(T) * static_cast<std::size_t>(L + 2 * nq) * 2;  // data + cuFFT work (about as much)
  i64 w = static_cast<i64>(kWorkspaceBudget / per_col);
  if (w < 1) w = 1;
  if (w > total) w = total;
  // Chunks: as few plans as possible (a full-width plan and one for the tail).
  for (i64 f0 = 0; f0 < total; f0 += w) {
    const i64 cw = total - f0 < w ? total - f0 : w;
    const Plan fwd = get_plan<T>(guard.dev, stream, true, L, cw, 1, L, nq);
    const Plan inv = get_plan<T>(guard.dev, stream, false, L, cw, 1, L, nq);
    const std::size_t rbytes = align_up(sizeof(T) * static_cast<std::size_t>(L * cw));
    const std::size_t cbytes = align_up(sizeof(T) * 2 * static_cast<std::size_t>(nq * cw));
    const std::size_t wbytes = align_up(fwd.work > inv.work ? fwd.work : inv.work);
    Workspace ws(rbytes + cbytes + wbytes, stream);
    T* Wr = static_cast<T*>(ws.p);
    T* Wc = reinterpret_cast<T*>(static_cast<char*>(ws.p) + rbytes);
    void* work = static_cast<char*>(ws.p) + rbytes + cbytes;
    const dim3 block(kTx, kTy);
    const unsigned gx = static_cast<unsigned>((cw + kTx - 1) / kTx);
    pad_kernel<T><<<dim3(gx, grid_y(L)), block, 0, stream>>>(X, k, xsb, xsr, xsc, n, L, f0, cw, Wr);
    KERNKIT_CUDA_CHECK(cudaGetLastError());
    exec<T>(fwd, stream, work, true, Wr, Wc);
    const unsigned mq = static_cast<unsigned>((nq + 255) / 256);
    multiply_kernel<T><<<dim3(mq, static_cast<unsigned>(cw < 65535 ? cw : 65535)), 256, 0, stream>>>(
        spec, spec_bs, k, nq, f0, cw, Wc);
    KERNKIT_CUDA_CHECK(cudaGetLastError());
    exec<T>(inv, stream, work, false, Wc, Wr);
    unpad_kernel<T><<<dim3(gx, grid_y(n)), block, 0, stream>>>(Wr, k, n, L, f0, cw, Y);
    KERNKIT_CUDA_CHECK(cudaGetLastError());
  }
}

template void spectrum<float>(const float*, i64, const float*, i64, bool, i64, i64, i64, float*, void*);
template void spectrum<double>(const double*, i64, const double*, i64, bool, i64, i64, i64, double*, void*);
template void matmul_spectrum<float>(const float*, i64, i64, i64, const float*, i64, i64, i64, i64,
                                     i64, float*, void*);
template void matmul_spectrum<double>(const double*, i64, i64, i64, const double*, i64, i64, i64,
                                      i64, i64, double*, void*);

}  // namespace kernkit::cuda::toeplitz
