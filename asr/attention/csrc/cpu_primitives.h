// Building blocks of the CPU attention kernels (attention_cpu.cpp): a row-major GEMM on the BLAS
// that libtorch ships, the elu+1 feature map with a vectorisable exp, and row loaders that convert
// any input dtype to the accumulation type.
//
// No -march flags: the extension is cached and may be loaded on another CPU. The feature map is the
// only hot loop outside BLAS, so it alone is compiled for several instruction sets
// (target_clones), picked when the library loads.

#pragma once

#include <ATen/ATen.h>
#include <ATen/Config.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

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

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ASR_SIMD_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ASR_SIMD_CLONES
#endif

namespace asr_attention {

// Row-major GEMM: C (m x n, row stride ldc) = alpha * op(A) op(B) + beta * C.
// A row-major matrix is its transpose in column-major order, so we compute C^T = op(B)^T op(A)^T.
template <typename acc_t>
void gemm(bool trans_a, bool trans_b, int m, int n, int k, acc_t alpha, const acc_t* a, int lda,
          const acc_t* b, int ldb, acc_t beta, acc_t* c, int ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {  // BLAS would scale C by beta; keep that meaning
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) c[i * ldc + j] = beta == acc_t(0) ? acc_t(0) : beta * c[i * ldc + j];
    return;
  }
#if AT_MKL_ENABLED()
  const char ta = trans_a ? 'T' : 'N';
  const char tb = trans_b ? 'T' : 'N';
  if constexpr (std::is_same_v<acc_t, float>) {
    sgemm_(&tb, &ta, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
  } else {
    dgemm_(&tb, &ta, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
  }
#else
  // Portable path for torch builds without MKL: strided views and addmm (slower, same maths).
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<acc_t>::value);
  at::Tensor A = trans_a ? at::from_blob(const_cast<acc_t*>(a), {k, m}, {lda, 1}, opts).t()
                         : at::from_blob(const_cast<acc_t*>(a), {m, k}, {lda, 1}, opts);
  at::Tensor B = trans_b ? at::from_blob(const_cast<acc_t*>(b), {n, k}, {ldb, 1}, opts).t()
                         : at::from_blob(const_cast<acc_t*>(b), {k, n}, {ldb, 1}, opts);
  at::Tensor C = at::from_blob(c, {m, n}, {ldc, 1}, opts);
  if (beta == acc_t(0)) C.zero_();
  C.addmm_(A, B, beta == acc_t(0) ? acc_t(1) : beta, alpha);
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ASR_AVX512_GEMM 1

// Row-major C (m x n) = A (m x k) B (k x n) [+ C] for float, with AVX-512 register tiles of 4 rows
// x up to 64 columns, B read in place (no packing, no call overhead). The chunk GEMMs of the
// causal product are small (m = chunk, n = 64), where BLAS runs well below its large-matrix rate
// (BENCHMARKS.md, "Causal product kernel").
namespace avx512 {

template <int R, int NV>
__attribute__((target("avx512f,fma"))) inline void tile(int k, const float* a, int lda,
                                                         const float* b, int ldb, float* c,
                                                         int ldc, __mmask16 last,
                                                         bool accumulate) {
  // Accumulators start from C (or zero) and are stored once, and every loop is unrolled: without
  // that GCC keeps the array on the stack and stores it on every step (half the speed).
  __m512 acc[R][NV];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mask = v == NV - 1 ? last : static_cast<__mmask16>(0xFFFF);
      const float* src = c + static_cast<int64_t>(r) * ldc + 16 * v;
      acc[r][v] = accumulate ? _mm512_maskz_loadu_ps(mask, src) : _mm512_setzero_ps();
    }
  }
  for (int p = 0; p < k; ++p) {
    __m512 bv[NV];
    const float* brow = b + static_cast<int64_t>(p) * ldb;
#pragma GCC unroll 4
    for (int v = 0; v < NV - 1; ++v) bv[v] = _mm512_loadu_ps(brow + 16 * v);
    bv[NV - 1] = _mm512_maskz_loadu_ps(last, brow + 16 * (NV - 1));
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[static_cast<int64_t>(r) * lda + p]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mask = v == NV - 1 ? last : static_cast<__mmask16>(0xFFFF);
      _mm512_mask_storeu_ps(c + static_cast<int64_t>(r) * ldc + 16 * v, mask, acc[r][v]);
    }
  }
}

template <int NV>
__attribute__((target("avx512f,fma"))) void panel(int m, int k, const float* a, int lda,
                                                   const float* b, int ldb, float* c, int ldc,
                                                   __mmask16 last, bool accumulate) {
  int i = 0;
  for (; i + 4 <= m; i += 4)
    tile<4, NV>(k, a + static_cast<int64_t>(i) * lda, lda, b, ldb,
                c + static_cast<int64_t>(i) * ldc, ldc, last, accumulate);
  for (; i < m; ++i)
    tile<1, NV>(k, a + static_cast<int64_t>(i) * lda, lda, b, ldb,
                c + static_cast<int64_t>(i) * ldc, ldc, last, accumulate);
}

__attribute__((target("avx512f,fma"))) inline void gemm_nn(int m, int n, int k, const float* a,
                                                            int lda, const float* b, int ldb,
                                                            float* c, int ldc, bool accumulate) {
  for (int j0 = 0; j0 < n; j0 += 64) {
    const int width = std::min(64, n - j0);
    const int nv = (width + 15) / 16;
    const int rem = width - 16 * (nv - 1);
    const __mmask16 last = static_cast<__mmask16>(rem == 16 ? 0xFFFF : (1u << rem) - 1);
    const float* bp = b + j0;
    float* cp = c + j0;
    switch (nv) {
      case 1: panel<1>(m, k, a, lda, bp, ldb, cp, ldc, last, accumulate); break;
      case 2: panel<2>(m, k, a, lda, bp, ldb, cp, ldc, last, accumulate); break;
      case 3: panel<3>(m, k, a, lda, bp, ldb, cp, ldc, last, accumulate); break;
      default: panel<4>(m, k, a, lda, bp, ldb, cp, ldc, last, accumulate); break;
    }
  }
}

// dst (16 x 16, row stride ldd) = src (16 x 16, row stride lds) transposed, in registers.
__attribute__((target("avx512f"))) inline void transpose16(const float* src, int lds, float* dst,
                                                            int ldd) {
  __m512 r[16], t[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + static_cast<int64_t>(i) * lds);
#pragma GCC unroll 8
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 16; i += 4) {
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
    const __m512d c = _mm512_castps_pd(t[i + 2]), e = _mm512_castps_pd(t[i + 3]);
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, e));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, e));
  }
#pragma GCC unroll 2
  for (int h = 0; h < 16; h += 8) {
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
      t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) _mm512_storeu_ps(dst + static_cast<int64_t>(i) * ldd, r[i]);
}

}  // namespace avx512
#endif

// Which GEMM the kernels use: the AVX-512 tiles where the CPU has them, else BLAS. Tests flip it
// to check both paths on one machine.
inline bool& force_blas() {
  static bool value = false;
  return value;
}

inline bool use_avx512_gemm() {
#ifdef ASR_AVX512_GEMM
  static const bool supported = __builtin_cpu_supports("avx512f");
  return supported && !force_blas();
#else
  return false;
#endif
}

// Row-major C (m x n) = A (m x k) B (k x n), plus C if accumulate.
template <typename acc_t>
inline void gemm_nn(int m, int n, int k, const acc_t* a, int lda, const acc_t* b, int ldb,
                    acc_t* c, int ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
#ifdef ASR_AVX512_GEMM
  if constexpr (std::is_same_v<acc_t, float>) {
    if (use_avx512_gemm()) {
      avx512::gemm_nn(m, n, k, a, lda, b, ldb, c, ldc, accumulate);
      return;
    }
  }
#endif
  gemm<acc_t>(false, false, m, n, k, acc_t(1), a, lda, b, ldb, accumulate ? acc_t(1) : acc_t(0), c,
              ldc);
}

// dst (cols x rows, row stride ld_dst) = src (rows x cols, row stride ld_src) transposed; whole
// 16 x 16 blocks in AVX-512 registers where available.
template <typename acc_t>
inline void transpose(const acc_t* src, int rows, int cols, int ld_src, acc_t* dst, int ld_dst) {
  int full_rows = 0, full_cols = 0;
#ifdef ASR_AVX512_GEMM
  if constexpr (std::is_same_v<acc_t, float>) {
    if (use_avx512_gemm()) {
      full_rows = rows / 16 * 16;
      full_cols = cols / 16 * 16;
      for (int i = 0; i < full_rows; i += 16)
        for (int j = 0; j < full_cols; j += 16)
          avx512::transpose16(src + static_cast<int64_t>(i) * ld_src + j, ld_src,
                              dst + static_cast<int64_t>(j) * ld_dst + i, ld_dst);
    }
  }
#endif
  for (int i = 0; i < rows; ++i) {
    const int j0 = i < full_rows ? full_cols : 0;  // the blocks covered the rest of this row
    for (int j = j0; j < cols; ++j)
      dst[static_cast<int64_t>(j) * ld_dst + i] = src[static_cast<int64_t>(i) * ld_src + j];
  }
}

// exp(x) for x <= 0 with Cody-Waite reduction and Cephes' degree-5 polynomial (about 1 ulp);
// written branch-free so that the compiler vectorises the loops that call it.
inline float exp_nonpositive(float x) {
  x = std::max(x, -87.0f);  // exp(-87) is still a normal float
  const float n = std::nearbyint(x * 1.44269504088896341f);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// phi(x) = elu(x) + 1 = x + 1 for x > 0, exp(x) otherwise; in place over n values.
ASR_SIMD_CLONES inline void elu_plus_one_inplace(float* x, int n) {
  for (int i = 0; i < n; ++i) {
    const float e = exp_nonpositive(std::min(x[i], 0.0f));
    x[i] = x[i] > 0.0f ? x[i] + 1.0f : e;
  }
}

inline void elu_plus_one_inplace(double* x, int n) {
  for (int i = 0; i < n; ++i) x[i] = x[i] > 0.0 ? x[i] + 1.0 : std::exp(x[i]);
}

// The per-row bookkeeping around the GEMMs: sums, dot products and row updates of D or M values.
// GCC vectorises a float sum only when it may reorder the additions, which -O3 alone does not
// allow, so the reductions say so (omp simd); and float, the hot type, has overloads compiled per
// instruction set like the feature map. Run scalar, they were a large share of the non-causal
// layer's time in a profile (BENCHMARKS.md, "The fused layer's row loops").
template <typename T>
inline T sum(const T* x, int n) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; ++i) s += x[i];
  return s;
}

template <typename T>
inline T dot(const T* a, const T* b, int n) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

template <typename T>
inline void axpy(T alpha, const T* x, T* y, int n) {
  for (int i = 0; i < n; ++i) y[i] += alpha * x[i];
}

template <typename T>
inline void scale(T* x, T alpha, int n) {
  for (int i = 0; i < n; ++i) x[i] *= alpha;
}

// g *= phi'(x) given phi = phi(x): phi'(x) = 1 for x > 0 and exp(x) = phi(x) otherwise,
// i.e. min(phi, 1).
template <typename T>
inline void mul_elu_plus_one_grad(T* g, const T* phi, int n) {
  for (int i = 0; i < n; ++i) g[i] *= phi[i] < T(1) ? phi[i] : T(1);
}

// The float overloads (preferred over the templates for float arguments).
ASR_SIMD_CLONES inline float sum(const float* x, int n) { return sum<float>(x, n); }
ASR_SIMD_CLONES inline float dot(const float* a, const float* b, int n) {
  return dot<float>(a, b, n);
}
ASR_SIMD_CLONES inline void axpy(float alpha, const float* x, float* y, int n) {
  axpy<float>(alpha, x, y, n);
}
ASR_SIMD_CLONES inline void scale(float* x, float alpha, int n) { scale<float>(x, alpha, n); }
ASR_SIMD_CLONES inline void mul_elu_plus_one_grad(float* g, const float* phi, int n) {
  mul_elu_plus_one_grad<float>(g, phi, n);
}

// bfloat16 <-> float on the raw bits, in loops the compiler vectorises: c10::BFloat16's
// conversions go one value at a time, and under bf16 autocast every row the fused layer loads or
// stores passes through them. float -> bf16 rounds to nearest even and keeps NaN a NaN, exactly
// as c10::BFloat16 does.
namespace bf16 {

inline float to_float(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float x;
  std::memcpy(&x, &wide, sizeof(x));
  return x;
}

ASR_SIMD_CLONES inline void to_float(const uint16_t* src, float* dst, int n) {
  for (int i = 0; i < n; ++i) dst[i] = to_float(src[i]);
}

ASR_SIMD_CLONES inline void from_float(const float* src, uint16_t* dst, int n) {
  for (int i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, src + i, sizeof(bits));
    const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    dst[i] = src[i] != src[i] ? uint16_t{0x7FC0} : static_cast<uint16_t>(rounded);
  }
}

ASR_SIMD_CLONES inline float dot(const float* a, const uint16_t* b, int n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; ++i) s += a[i] * to_float(b[i]);
  return s;
}

}  // namespace bf16

// dst[0..n) = src[0..n) as acc_t.
template <typename in_t, typename acc_t>
inline void convert_row(const in_t* src, acc_t* dst, int n) {
  if constexpr (std::is_same_v<in_t, acc_t>) {
    std::memcpy(dst, src, sizeof(acc_t) * n);
  } else if constexpr (std::is_same_v<in_t, c10::BFloat16> && std::is_same_v<acc_t, float>) {
    bf16::to_float(reinterpret_cast<const uint16_t*>(src), dst, n);
  } else {
    for (int j = 0; j < n; ++j) dst[j] = static_cast<acc_t>(src[j]);
  }
}

// sum_j a[j] * b[j], with b in the input dtype.
template <typename in_t, typename acc_t>
inline acc_t dot_row(const acc_t* a, const in_t* b, int n) {
  if constexpr (std::is_same_v<in_t, acc_t>) {
    return dot(a, b, n);
  } else if constexpr (std::is_same_v<in_t, c10::BFloat16> && std::is_same_v<acc_t, float>) {
    return bf16::dot(a, reinterpret_cast<const uint16_t*>(b), n);
  } else {
    acc_t s = 0;
    for (int j = 0; j < n; ++j) s += a[j] * static_cast<acc_t>(b[j]);
    return s;
  }
}

// One head's rows of a (B, N, H, W)- or (B, H, N, W)-shaped tensor: row i at base + i * stride,
// its W values contiguous.
template <typename T>
struct Rows {
  T* base;
  int64_t stride;
  T* row(int64_t i) const { return base + i * stride; }
};

// How many rows ahead of the one it loads load_rows asks for: converting rows (bf16 to float)
// otherwise waited on each row's memory in turn, where a plain copy did not (BENCHMARKS.md, "The
// fused layer's row loops").
constexpr int kLoadAhead = 4;

// Ask for one row of `width` values ahead of use.
template <typename T>
inline void prefetch_row(const T* row, int width) {
  const char* p = reinterpret_cast<const char*>(row);
  for (int64_t off = 0; off < static_cast<int64_t>(width) * sizeof(T); off += 64)
    __builtin_prefetch(p + off);
}

// dst[i, :] (row stride ld) = src rows r0..r0+len as acc_t, optionally through phi; masked rows
// (mask[r0 + i] true) are zero. Rows len..rows_total-1 of dst are zeroed too, so that a partial
// chunk multiplies as a full one.
template <typename in_t, typename acc_t>
void load_rows(Rows<const in_t> src, int64_t r0, int len, int rows_total, int width, acc_t* dst,
               int ld, bool feature_map, const bool* mask) {
  for (int i = 0; i < rows_total; ++i) {
    acc_t* out = dst + static_cast<int64_t>(i) * ld;
    if (i >= len || (mask != nullptr && mask[r0 + i])) {
      std::fill(out, out + width, acc_t(0));
      continue;
    }
    if constexpr (!std::is_same_v<in_t, acc_t>) {
      if (i + kLoadAhead < len) prefetch_row(src.row(r0 + i + kLoadAhead), width);
    }
    convert_row(src.row(r0 + i), out, width);
    if (feature_map) elu_plus_one_inplace(out, width);
  }
}

// Ask for rows [r0, r0 + len) (clipped to [0, n)) ahead of use: the chunk loops stream through
// q, k, v and the gradient one chunk at a time, and waiting for each row on first touch cost more
// than the arithmetic on a loaded machine.
template <typename T>
inline void prefetch_rows(Rows<const T> src, int64_t r0, int len, int64_t n, int width) {
  const int64_t end = std::min<int64_t>(r0 + len, n);
  for (int64_t i = std::max<int64_t>(r0, 0); i < end; ++i) prefetch_row(src.row(i), width);
}

// Output rows are written once and not read again by the kernel: non-temporal stores skip the
// read-for-ownership of every line (float32 rows of 16-float multiples on 64-byte boundaries).
// finish_streaming() must follow before another thread reads them.
#ifdef ASR_AVX512_GEMM
__attribute__((target("avx512f"))) inline void stream_row(const float* src, float* dst, int width) {
  for (int j = 0; j < width; j += 16) _mm512_stream_ps(dst + j, _mm512_loadu_ps(src + j));
}
#endif

inline void finish_streaming() {
#ifdef ASR_AVX512_GEMM
  _mm_sfence();
#endif
}

template <typename in_t, typename acc_t>
void store_row(const acc_t* src, in_t* dst, int width) {
#ifdef ASR_AVX512_GEMM
  if constexpr (std::is_same_v<in_t, float> && std::is_same_v<acc_t, float>) {
    if (use_avx512_gemm() && width % 16 == 0 && reinterpret_cast<uintptr_t>(dst) % 64 == 0) {
      stream_row(src, dst, width);
      return;
    }
  }
#endif
  if constexpr (std::is_same_v<in_t, acc_t>) {
    std::memcpy(dst, src, sizeof(acc_t) * width);
  } else if constexpr (std::is_same_v<in_t, c10::BFloat16> && std::is_same_v<acc_t, float>) {
    bf16::from_float(src, reinterpret_cast<uint16_t*>(dst), width);
  } else {
    for (int j = 0; j < width; ++j) dst[j] = static_cast<in_t>(src[j]);
  }
}

// Zero the strict upper (j > i, keep_lower) or strict lower (j < i) triangle of the first `rows`
// rows of a block with `cols` columns and row stride ld.
template <typename acc_t>
void mask_triangle(acc_t* p, int rows, int cols, int ld, bool keep_lower) {
  for (int i = 0; i < rows; ++i) {
    acc_t* row = p + static_cast<int64_t>(i) * ld;
    if (keep_lower) {
      if (i + 1 < cols) std::fill(row + i + 1, row + cols, acc_t(0));
    } else {
      std::fill(row, row + std::min(i, cols), acc_t(0));
    }
  }
}

}  // namespace asr_attention
