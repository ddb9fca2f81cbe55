// CPU kernel of the causal dot product used by causal linear attention.
//
//   out[b,h,i] = sum_{j<=i} (q[b,h,i] . k[b,h,j]) v[b,h,j]     q,k: (B,H,N,D)  v: (B,H,N,M)
//
// Chunked form (C steps per chunk): inside a chunk a masked (C x C) product, across chunks a
// running state S = sum k v^T (D x M). Every product is a BLAS GEMM on row-major views of one
// head, and heads run in parallel (at::parallel_for). The backward pass uses
//   grad_q = causal_product(grad, v, k)                      (forward state S)
//   grad_k[j] = R_j v_j,  grad_v[j] = R_j^T k_j,  R_j = sum_{i>=j} q_i grad_i^T  (reverse state R)
// so extra memory per head is O(C^2 + D M + N C), never an (N, D, M) tensor.
// Inputs are float32 or float64 (the Python wrapper upcasts float16/bfloat16 to float32);
// accumulation happens in the input precision.

#include <torch/extension.h>

#include <ATen/Config.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#if AT_MKL_ENABLED()
// libtorch_cpu exports the (LP64) Fortran BLAS entry points of the MKL it links statically.
extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
            const double* beta, double* c, const int* ldc);
}
#endif

namespace {

// Row-major GEMM: C (m x n, row stride ldc) = alpha * op(A) op(B) + beta * C.
// A row-major matrix is its transpose in column-major order, so we compute C^T = op(B)^T op(A)^T.
template <typename scalar_t>
void gemm(bool trans_a, bool trans_b, int m, int n, int k, scalar_t alpha, const scalar_t* a,
          int lda, const scalar_t* b, int ldb, scalar_t beta, scalar_t* c, int ldc) {
#if AT_MKL_ENABLED()
  const char ta = trans_a ? 'T' : 'N';
  const char tb = trans_b ? 'T' : 'N';
  if constexpr (std::is_same_v<scalar_t, float>) {
    sgemm_(&tb, &ta, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
  } else {
    dgemm_(&tb, &ta, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
  }
#else
  // Portable path for torch builds without MKL: strided views and addmm (slower, same maths).
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<scalar_t>::value);
  at::Tensor A = trans_a ? at::from_blob(const_cast<scalar_t*>(a), {k, m}, {lda, 1}, opts).t()
                         : at::from_blob(const_cast<scalar_t*>(a), {m, k}, {lda, 1}, opts);
  at::Tensor B = trans_b ? at::from_blob(const_cast<scalar_t*>(b), {n, k}, {ldb, 1}, opts).t()
                         : at::from_blob(const_cast<scalar_t*>(b), {k, n}, {ldb, 1}, opts);
  at::Tensor C = at::from_blob(c, {m, n}, {ldc, 1}, opts);
  if (beta == scalar_t(0)) C.zero_();
  C.addmm_(A, B, beta == scalar_t(0) ? scalar_t(1) : beta, alpha);
#endif
}

// Zero the strict upper triangle (j > i) of an L x L block with row stride ld.
template <typename scalar_t>
void mask_upper(scalar_t* p, int len, int ld) {
  for (int i = 0; i < len; ++i) std::fill(p + i * ld + i + 1, p + i * ld + len, scalar_t(0));
}

template <typename scalar_t>
void forward_head(const scalar_t* q, const scalar_t* k, const scalar_t* v, scalar_t* out, int n,
                  int d, int m, int chunk, scalar_t* scores, scalar_t* state) {
  for (int c0 = 0; c0 < n; c0 += chunk) {
    const int len = std::min(chunk, n - c0);
    const scalar_t* qc = q + static_cast<int64_t>(c0) * d;
    const scalar_t* kc = k + static_cast<int64_t>(c0) * d;
    const scalar_t* vc = v + static_cast<int64_t>(c0) * m;
    scalar_t* oc = out + static_cast<int64_t>(c0) * m;
    gemm<scalar_t>(false, true, len, len, d, 1, qc, d, kc, d, 0, scores, chunk);  // Q K^T
    mask_upper(scores, len, chunk);
    gemm<scalar_t>(false, false, len, m, len, 1, scores, chunk, vc, m, 0, oc, m);  // (.) V
    if (c0 > 0) gemm<scalar_t>(false, false, len, m, d, 1, qc, d, state, m, 1, oc, m);  // + Q S
    if (c0 + len < n)  // S += K^T V
      gemm<scalar_t>(true, false, d, m, len, 1, kc, d, vc, m, c0 > 0 ? 1 : 0, state, m);
  }
}

template <typename scalar_t>
void backward_head(const scalar_t* q, const scalar_t* k, const scalar_t* v, const scalar_t* g,
                   scalar_t* gq, scalar_t* gk, scalar_t* gv, int n, int d, int m, int chunk,
                   scalar_t* scores, scalar_t* grad_scores, scalar_t* state) {
  // Pass 1 (forward in time): grad_q and the masked G V^T blocks, kept for pass 2.
  for (int c0 = 0, idx = 0; c0 < n; c0 += chunk, ++idx) {
    const int len = std::min(chunk, n - c0);
    const scalar_t* kc = k + static_cast<int64_t>(c0) * d;
    const scalar_t* vc = v + static_cast<int64_t>(c0) * m;
    const scalar_t* gc = g + static_cast<int64_t>(c0) * m;
    scalar_t* gqc = gq + static_cast<int64_t>(c0) * d;
    scalar_t* gvt = grad_scores + static_cast<int64_t>(idx) * chunk * chunk;
    gemm<scalar_t>(false, true, len, len, m, 1, gc, m, vc, m, 0, gvt, chunk);  // G V^T
    mask_upper(gvt, len, chunk);
    gemm<scalar_t>(false, false, len, d, len, 1, gvt, chunk, kc, d, 0, gqc, d);  // (.) K
    if (c0 > 0) gemm<scalar_t>(false, true, len, d, m, 1, gc, m, state, m, 1, gqc, d);  // + G S^T
    if (c0 + len < n)
      gemm<scalar_t>(true, false, d, m, len, 1, kc, d, vc, m, c0 > 0 ? 1 : 0, state, m);
  }
  // Pass 2 (backward in time): grad_k, grad_v from the reverse state R = sum_{later} Q^T G.
  const int n_chunks = (n + chunk - 1) / chunk;
  for (int idx = n_chunks - 1; idx >= 0; --idx) {
    const int c0 = idx * chunk;
    const int len = std::min(chunk, n - c0);
    const bool last = idx == n_chunks - 1;
    const scalar_t* qc = q + static_cast<int64_t>(c0) * d;
    const scalar_t* kc = k + static_cast<int64_t>(c0) * d;
    const scalar_t* vc = v + static_cast<int64_t>(c0) * m;
    const scalar_t* gc = g + static_cast<int64_t>(c0) * m;
    scalar_t* gkc = gk + static_cast<int64_t>(c0) * d;
    scalar_t* gvc = gv + static_cast<int64_t>(c0) * m;
    const scalar_t* gvt = grad_scores + static_cast<int64_t>(idx) * chunk * chunk;
    gemm<scalar_t>(false, true, len, len, d, 1, qc, d, kc, d, 0, scores, chunk);  // Q K^T
    mask_upper(scores, len, chunk);
    gemm<scalar_t>(true, false, len, d, len, 1, gvt, chunk, qc, d, 0, gkc, d);  // (G V^T)^T Q
    gemm<scalar_t>(true, false, len, m, len, 1, scores, chunk, gc, m, 0, gvc, m);  // (Q K^T)^T G
    if (!last) {
      gemm<scalar_t>(false, true, len, d, m, 1, vc, m, state, m, 1, gkc, d);  // + V R^T
      gemm<scalar_t>(false, false, len, m, d, 1, kc, d, state, m, 1, gvc, m);  // + K R
    }
    if (idx > 0)  // R += Q^T G
      gemm<scalar_t>(true, false, d, m, len, 1, qc, d, gc, m, last ? 0 : 1, state, m);
  }
}

void check_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t chunk) {
  TORCH_CHECK(q.device().is_cpu() && k.device().is_cpu() && v.device().is_cpu(),
              "causal_product_cpu: inputs must be CPU tensors");
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "causal_product_cpu: q, k, v must be 4-D");
  TORCH_CHECK(q.sizes() == k.sizes(), "causal_product_cpu: q and k must have the same shape");
  TORCH_CHECK(v.size(0) == q.size(0) && v.size(1) == q.size(1) && v.size(2) == q.size(2),
              "causal_product_cpu: v must be (B, H, N, M) matching q");
  TORCH_CHECK(q.scalar_type() == k.scalar_type() && q.scalar_type() == v.scalar_type(),
              "causal_product_cpu: q, k, v must share a dtype");
  TORCH_CHECK(q.scalar_type() == at::kFloat || q.scalar_type() == at::kDouble,
              "causal_product_cpu: dtype must be float32 or float64");
  TORCH_CHECK(chunk >= 1, "causal_product_cpu: chunk must be >= 1");
  TORCH_CHECK(q.size(2) < (int64_t{1} << 31) && q.size(3) < (int64_t{1} << 31) &&
                  v.size(3) < (int64_t{1} << 31),
              "causal_product_cpu: N, D and M must fit in 32-bit BLAS integers");
}

at::Tensor causal_product_forward(const at::Tensor& q_in, const at::Tensor& k_in,
                                  const at::Tensor& v_in, int64_t chunk_in) {
  check_inputs(q_in, k_in, v_in, chunk_in);
  const auto q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const int64_t bh = q.size(0) * q.size(1);
  const int n = q.size(2), d = q.size(3), m = v.size(3);
  const int chunk = static_cast<int>(std::min<int64_t>(chunk_in, n));
  auto out = at::empty(v.sizes(), v.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "causal_product_forward", [&] {
    const scalar_t* qp = q.data_ptr<scalar_t>();
    const scalar_t* kp = k.data_ptr<scalar_t>();
    const scalar_t* vp = v.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, bh, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> scores(static_cast<size_t>(chunk) * chunk);
      std::vector<scalar_t> state(static_cast<size_t>(d) * m);
      for (int64_t h = begin; h < end; ++h) {
        forward_head<scalar_t>(qp + h * n * d, kp + h * n * d, vp + h * n * m, op + h * n * m, n,
                               d, m, chunk, scores.data(), state.data());
      }
    });
  });
  return out;
}

std::vector<at::Tensor> causal_product_backward(const at::Tensor& q_in, const at::Tensor& k_in,
                                                const at::Tensor& v_in, const at::Tensor& g_in,
                                                int64_t chunk_in) {
  check_inputs(q_in, k_in, v_in, chunk_in);
  TORCH_CHECK(g_in.sizes() == v_in.sizes() && g_in.scalar_type() == v_in.scalar_type(),
              "causal_product_cpu: grad_out must match v in shape and dtype");
  const auto q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const auto g = g_in.contiguous();
  const int64_t bh = q.size(0) * q.size(1);
  const int n = q.size(2), d = q.size(3), m = v.size(3);
  const int chunk = static_cast<int>(std::min<int64_t>(chunk_in, n));
  const int n_chunks = (n + chunk - 1) / chunk;
  auto gq = at::empty(q.sizes(), q.options());
  auto gk = at::empty(k.sizes(), k.options());
  auto gv = at::empty(v.sizes(), v.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "causal_product_backward", [&] {
    const scalar_t* qp = q.data_ptr<scalar_t>();
    const scalar_t* kp = k.data_ptr<scalar_t>();
    const scalar_t* vp = v.data_ptr<scalar_t>();
    const scalar_t* gp = g.data_ptr<scalar_t>();
    scalar_t* gqp = gq.data_ptr<scalar_t>();
    scalar_t* gkp = gk.data_ptr<scalar_t>();
    scalar_t* gvp = gv.data_ptr<scalar_t>();
    at::parallel_for(0, bh, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> scores(static_cast<size_t>(chunk) * chunk);
      std::vector<scalar_t> grad_scores(static_cast<size_t>(n_chunks) * chunk * chunk);
      std::vector<scalar_t> state(static_cast<size_t>(d) * m);
      for (int64_t h = begin; h < end; ++h) {
        backward_head<scalar_t>(qp + h * n * d, kp + h * n * d, vp + h * n * m, gp + h * n * m,
                                gqp + h * n * d, gkp + h * n * d, gvp + h * n * m, n, d, m, chunk,
                                scores.data(), grad_scores.data(), state.data());
      }
    });
  });
  return {gq, gk, gv};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.doc() = "Chunked causal dot product (causal linear attention) for CPU";
  module.def("forward", &causal_product_forward, "causal product forward", py::arg("q"),
             py::arg("k"), py::arg("v"), py::arg("chunk"));
  module.def("backward", &causal_product_backward, "causal product backward", py::arg("q"),
             py::arg("k"), py::arg("v"), py::arg("grad_out"), py::arg("chunk"));
}
