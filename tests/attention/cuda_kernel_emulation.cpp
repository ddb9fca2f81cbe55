// CPU emulation of the CUDA kernels in asr/attention/csrc/*_cuda_kernels.cuh (causal product and
// fused linear-attention forward): every CUDA thread is a std::thread, __syncthreads is a
// std::barrier, blocks run one after another. It runs the real device code (indexing, masking,
// reverse, strided (B, N, H, W) views, partial chunks and tiles) against a float64 reference, so
// the kernel logic is tested on machines without a GPU; built with -fsanitize=thread it also finds
// missing __syncthreads. Not a substitute for a GPU run (no warps, no half types, no real memory
// model). Used by tests/attention/test_cuda_kernel.py:
//   g++ -std=c++20 -O2 -pthread -fno-strict-aliasing -fsanitize=alignment -fno-sanitize-recover
//       -Iasr/attention/csrc tests/attention/cuda_kernel_emulation.cpp -o emulate
//   ./emulate SEED [MAX_CASES]
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <thread>
#include <vector>

struct Dim3 { unsigned x = 0, y = 0, z = 0; };
thread_local Dim3 threadIdx, blockIdx;
Dim3 blockDim;
std::barrier<>* g_barrier = nullptr;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__
#define __launch_bounds__(x)
#define __align__(n) __attribute__((aligned(n)))
struct alignas(16) float4 { float x, y, z, w; };
inline void __syncthreads() { g_barrier->arrive_and_wait(); }

#include "causal_product_cuda_kernels.cuh"
#include "linear_attention_cuda_kernels.cuh"
using namespace causal_product;

void launch(unsigned gx, unsigned gy, unsigned threads, const std::function<void()>& body) {
  blockDim = {threads, 1, 1};
  for (unsigned by = 0; by < gy; ++by)
    for (unsigned bx = 0; bx < gx; ++bx) {
      std::barrier<> bar(threads);
      g_barrier = &bar;
      std::vector<std::thread> ts;
      for (unsigned t = 0; t < threads; ++t)
        ts.emplace_back([&, t] { threadIdx = {t, 0, 0}; blockIdx = {bx, by, 0}; body(); });
      for (auto& th : ts) th.join();
    }
}

int64_t cdiv(int64_t x, int64_t y) { return (x + y - 1) / y; }

// Mirror of launch<T> in causal_product_cuda.cu.
std::vector<float> product(const std::vector<float>& a, const std::vector<float>& b,
                           const std::vector<float>& c, int64_t bh, int64_t n, int d, int m,
                           bool reverse) {
  std::vector<float> out(bh * n * m, NAN);
  const int n_chunks = cdiv(n, kChunk), d_tiles = cdiv(d, kTile), m_tiles = cdiv(m, kTile);
  std::vector<float> states(bh * n_chunks * d * m, NAN);
  if (n_chunks > 1)
    launch(bh * (n_chunks - 1), d_tiles * m_tiles, kThreads, [&] {
      chunk_states_kernel<float>(b.data(), c.data(), states.data(), n, d, m, n_chunks, m_tiles, reverse);
    });
  const int64_t dm = int64_t(d) * m;
  launch(cdiv(bh * dm, 256), 1, 256, [&] { exclusive_scan_kernel(states.data(), bh, dm, n_chunks); });
  launch(bh * n_chunks, m_tiles, kThreads, [&] {
    chunk_output_kernel<float>(a.data(), b.data(), c.data(), states.data(), out.data(), n, d, m, n_chunks, reverse);
  });
  return out;
}

// float64 reference of the same primitive.
std::vector<double> reference(const std::vector<float>& a, const std::vector<float>& b,
                              const std::vector<float>& c, int64_t bh, int64_t n, int d, int m,
                              bool reverse) {
  std::vector<double> out(bh * n * m, 0.0);
  for (int64_t h = 0; h < bh; ++h)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        if (reverse ? j < i : j > i) continue;
        double s = 0;
        for (int x = 0; x < d; ++x) s += double(a[(h * n + i) * d + x]) * b[(h * n + j) * d + x];
        for (int y = 0; y < m; ++y) out[(h * n + i) * m + y] += s * c[(h * n + j) * m + y];
      }
  return out;
}

// Mirror of launch_forward in linear_attention_cuda.cu. q, k: (B, N, H, ld) with the first d of
// every ld values used (a strided view); v: (B, N, H, m); mask: (B, nk) or empty.
struct FusedCase { int b, h, nq, nk, d, m; bool causal, masked; };

std::vector<float> fused_forward(const FusedCase& c, int ld, const std::vector<float>& q,
                                 const std::vector<float>& k, const std::vector<float>& v,
                                 const std::vector<char>& mask, std::vector<float>& den) {
  const int64_t bh = int64_t(c.b) * c.h;
  const int q_chunks = cdiv(c.nq, kChunk), k_chunks = cdiv(c.nk, kChunk);
  const int d_tiles = cdiv(c.d, kTile), m_tiles = cdiv(c.m, kTile);
  const SeqView qv{int64_t(c.nq) * c.h * ld, int64_t(c.h) * ld, ld, c.h};
  const SeqView kv{int64_t(c.nk) * c.h * ld, int64_t(c.h) * ld, ld, c.h};
  const SeqView vv{int64_t(c.nk) * c.h * c.m, int64_t(c.h) * c.m, c.m, c.h};
  const SeqView ov{int64_t(c.nq) * c.h * c.m, int64_t(c.h) * c.m, c.m, c.h};
  const bool* mk = c.masked ? reinterpret_cast<const bool*>(mask.data()) : nullptr;
  std::vector<float> states(bh * k_chunks * c.d * c.m, NAN), zstates(bh * k_chunks * c.d, NAN);
  std::vector<float> out(int64_t(c.b) * c.nq * c.h * c.m, NAN);
  den.assign(bh * c.nq, NAN);
  const int state_chunks = c.causal ? k_chunks - 1 : k_chunks;
  if (state_chunks > 0)
    launch(bh * state_chunks, d_tiles * m_tiles, kThreads, [&] {
      feature_states_kernel<float>(k.data(), kv, v.data(), vv, mk, states.data(), zstates.data(),
                                   c.nk, c.d, c.m, state_chunks, k_chunks, m_tiles);
    });
  for (auto [ptr, width] : {std::pair<float*, int64_t>{states.data(), int64_t(c.d) * c.m},
                            std::pair<float*, int64_t>{zstates.data(), c.d}}) {
    launch(cdiv(bh * width, 256), 1, 256, [&] {
      if (c.causal) exclusive_scan_kernel(ptr, bh, width, k_chunks);
      else chunk_total_kernel(ptr, bh, width, k_chunks);
    });
  }
  launch(bh * q_chunks, m_tiles, kThreads, [&] {
    if (c.causal)
      fused_output_kernel<float, true>(q.data(), qv, k.data(), kv, v.data(), vv, mk, states.data(),
                                       zstates.data(), out.data(), ov, den.data(), c.nq, c.nk,
                                       c.d, c.m, q_chunks, k_chunks, 1e-6f);
    else
      fused_output_kernel<float, false>(q.data(), qv, k.data(), kv, v.data(), vv, mk,
                                        states.data(), zstates.data(), out.data(), ov, den.data(),
                                        c.nq, c.nk, c.d, c.m, q_chunks, k_chunks, 1e-6f);
  });
  return out;
}

// float64 reference: weights phi(q_i) . phi(k_j) (padded keys and, causal, j > i excluded).
std::vector<double> fused_reference(const FusedCase& c, int ld, const std::vector<float>& q,
                                    const std::vector<float>& k, const std::vector<float>& v,
                                    const std::vector<char>& mask, std::vector<double>& den) {
  auto phi = [](double x) { return x > 0 ? x + 1 : std::exp(x); };
  std::vector<double> out(int64_t(c.b) * c.nq * c.h * c.m, 0.0);
  den.assign(int64_t(c.b) * c.h * c.nq, 0.0);
  for (int b = 0; b < c.b; ++b)
    for (int h = 0; h < c.h; ++h)
      for (int i = 0; i < c.nq; ++i) {
        double total = 0;
        std::vector<double> acc(c.m, 0.0);
        for (int j = 0; j < c.nk; ++j) {
          if ((c.causal && j > i) || (c.masked && mask[int64_t(b) * c.nk + j])) continue;
          double w = 0;
          for (int x = 0; x < c.d; ++x)
            w += phi(q[((int64_t(b) * c.nq + i) * c.h + h) * ld + x]) *
                 phi(k[((int64_t(b) * c.nk + j) * c.h + h) * ld + x]);
          total += w;
          for (int y = 0; y < c.m; ++y) acc[y] += w * v[((int64_t(b) * c.nk + j) * c.h + h) * c.m + y];
        }
        den[(int64_t(b) * c.h + h) * c.nq + i] = total + 1e-6;
        for (int y = 0; y < c.m; ++y)
          out[((int64_t(b) * c.nq + i) * c.h + h) * c.m + y] = acc[y] / (total + 1e-6);
      }
  return out;
}

int main(int argc, char** argv) {
  const unsigned seed = argc > 1 ? static_cast<unsigned>(std::atoll(argv[1])) : 1234u;
  const int limit = argc > 2 ? std::atoi(argv[2]) : 1 << 30;
  int index = 0;
  std::printf("seed=%u\n", seed);
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist;
  struct Case { int64_t bh, n; int d, m; };
  const Case cases[] = {{1, 1, 1, 1},   {2, 1, 16, 16},   {2, 7, 16, 16},  {1, 64, 64, 64},
                        {2, 65, 64, 32}, {1, 129, 128, 16}, {1, 200, 16, 128}, {1, 131, 256, 256},
                        {1, 97, 1, 256}, {1, 97, 256, 1},   {3, 150, 33, 70}};
  int failures = 0;
  for (const Case& cs : cases) {
    if (index++ >= limit) break;
    for (int rev = 0; rev < 2; ++rev) {
      std::vector<float> a(cs.bh * cs.n * cs.d), b(a.size()), c(cs.bh * cs.n * cs.m);
      for (auto* v : {&a, &b, &c}) for (float& x : *v) x = dist(gen);
      auto got = product(a, b, c, cs.bh, cs.n, cs.d, cs.m, rev);
      auto want = reference(a, b, c, cs.bh, cs.n, cs.d, cs.m, rev);
      double err = 0, scale = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        err = std::max(err, std::isnan(got[i]) ? INFINITY : std::abs(got[i] - want[i]));
        scale = std::max(scale, std::abs(want[i]));
      }
      const bool ok = err <= 1e-5 * std::max(scale, 1.0);
      failures += !ok;
      std::printf("%s bh=%ld n=%ld d=%d m=%d reverse=%d  max_err=%.3g scale=%.3g\n",
                  ok ? "ok  " : "FAIL", long(cs.bh), long(cs.n), cs.d, cs.m, rev, err, scale);
    }
  }
  const FusedCase fused_cases[] = {
      {1, 1, 1, 1, 1, 1, false, false},   {1, 1, 1, 1, 1, 1, true, false},
      {2, 2, 7, 7, 16, 16, true, true},   {2, 2, 7, 7, 16, 16, false, true},
      {1, 1, 64, 64, 64, 64, true, false}, {2, 1, 65, 65, 64, 32, true, true},
      {2, 1, 65, 65, 64, 32, false, true}, {1, 2, 130, 130, 33, 70, true, true},
      {1, 2, 50, 130, 33, 70, false, true}, {2, 1, 97, 97, 128, 16, false, false}};
  for (const FusedCase& c : fused_cases) {
    if (index++ >= limit) break;
    const int ld = c.d + 3;  // rows wider than d: the kernels must follow the strides
    std::vector<float> q(int64_t(c.b) * c.nq * c.h * ld), k(int64_t(c.b) * c.nk * c.h * ld);
    std::vector<float> v(int64_t(c.b) * c.nk * c.h * c.m);
    for (auto* x : {&q, &k, &v}) for (float& e : *x) e = dist(gen);
    std::vector<char> mask(int64_t(c.b) * c.nk, 0);
    std::bernoulli_distribution pad(0.3);
    for (auto& e : mask) e = pad(gen);
    if (c.masked && c.b > 1) std::fill(mask.begin() + c.nk, mask.begin() + 2 * c.nk, 1);  // all padded
    std::vector<float> den;
    std::vector<double> den_ref;
    auto got = fused_forward(c, ld, q, k, v, mask, den);
    auto want = fused_reference(c, ld, q, k, v, mask, den_ref);
    double err = 0, scale = 0, den_err = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      err = std::max(err, std::isnan(got[i]) ? INFINITY : std::abs(got[i] - want[i]));
      scale = std::max(scale, std::abs(want[i]));
    }
    for (size_t i = 0; i < den.size(); ++i)
      den_err = std::max(den_err, std::isnan(den[i]) ? INFINITY
                                                     : std::abs(den[i] - den_ref[i]) / den_ref[i]);
    const bool ok = err <= 2e-5 * std::max(scale, 1.0) && den_err <= 2e-5;
    failures += !ok;
    std::printf("%s fused b=%d h=%d nq=%d nk=%d d=%d m=%d causal=%d masked=%d  max_err=%.3g "
                "scale=%.3g den_rel_err=%.3g\n",
                ok ? "ok  " : "FAIL", c.b, c.h, c.nq, c.nk, c.d, c.m, c.causal, c.masked, err, scale,
                den_err);
  }
  std::printf("%d failures\n", failures);
  return failures != 0;
}
