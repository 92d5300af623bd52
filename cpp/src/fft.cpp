// kernkit's real FFT: plan construction and caching, argument checks, ISA dispatch. The
// kernels are in fft_loops.cpp; the algorithm is described in fft_plan.hpp.
#include "kernkit/fft.hpp"

#include <cmath>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "fft_plan.hpp"
#include "parallel.hpp"

namespace kernkit {
namespace fft_detail {
namespace {

using i64 = std::int64_t;

bool smooth(i64 n) {  // the radices of build_smooth
  for (i64 p : {2, 3, 5, 7, 11, 13})
    while (n % p == 0) n /= p;
  return n == 1;
}

constexpr long double kPi = 3.141592653589793238462643383279502884L;

// The M-th roots of unity as the twiddles use them, cos and -sin of 2 pi m / M: long double cos
// and sin on the smallest arc the symmetries of M allow (an eighth of the circle when 4 | M, else
// a quarter or a half), the rest by exact reflections. (A long double cos and sin per twiddle
// made the first call of a length ~10x its transform: 18 ms for rfft of 65536.)
class Roots {
 public:
  explicit Roots(i64 M) : M_(M) {
    const i64 lim = M % 4 == 0 ? M / 8 : M % 2 == 0 ? M / 4 : M / 2;
    c_.resize(lim + 1);
    s_.resize(lim + 1);
    for (i64 j = 0; j <= lim; ++j) {
      const long double a = 2.0L * kPi * static_cast<long double>(j) / static_cast<long double>(M);
      c_[j] = std::cos(a);
      s_[j] = std::sin(a);
    }
  }
  // (cos, -sin) of 2 pi m / M, 0 <= m
  void at(i64 m, long double& cr, long double& ci) const {
    m %= M_;
    bool neg_s = false, neg_c = false, swap = false;
    if (2 * m > M_) { m = M_ - m; neg_s = true; }                     // theta -> 2 pi - theta
    if (M_ % 2 == 0 && 4 * m > M_) { m = M_ / 2 - m; neg_c = true; }  // theta -> pi - theta
    if (M_ % 4 == 0 && 8 * m > M_) { m = M_ / 4 - m; swap = true; }   // theta -> pi/2 - theta
    long double c = swap ? s_[m] : c_[m], s = swap ? c_[m] : s_[m];
    cr = neg_c ? -c : c;
    ci = neg_s ? s : -s;
  }

 private:
  i64 M_;
  std::vector<long double> c_, s_;
};

template <class T>
struct CPlan {
  std::vector<int> radix;
  std::vector<i64> l, twoff;
  std::vector<T> twr, twi, chr, chi, bre, bim;
  std::shared_ptr<const CPlan<T>> sub;  // Bluestein's smooth plan, kept alive with this one
  CPlanView<T> view;
  std::size_t bytes() const {
    return sizeof(T) * (twr.size() + twi.size() + chr.size() + chi.size() + bre.size() + bim.size()) +
           sizeof(i64) * (l.size() + twoff.size()) + sizeof(int) * radix.size();
  }
};

template <class T>
struct RPlan {
  std::vector<T> wr, wi, pwr, pwi;
  std::shared_ptr<const CPlan<T>> c, cq;  // the plans the view points into, kept alive with it
  std::shared_ptr<const RPlan<T>> sub;
  RPlanView<T> view;
  std::size_t bytes() const { return sizeof(T) * (wr.size() + wi.size() + pwr.size() + pwi.size()); }
};

// The plans of one element type, least recently used first out once their arrays pass the budget
// (KERNKIT_FFT_CACHE_MB, default 512 MiB): a caller holds its plan (PlanRef) for the length of a
// call and a plan holds the plans it uses, so dropping one from the cache never frees a plan in
// use. (Plans were never freed: 40 Bluestein lengths near 2^20 kept 2.7 GB for the process's life.)
template <class T>
struct Cache {
  template <class P>
  struct Entry {
    std::shared_ptr<P> plan;
    std::uint64_t used;
  };
  std::mutex mu;
  std::unordered_map<i64, Entry<CPlan<T>>> cplans;
  std::unordered_map<i64, Entry<RPlan<T>>> rplans;
  std::uint64_t tick = 0;
  std::size_t bytes = 0;
};

std::size_t cache_budget() {
  static const std::size_t b = [] {
    const char* e = std::getenv("KERNKIT_FFT_CACHE_MB");
    const long long mb = e ? std::atoll(e) : 512;
    return static_cast<std::size_t>(mb > 0 ? mb : 0) << 20;
  }();
  return b;
}

// Drops least recently used plans until the cached arrays fit the budget (or one plan is left).
template <class T>
void trim(Cache<T>& c) {
  while (c.bytes > cache_budget() && c.cplans.size() + c.rplans.size() > 1) {
    auto oc = c.cplans.end();
    auto orr = c.rplans.end();
    for (auto it = c.cplans.begin(); it != c.cplans.end(); ++it)
      if (oc == c.cplans.end() || it->second.used < oc->second.used) oc = it;
    for (auto it = c.rplans.begin(); it != c.rplans.end(); ++it)
      if (orr == c.rplans.end() || it->second.used < orr->second.used) orr = it;
    if (orr == c.rplans.end() || (oc != c.cplans.end() && oc->second.used < orr->second.used)) {
      c.bytes -= oc->second.plan->bytes();
      c.cplans.erase(oc);
    } else {
      c.bytes -= orr->second.plan->bytes();
      c.rplans.erase(orr);
    }
  }
}

template <class T>
Cache<T>& cache() {
  static Cache<T>* c = new Cache<T>();  // never destroyed: plans may be in use at exit
  return *c;
}

template <class T>
void run_cfft(const CPlanView<T>& p, T* re, T* im, T* work, i64 V, bool inverse) {
  KERNKIT_ISA_RETURN(fft_cfft(p, re, im, work, V, inverse))
}

template <class T>
std::shared_ptr<const CPlan<T>> complex_plan_locked(Cache<T>& c, i64 n);

// Smooth n: radix 7, radices 2/4 then 8 (powers of two), then 9 and 3, then 5, 11, 13; per-stage
// twiddles w_{lP}^{qk}.
template <class T>
void build_smooth(CPlan<T>& p, i64 n) {
  i64 m = n;
  std::vector<int> rad;
  // Powers of two: the one radix-4 or radix-2 stage first, then radix 8 (a short last stage
  // of radix 4 was twice as slow for some lengths: 16384 complex floats).
  // Radix 7 first, on the longest runs (7 2^13 complex doubles 1.5x faster than last); 11 and
  // 13 last, where their butterflies' registers fit (13 first was 1.1-1.2x slower).
  while (m % 7 == 0) { rad.push_back(7); m /= 7; }
  int twos = 0;
  while (m % 2 == 0) { ++twos; m /= 2; }
  if (twos % 3 == 1) rad.push_back(2);
  if (twos % 3 == 2) rad.push_back(4);
  for (int i = 0; i < twos / 3; ++i) rad.push_back(8);
  while (m % 9 == 0) { rad.push_back(9); m /= 9; }
  if (m % 3 == 0) { rad.push_back(3); m /= 3; }
  for (int P : {5, 11, 13})
    while (m % P == 0) { rad.push_back(P); m /= P; }
  const Roots roots(n);
  i64 l = 1;
  for (int P : rad) {
    p.radix.push_back(P);
    p.l.push_back(l);
    p.twoff.push_back(static_cast<i64>(p.twr.size()));
    const i64 lp = l * P;
    for (int q = 1; q < P; ++q)
      for (i64 k = 0; k < l; ++k) {
        long double cr, ci;  // exp(-2 pi i e/lp), e = q k mod lp: the n-th root e n/lp
        roots.at((q * k) % lp * (n / lp), cr, ci);
        p.twr.push_back(static_cast<T>(cr));
        p.twi.push_back(static_cast<T>(ci));
      }
    l = lp;
  }
}

template <class T>
std::shared_ptr<CPlan<T>> build_cplan(Cache<T>& c, i64 n) {
  auto p = std::make_shared<CPlan<T>>();
  CPlanView<T>& v = p->view;
  v.n = n;
  if (n > 1 && smooth(n)) {
    build_smooth(*p, n);
  } else if (n > 1) {
    const i64 M = next_fast_len_impl(2 * n - 1);
    v.M = M;
    p->sub = complex_plan_locked(c, M);
    p->chr.resize(n);
    p->chi.resize(n);
    std::vector<double> br(M, 0.0), bi(M, 0.0);
    const Roots roots(2 * n);
    for (i64 j = 0; j < n; ++j) {
      const i64 e = static_cast<i64>((static_cast<unsigned long long>(j) * static_cast<unsigned long long>(j)) %
                                     static_cast<unsigned long long>(2 * n));
      long double cr, ci;  // exp(-i pi e / n)
      roots.at(e, cr, ci);
      p->chr[j] = static_cast<T>(cr);
      p->chi[j] = static_cast<T>(ci);
      br[j] = static_cast<double>(cr);
      bi[j] = static_cast<double>(-ci);
      if (j > 0) {
        br[M - j] = static_cast<double>(cr);
        bi[M - j] = static_cast<double>(-ci);
      }
    }
    // The chirp's spectrum in double (also for float plans), divided by M.
    if constexpr (std::is_same_v<T, double>) {
      std::vector<double> work(cfft_work(p->sub->view, 1));
      run_cfft(p->sub->view, br.data(), bi.data(), work.data(), 1, false);
    } else {
      Cache<double>& cd = cache<double>();
      std::lock_guard<std::mutex> lock(cd.mu);  // lock order: float, then double
      const std::shared_ptr<const CPlan<double>> sd = complex_plan_locked(cd, M);
      std::vector<double> work(cfft_work(sd->view, 1));
      run_cfft(sd->view, br.data(), bi.data(), work.data(), 1, false);
    }
    p->bre.resize(M);
    p->bim.resize(M);
    for (i64 j = 0; j < M; ++j) {
      p->bre[j] = static_cast<T>(br[j] / static_cast<double>(M));
      p->bim[j] = static_cast<T>(bi[j] / static_cast<double>(M));
    }
  }
  v.nstages = static_cast<int>(p->radix.size());
  v.radix = p->radix.data();
  v.l = p->l.data();
  v.twoff = p->twoff.data();
  v.twr = p->twr.data();
  v.twi = p->twi.data();
  v.sub = p->sub ? &p->sub->view : nullptr;
  v.chr = p->chr.data();
  v.chi = p->chi.data();
  v.bre = p->bre.data();
  v.bim = p->bim.data();
  return p;
}

// Plans of one type may need plans of double (Bluestein spectra): the double cache has its own
// lock, taken only while the float lock is held, never the other way round.
template <class T>
std::shared_ptr<const CPlan<T>> complex_plan_locked(Cache<T>& c, i64 n) {
  auto it = c.cplans.find(n);
  if (it != c.cplans.end()) {
    it->second.used = ++c.tick;
    return it->second.plan;
  }
  std::shared_ptr<CPlan<T>> p = build_cplan(c, n);
  c.cplans[n] = {p, ++c.tick};
  c.bytes += p->bytes();
  trim(c);
  return p;
}

}  // namespace

template <class T>
PlanRef<CPlanView<T>> complex_plan(i64 n) {
  Cache<T>& c = cache<T>();
  std::lock_guard<std::mutex> lock(c.mu);
  std::shared_ptr<const CPlan<T>> p = complex_plan_locked(c, n);
  return {p, &p->view};
}

namespace {
template <class T>
std::shared_ptr<const RPlan<T>> real_plan_locked(Cache<T>& c, i64 N) {
  auto it = c.rplans.find(N);
  if (it != c.rplans.end()) {
    it->second.used = ++c.tick;
    return it->second.plan;
  }
  auto p = std::make_shared<RPlan<T>>();
  RPlanView<T>& v = p->view;
  v.N = N;
  v.even = N >= 2 && N % 2 == 0;
  if (N >= 2) {
    p->c = complex_plan_locked(c, v.even ? N / 2 : N);
    v.c = &p->c->view;
  }
  int P = 0;  // the decimation radix of a single odd row: its least factor among 3 .. 13
  for (int f : {13, 11, 7, 5, 3})
    if (N % f == 0) P = f;
  if (!v.even && N >= 27 && P > 0) {
    const i64 q = N / P;
    v.P = P;
    p->cq = complex_plan_locked(c, q);
    p->sub = real_plan_locked(c, q);
    v.cq = &p->cq->view;
    v.sub = &p->sub->view;
    const Roots roots(N);
    for (int r = 1; r < P; ++r)
      for (i64 j = 0; j < q; ++j) {
        long double cr, ci;
        roots.at(r * j, cr, ci);
        p->pwr.push_back(static_cast<T>(cr));
        p->pwi.push_back(static_cast<T>(ci));
      }
    v.pwr = p->pwr.data();
    v.pwi = p->pwi.data();
  }
  if (v.even) {
    p->wr.resize(N / 2 + 1);
    p->wi.resize(N / 2 + 1);
    const Roots roots(N);
    for (i64 k = 0; k <= N / 2; ++k) {
      long double cr, ci;
      roots.at(k, cr, ci);
      p->wr[k] = static_cast<T>(cr);
      p->wi[k] = static_cast<T>(ci);
    }
  }
  v.wr = p->wr.data();
  v.wi = p->wi.data();
  c.rplans[N] = {p, ++c.tick};
  c.bytes += p->bytes();
  trim(c);
  return p;
}
}  // namespace

template <class T>
PlanRef<RPlanView<T>> real_plan(i64 N) {
  Cache<T>& c = cache<T>();
  std::lock_guard<std::mutex> lock(c.mu);
  std::shared_ptr<const RPlan<T>> p = real_plan_locked(c, N);
  return {p, &p->view};
}

template PlanRef<CPlanView<float>> complex_plan<float>(i64);
template PlanRef<CPlanView<double>> complex_plan<double>(i64);
template PlanRef<RPlanView<float>> real_plan<float>(i64);
template PlanRef<RPlanView<double>> real_plan<double>(i64);

}  // namespace fft_detail

namespace fft {

std::int64_t next_fast_len(std::int64_t n) { return fft_detail::next_fast_len_impl(n); }

std::size_t plan_cache_bytes() {
  std::size_t total = 0;
  {
    std::lock_guard<std::mutex> lock(fft_detail::cache<float>().mu);
    total += fft_detail::cache<float>().bytes;
  }
  std::lock_guard<std::mutex> lock(fft_detail::cache<double>().mu);
  return total + fft_detail::cache<double>().bytes;
}

namespace {
void check(bool ok, const std::string& msg) {
  if (!ok) throw std::invalid_argument(msg);
}
}  // namespace

namespace {
// rfft (inverse = false) or irfft of `rows` rows: checks, the plan, the rows per call and the
// threads, then the active ISA's row loop.
template <class T>
void real_rows(bool inverse, const T* in, std::int64_t m, std::int64_t is, std::int64_t n,
               std::int64_t rows, T* out, std::int64_t os) {
  const std::string name = inverse ? "irfft" : "rfft";
  check(n >= 1, name + ": n must be >= 1, got " + std::to_string(n));
  check(m >= 0 && rows >= 0, name + ": negative row length or row count");
  if (rows == 0) return;
  const auto plan = fft_detail::real_plan<T>(n);  // (held for the call)
  const auto& p = *plan;
  const std::int64_t V = fft_detail::row_lanes(p, rows);
  const double ns = 1.0 * static_cast<double>(n) * std::log2(static_cast<double>(n) + 1.0) *
                    static_cast<double>(V);
  const int nt = detail::threads_for((rows + V - 1) / V, ns);
  if (inverse) KERNKIT_ISA_RETURN(fft_irfft_rows(p, in, m, is, rows, out, os, V, nt))
  KERNKIT_ISA_RETURN(fft_rfft_rows(p, in, m, is, rows, out, os, V, nt))
}
}  // namespace

template <class T>
void rfft(const T* x, std::int64_t m, std::int64_t xs, std::int64_t n, std::int64_t rows, T* out,
          std::int64_t os) {
  real_rows(false, x, m, xs, n, rows, out, os);
}

template <class T>
void irfft(const T* X, std::int64_t m, std::int64_t xs, std::int64_t n, std::int64_t rows, T* out,
           std::int64_t os) {
  real_rows(true, X, m, xs, n, rows, out, os);
}

template <class T>
void cfft_split(T* re, T* im, std::int64_t n, std::int64_t lanes, bool inverse) {
  check(n >= 1, "cfft_split: n must be >= 1");
  check(lanes >= 1, "cfft_split: lanes must be >= 1");
  const auto plan = fft_detail::complex_plan<T>(n);
  std::vector<T> work(fft_detail::cfft_work(*plan, lanes) + 1);
  fft_detail::run_cfft(*plan, re, im, work.data(), lanes, inverse);
}

template void rfft<float>(const float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, float*, std::int64_t);
template void rfft<double>(const double*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, double*, std::int64_t);
template void irfft<float>(const float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, float*, std::int64_t);
template void irfft<double>(const double*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, double*, std::int64_t);
template void cfft_split<float>(float*, float*, std::int64_t, std::int64_t, bool);
template void cfft_split<double>(double*, double*, std::int64_t, std::int64_t, bool);

}  // namespace fft
}  // namespace kernkit
