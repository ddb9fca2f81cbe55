// Per-head CPU kernels of linear attention (Katharopoulos et al., 2020); ATen glue and bindings are
// in attention_cpu.cpp.
//
// Causal, chunked (C steps per chunk), forward in time with the running state S = sum k v^T (D x M)
// and, when normalised, z = sum k:
//   scores = tril(Q_c K_c^T);  out_c = [scores | Q_c] @ [V_c ; S]     (one GEMM, inner C + D)
//   den_c  = rowsum(scores) + Q_c z + eps;  out_c /= den_c             (normalised only)
// The two products of the textbook form share one GEMM by keeping [scores | Q] and [V ; S] side by
// side in the work buffers. The backward pass runs forward in time for grad_q (state S^T) and
// backward in time for grad_k, grad_v (states R = sum_{later} q g^T and R^T), with the same merged
// GEMMs, so the extra memory per head is O(C (C + D + M) + D M), independent of N. Every product is
// a row-major A @ B (gemm_nn); operands needed transposed are loaded transposed.
//
// The fused ("normalised") form applies phi(x) = elu(x) + 1 to q and k while loading a chunk, zeroes
// padded keys and their values (so that even NaN padding cannot leak), divides by the normaliser,
// and in the backward pass folds the normaliser's gradient in (gn = g / den, gd = -(g . out) / den).
// Only q, k, v, out and den are kept for the backward pass; phi is recomputed.
//
// Non-causal: KV = sum_j phi(k_j) v_j^T and z = sum_j phi(k_j) in one pass over the keys, then
// out = phi(Q) KV / (phi(Q) z + eps) in one pass over the queries; backward in one pass over each.
//
// acc_t is float for float16/bfloat16/float32 inputs and double for float64.

#pragma once

#include <vector>

#include "cpu_primitives.h"

namespace asr_attention {

template <typename in_t>
struct HeadInputs {
  Rows<const in_t> q, k, v;
  const bool* mask;  // (nk) true = padded key, or nullptr
  int nq, nk, d, m;
};

template <typename acc_t>
struct Buffer {
  std::vector<acc_t> data;
  acc_t* get(size_t n) {
    if (data.size() < n) data.resize(n);
    return data.data();
  }
};

// Work buffers of one thread (reused across heads).
template <typename acc_t>
struct Workspace {
  Buffer<acc_t> a, b, c, e, f, g, h, t, row;
};

// dst (width x cols_total, row stride ld) = rows r0..r0+len of src transposed (optionally through
// phi); masked rows and columns len..cols_total-1 are zero. tmp: cols_total x width.
template <typename in_t, typename acc_t>
void load_rows_transposed(Rows<const in_t> src, int64_t r0, int len, int cols_total, int width,
                          acc_t* dst, int ld, bool feature_map, const bool* mask, acc_t* tmp) {
  load_rows<in_t, acc_t>(src, r0, len, cols_total, width, tmp, width, feature_map, mask);
  transpose(tmp, cols_total, width, width, dst, ld);
}

// -------------------------------------------------------------------------------------- causal

// normalised = false: out_i = sum_{j<=i} (q_i . k_j) v_j (the plain causal product; den unused).
// normalised = true:  out_i = that with phi(q), phi(k) (padded keys zero) / (phi(q_i) . z_i + eps).
template <typename in_t, typename acc_t, bool normalised>
void causal_forward_head(const HeadInputs<in_t>& in, Rows<in_t> out, acc_t* den, acc_t eps,
                         int chunk, Workspace<acc_t>& w) {
  const int n = in.nq, d = in.d, m = in.m, C = chunk;
  const int ldl = C + d;
  const bool* mask = normalised ? in.mask : nullptr;
  acc_t* left = w.a.get(static_cast<size_t>(C) * ldl);     // [scores | phi(Q_c)]
  acc_t* right = w.b.get(static_cast<size_t>(C + d) * m);  // [V_c ; S]
  acc_t* keys_t = w.c.get(static_cast<size_t>(d) * C);     // phi(K_c)^T, padded keys zero
  acc_t* res = w.e.get(static_cast<size_t>(C) * m);
  acc_t* z = w.f.get(d);
  acc_t* tmp = w.row.get(static_cast<size_t>(C) * std::max(d, m));
  acc_t* state = right + static_cast<int64_t>(C) * m;
  std::fill(state, state + static_cast<int64_t>(d) * m, acc_t(0));
  std::fill(z, z + d, acc_t(0));
  for (int c0 = 0; c0 < n; c0 += C) {
    const int len = std::min(C, n - c0);
    prefetch_rows(in.q, c0 + C, C, n, d);
    prefetch_rows(in.k, c0 + C, C, n, d);
    prefetch_rows(in.v, c0 + C, C, n, m);
    load_rows<in_t, acc_t>(in.q, c0, len, len, d, left + C, ldl, normalised, nullptr);
    load_rows_transposed<in_t, acc_t>(in.k, c0, len, C, d, keys_t, C, normalised, mask, tmp);
    load_rows<in_t, acc_t>(in.v, c0, len, C, m, right, m, false, mask);
    gemm_nn<acc_t>(len, len, d, left + C, ldl, keys_t, C, left, ldl, false);  // Q K^T
    mask_triangle(left, len, C, ldl, /*keep_lower=*/true);
    gemm_nn<acc_t>(len, m, C + d, left, ldl, right, m, res, m, false);  // [A | Q] @ [V ; S]
    for (int i = 0; i < len; ++i) {
      acc_t* row = res + static_cast<int64_t>(i) * m;
      if constexpr (normalised) {
        const acc_t* lrow = left + static_cast<int64_t>(i) * ldl;
        const acc_t denom = sum(lrow, i + 1) + dot(lrow + C, z, d) + eps;
        den[c0 + i] = denom;
        scale(row, acc_t(1) / denom, m);
      }
      store_row<in_t, acc_t>(row, out.row(c0 + i), m);
    }
    if (c0 + len < n) {
      gemm_nn<acc_t>(d, m, len, keys_t, C, right, m, state, m, true);  // S += K^T V
      if constexpr (normalised)
        for (int j = 0; j < d; ++j) z[j] += sum(keys_t + static_cast<int64_t>(j) * C, len);
    }
  }
}

// gn = g / den and gd = -(g . out) / den for rows c0..c0+len (normalised); gn = g otherwise.
// gn goes to dst (row stride ld, rows len..rows_total zeroed), gd to gd.
template <typename in_t, typename acc_t, bool normalised>
void load_output_grad(Rows<const in_t> g, Rows<const in_t> out, const acc_t* den, int c0, int len,
                      int rows_total, int m, acc_t* dst, int ld, acc_t* gd) {
  load_rows<in_t, acc_t>(g, c0, len, rows_total, m, dst, ld, false, nullptr);
  if constexpr (normalised) {
    for (int i = 0; i < len; ++i) {
      acc_t* row = dst + static_cast<int64_t>(i) * ld;
      const in_t* o = out.row(c0 + i);
      const acc_t s = dot_row(row, o, m);
      const acc_t inv = acc_t(1) / den[c0 + i];
      gd[i] = -s * inv;
      scale(row, inv, m);
    }
  }
}

template <typename in_t, typename acc_t, bool normalised>
void causal_backward_head(const HeadInputs<in_t>& in, Rows<const in_t> g, Rows<const in_t> out,
                          const acc_t* den, Rows<in_t> grad_q, Rows<in_t> grad_k,
                          Rows<in_t> grad_v, int chunk, Workspace<acc_t>& w) {
  const int n = in.nq, d = in.d, m = in.m, C = chunk;
  const int n_chunks = (n + C - 1) / C;
  const bool* mask = normalised ? in.mask : nullptr;
  acc_t* gd = w.g.get(C);
  acc_t* z = w.f.get(d);
  acc_t* tmp = w.row.get(static_cast<size_t>(C) * std::max(d, m));
  {
    // Pass 1, forward in time: grad_q = [P | Gn] @ [K ; S^T] (+ gd z^T), P = tril(Gn V^T + gd 1^T).
    const int ldl = C + m;
    acc_t* left = w.a.get(static_cast<size_t>(C) * ldl);
    acc_t* right = w.b.get(static_cast<size_t>(C + m) * d);
    acc_t* values_t = w.c.get(static_cast<size_t>(m) * C);
    acc_t* res = w.e.get(static_cast<size_t>(C) * d);
    acc_t* phi_q = w.h.get(static_cast<size_t>(C) * d);
    acc_t* state_t = right + static_cast<int64_t>(C) * d;  // S^T (M x D)
    std::fill(state_t, state_t + static_cast<int64_t>(m) * d, acc_t(0));
    std::fill(z, z + d, acc_t(0));
    for (int c0 = 0; c0 < n; c0 += C) {
      const int len = std::min(C, n - c0);
      prefetch_rows(in.k, c0 + C, C, n, d);
      prefetch_rows(in.v, c0 + C, C, n, m);
      prefetch_rows(g, c0 + C, C, n, m);
      if constexpr (normalised) {
        prefetch_rows(in.q, c0 + C, C, n, d);
        prefetch_rows(out, c0 + C, C, n, m);
      }
      load_rows<in_t, acc_t>(in.k, c0, len, C, d, right, d, normalised, mask);
      load_rows_transposed<in_t, acc_t>(in.v, c0, len, C, m, values_t, C, false, mask, tmp);
      load_output_grad<in_t, acc_t, normalised>(g, out, den, c0, len, len, m, left + C, ldl, gd);
      gemm_nn<acc_t>(len, len, m, left + C, ldl, values_t, C, left, ldl, false);  // Gn V^T
      if constexpr (normalised)
        for (int i = 0; i < len; ++i)
          for (int j = 0; j <= i; ++j) left[static_cast<int64_t>(i) * ldl + j] += gd[i];
      mask_triangle(left, len, C, ldl, /*keep_lower=*/true);
      gemm_nn<acc_t>(len, d, C + m, left, ldl, right, d, res, d, false);
      if constexpr (normalised) {
        load_rows<in_t, acc_t>(in.q, c0, len, len, d, phi_q, d, true, nullptr);
        for (int i = 0; i < len; ++i) {
          acc_t* row = res + static_cast<int64_t>(i) * d;
          axpy(gd[i], z, row, d);
          mul_elu_plus_one_grad(row, phi_q + static_cast<int64_t>(i) * d, d);
        }
      }
      for (int i = 0; i < len; ++i)
        store_row<in_t, acc_t>(res + static_cast<int64_t>(i) * d, grad_q.row(c0 + i), d);
      if (c0 + len < n) {
        gemm_nn<acc_t>(m, d, len, values_t, C, right, d, state_t, d, true);  // S^T += V^T K
        if constexpr (normalised)
          for (int i = 0; i < len; ++i) axpy(acc_t(1), right + static_cast<int64_t>(i) * d, z, d);
      }
    }
  }
  {
    // Pass 2, backward in time, R = sum_{later i} q_i gn_i^T and r = sum_{later i} gd_i q_i:
    //   grad_k = [P^T | V] @ [Q ; R^T] (+ r),  P^T = triu(V Gn^T + 1 gd^T)
    //   grad_v = [triu(K Q^T) | K] @ [Gn ; R]
    const int ld2 = C + m, ld3 = C + d;
    acc_t* left_k = w.a.get(static_cast<size_t>(C) * std::max(ld2, ld3));
    acc_t* right_k = w.b.get(static_cast<size_t>(C + m) * d);  // [phi(Q_c) ; R^T]
    acc_t* left_v = w.c.get(static_cast<size_t>(C) * ld3);     // [triu(K Q^T) | phi(K_c)]
    acc_t* right_v = w.h.get(static_cast<size_t>(C + d) * m);  // [Gn ; R]
    acc_t* res_v = w.e.get(static_cast<size_t>(C) * (d + m));
    acc_t* res_k = res_v + static_cast<int64_t>(C) * m;
    acc_t* trans = w.t.get(static_cast<size_t>(C) * (d + m));
    acc_t* q_t = trans;                                  // phi(Q_c)^T (D x C)
    acc_t* gn_t = trans + static_cast<int64_t>(d) * C;  // Gn^T (M x C)
    acc_t* r_vec = z;
    acc_t* rev_t = right_k + static_cast<int64_t>(C) * d;  // R^T (M x D)
    acc_t* rev = right_v + static_cast<int64_t>(C) * m;    // R (D x M)
    std::fill(rev_t, rev_t + static_cast<int64_t>(m) * d, acc_t(0));
    std::fill(rev, rev + static_cast<int64_t>(d) * m, acc_t(0));
    std::fill(r_vec, r_vec + d, acc_t(0));
    for (int idx = n_chunks - 1; idx >= 0; --idx) {
      const int c0 = idx * C;
      const int len = std::min(C, n - c0);
      prefetch_rows(in.q, c0 - C, C, n, d);
      prefetch_rows(in.k, c0 - C, C, n, d);
      prefetch_rows(in.v, c0 - C, C, n, m);
      prefetch_rows(g, c0 - C, C, n, m);
      if constexpr (normalised) prefetch_rows(out, c0 - C, C, n, m);
      load_rows<in_t, acc_t>(in.q, c0, len, C, d, right_k, d, normalised, nullptr);
      load_rows<in_t, acc_t>(in.k, c0, len, len, d, left_v + C, ld3, normalised, mask);
      load_rows<in_t, acc_t>(in.v, c0, len, len, m, left_k + C, ld2, false, mask);
      load_output_grad<in_t, acc_t, normalised>(g, out, den, c0, len, C, m, right_v, m, gd);
      transpose(right_k, C, d, d, q_t, C);
      transpose(right_v, C, m, m, gn_t, C);
      // P^T[j][i] = v_j . gn_i (+ gd_i), kept for i >= j.
      gemm_nn<acc_t>(len, C, m, left_k + C, ld2, gn_t, C, left_k, ld2, false);
      if constexpr (normalised)
        for (int j = 0; j < len; ++j)
          for (int i = j; i < len; ++i) left_k[static_cast<int64_t>(j) * ld2 + i] += gd[i];
      mask_triangle(left_k, len, C, ld2, /*keep_lower=*/false);
      gemm_nn<acc_t>(len, d, C + m, left_k, ld2, right_k, d, res_k, d, false);
      // triu(K Q^T)[j][i] = k_j . q_i for i >= j.
      gemm_nn<acc_t>(len, C, d, left_v + C, ld3, q_t, C, left_v, ld3, false);
      mask_triangle(left_v, len, C, ld3, /*keep_lower=*/false);
      gemm_nn<acc_t>(len, m, C + d, left_v, ld3, right_v, m, res_v, m, false);
      for (int j = 0; j < len; ++j) {
        acc_t* row = res_k + static_cast<int64_t>(j) * d;
        if constexpr (normalised) {
          axpy(acc_t(1), r_vec, row, d);
          // phi(K) is zero on padded rows, so their grad_k is zero too.
          mul_elu_plus_one_grad(row, left_v + C + static_cast<int64_t>(j) * ld3, d);
        }
        store_row<in_t, acc_t>(row, grad_k.row(c0 + j), d);
        store_row<in_t, acc_t>(res_v + static_cast<int64_t>(j) * m, grad_v.row(c0 + j), m);
      }
      if (idx > 0) {
        gemm_nn<acc_t>(d, m, len, q_t, C, right_v, m, rev, m, true);  // R += Q^T Gn
        transpose(rev, d, m, m, rev_t, d);
        if constexpr (normalised)
          for (int i = 0; i < len; ++i) axpy(gd[i], right_k + static_cast<int64_t>(i) * d, r_vec, d);
      }
    }
  }
}

// ---------------------------------------------------------------------------------- non-causal

// out = phi(Q) KV / (phi(Q) z + eps); kv (D x M), z (D) and den (Nq) are returned for backward.
template <typename in_t, typename acc_t>
void noncausal_forward_head(const HeadInputs<in_t>& in, Rows<in_t> out, acc_t* den, acc_t* kv,
                            acc_t* z, acc_t eps, int block, Workspace<acc_t>& w) {
  const int d = in.d, m = in.m, R = block;
  acc_t* feats_t = w.a.get(static_cast<size_t>(d) * R);
  acc_t* feats = w.b.get(static_cast<size_t>(R) * std::max(d, m));
  acc_t* res = w.c.get(static_cast<size_t>(R) * m);
  acc_t* tmp = w.row.get(static_cast<size_t>(R) * std::max(d, m));
  std::fill(kv, kv + static_cast<int64_t>(d) * m, acc_t(0));
  std::fill(z, z + d, acc_t(0));
  for (int r0 = 0; r0 < in.nk; r0 += R) {
    const int len = std::min(R, in.nk - r0);
    load_rows_transposed<in_t, acc_t>(in.k, r0, len, len, d, feats_t, R, true, in.mask, tmp);
    load_rows<in_t, acc_t>(in.v, r0, len, len, m, feats, m, false, in.mask);
    gemm_nn<acc_t>(d, m, len, feats_t, R, feats, m, kv, m, true);  // KV += phi(K)^T V
    for (int j = 0; j < d; ++j) z[j] += sum(feats_t + static_cast<int64_t>(j) * R, len);
  }
  for (int r0 = 0; r0 < in.nq; r0 += R) {
    const int len = std::min(R, in.nq - r0);
    load_rows<in_t, acc_t>(in.q, r0, len, len, d, feats, d, true, nullptr);
    gemm_nn<acc_t>(len, m, d, feats, d, kv, m, res, m, false);
    for (int i = 0; i < len; ++i) {
      acc_t* row = res + static_cast<int64_t>(i) * m;
      const acc_t denom = dot(feats + static_cast<int64_t>(i) * d, z, d) + eps;
      den[r0 + i] = denom;
      scale(row, acc_t(1) / denom, m);
      store_row<in_t, acc_t>(row, out.row(r0 + i), m);
    }
  }
}

template <typename in_t, typename acc_t>
void noncausal_backward_head(const HeadInputs<in_t>& in, Rows<const in_t> g, Rows<const in_t> out,
                             const acc_t* den, const acc_t* kv, const acc_t* z, Rows<in_t> grad_q,
                             Rows<in_t> grad_k, Rows<in_t> grad_v, int block,
                             Workspace<acc_t>& w) {
  const int d = in.d, m = in.m, R = block;
  acc_t* feats = w.a.get(static_cast<size_t>(R) * d);
  acc_t* gn = w.b.get(static_cast<size_t>(R) * m);
  acc_t* res = w.c.get(static_cast<size_t>(R) * std::max(d, m));
  acc_t* gkv = w.e.get(static_cast<size_t>(d) * m);
  acc_t* gz = w.f.get(d);
  acc_t* gd = w.g.get(R);
  acc_t* feats_t = w.h.get(static_cast<size_t>(d) * R);
  acc_t* kv_t = w.t.get(static_cast<size_t>(2) * d * m);  // KV^T, then gKV^T (M x D)
  std::fill(gkv, gkv + static_cast<int64_t>(d) * m, acc_t(0));
  std::fill(gz, gz + d, acc_t(0));
  transpose(kv, d, m, m, kv_t, d);
  // Queries: grad phi(q_i) = KV gn_i + gd_i z; gKV = sum phi(q_i) gn_i^T; gz = sum gd_i phi(q_i).
  for (int r0 = 0; r0 < in.nq; r0 += R) {
    const int len = std::min(R, in.nq - r0);
    load_rows<in_t, acc_t>(in.q, r0, len, len, d, feats, d, true, nullptr);
    load_output_grad<in_t, acc_t, true>(g, out, den, r0, len, len, m, gn, m, gd);
    transpose(feats, len, d, d, feats_t, R);
    gemm_nn<acc_t>(d, m, len, feats_t, R, gn, m, gkv, m, true);  // gKV += phi(Q)^T Gn
    gemm_nn<acc_t>(len, d, m, gn, m, kv_t, d, res, d, false);    // Gn KV^T
    for (int i = 0; i < len; ++i) {
      acc_t* row = res + static_cast<int64_t>(i) * d;
      const acc_t* f = feats + static_cast<int64_t>(i) * d;
      axpy(gd[i], f, gz, d);
      axpy(gd[i], z, row, d);
      mul_elu_plus_one_grad(row, f, d);
      store_row<in_t, acc_t>(row, grad_q.row(r0 + i), d);
    }
  }
  // Keys: grad_v_j = gKV^T phi(k_j); grad phi(k_j) = gKV v_j + gz (zero on padded keys).
  acc_t* gkv_t = kv_t + static_cast<int64_t>(d) * m;
  transpose(gkv, d, m, m, gkv_t, d);
  for (int r0 = 0; r0 < in.nk; r0 += R) {
    const int len = std::min(R, in.nk - r0);
    load_rows<in_t, acc_t>(in.k, r0, len, len, d, feats, d, true, in.mask);
    load_rows<in_t, acc_t>(in.v, r0, len, len, m, gn, m, false, in.mask);
    gemm_nn<acc_t>(len, m, d, feats, d, gkv, m, res, m, false);  // phi(K) gKV
    for (int i = 0; i < len; ++i)
      store_row<in_t, acc_t>(res + static_cast<int64_t>(i) * m, grad_v.row(r0 + i), m);
    gemm_nn<acc_t>(len, d, m, gn, m, gkv_t, d, res, d, false);  // V gKV^T
    for (int i = 0; i < len; ++i) {
      acc_t* row = res + static_cast<int64_t>(i) * d;
      axpy(acc_t(1), gz, row, d);
      mul_elu_plus_one_grad(row, feats + static_cast<int64_t>(i) * d, d);
      store_row<in_t, acc_t>(row, grad_k.row(r0 + i), d);
    }
  }
}

}  // namespace asr_attention
