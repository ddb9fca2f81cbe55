// CPU emulation of the CUDA kernels in kernels/causal_product_cuda_kernels.cuh: every CUDA thread
// is a std::thread, __syncthreads is a std::barrier, blocks run one after another. It runs the real
// device code (indexing, masking, reverse, partial chunks and tiles) against a float64 reference,
// so the kernel logic is tested on machines without a GPU; built with -fsanitize=thread it also
// finds missing __syncthreads. Not a substitute for a GPU run (no warps, no half types, no real
// memory model). Used by tests/attention/test_cuda_kernel.py:
//   g++ -std=c++20 -O2 -pthread -fno-strict-aliasing -fsanitize=alignment -fno-sanitize-recover
//       -Ikernels tests/attention/cuda_kernel_emulation.cpp -o emulate
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
  std::printf("%d failures\n", failures);
  return failures != 0;
}
