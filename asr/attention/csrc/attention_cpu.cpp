// CPU extension of asr.attention (built by asr/attention/_cpu.py): the causal product and the fused
// linear-attention layer, forward and backward. Kernels: linear_attention_cpu.h.
//
// Layouts. causal_product_*: q, k (B, H, N, D), v (B, H, N, M), float32 or float64.
// linear_attention_*: q (B, Nq, H, D), k (B, Nk, H, D), v (B, Nk, H, M) as the projections produce
// them (any strides, last dimension contiguous), float16, bfloat16, float32 or float64; half inputs
// accumulate in float32. Heads run in parallel (at::parallel_for).

#include <torch/extension.h>

#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <vector>

#ifdef __linux__
#include <sys/mman.h>
#endif

#include "linear_attention_cpu.h"

namespace asr_attention {
namespace {

// Base pointer and row stride of head (b, h) of a 4-D tensor whose dims are (B, rows, H, W)
// (rows_dim = 1) or (B, H, rows, W) (rows_dim = 2).
template <typename T>
Rows<T> head_rows(const at::Tensor& x, int64_t b, int64_t h, int rows_dim) {
  const int heads_dim = rows_dim == 1 ? 2 : 1;
  T* base = static_cast<T*>(x.data_ptr()) + b * x.stride(0) + h * x.stride(heads_dim);
  return {base, x.stride(rows_dim)};
}

// Ask for transparent huge pages under an output of a few MiB or more before the kernel first
// writes it. A fresh large tensor is new memory from the OS, and with 4 KiB pages every 4 KiB of it
// costs a page fault when the kernel's stores reach it: at the benchmark's shape that took about
// as long as the causal product's arithmetic (BENCHMARKS.md, "Page faults"). Advice only: it does
// nothing where THP is off ("never") and changes no result.
void advise_huge_pages(const at::Tensor& x) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  // The whole storage: a gradient may be a slice of one packed buffer (fused.py).
  const size_t bytes = x.storage().nbytes();
  if (bytes < 2 * kHuge) return;
  const uintptr_t start = reinterpret_cast<uintptr_t>(x.storage().data());
  const uintptr_t lo = (start + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t hi = (start + bytes) & ~(kHuge - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#endif
}

at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  at::Tensor x = at::empty(sizes, options);
  advise_huge_pages(x);
  return x;
}

void check_4d(const at::Tensor& x, const char* name) {
  TORCH_CHECK(x.device().is_cpu(), "attention_cpu: ", name, " must be a CPU tensor");
  TORCH_CHECK(x.dim() == 4, "attention_cpu: ", name, " must be 4-D, got ", x.sizes());
  TORCH_CHECK(x.size(3) == 0 || x.stride(3) == 1, "attention_cpu: ", name,
              " must be contiguous in its last dimension");
  TORCH_CHECK(x.size(2) < (int64_t{1} << 31) && x.size(1) < (int64_t{1} << 31) &&
                  x.size(3) < (int64_t{1} << 31),
              "attention_cpu: ", name, " sizes must fit in 32-bit BLAS integers");
}

// ----------------------------------------------------------------------- plain causal product

void check_causal_product_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 int64_t chunk) {
  check_4d(q, "q");
  check_4d(k, "k");
  check_4d(v, "v");
  TORCH_CHECK(q.sizes() == k.sizes(), "causal_product_cpu: q and k must have the same shape");
  TORCH_CHECK(v.size(0) == q.size(0) && v.size(1) == q.size(1) && v.size(2) == q.size(2),
              "causal_product_cpu: v must be (B, H, N, M) matching q");
  TORCH_CHECK(q.scalar_type() == k.scalar_type() && q.scalar_type() == v.scalar_type(),
              "causal_product_cpu: q, k, v must share a dtype");
  TORCH_CHECK(q.scalar_type() == at::kFloat || q.scalar_type() == at::kDouble,
              "causal_product_cpu: dtype must be float32 or float64");
  TORCH_CHECK(chunk >= 1, "causal_product_cpu: chunk must be >= 1");
}

at::Tensor causal_product_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  int64_t chunk) {
  check_causal_product_inputs(q, k, v, chunk);
  const int64_t B = q.size(0), H = q.size(1);
  const int n = static_cast<int>(q.size(2)), d = static_cast<int>(q.size(3));
  const int m = static_cast<int>(v.size(3));
  const int C = static_cast<int>(std::min<int64_t>(chunk, std::max(n, 1)));
  auto out = empty_output(v.sizes(), v.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "causal_product_forward", [&] {
    using T = scalar_t;
    at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
      Workspace<T> w;
      for (int64_t t = begin; t < end; ++t) {
        const int64_t b = t / H, h = t % H;
        HeadInputs<T> in{head_rows<const T>(q, b, h, 2), head_rows<const T>(k, b, h, 2),
                         head_rows<const T>(v, b, h, 2), nullptr, n, n, d, m};
        causal_forward_head<T, T, false>(in, head_rows<T>(out, b, h, 2), nullptr, T(0), C, w);
      }
      finish_streaming();
    });
  });
  return out;
}

std::vector<at::Tensor> causal_product_backward(const at::Tensor& q, const at::Tensor& k,
                                                const at::Tensor& v, const at::Tensor& g,
                                                int64_t chunk) {
  check_4d(g, "grad_out");
  TORCH_CHECK(g.sizes() == v.sizes() && g.scalar_type() == v.scalar_type(),
              "causal_product_cpu: grad_out must match v in shape and dtype");
  check_causal_product_inputs(q, k, v, chunk);
  const int64_t B = q.size(0), H = q.size(1);
  const int n = static_cast<int>(q.size(2)), d = static_cast<int>(q.size(3));
  const int m = static_cast<int>(v.size(3));
  const int C = static_cast<int>(std::min<int64_t>(chunk, std::max(n, 1)));
  auto gq = empty_output(q.sizes(), q.options());
  auto gk = empty_output(k.sizes(), k.options());
  auto gv = empty_output(v.sizes(), v.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "causal_product_backward", [&] {
    using T = scalar_t;
    at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
      Workspace<T> w;
      for (int64_t t = begin; t < end; ++t) {
        const int64_t b = t / H, h = t % H;
        HeadInputs<T> in{head_rows<const T>(q, b, h, 2), head_rows<const T>(k, b, h, 2),
                         head_rows<const T>(v, b, h, 2), nullptr, n, n, d, m};
        causal_backward_head<T, T, false>(in, head_rows<const T>(g, b, h, 2), Rows<const T>{nullptr, 0},
                                          nullptr, head_rows<T>(gq, b, h, 2),
                                          head_rows<T>(gk, b, h, 2), head_rows<T>(gv, b, h, 2), C, w);
      }
      finish_streaming();
    });
  });
  return {gq, gk, gv};
}

// ------------------------------------------------------------------ fused linear attention

struct Shapes {
  int64_t B, H;
  int nq, nk, d, m;
};

Shapes check_layer_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const c10::optional<at::Tensor>& mask, bool causal) {
  check_4d(q, "q");
  check_4d(k, "k");
  check_4d(v, "v");
  TORCH_CHECK(q.scalar_type() == k.scalar_type() && q.scalar_type() == v.scalar_type(),
              "linear_attention_cpu: q, k, v must share a dtype");
  TORCH_CHECK(k.size(0) == q.size(0) && k.size(2) == q.size(2) && k.size(3) == q.size(3),
              "linear_attention_cpu: k must be (B, Nk, H, D) matching q");
  TORCH_CHECK(v.size(0) == k.size(0) && v.size(1) == k.size(1) && v.size(2) == k.size(2),
              "linear_attention_cpu: v must be (B, Nk, H, M) matching k");
  TORCH_CHECK(!causal || q.size(1) == k.size(1), "linear_attention_cpu: causal needs Nq == Nk");
  if (mask.has_value()) {
    const at::Tensor& mk = *mask;
    TORCH_CHECK(mk.scalar_type() == at::kBool && mk.dim() == 2 && mk.size(0) == k.size(0) &&
                    mk.size(1) == k.size(1) && mk.is_contiguous(),
                "linear_attention_cpu: key_padding_mask must be a contiguous bool (B, Nk)");
  }
  return {q.size(0),
          q.size(2),
          static_cast<int>(q.size(1)),
          static_cast<int>(k.size(1)),
          static_cast<int>(q.size(3)),
          static_cast<int>(v.size(3))};
}

at::Tensor gradient_out(const c10::optional<at::Tensor>& given, const at::Tensor& like,
                        const char* name) {
  if (!given.has_value()) return empty_output(like.sizes(), like.options());
  const at::Tensor& out = *given;
  check_4d(out, name);
  TORCH_CHECK(out.sizes() == like.sizes() && out.scalar_type() == like.scalar_type(),
              "linear_attention_cpu: ", name, " must have its input's shape and dtype");
  advise_huge_pages(out);
  return out;
}

// Returns out (B, Nq, H, M) in the input dtype, den (B, H, Nq) and, non-causal only, kv (B, H, D, M)
// and z (B, H, D), all in the accumulation dtype.
std::vector<at::Tensor> linear_attention_forward(const at::Tensor& q, const at::Tensor& k,
                                                 const at::Tensor& v,
                                                 const c10::optional<at::Tensor>& mask,
                                                 bool causal, double eps, int64_t chunk) {
  const Shapes s = check_layer_inputs(q, k, v, mask, causal);
  TORCH_CHECK(chunk >= 1, "linear_attention_cpu: chunk must be >= 1");
  const auto acc_type = at::toOpMathType(q.scalar_type());
  const auto acc_opts = q.options().dtype(acc_type);
  auto out = empty_output({s.B, s.nq, s.H, s.m}, v.options());
  auto den = at::empty({s.B, s.H, s.nq}, acc_opts);
  at::Tensor kv = causal ? at::empty({0}, acc_opts) : at::empty({s.B, s.H, s.d, s.m}, acc_opts);
  at::Tensor z = causal ? at::empty({0}, acc_opts) : at::empty({s.B, s.H, s.d}, acc_opts);
  const bool* mask_ptr = mask.has_value() ? mask->data_ptr<bool>() : nullptr;
  const int longest = std::max(std::max(s.nq, s.nk), 1);
  const int C = static_cast<int>(std::min<int64_t>(chunk, longest));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, q.scalar_type(), "linear_attention_forward", [&] {
    using T = scalar_t;
    using A = at::opmath_type<T>;
    at::parallel_for(0, s.B * s.H, 1, [&](int64_t begin, int64_t end) {
      Workspace<A> w;
      for (int64_t t = begin; t < end; ++t) {
        const int64_t b = t / s.H, h = t % s.H;
        HeadInputs<T> in{head_rows<const T>(q, b, h, 1), head_rows<const T>(k, b, h, 1),
                         head_rows<const T>(v, b, h, 1),
                         mask_ptr == nullptr ? nullptr : mask_ptr + b * s.nk,
                         s.nq, s.nk, s.d, s.m};
        A* den_h = den.data_ptr<A>() + t * s.nq;
        if (causal) {
          causal_forward_head<T, A, true>(in, head_rows<T>(out, b, h, 1), den_h, A(eps), C, w);
        } else {
          noncausal_forward_head<T, A>(in, head_rows<T>(out, b, h, 1), den_h,
                                       kv.data_ptr<A>() + t * s.d * s.m, z.data_ptr<A>() + t * s.d,
                                       A(eps), C, w);
        }
      }
      finish_streaming();
    });
  });
  return {out, den, kv, z};
}

std::vector<at::Tensor> linear_attention_backward(
    const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
    const c10::optional<at::Tensor>& mask, const at::Tensor& out, const at::Tensor& den,
    const at::Tensor& kv, const at::Tensor& z, const at::Tensor& g, bool causal, int64_t chunk,
    const c10::optional<at::Tensor>& gq_out, const c10::optional<at::Tensor>& gk_out,
    const c10::optional<at::Tensor>& gv_out) {
  const Shapes s = check_layer_inputs(q, k, v, mask, causal);
  check_4d(g, "grad_out");
  check_4d(out, "out");
  TORCH_CHECK(g.sizes() == out.sizes() && g.scalar_type() == out.scalar_type(),
              "linear_attention_cpu: grad_out must match out");
  TORCH_CHECK(den.is_contiguous() && den.numel() == s.B * s.H * s.nq,
              "linear_attention_cpu: den must be the forward's (B, H, Nq)");
  TORCH_CHECK(causal || (kv.is_contiguous() && z.is_contiguous() &&
                         kv.numel() == s.B * s.H * s.d * s.m && z.numel() == s.B * s.H * s.d),
              "linear_attention_cpu: kv, z must be the forward's");
  // The gradients go where the caller says (e.g. the q, k, v slices of one packed buffer), or
  // into new tensors.
  auto gq = gradient_out(gq_out, q, "grad_q");
  auto gk = gradient_out(gk_out, k, "grad_k");
  auto gv = gradient_out(gv_out, v, "grad_v");
  const bool* mask_ptr = mask.has_value() ? mask->data_ptr<bool>() : nullptr;
  const int longest = std::max(std::max(s.nq, s.nk), 1);
  const int C = static_cast<int>(std::min<int64_t>(chunk, longest));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, q.scalar_type(), "linear_attention_backward", [&] {
    using T = scalar_t;
    using A = at::opmath_type<T>;
    at::parallel_for(0, s.B * s.H, 1, [&](int64_t begin, int64_t end) {
      Workspace<A> w;
      for (int64_t t = begin; t < end; ++t) {
        const int64_t b = t / s.H, h = t % s.H;
        HeadInputs<T> in{head_rows<const T>(q, b, h, 1), head_rows<const T>(k, b, h, 1),
                         head_rows<const T>(v, b, h, 1),
                         mask_ptr == nullptr ? nullptr : mask_ptr + b * s.nk,
                         s.nq, s.nk, s.d, s.m};
        const A* den_h = den.data_ptr<A>() + t * s.nq;
        if (causal) {
          causal_backward_head<T, A, true>(
              in, head_rows<const T>(g, b, h, 1), head_rows<const T>(out, b, h, 1), den_h,
              head_rows<T>(gq, b, h, 1), head_rows<T>(gk, b, h, 1), head_rows<T>(gv, b, h, 1), C, w);
        } else {
          noncausal_backward_head<T, A>(
              in, head_rows<const T>(g, b, h, 1), head_rows<const T>(out, b, h, 1), den_h,
              kv.data_ptr<A>() + t * s.d * s.m, z.data_ptr<A>() + t * s.d,
              head_rows<T>(gq, b, h, 1), head_rows<T>(gk, b, h, 1), head_rows<T>(gv, b, h, 1), C, w);
        }
      }
      finish_streaming();
    });
  });
  return {gq, gk, gv};
}

}  // namespace
}  // namespace asr_attention

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  using namespace asr_attention;
  module.doc() = "Causal product and fused linear attention for CPU (asr.attention)";
  module.def("forward", &causal_product_forward, "causal product forward", py::arg("q"),
             py::arg("k"), py::arg("v"), py::arg("chunk"));
  module.def("backward", &causal_product_backward, "causal product backward", py::arg("q"),
             py::arg("k"), py::arg("v"), py::arg("grad_out"), py::arg("chunk"));
  module.def(
      "set_blas_only", [](bool value) { force_blas() = value; },
      "use BLAS for every GEMM even where the AVX-512 tiles could run (tests check both paths)",
      py::arg("value"));
  module.def("uses_avx512_gemm", &use_avx512_gemm, "whether the AVX-512 GEMM tiles are in use");
  module.def("linear_attention_forward", &linear_attention_forward,
             "fused elu+1 linear attention forward -> [out, den, kv, z]", py::arg("q"), py::arg("k"),
             py::arg("v"), py::arg("key_padding_mask"), py::arg("causal"), py::arg("eps"),
             py::arg("chunk"));
  module.def("linear_attention_backward", &linear_attention_backward,
             "fused elu+1 linear attention backward -> [grad_q, grad_k, grad_v]", py::arg("q"),
             py::arg("k"), py::arg("v"), py::arg("key_padding_mask"), py::arg("out"), py::arg("den"),
             py::arg("kv"), py::arg("z"), py::arg("grad_out"), py::arg("causal"), py::arg("chunk"),
             py::arg("grad_q") = py::none(), py::arg("grad_k") = py::none(),
             py::arg("grad_v") = py::none());
}
