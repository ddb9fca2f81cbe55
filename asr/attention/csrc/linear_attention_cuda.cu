// Fused linear attention (phi = elu + 1) forward pass on CUDA: host side. Device code and the
// algorithm: linear_attention_cuda_kernels.cuh. Bindings: attention_cuda_binding.cpp. The backward
// pass is composed in asr/attention/_cuda.py from the causal product kernels and cuBLAS.

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <vector>

#include "linear_attention_cuda_kernels.cuh"

namespace causal_product {
namespace {

int64_t ceil_div64(int64_t x, int64_t y) { return (x + y - 1) / y; }

// View of a (B, N, H, W) tensor with a contiguous last dimension.
SeqView seq_view(const at::Tensor& x) {
  return SeqView{x.stride(0), x.stride(1), x.stride(2), static_cast<int>(x.size(2))};
}

template <typename T>
void launch_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    const bool* mask, bool causal, float eps, at::Tensor& out, at::Tensor& den,
                    at::Tensor& states, at::Tensor& zstates) {
  const int64_t bh = q.size(0) * q.size(2);
  const int64_t nq = q.size(1), nk = k.size(1);
  const int d = static_cast<int>(q.size(3)), m = static_cast<int>(v.size(3));
  const int q_chunks = static_cast<int>(ceil_div64(nq, kChunk));
  const int k_chunks = static_cast<int>(ceil_div64(nk, kChunk));
  const int d_tiles = static_cast<int>(ceil_div64(d, kTile));
  const int m_tiles = static_cast<int>(ceil_div64(m, kTile));
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const T* q_ptr = q.data_ptr<T>();
  const T* k_ptr = k.data_ptr<T>();
  const T* v_ptr = v.data_ptr<T>();
  float* s_ptr = states.data_ptr<float>();
  float* z_ptr = zstates.data_ptr<float>();

  const int state_chunks = causal ? k_chunks - 1 : k_chunks;  // causal: the last is never used
  if (state_chunks > 0) {
    const dim3 grid(static_cast<unsigned>(bh * state_chunks), static_cast<unsigned>(d_tiles * m_tiles));
    feature_states_kernel<T><<<grid, kThreads, 0, stream>>>(k_ptr, seq_view(k), v_ptr, seq_view(v),
                                                             mask, s_ptr, z_ptr, nk, d, m,
                                                             state_chunks, k_chunks, m_tiles);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  constexpr int kScanThreads = 256;
  for (const auto& [ptr, width] : {std::pair<float*, int64_t>{s_ptr, int64_t{d} * m},
                                   std::pair<float*, int64_t>{z_ptr, int64_t{d}}}) {
    const unsigned blocks = static_cast<unsigned>(ceil_div64(bh * width, kScanThreads));
    if (causal) {
      exclusive_scan_kernel<<<blocks, kScanThreads, 0, stream>>>(ptr, bh, width, k_chunks);
    } else {
      chunk_total_kernel<<<blocks, kScanThreads, 0, stream>>>(ptr, bh, width, k_chunks);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  const dim3 grid(static_cast<unsigned>(bh * q_chunks), static_cast<unsigned>(m_tiles));
  if (causal) {
    fused_output_kernel<T, true><<<grid, kThreads, 0, stream>>>(
        q_ptr, seq_view(q), k_ptr, seq_view(k), v_ptr, seq_view(v), mask, s_ptr, z_ptr,
        out.data_ptr<T>(), seq_view(out), den.data_ptr<float>(), nq, nk, d, m, q_chunks, k_chunks,
        eps);
  } else {
    fused_output_kernel<T, false><<<grid, kThreads, 0, stream>>>(
        q_ptr, seq_view(q), k_ptr, seq_view(k), v_ptr, seq_view(v), mask, s_ptr, z_ptr,
        out.data_ptr<T>(), seq_view(out), den.data_ptr<float>(), nq, nk, d, m, q_chunks, k_chunks,
        eps);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

// q (B, Nq, H, D), k (B, Nk, H, D), v (B, Nk, H, M): CUDA, one dtype, last dimension contiguous
// (checked by the caller, attention_cuda_binding.cpp). Returns out (B, Nq, H, M) in the input
// dtype, den (B, H, Nq) float32 and, non-causal, kv (B, H, D, M) and z (B, H, D) float32.
std::vector<at::Tensor> linear_attention_cuda_forward(const at::Tensor& q, const at::Tensor& k,
                                                      const at::Tensor& v, const bool* mask,
                                                      bool causal, double eps) {
  const c10::cuda::CUDAGuard device_guard(q.device());
  const int64_t B = q.size(0), H = q.size(2), nq = q.size(1), nk = k.size(1);
  const int64_t d = q.size(3), m = v.size(3);
  const int64_t k_chunks = ceil_div64(nk, kChunk);
  TORCH_CHECK(B * H * std::max(ceil_div64(nq, kChunk), k_chunks) < (int64_t{1} << 31),
              "linear_attention_cuda: B*H*ceil(N/64) exceeds the CUDA grid limit; split the batch");
  const auto f32 = q.options().dtype(at::kFloat);
  at::Tensor out = at::empty({B, nq, H, m}, v.options());
  at::Tensor den = at::empty({B, H, nq}, f32);
  // Per-chunk states, then (scan) their prefixes or (total) their sum in entry 0.
  at::Tensor states = at::empty({B, H, k_chunks, d, m}, f32);
  at::Tensor zstates = at::empty({B, H, k_chunks, d}, f32);
  switch (q.scalar_type()) {
    case at::kFloat:
      launch_forward<float>(q, k, v, mask, causal, static_cast<float>(eps), out, den, states, zstates);
      break;
    case at::kHalf:
      launch_forward<at::Half>(q, k, v, mask, causal, static_cast<float>(eps), out, den, states,
                               zstates);
      break;
    case at::kBFloat16:
      launch_forward<at::BFloat16>(q, k, v, mask, causal, static_cast<float>(eps), out, den, states,
                                   zstates);
      break;
    default:
      TORCH_CHECK(false, "linear_attention_cuda: unsupported dtype ", q.scalar_type(),
                  "; use float32, float16 or bfloat16");
  }
  if (causal) return {out, den, at::empty({0}, f32), at::empty({0}, f32)};
  return {out, den, states.select(2, 0).contiguous(), zstates.select(2, 0).contiguous()};
}

}  // namespace causal_product
