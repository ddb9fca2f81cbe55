// CUDA causal dot product for causal linear attention (Katharopoulos et al., 2020): host side.
//
//   forward:  out[i] = sum_{j <= i} (q_i . k_j) v_j
//   backward: grad_q = P(grad, v, k),  grad_k = R(v, grad, q),  grad_v = R(k, q, grad)
// where P(a, b, c)[i] = sum_{j <= i} (a_i . b_j) c_j and R is the same sum over j >= i. So one
// kernel family (causal_product_cuda_kernels.cuh) serves both passes. Inputs float32, float16 or
// bfloat16; accumulation is float32; outputs have the input dtype.
// Python entry point: asr/attention/_cuda.py (validation, build); bindings:
// attention_cuda_binding.cpp.

#include <ATen/ATen.h>
// Only c10/cuda headers: ATen/cuda/CUDAContext.h pulls in cuBLAS/cuSPARSE headers that minimal
// CUDA toolkits lack.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "causal_product_cuda_kernels.cuh"

namespace causal_product {
namespace {

int64_t ceil_div(int64_t x, int64_t y) { return (x + y - 1) / y; }

template <typename T>
void launch(const at::Tensor& a, const at::Tensor& b, const at::Tensor& c, at::Tensor& out,
            at::Tensor& states, bool reverse) {
  const int64_t bh = a.size(0) * a.size(1);
  const int64_t n = a.size(2);
  const int d = static_cast<int>(a.size(3));
  const int m = static_cast<int>(c.size(3));
  const int n_chunks = static_cast<int>(ceil_div(n, kChunk));
  const int d_tiles = static_cast<int>(ceil_div(d, kTile));
  const int m_tiles = static_cast<int>(ceil_div(m, kTile));
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  const T* a_ptr = a.data_ptr<T>();
  const T* b_ptr = b.data_ptr<T>();
  const T* c_ptr = c.data_ptr<T>();
  float* states_ptr = states.data_ptr<float>();

  if (n_chunks > 1) {
    const dim3 grid(static_cast<unsigned>(bh * (n_chunks - 1)),
                    static_cast<unsigned>(d_tiles * m_tiles));
    chunk_states_kernel<T><<<grid, kThreads, 0, stream>>>(b_ptr, c_ptr, states_ptr, n, d, m,
                                                           n_chunks, m_tiles, reverse);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  {
    const int64_t dm = static_cast<int64_t>(d) * m;
    constexpr int kScanThreads = 256;
    const unsigned blocks = static_cast<unsigned>(ceil_div(bh * dm, kScanThreads));
    exclusive_scan_kernel<<<blocks, kScanThreads, 0, stream>>>(states_ptr, bh, dm, n_chunks);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  {
    const dim3 grid(static_cast<unsigned>(bh * n_chunks), static_cast<unsigned>(m_tiles));
    chunk_output_kernel<T><<<grid, kThreads, 0, stream>>>(
        a_ptr, b_ptr, c_ptr, states_ptr, out.data_ptr<T>(), n, d, m, n_chunks, reverse);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

}  // namespace

// P(a, b, c) (reverse = false) or R(a, b, c) (reverse = true); a, b (B, H, N, D), c (B, H, N, M),
// contiguous CUDA tensors of one dtype (checked by the caller, attention_cuda_binding.cpp).
at::Tensor causal_product_cuda(const at::Tensor& a, const at::Tensor& b, const at::Tensor& c,
                               bool reverse) {
  const c10::cuda::CUDAGuard device_guard(a.device());
  const int64_t bh = a.size(0) * a.size(1);
  const int64_t n_chunks = ceil_div(a.size(2), kChunk);
  TORCH_CHECK(bh * n_chunks < (int64_t{1} << 31),
              "causal_product_cuda: B*H*ceil(N/64) = ", bh * n_chunks,
              " exceeds the CUDA grid limit; split the batch");
  at::Tensor out = at::empty_like(c);
  // Per-chunk prefix states, float32: (B*H, n_chunks, D, M), i.e. M/64 times the size of a.
  at::Tensor states = at::empty({bh, n_chunks, a.size(3), c.size(3)}, a.options().dtype(at::kFloat));
  switch (a.scalar_type()) {
    case at::kFloat:
      launch<float>(a, b, c, out, states, reverse);
      break;
    case at::kHalf:
      launch<at::Half>(a, b, c, out, states, reverse);
      break;
    case at::kBFloat16:
      launch<at::BFloat16>(a, b, c, out, states, reverse);
      break;
    default:
      TORCH_CHECK(false, "causal_product_cuda: unsupported dtype ", a.scalar_type(),
                  "; use float32, float16 or bfloat16");
  }
  return out;
}

}  // namespace causal_product
