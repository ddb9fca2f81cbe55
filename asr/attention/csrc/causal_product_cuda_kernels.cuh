// Device code of the CUDA causal dot product (see causal_product_cuda.cu for the host side).
//
//   out[i] = sum_{j <= i} (a_i . b_j) c_j          a, b: (N, D)   c, out: (N, M)   per (batch, head)
//
// With `reverse` the sum runs over j >= i instead (the same computation on the time-reversed
// sequence); the backward pass is three such products (see causal_product_cuda.cu).
//
// Chunked algorithm, fully parallel over (batch*head, chunk, tile), float32 accumulation:
//   1. chunk_states_kernel:   T_c = sum_{j in chunk c} b_j c_j^T           (D x M per chunk)
//   2. exclusive_scan_kernel: S_c = T_0 + ... + T_{c-1}                    (in place)
//   3. chunk_output_kernel:   out_c = tril(A_c B_c^T) C_c + A_c S_c
// Every product is a 64 x 64 output tile computed by 256 threads (16 x 16), each owning a 4 x 4
// micro-tile; operands are read from shared memory as float4 (4 values per instruction), with
// row strides padded to avoid bank conflicts while keeping 16-byte alignment.
//
// This header holds no ATen code so that it can also be compiled for a CPU emulation harness.
#pragma once

#include <cstdint>

namespace causal_product {

constexpr int kChunk = 64;              // time steps per chunk (rows of every output tile)
constexpr int kTile = 64;               // columns of an output tile (of M, or of D for states)
constexpr int kInner = 32;              // slice of the D sum staged in shared memory at once
constexpr int kSide = 16;               // threads per tile side: 16 x 16 = 256 threads
constexpr int kThreads = kSide * kSide;
constexpr int kMicro = kTile / kSide;   // 4 x 4 outputs per thread
constexpr int kPad = 4;                 // row padding: no bank conflicts, rows stay 16B-aligned
constexpr int kScanUnroll = 8;          // chunks loaded at once by the prefix-sum kernel
static_assert(kChunk == kTile, "the causal mask assumes square intra-chunk score tiles");
static_assert(kMicro * kSide == kTile && kMicro == 4, "a tile splits into 4 x 4 micro-tiles");

// Shared memory of the output kernel: phase 1 holds A, B slices and an S slice, phase 2 the
// masked scores and the C tile; both fit in one static array (< 48 KiB).
constexpr int kPhase1Floats = 2 * kChunk * (kInner + kPad) + kInner * (kTile + kPad);
constexpr int kPhase2Floats = kChunk * (kChunk + kPad) + kChunk * (kTile + kPad);
constexpr int kOutputSmemFloats = kPhase1Floats > kPhase2Floats ? kPhase1Floats : kPhase2Floats;

static_assert(kInner % 4 == 0 && kChunk % 4 == 0 && (kInner + kPad) % 4 == 0 &&
                  (kTile + kPad) % 4 == 0 && (kChunk + kPad) % 4 == 0,
              "float4 reads need multiples of 4 floats");

// p must be 16-byte aligned: shared arrays are __align__(16) and all offsets multiples of 4.
__device__ __forceinline__ float4 load4(const float* p) {
  return *reinterpret_cast<const float4*>(p);
}

__device__ __forceinline__ float dot4(float4 a, float4 b) {
  return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
}

// acc[0..3] += a * (b.x, b.y, b.z, b.w)
__device__ __forceinline__ void axpy4(float* acc, float a, float4 b) {
  acc[0] += a * b.x;
  acc[1] += a * b.y;
  acc[2] += a * b.z;
  acc[3] += a * b.w;
}

// acc[0..3] += sum_u x_u * z[u]: four steps of a sum at once (x_u: component u of x,
// z[u]: the right operand's row u as float4).
__device__ __forceinline__ void rank4_update(float* acc, float4 x, const float4* z) {
  axpy4(acc, x.x, z[0]);
  axpy4(acc, x.y, z[1]);
  axpy4(acc, x.z, z[2]);
  axpy4(acc, x.w, z[3]);
}

template <typename T>
__device__ __forceinline__ float to_float(T x) {
  return static_cast<float>(x);
}

// Logical time step t (the kernels always think causally) to the row it lives in.
__device__ __forceinline__ int64_t physical_row(int64_t t, int64_t n, bool reverse) {
  return reverse ? n - 1 - t : t;
}

// Copy logical rows [t0, t0 + ROWS) and columns [col0, col0 + COLS) of a row-major (n, width)
// matrix into a shared tile with leading dimension ld, as float, zero-filling outside the matrix.
template <typename T, int ROWS, int COLS>
__device__ __forceinline__ void load_sequence_tile(float* dst, int ld, const T* src, int64_t n,
                                                   int width, int64_t t0, int col0, bool reverse) {
  for (int e = threadIdx.x; e < ROWS * COLS; e += kThreads) {
    const int r = e / COLS;
    const int col = e % COLS;
    const int64_t t = t0 + r;
    const int gcol = col0 + col;
    float x = 0.0f;
    if (t < n && gcol < width) {
      x = to_float(src[physical_row(t, n, reverse) * width + gcol]);
    }
    dst[r * ld + col] = x;
  }
}

// This thread's 4 x 4 block of X^T Y over the kChunk rows of two shared tiles (leading dimension
// ld): rows 4 ty + r of X^T (columns of X) and columns 4 tx + q of Y. How a chunk's state
// phi(K_c)^T V_c (or B_c^T C_c) is formed.
__device__ __forceinline__ void chunk_gram_micro_tile(float (&acc)[kMicro][kMicro], const float* xs,
                                                      const float* ys, int ld, int tx, int ty) {
#pragma unroll 4
  for (int s = 0; s < kChunk; ++s) {
    const float4 x = load4(xs + s * ld + kMicro * ty);
    const float4 y = load4(ys + s * ld + kMicro * tx);
    axpy4(acc[0], x.x, y);
    axpy4(acc[1], x.y, y);
    axpy4(acc[2], x.z, y);
    axpy4(acc[3], x.w, y);
  }
}

// Write a 4 x 4 block to rows row0.. and columns col0.. of a row-major (rows, cols) matrix,
// dropping what falls outside it.
__device__ __forceinline__ void store_micro_tile(float* out, const float (&acc)[kMicro][kMicro],
                                                 int rows, int cols, int row0, int col0) {
#pragma unroll
  for (int r = 0; r < kMicro; ++r) {
    const int row = row0 + r;
#pragma unroll
    for (int q = 0; q < kMicro; ++q) {
      const int col = col0 + q;
      if (row < rows && col < cols) out[static_cast<int64_t>(row) * cols + col] = acc[r][q];
    }
  }
}

// Kernel 1: per-chunk states T_c = B_c^T C_c, one 64 x 64 tile of (D, M) per block.
// grid.x = bh * (n_chunks - 1) + chunk (the last chunk's state is never needed),
// grid.y = d_tile * m_tiles + m_tile.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    chunk_states_kernel(const T* __restrict__ b, const T* __restrict__ c,
                        float* __restrict__ states, int64_t n, int d, int m, int n_chunks,
                        int m_tiles, bool reverse) {
  __shared__ __align__(16) float bs[kChunk * (kTile + kPad)];
  __shared__ __align__(16) float cs[kChunk * (kTile + kPad)];
  constexpr int ld = kTile + kPad;

  const int64_t bh = blockIdx.x / (n_chunks - 1);
  const int chunk = static_cast<int>(blockIdx.x % (n_chunks - 1));
  const int d0 = static_cast<int>(blockIdx.y / m_tiles) * kTile;
  const int m0 = static_cast<int>(blockIdx.y % m_tiles) * kTile;
  const int64_t t0 = static_cast<int64_t>(chunk) * kChunk;

  load_sequence_tile<T, kChunk, kTile>(bs, ld, b + bh * n * d, n, d, t0, d0, reverse);
  load_sequence_tile<T, kChunk, kTile>(cs, ld, c + bh * n * m, n, m, t0, m0, reverse);
  __syncthreads();

  // This thread owns state rows d0 + 4 ty + r and columns m0 + 4 tx + q.
  const int tx = threadIdx.x % kSide;
  const int ty = threadIdx.x / kSide;
  float acc[kMicro][kMicro] = {};
  chunk_gram_micro_tile(acc, bs, cs, ld, tx, ty);

  float* out = states + (bh * n_chunks + chunk) * static_cast<int64_t>(d) * m;
  store_micro_tile(out, acc, d, m, d0 + kMicro * ty, m0 + kMicro * tx);
}

// Kernel 2: in-place exclusive prefix sum over chunks, one thread per (bh, d, m) entry.
// states: (bh_count, n_chunks, d * m); entry n_chunks - 1 is read as zero (never written).
// static: this header is included by more than one .cu of the extension.
static __global__ void exclusive_scan_kernel(float* __restrict__ states, int64_t bh_count, int64_t dm,
                                      int n_chunks) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= bh_count * dm) return;
  float* p = states + (e / dm) * n_chunks * dm + e % dm;
  float running = 0.0f;
  // Groups of kScanUnroll independent loads hide memory latency along the serial chunk loop.
  for (int c0 = 0; c0 < n_chunks; c0 += kScanUnroll) {
    float own[kScanUnroll];
#pragma unroll
    for (int u = 0; u < kScanUnroll; ++u) {
      const int chunk = c0 + u;
      own[u] = chunk + 1 < n_chunks ? p[chunk * dm] : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kScanUnroll; ++u) {
      const int chunk = c0 + u;
      if (chunk < n_chunks) {
        p[chunk * dm] = running;
        running += own[u];
      }
    }
  }
}

// Kernel 3: out_c = tril(A_c B_c^T) C_c + A_c S_c for one chunk and one 64-column tile of M.
// grid.x = bh * n_chunks + chunk, grid.y = m tile.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    chunk_output_kernel(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ c,
                        const float* __restrict__ states, T* __restrict__ out, int64_t n, int d,
                        int m, int n_chunks, bool reverse) {
  __shared__ __align__(16) float smem[kOutputSmemFloats];
  constexpr int ld_inner = kInner + kPad;
  constexpr int ld_tile = kTile + kPad;
  constexpr int ld_score = kChunk + kPad;
  // Phase 1 views.
  float* as = smem;                          // [kChunk][ld_inner]  A_c[:, d0:d0+kInner]
  float* bs = as + kChunk * ld_inner;        // [kChunk][ld_inner]  B_c[:, d0:d0+kInner]
  float* ss = bs + kChunk * ld_inner;        // [kInner][ld_tile]   S_c[d0:d0+kInner, m0:m0+kTile]
  // Phase 2 views (alias phase 1; separated by __syncthreads).
  float* ps = smem;                          // [kChunk][ld_score]  masked scores
  float* cs = smem + kChunk * ld_score;      // [kChunk][ld_tile]   C_c[:, m0:m0+kTile]

  const int64_t bh = blockIdx.x / n_chunks;
  const int chunk = static_cast<int>(blockIdx.x % n_chunks);
  const int m0 = static_cast<int>(blockIdx.y) * kTile;
  const int64_t t0 = static_cast<int64_t>(chunk) * kChunk;
  const T* a_bh = a + bh * n * d;
  const T* b_bh = b + bh * n * d;
  const float* state = states + (bh * n_chunks + chunk) * static_cast<int64_t>(d) * m;

  // This thread owns chunk rows i = ty + 16 r, score columns j = tx + 16 q and output
  // columns m0 + 4 tx + q.
  const int tx = threadIdx.x % kSide;
  const int ty = threadIdx.x / kSide;
  float score[kMicro][kMicro] = {};  // (A_c B_c^T)[i][j]
  float acc[kMicro][kMicro] = {};    // out[i][m0 + 4 tx + q]

  for (int d0 = 0; d0 < d; d0 += kInner) {
    load_sequence_tile<T, kChunk, kInner>(as, ld_inner, a_bh, n, d, t0, d0, reverse);
    load_sequence_tile<T, kChunk, kInner>(bs, ld_inner, b_bh, n, d, t0, d0, reverse);
    for (int e = threadIdx.x; e < kInner * kTile; e += kThreads) {
      const int r = e / kTile;
      const int col = e % kTile;
      float x = 0.0f;
      if (d0 + r < d && m0 + col < m) x = state[static_cast<int64_t>(d0 + r) * m + m0 + col];
      ss[r * ld_tile + col] = x;
    }
    __syncthreads();
#pragma unroll 2
    for (int s = 0; s < kInner; s += 4) {  // four steps of the D sum per iteration
      float4 x[kMicro], y[kMicro], z[4];
#pragma unroll
      for (int r = 0; r < kMicro; ++r) x[r] = load4(as + (ty + kSide * r) * ld_inner + s);
#pragma unroll
      for (int q = 0; q < kMicro; ++q) y[q] = load4(bs + (tx + kSide * q) * ld_inner + s);
#pragma unroll
      for (int u = 0; u < 4; ++u) z[u] = load4(ss + (s + u) * ld_tile + kMicro * tx);
#pragma unroll
      for (int r = 0; r < kMicro; ++r) {
#pragma unroll
        for (int q = 0; q < kMicro; ++q) score[r][q] += dot4(x[r], y[q]);
        rank4_update(acc[r], x[r], z);
      }
    }
    __syncthreads();  // phase-1 buffers are overwritten next (next slice, or phase 2)
  }

  // Phase 2: causal mask inside the chunk, then acc += tril(scores) C_c.
#pragma unroll
  for (int r = 0; r < kMicro; ++r) {
    const int row = ty + kSide * r;
#pragma unroll
    for (int q = 0; q < kMicro; ++q) {
      const int col = tx + kSide * q;
      ps[row * ld_score + col] = col <= row ? score[r][q] : 0.0f;
    }
  }
  load_sequence_tile<T, kChunk, kTile>(cs, ld_tile, c + bh * n * m, n, m, t0, m0, reverse);
  __syncthreads();
#pragma unroll 2
  for (int s = 0; s < kChunk; s += 4) {
    float4 x[kMicro], z[4];
#pragma unroll
    for (int r = 0; r < kMicro; ++r) x[r] = load4(ps + (ty + kSide * r) * ld_score + s);
#pragma unroll
    for (int u = 0; u < 4; ++u) z[u] = load4(cs + (s + u) * ld_tile + kMicro * tx);
#pragma unroll
    for (int r = 0; r < kMicro; ++r) rank4_update(acc[r], x[r], z);
  }

  T* out_bh = out + bh * n * m;
#pragma unroll
  for (int r = 0; r < kMicro; ++r) {
    const int64_t t = t0 + ty + kSide * r;
    if (t >= n) continue;
    const int64_t row = physical_row(t, n, reverse);
#pragma unroll
    for (int q = 0; q < kMicro; ++q) {
      const int col = m0 + kMicro * tx + q;
      if (col < m) out_bh[row * m + col] = static_cast<T>(acc[r][q]);
    }
  }
}

}  // namespace causal_product
