// Device code of the fused linear-attention forward pass on CUDA (host side:
// linear_attention_cuda.cu). phi(x) = elu(x) + 1 is applied to q and k while tiles are loaded,
// padded keys (and their values) are zeroed there too, and the normaliser is reduced beside the numerator:
//
//   1. feature_states_kernel:  T_c = phi(K_c)^T V_c and t_c = sum_rows phi(K_c)   (per 64-row chunk)
//   2. exclusive_scan_kernel (causal: S_c = T_0 + ... + T_{c-1}, same for z) or
//      chunk_total_kernel    (non-causal: S = sum_c T_c, z = sum_c t_c)
//   3. fused_output_kernel:    num = [tril(phi(Q_c) phi(K_c)^T) V_c] + phi(Q_c) S_c
//                              den = [rowsum(tril(phi(Q_c) phi(K_c)^T))] + phi(Q_c) z_c + eps
//                              out = num / den                 (bracketed terms: causal only)
//
// Inputs are read in place from (B, N, H, W) tensors of any strides (last dimension contiguous)
// through SeqView, so the projections' output needs no transpose. float32 accumulation.
// Tiles, thread layout and helpers are those of causal_product_cuda_kernels.cuh. No ATen code here,
// so the CPU emulation harness (tests/attention/cuda_kernel_emulation.cpp) compiles it too.
#pragma once

#include <cmath>

#include "causal_product_cuda_kernels.cuh"

namespace causal_product {

// Element offset of row t of head bh = b * heads + h in a (B, N, H, W) tensor.
struct SeqView {
  int64_t stride_b, stride_n, stride_h;
  int heads;
  __device__ __forceinline__ int64_t row(int64_t bh, int64_t t) const {
    return (bh / heads) * stride_b + (bh % heads) * stride_h + t * stride_n;
  }
};

__device__ __forceinline__ float elu_plus_one(float x) { return x > 0.0f ? x + 1.0f : expf(x); }

// Rows [t0, t0 + ROWS) and columns [col0, col0 + COLS) of head bh into a shared tile (leading
// dimension ld) as float; phi applied if asked; rows with mask[t] set and everything outside the
// tensor are zero. mask: this batch entry's (N) key padding flags, or nullptr.
template <typename T, int ROWS, int COLS>
__device__ __forceinline__ void load_head_tile(float* dst, int ld, const T* src, SeqView view,
                                               int64_t bh, int64_t n, int width, int64_t t0,
                                               int col0, bool feature_map, const bool* mask) {
  for (int e = threadIdx.x; e < ROWS * COLS; e += kThreads) {
    const int r = e / COLS;
    const int col = e % COLS;
    const int64_t t = t0 + r;
    const int gcol = col0 + col;
    float x = 0.0f;
    if (t < n && gcol < width && (mask == nullptr || !mask[t])) {
      x = to_float(src[view.row(bh, t) + gcol]);
      if (feature_map) x = elu_plus_one(x);
    }
    dst[r * ld + col] = x;
  }
}

// Kernel 1: T_c = phi(K_c)^T V_c, one 64 x 64 tile of (D, M) per block, and (blocks of the first
// M tile) t_c = column sums of phi(K_c). grid.x = bh * n_state_chunks + chunk,
// grid.y = d_tile * m_tiles + m_tile. states (bh, n_chunks, D, M), zstates (bh, n_chunks, D).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    feature_states_kernel(const T* __restrict__ k, SeqView k_view, const T* __restrict__ v,
                          SeqView v_view, const bool* __restrict__ mask,
                          float* __restrict__ states, float* __restrict__ zstates, int64_t n,
                          int d, int m, int n_state_chunks, int n_chunks, int m_tiles) {
  __shared__ __align__(16) float bs[kChunk * (kTile + kPad)];
  __shared__ __align__(16) float cs[kChunk * (kTile + kPad)];
  constexpr int ld = kTile + kPad;

  const int64_t bh = blockIdx.x / n_state_chunks;
  const int chunk = static_cast<int>(blockIdx.x % n_state_chunks);
  const int d0 = static_cast<int>(blockIdx.y / m_tiles) * kTile;
  const int m0 = static_cast<int>(blockIdx.y % m_tiles) * kTile;
  const int64_t t0 = static_cast<int64_t>(chunk) * kChunk;
  const bool* mask_b = mask == nullptr ? nullptr : mask + (bh / k_view.heads) * n;

  load_head_tile<T, kChunk, kTile>(bs, ld, k, k_view, bh, n, d, t0, d0, true, mask_b);
  load_head_tile<T, kChunk, kTile>(cs, ld, v, v_view, bh, n, m, t0, m0, false, mask_b);
  __syncthreads();

  const int tx = threadIdx.x % kSide;
  const int ty = threadIdx.x / kSide;
  float acc[kMicro][kMicro] = {};
  chunk_gram_micro_tile(acc, bs, cs, ld, tx, ty);
  const int64_t entry = bh * n_chunks + chunk;
  store_micro_tile(states + entry * static_cast<int64_t>(d) * m, acc, d, m, d0 + kMicro * ty,
                   m0 + kMicro * tx);
  if (m0 == 0 && threadIdx.x < kTile && d0 + static_cast<int>(threadIdx.x) < d) {
    float s = 0.0f;
    for (int r = 0; r < kChunk; ++r) s += bs[r * ld + threadIdx.x];
    zstates[entry * d + d0 + threadIdx.x] = s;
  }
}

// Non-causal kernel 2: entry 0 of every (bh) row of states (bh_count, n_chunks, dm) becomes the
// sum over its n_chunks entries. One thread per (bh, element).
// static: this header is included by more than one .cu of the extension.
static __global__ void chunk_total_kernel(float* __restrict__ states, int64_t bh_count, int64_t dm,
                                   int n_chunks) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= bh_count * dm) return;
  float* p = states + (e / dm) * n_chunks * dm + e % dm;
  float total = 0.0f;
  for (int c = 0; c < n_chunks; ++c) total += p[c * dm];
  p[0] = total;
}

// Kernel 3: out_c = num / den for one 64-row chunk of queries and one 64-column tile of M.
// grid.x = bh * n_chunks + chunk, grid.y = m tile. states/zstates: causal, the exclusive prefix
// of this chunk; non-causal, entry 0 (the total). den (bh, n) is written by the first M tile.
template <typename T, bool kCausal>
__global__ void __launch_bounds__(kThreads)
    fused_output_kernel(const T* __restrict__ q, SeqView q_view, const T* __restrict__ k,
                        SeqView k_view, const T* __restrict__ v, SeqView v_view,
                        const bool* __restrict__ mask, const float* __restrict__ states,
                        const float* __restrict__ zstates, T* __restrict__ out, SeqView out_view,
                        float* __restrict__ den, int64_t n, int64_t n_keys, int d, int m,
                        int n_chunks, int n_key_chunks, float eps) {
  __shared__ __align__(16) float smem[kOutputSmemFloats];
  __shared__ float zs[kInner];
  __shared__ float den_s[kChunk];
  constexpr int ld_inner = kInner + kPad;
  constexpr int ld_tile = kTile + kPad;
  constexpr int ld_score = kChunk + kPad;
  float* as = smem;                    // [kChunk][ld_inner]  phi(Q_c)[:, d0:d0+kInner]
  float* bs = as + kChunk * ld_inner;  // [kChunk][ld_inner]  phi(K_c)[:, d0:d0+kInner] (causal)
  float* ss = bs + kChunk * ld_inner;  // [kInner][ld_tile]   S[d0:d0+kInner, m0:m0+kTile]
  float* ps = smem;                    // [kChunk][ld_score]  masked scores (phase 2)
  float* cs = smem + kChunk * ld_score;  // [kChunk][ld_tile] V_c[:, m0:m0+kTile] (phase 2)

  const int64_t bh = blockIdx.x / n_chunks;
  const int chunk = static_cast<int>(blockIdx.x % n_chunks);
  const int m0 = static_cast<int>(blockIdx.y) * kTile;
  const int64_t t0 = static_cast<int64_t>(chunk) * kChunk;
  const int64_t entry = bh * n_key_chunks + (kCausal ? chunk : 0);
  const float* state = states + entry * static_cast<int64_t>(d) * m;
  const float* z = zstates + entry * d;
  const bool* mask_b = mask == nullptr ? nullptr : mask + (bh / k_view.heads) * n_keys;

  const int tx = threadIdx.x % kSide;
  const int ty = threadIdx.x / kSide;
  float score[kMicro][kMicro] = {};
  float acc[kMicro][kMicro] = {};
  if (threadIdx.x < kChunk) den_s[threadIdx.x] = 0.0f;

  for (int d0 = 0; d0 < d; d0 += kInner) {
    load_head_tile<T, kChunk, kInner>(as, ld_inner, q, q_view, bh, n, d, t0, d0, true, nullptr);
    if constexpr (kCausal)
      load_head_tile<T, kChunk, kInner>(bs, ld_inner, k, k_view, bh, n, d, t0, d0, true, mask_b);
    for (int e = threadIdx.x; e < kInner * kTile; e += kThreads) {
      const int r = e / kTile;
      const int col = e % kTile;
      float x = 0.0f;
      if (d0 + r < d && m0 + col < m) x = state[static_cast<int64_t>(d0 + r) * m + m0 + col];
      ss[r * ld_tile + col] = x;
    }
    if (threadIdx.x < kInner) zs[threadIdx.x] = d0 + threadIdx.x < d ? z[d0 + threadIdx.x] : 0.0f;
    __syncthreads();
    if (threadIdx.x < kChunk) {  // den += phi(q_row) . z over this slice
      float s = 0.0f;
      for (int u = 0; u < kInner; ++u) s += as[threadIdx.x * ld_inner + u] * zs[u];
      den_s[threadIdx.x] += s;
    }
#pragma unroll 2
    for (int s = 0; s < kInner; s += 4) {
      float4 x[kMicro], y[kMicro], zz[4];
#pragma unroll
      for (int r = 0; r < kMicro; ++r) x[r] = load4(as + (ty + kSide * r) * ld_inner + s);
      if constexpr (kCausal) {
#pragma unroll
        for (int q2 = 0; q2 < kMicro; ++q2) y[q2] = load4(bs + (tx + kSide * q2) * ld_inner + s);
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) zz[u] = load4(ss + (s + u) * ld_tile + kMicro * tx);
#pragma unroll
      for (int r = 0; r < kMicro; ++r) {
        if constexpr (kCausal) {
#pragma unroll
          for (int q2 = 0; q2 < kMicro; ++q2) score[r][q2] += dot4(x[r], y[q2]);
        }
        rank4_update(acc[r], x[r], zz);
      }
    }
    __syncthreads();
  }

  if constexpr (kCausal) {
#pragma unroll
    for (int r = 0; r < kMicro; ++r) {
      const int row = ty + kSide * r;
#pragma unroll
      for (int q2 = 0; q2 < kMicro; ++q2) {
        const int col = tx + kSide * q2;
        ps[row * ld_score + col] = col <= row ? score[r][q2] : 0.0f;
      }
    }
    load_head_tile<T, kChunk, kTile>(cs, ld_tile, v, v_view, bh, n, m, t0, m0, false, mask_b);
    __syncthreads();
    if (threadIdx.x < kChunk) {  // den += row sum of the masked intra-chunk scores
      float s = 0.0f;
      for (int j = 0; j < kChunk; ++j) s += ps[threadIdx.x * ld_score + j];
      den_s[threadIdx.x] += s;
    }
#pragma unroll 2
    for (int s = 0; s < kChunk; s += 4) {
      float4 x[kMicro], zz[4];
#pragma unroll
      for (int r = 0; r < kMicro; ++r) x[r] = load4(ps + (ty + kSide * r) * ld_score + s);
#pragma unroll
      for (int u = 0; u < 4; ++u) zz[u] = load4(cs + (s + u) * ld_tile + kMicro * tx);
#pragma unroll
      for (int r = 0; r < kMicro; ++r) rank4_update(acc[r], x[r], zz);
    }
    __syncthreads();  // den_s complete
  }

#pragma unroll
  for (int r = 0; r < kMicro; ++r) {
    const int row = ty + kSide * r;
    const int64_t t = t0 + row;
    if (t >= n) continue;
    const float denom = den_s[row] + eps;
    const float inv = 1.0f / denom;
    if (blockIdx.y == 0 && tx == 0) den[bh * n + t] = denom;
    T* out_row = out + out_view.row(bh, t);
#pragma unroll
    for (int q2 = 0; q2 < kMicro; ++q2) {
      const int col = m0 + kMicro * tx + q2;
      if (col < m) out_row[col] = static_cast<T>(acc[r][q2] * inv);
    }
  }
}

}  // namespace causal_product
