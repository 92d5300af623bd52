// Host emulation of the CUDA execution model, to run kernel source on a machine without a GPU
// (tests/python/test_cuda_emulation.py). Not a simulator of timing, memory spaces or alignment:
// it checks indexing, reductions and synchronisation logic. Every block runs its threads as
// std::threads with a block barrier (__syncthreads) and per-warp barriers (shuffles).
#pragma once
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <algorithm>
#include <atomic>
#include <barrier>
#include <functional>
#include <thread>
#include <vector>
#include <memory>
#include <cstring>

namespace emu {
struct Ctx {
  uint3 tid, bid;
  dim3 bdim, gdim;
  std::barrier<>* block_bar;
  std::barrier<>* warp_bar;
  long long* warp_slots;  // 32 per warp
};
inline thread_local Ctx ctx;
inline std::vector<unsigned char> dyn_smem(1 << 20);

template <class F>
void launch(dim3 g, dim3 b, size_t smem, F&& body) {
  (void)smem;
  const unsigned nt = b.x * b.y * b.z;
  const unsigned nw = (nt + 31) / 32;
  for (unsigned bz = 0; bz < g.z; ++bz)
    for (unsigned by = 0; by < g.y; ++by)
      for (unsigned bx = 0; bx < g.x; ++bx) {
        std::barrier<> bb(nt);
        std::vector<std::unique_ptr<std::barrier<>>> wb;
        for (unsigned w = 0; w < nw; ++w) wb.emplace_back(new std::barrier<>(std::min(32u, nt - 32 * w)));
        std::vector<long long> slots(32 * nw);
        std::vector<std::thread> ths;
        for (unsigned t = 0; t < nt; ++t) {
          ths.emplace_back([&, t] {
            ctx.tid = uint3{t % b.x, (t / b.x) % b.y, t / (b.x * b.y)};
            ctx.bid = uint3{bx, by, bz};
            ctx.bdim = b;
            ctx.gdim = g;
            ctx.block_bar = &bb;
            ctx.warp_bar = wb[t / 32].get();
            ctx.warp_slots = slots.data() + 32 * (t / 32);
            body();
          });
        }
        for (auto& th : ths) th.join();
      }
}
inline void syncthreads() { ctx.block_bar->arrive_and_wait(); }
// __syncthreads_and: a barrier that returns whether p holds on every thread of the block
inline int syncthreads_and(int p) {
  static std::atomic<int> failed{0};  // blocks run one at a time (launch joins each block's threads)
  syncthreads();
  if (!p) failed.store(1);
  syncthreads();
  const int all = failed.load() == 0;
  syncthreads();
  if (ctx.tid.x == 0 && ctx.tid.y == 0 && ctx.tid.z == 0) failed.store(0);
  syncthreads();
  return all;
}
inline unsigned lane() { return (ctx.tid.x + ctx.bdim.x * ctx.tid.y) % 32; }
// Every lane publishes v, then reads lane src's value (its own where src is outside the warp).
template <class T>
T exchange(T v, unsigned src) {
  std::memcpy(&ctx.warp_slots[lane()], &v, sizeof(T));
  ctx.warp_bar->arrive_and_wait();
  T r = v;
  if (src < 32) std::memcpy(&r, &ctx.warp_slots[src], sizeof(T));
  ctx.warp_bar->arrive_and_wait();
  return r;
}
template <class T> T shfl_xor(unsigned, T v, int off) { return exchange(v, lane() ^ off); }
template <class T> T shfl_down(unsigned, T v, int off) { return exchange(v, lane() + off); }
template <class T> T shfl_idx(unsigned, T v, int src) { return exchange(v, unsigned(src) & 31u); }
// lanes below off keep their own value, as on the GPU
template <class T> T shfl_up(unsigned, T v, int off) {
  return exchange(v, lane() >= unsigned(off) ? lane() - unsigned(off) : 32u);
}
template <class T> T atomic_add(T* p, T v) { return std::atomic_ref<T>(*p).fetch_add(v); }
}  // namespace emu

#define threadIdx emu::ctx.tid
#define blockIdx emu::ctx.bid
#define blockDim emu::ctx.bdim
#define gridDim emu::ctx.gdim
#define __syncthreads() emu::syncthreads()
#define __syncthreads_and(p) emu::syncthreads_and(p)
#define __shfl_xor_sync(m, v, o) emu::shfl_xor(m, v, o)
#define __shfl_down_sync(m, v, o) emu::shfl_down(m, v, o)
#define __shfl_sync(m, v, s) emu::shfl_idx(m, v, s)
#define __shfl_up_sync(m, v, o) emu::shfl_up(m, v, o)
#define atomicAdd(p, v) emu::atomic_add(p, v)
#define __ldg(p) (*(p))
#define __umulhi(a, b) static_cast<unsigned>((static_cast<unsigned long long>(a) * (b)) >> 32)
#define __popcll(x) __builtin_popcountll(x)
#undef __shared__
#define __shared__ static
#define __launch_bounds__(...)
#define cudaFuncSetAttribute(...) cudaSuccess
#define cudaGetLastError() cudaSuccess
