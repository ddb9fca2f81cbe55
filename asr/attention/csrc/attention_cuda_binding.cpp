// Python bindings of the CUDA kernels: the causal dot product (causal_product_cuda.cu) and the fused
// linear-attention forward pass (linear_attention_cuda.cu). asr/attention/_cuda.py validates
// arguments with friendly messages first; the checks here only guard the kernels against misuse
// from other callers.

#include <torch/extension.h>

#include <vector>

namespace causal_product {
at::Tensor causal_product_cuda(const at::Tensor& a, const at::Tensor& b, const at::Tensor& c,
                               bool reverse);
std::vector<at::Tensor> linear_attention_cuda_forward(const at::Tensor& q, const at::Tensor& k,
                                                      const at::Tensor& v, const bool* mask,
                                                      bool causal, double eps);
}

namespace {

void check_input(const at::Tensor& x, const char* name, const at::Tensor& ref) {
  TORCH_CHECK(x.is_cuda(), "causal_product_cuda: ", name, " must be a CUDA tensor");
  TORCH_CHECK(x.dim() == 4, "causal_product_cuda: ", name, " must be 4-D (B, H, N, *)");
  TORCH_CHECK(x.is_contiguous(), "causal_product_cuda: ", name, " must be contiguous");
  TORCH_CHECK(x.scalar_type() == ref.scalar_type(), "causal_product_cuda: ", name,
              " has dtype ", x.scalar_type(), " but q has ", ref.scalar_type());
  TORCH_CHECK(x.device() == ref.device(), "causal_product_cuda: ", name, " is on ", x.device(),
              " but q is on ", ref.device());
  TORCH_CHECK(x.size(0) == ref.size(0) && x.size(1) == ref.size(1) && x.size(2) == ref.size(2),
              "causal_product_cuda: ", name, " must share B, H, N with q");
  TORCH_CHECK(x.numel() > 0, "causal_product_cuda: ", name, " is empty");
}

void check_qkv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  check_input(q, "q", q);
  check_input(k, "k", q);
  check_input(v, "v", q);
  TORCH_CHECK(k.size(3) == q.size(3), "causal_product_cuda: k and q must have the same D");
}

at::Tensor forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  check_qkv(q, k, v);
  return causal_product::causal_product_cuda(q, k, v, /*reverse=*/false);
}

std::vector<at::Tensor> backward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& grad_out) {
  check_qkv(q, k, v);
  check_input(grad_out, "grad_out", q);
  TORCH_CHECK(grad_out.size(3) == v.size(3), "causal_product_cuda: grad_out must have v's M");
  // grad_q[i] = sum_{j<=i} (g_i . v_j) k_j;  grad_k[j] = sum_{i>=j} (v_j . g_i) q_i;
  // grad_v[j] = sum_{i>=j} (k_j . q_i) g_i.
  at::Tensor grad_q = causal_product::causal_product_cuda(grad_out, v, k, /*reverse=*/false);
  at::Tensor grad_k = causal_product::causal_product_cuda(v, grad_out, q, /*reverse=*/true);
  at::Tensor grad_v = causal_product::causal_product_cuda(k, q, grad_out, /*reverse=*/true);
  return {grad_q, grad_k, grad_v};
}

at::Tensor product(const at::Tensor& a, const at::Tensor& b, const at::Tensor& c, bool reverse) {
  check_qkv(a, b, c);
  return causal_product::causal_product_cuda(a, b, c, reverse);
}

// q (B, Nq, H, D), k (B, Nk, H, D), v (B, Nk, H, M); key_padding_mask bool (B, Nk) or None.
std::vector<at::Tensor> layer_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const c10::optional<at::Tensor>& key_padding_mask,
                                      bool causal, double eps) {
  const auto check = [&q](const at::Tensor& x, const char* name) {
    TORCH_CHECK(x.is_cuda() && x.dim() == 4, "linear_attention_cuda: ", name,
                " must be a 4-D CUDA tensor");
    TORCH_CHECK(x.stride(3) == 1, "linear_attention_cuda: ", name,
                " must be contiguous in its last dimension");
    TORCH_CHECK(x.scalar_type() == q.scalar_type() && x.device() == q.device(),
                "linear_attention_cuda: q, k, v must share dtype and device");
    TORCH_CHECK(x.numel() > 0, "linear_attention_cuda: ", name, " is empty");
  };
  check(q, "q");
  check(k, "k");
  check(v, "v");
  TORCH_CHECK(k.size(0) == q.size(0) && k.size(2) == q.size(2) && k.size(3) == q.size(3),
              "linear_attention_cuda: k must be (B, Nk, H, D) matching q");
  TORCH_CHECK(v.size(0) == k.size(0) && v.size(1) == k.size(1) && v.size(2) == k.size(2),
              "linear_attention_cuda: v must be (B, Nk, H, M) matching k");
  TORCH_CHECK(!causal || q.size(1) == k.size(1), "linear_attention_cuda: causal needs Nq == Nk");
  const bool* mask = nullptr;
  if (key_padding_mask.has_value()) {
    const at::Tensor& mk = *key_padding_mask;
    TORCH_CHECK(mk.is_cuda() && mk.scalar_type() == at::kBool && mk.dim() == 2 &&
                    mk.size(0) == k.size(0) && mk.size(1) == k.size(1) && mk.is_contiguous(),
                "linear_attention_cuda: key_padding_mask must be a contiguous CUDA bool (B, Nk)");
    mask = mk.data_ptr<bool>();
  }
  return causal_product::linear_attention_cuda_forward(q, k, v, mask, causal, eps);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Causal dot product and fused linear attention on CUDA (float32 accumulation)";
  m.def("forward", &forward, "out (B,H,N,M) from q, k (B,H,N,D) and v (B,H,N,M)", pybind11::arg("q"),
        pybind11::arg("k"), pybind11::arg("v"));
  m.def("backward", &backward, "[grad_q, grad_k, grad_v] of forward", pybind11::arg("q"),
        pybind11::arg("k"), pybind11::arg("v"), pybind11::arg("grad_out"));
  m.def("product", &product,
        "sum over j<=i (or j>=i with reverse) of (a_i . b_j) c_j; the primitive behind both passes",
        pybind11::arg("a"), pybind11::arg("b"), pybind11::arg("c"), pybind11::arg("reverse"));
  m.def("layer_forward", &layer_forward,
        "fused elu+1 linear attention forward -> [out, den, kv, z] (kv, z empty when causal)",
        pybind11::arg("q"), pybind11::arg("k"), pybind11::arg("v"),
        pybind11::arg("key_padding_mask"), pybind11::arg("causal"), pybind11::arg("eps"));
}
