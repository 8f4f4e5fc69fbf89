// Scalar reference kernels: the definition every SIMD path is tested against. Integer sums per
// block, one float multiply-add per block (per sub-block scale for the K types), as in ggml.
// For the types of the default model (Q4_0/Q5_0/Q8_0, Q4_K, Q6_K) the float accumulation follows
// llama.cpp's x86 AVX2 kernels step for step (fused multiply-adds, lane partial sums, the same
// horizontal-sum order), so with the same activation quantization the results are bit-identical
// to llama.cpp's: checked against its intermediate tensors (tools/parity/). KernelTable::batch
// holds llama.cpp's prompt-batch forms where they differ (Q4_K in groups of 4 rows, Q6_K from 8).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/tile.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace ee {
namespace kern {

Act act_for(GgmlType wt) {
  switch (wt) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: return Act::F32;
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: return Act::Q8_K;
    default: return Act::Q8_0;
  }
}

size_t act_row_bytes(Act a, int64_t cols) {
  switch (a) {
    case Act::F32: return static_cast<size_t>(cols) * 4;
    case Act::Q8_0: return q8_0_qg_offset(cols / QK) + static_cast<size_t>(q8_0_groups(cols / QK)) * kQ8GroupBytes;
    case Act::Q8_K: return static_cast<size_t>(cols / QK_K) * sizeof(block_q8_K);
  }
  return 0;
}

void KernelTable::set(GgmlType t, MatFn f) {
  fn[static_cast<int>(t)] = f;
  native[static_cast<int>(t)] = true;
}

void quantize_act(Act a, const float* x, uint8_t* dst, int64_t cols) {
  switch (a) {
    case Act::F32: std::memcpy(dst, x, static_cast<size_t>(cols) * 4); return;
    case Act::Q8_K: quantize_row_q8_K(x, dst, cols); return;
    case Act::Q8_0: {
      quantize_row_q8_0(x, dst, cols);
      const int64_t nb = cols / QK;
      const block_q8_0* b = reinterpret_cast<const block_q8_0*>(dst);
      float* d = reinterpret_cast<float*>(dst + q8_0_aux_offset(nb));
      int32_t* sum = reinterpret_cast<int32_t*>(d + nb);
      for (int64_t i = 0; i < nb; ++i) {
        d[i] = half_to_float(b[i].d);
        int32_t s = 0;
        for (int l = 0; l < QK; ++l) s += b[i].qs[l];
        sum[i] = s;
      }
      const size_t pad0 = q8_0_aux_offset(nb) + static_cast<size_t>(nb) * 8, qa = q8_0_qa_offset(nb);
      std::memset(dst + pad0, 0, qa - pad0);
      for (int64_t i = 0; i < nb; ++i) std::memcpy(dst + qa + 32 * i, b[i].qs, 32);
      fill_q8_0_groups(dst, nb);
      return;
    }
  }
}

void fill_q8_0_groups(uint8_t* row, int64_t nb) {
  const block_q8_0* b = reinterpret_cast<const block_q8_0*>(row);
  const float* d = reinterpret_cast<const float*>(row + q8_0_aux_offset(nb));
  const int32_t* sum = reinterpret_cast<const int32_t*>(d + nb);
  uint8_t* g0 = row + q8_0_qg_offset(nb);
  std::memset(g0, 0, static_cast<size_t>(q8_0_groups(nb)) * kQ8GroupBytes);
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t* g = g0 + static_cast<size_t>(i / 8) * kQ8GroupBytes;
    const int k = static_cast<int>(i % 8);
    uint8_t* pair = g + 64 * (k / 2) + 16 * (k % 2);
    std::memcpy(pair, b[i].qs, 16);
    std::memcpy(pair + 32, b[i].qs + 16, 16);
    std::memcpy(g + 256 + 4 * kQ8GroupLane[k], &d[i], 4);
    std::memcpy(g + 288 + 4 * kQ8GroupLane[k], &sum[i], 4);
  }
}

namespace {

inline float h2f(uint16_t h) { return half_to_float(h); }

struct DotF32 {
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    const float* a = reinterpret_cast<const float*>(w);
    const float* b = reinterpret_cast<const float*>(x);
    float s = 0.f;
    for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
  }
};
template <float (*CVT)(uint16_t)>
struct DotHalf {
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    const uint16_t* a = reinterpret_cast<const uint16_t*>(w);
    const float* b = reinterpret_cast<const float*>(x);
    float s = 0.f;
    for (int64_t i = 0; i < n; ++i) s += CVT(a[i]) * b[i];
    return s;
  }
};

inline int nib_lo(const uint8_t* qs, int l) { return qs[l] & 0xF; }
inline int nib_hi(const uint8_t* qs, int l) { return qs[l] >> 4; }

struct DotQ4_1 {
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    const block_q4_1* a = reinterpret_cast<const block_q4_1*>(w);
    const block_q8_0* b = reinterpret_cast<const block_q8_0*>(x);
    float s = 0.f;
    for (int64_t i = 0; i < n / QK; ++i) {
      int sum = 0, sx = 0;
      for (int l = 0; l < 16; ++l) {
        sum += nib_lo(a[i].qs, l) * b[i].qs[l] + nib_hi(a[i].qs, l) * b[i].qs[l + 16];
        sx += b[i].qs[l] + b[i].qs[l + 16];
      }
      const float dx = h2f(b[i].d);
      s += static_cast<float>(sum) * (h2f(a[i].d) * dx) + static_cast<float>(sx) * (h2f(a[i].m) * dx);
    }
    return s;
  }
};
inline uint32_t qh32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
struct DotQ5_1 {
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    const block_q5_1* a = reinterpret_cast<const block_q5_1*>(w);
    const block_q8_0* b = reinterpret_cast<const block_q8_0*>(x);
    float s = 0.f;
    for (int64_t i = 0; i < n / QK; ++i) {
      const uint32_t qh = qh32(a[i].qh);
      int sum = 0, sx = 0;
      for (int l = 0; l < 16; ++l) {
        const int lo = nib_lo(a[i].qs, l) | (((qh >> l) & 1) << 4);
        const int hi = nib_hi(a[i].qs, l) | (((qh >> (l + 16)) & 1) << 4);
        sum += lo * b[i].qs[l] + hi * b[i].qs[l + 16];
        sx += b[i].qs[l] + b[i].qs[l + 16];
      }
      const float dx = h2f(b[i].d);
      s += static_cast<float>(sum) * (h2f(a[i].d) * dx) + static_cast<float>(sx) * (h2f(a[i].m) * dx);
    }
    return s;
  }
};

// K types against Q8_K: sum_i d*dx * sum_sb scale_sb * sum(q*qx)  -  dmin*dx * sum_sb min_sb * bsum_sb
struct DotQ2_K {
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    const block_q2_K* a = reinterpret_cast<const block_q2_K*>(w);
    const block_q8_K* b = reinterpret_cast<const block_q8_K*>(x);
    float s = 0.f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
      int sumi = 0, summ = 0;
      for (int g = 0; g < 16; ++g) {
        int acc = 0;
        for (int l = 0; l < 16; ++l) {
          const int o = g * 16 + l, j = o / 128, sh = 2 * ((o / 32) % 4);
          acc += ((a[i].qs[j * 32 + o % 32] >> sh) & 3) * b[i].qs[o];
        }
        sumi += (a[i].scales[g] & 0xF) * acc;
        summ += (a[i].scales[g] >> 4) * b[i].bsums[g];
      }
      s += b[i].d * (h2f(a[i].d) * static_cast<float>(sumi) - h2f(a[i].dmin) * static_cast<float>(summ));
    }
    return s;
  }
};
struct DotQ3_K {
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    const block_q3_K* a = reinterpret_cast<const block_q3_K*>(w);
    const block_q8_K* b = reinterpret_cast<const block_q8_K*>(x);
    float s = 0.f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
      int8_t sc[16];
      get_scales_q3_K(a[i].scales, sc);
      int sumi = 0;
      for (int g = 0; g < 16; ++g) {
        int acc = 0;
        for (int l = 0; l < 16; ++l) {
          const int o = g * 16 + l, j = o / 128, sh = 2 * ((o / 32) % 4);
          const int ql = (a[i].qs[j * 32 + o % 32] >> sh) & 3;
          const int h = (a[i].hmask[o % 32] >> (o / 32)) & 1;
          acc += (ql - ((h ^ 1) << 2)) * b[i].qs[o];
        }
        sumi += sc[g] * acc;
      }
      s += b[i].d * h2f(a[i].d) * static_cast<float>(sumi);
    }
    return s;
  }
};
template <bool FIVE, class B>
float dot_q45_K(const B* a, const block_q8_K* b, int64_t nb) {
  float s = 0.f;
  for (int64_t i = 0; i < nb; ++i) {
    int sumi = 0, summ = 0;
    for (int sb = 0; sb < 8; ++sb) {
      uint8_t sc, m;
      get_scale_min_k4(sb, a[i].scales, &sc, &m);
      const uint8_t* q = a[i].qs + (sb / 2) * 32;
      const int shift = 4 * (sb % 2);
      int acc = 0;
      for (int l = 0; l < 32; ++l) {
        int v = (q[l] >> shift) & 0xF;
        if constexpr (FIVE) v |= ((a[i].qh[l] >> sb) & 1) << 4;
        acc += v * b[i].qs[sb * 32 + l];
      }
      sumi += sc * acc;
      summ += m * (b[i].bsums[2 * sb] + b[i].bsums[2 * sb + 1]);
    }
    s += b[i].d * (h2f(a[i].d) * static_cast<float>(sumi) - h2f(a[i].dmin) * static_cast<float>(summ));
  }
  return s;
}
struct DotQ5_K {
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    return dot_q45_K<true>(reinterpret_cast<const block_q5_K*>(w), reinterpret_cast<const block_q8_K*>(x), n / QK_K);
  }
};
// a*b+c rounded once, as the FMA instructions of llama.cpp's x86 / ARMv8 kernels. On CPUs without
// a fused multiply-add (ARMv6/v7 VFP) std::fma would be a slow software routine: use a*b+c there.
inline float fmadd(float a, float b, float c) {
#if defined(__arm__) && !defined(__ARM_FEATURE_FMA)
  return a * b + c;
#else
  return std::fma(a, b, c);
#endif
}
// _mm256 horizontal sum order of ggml's hsum_float_8: (l0+l4 + l2+l6) + (l1+l5 + l3+l7).
inline float hsum8_ggml(const float* a) {
  const float t0 = a[4] + a[0], t1 = a[5] + a[1], t2 = a[6] + a[2], t3 = a[7] + a[3];
  return (t0 + t2) + (t1 + t3);
}
// 32-blocks against Q8_0 (ggml_vec_dot_q{4,5,8}_0_q8_0 and llamafile's tinyBLAS on AVX2): lane L
// holds the integer sum of elements 4L..4L+3, acc[L] = fma(d_w*d_x, lane, acc[L]), then hsum8.
template <class B, void (*UNPACK)(const B&, int8_t*)>
struct DotLanes32 {
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    const B* a = reinterpret_cast<const B*>(w);
    const block_q8_0* b = reinterpret_cast<const block_q8_0*>(x);
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int8_t q[QK];
    for (int64_t i = 0; i < n / QK; ++i) {
      UNPACK(a[i], q);
      const float d = h2f(a[i].d) * h2f(b[i].d);
      for (int L = 0; L < 8; ++L) {
        int s = 0;
        for (int e = 4 * L; e < 4 * L + 4; ++e) s += q[e] * b[i].qs[e];
        acc[L] = fmadd(d, static_cast<float>(s), acc[L]);
      }
    }
    return hsum8_ggml(acc);
  }
};
inline void unpack_q8_0(const block_q8_0& b, int8_t* q) { std::memcpy(q, b.qs, QK); }
inline void unpack_q4_0(const block_q4_0& b, int8_t* q) {
  for (int l = 0; l < 16; ++l) { q[l] = static_cast<int8_t>(nib_lo(b.qs, l) - 8); q[l + 16] = static_cast<int8_t>(nib_hi(b.qs, l) - 8); }
}
inline void unpack_q5_0(const block_q5_0& b, int8_t* q) {
  const uint32_t qh = qh32(b.qh);
  for (int l = 0; l < 16; ++l) {
    q[l] = static_cast<int8_t>((nib_lo(b.qs, l) | (((qh >> l) & 1) << 4)) - 16);
    q[l + 16] = static_cast<int8_t>((nib_hi(b.qs, l) | (((qh >> (l + 16)) & 1) << 4)) - 16);
  }
}
// Q4_K (llama.cpp repacks it for AVX2: ggml_gemv/gemm_q4_K_8x8_q8_K): per super-block the integer
// sums sum_sb scale*dot and sum_sb min*bsum, acc = fma(isum, d_w*d_x, acc), accm likewise with
// dmin, result acc - accm. SB2 (the 4-row gemm form): one fma per pair of sub-blocks instead.
template <bool SB2>
float dot_q4_K_ggml(const uint8_t* w, const uint8_t* x, int64_t n) {
  const block_q4_K* a = reinterpret_cast<const block_q4_K*>(w);
  const block_q8_K* b = reinterpret_cast<const block_q8_K*>(x);
  float acc = 0.f, accm = 0.f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float dd = h2f(a[i].d) * b[i].d, dm = h2f(a[i].dmin) * b[i].d;
    int isum = 0, imin = 0;
    for (int sb = 0; sb < 8; ++sb) {
      uint8_t sc, m;
      get_scale_min_k4(sb, a[i].scales, &sc, &m);
      const uint8_t* q = a[i].qs + (sb / 2) * 32;
      const int shift = 4 * (sb % 2);
      int dot = 0;
      for (int l = 0; l < 32; ++l) dot += ((q[l] >> shift) & 0xF) * b[i].qs[sb * 32 + l];
      isum += sc * dot;
      imin += m * (b[i].bsums[2 * sb] + b[i].bsums[2 * sb + 1]);
      if (SB2 && sb % 2 == 1) {
        acc = fmadd(static_cast<float>(isum), dd, acc);
        accm = fmadd(static_cast<float>(imin), dm, accm);
        isum = imin = 0;
      }
    }
    if (!SB2) {
      acc = fmadd(static_cast<float>(isum), dd, acc);
      accm = fmadd(static_cast<float>(imin), dm, accm);
    }
  }
  return acc - accm;
}
inline int q6_val(const block_q6_K& a, int o) {   // 0..63 (value + 32)
  const int j = o / 128, r = o % 128;
  const int lo = (a.ql[j * 64 + r % 64] >> (4 * (r / 64))) & 0xF;
  const int hi = (a.qh[j * 32 + r % 32] >> (2 * (r / 32))) & 3;
  return lo | (hi << 4);
}
// Q6_K, one token (ggml_vec_dot_q6_K_q8_K, AVX2): lane L = sum over the 32-chunks of scale *
// (q+32) * x for elements 4L..4L+3 of the chunk, minus 32*(sc[2L]*bsum[2L] + sc[2L+1]*bsum[2L+1]);
// acc[L] = fma(d_x*d_w, lane, acc[L]) per super-block; hsum8.
float dot_q6_K_ggml(const uint8_t* w, const uint8_t* x, int64_t n) {
  const block_q6_K* a = reinterpret_cast<const block_q6_K*>(w);
  const block_q8_K* b = reinterpret_cast<const block_q8_K*>(x);
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int o = 0; o < QK_K; ++o) lanes[(o % 32) / 4] += a[i].scales[o / 16] * q6_val(a[i], o) * b[i].qs[o];
    const float d = b[i].d * h2f(a[i].d);
    for (int L = 0; L < 8; ++L) {
      const int v = lanes[L] - 32 * (a[i].scales[2 * L] * b[i].bsums[2 * L] + a[i].scales[2 * L + 1] * b[i].bsums[2 * L + 1]);
      acc[L] = fmadd(d, static_cast<float>(v), acc[L]);
    }
  }
  return hsum8_ggml(acc);
}
// Q6_K in a prompt batch of 8 or more tokens: the whole super-block's integer sum, then
// acc = fma(isum*d_w, d_x, acc).
float dot_q6_K_ggml_batch(const uint8_t* w, const uint8_t* x, int64_t n) {
  const block_q6_K* a = reinterpret_cast<const block_q6_K*>(w);
  const block_q8_K* b = reinterpret_cast<const block_q8_K*>(x);
  float acc = 0.f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int isum = 0;
    for (int o = 0; o < QK_K; ++o) isum += a[i].scales[o / 16] * (q6_val(a[i], o) - 32) * b[i].qs[o];
    acc = fmadd(static_cast<float>(isum) * h2f(a[i].d), b[i].d, acc);
  }
  return acc;
}
struct DotQ4_K_ggml { static float dot(const uint8_t* w, const uint8_t* x, int64_t n) { return dot_q4_K_ggml<false>(w, x, n); } };
struct DotQ6_K_ggml { static float dot(const uint8_t* w, const uint8_t* x, int64_t n) { return dot_q6_K_ggml(w, x, n); } };
// Batch forms (KernelTable::batch): Q4_K rows in whole groups of 4 tokens take the gemm form, the
// n_tok % 4 last ones the one-token form; Q6_K takes the batch form for n_tok >= 8.
void mat_q4_K_batch(const uint8_t* W, size_t row_bytes, int64_t r0, int64_t r1, int64_t cols,
                    const uint8_t* X, size_t x_stride, int64_t n_tok, float* Y, int64_t y_stride) {
  for (int64_t t = 0; t < n_tok; ++t) {
    const bool gemm = t < n_tok - n_tok % 4;
    const uint8_t* x = X + static_cast<size_t>(t) * x_stride;
    for (int64_t r = r0; r < r1; ++r)
      Y[t * y_stride + r] = gemm ? dot_q4_K_ggml<true>(W + static_cast<size_t>(r) * row_bytes, x, cols)
                                 : dot_q4_K_ggml<false>(W + static_cast<size_t>(r) * row_bytes, x, cols);
  }
}
void mat_q6_K_batch(const uint8_t* W, size_t row_bytes, int64_t r0, int64_t r1, int64_t cols,
                    const uint8_t* X, size_t x_stride, int64_t n_tok, float* Y, int64_t y_stride) {
  for (int64_t t = 0; t < n_tok; ++t) {
    const uint8_t* x = X + static_cast<size_t>(t) * x_stride;
    for (int64_t r = r0; r < r1; ++r)
      Y[t * y_stride + r] = n_tok >= 8 ? dot_q6_K_ggml_batch(W + static_cast<size_t>(r) * row_bytes, x, cols)
                                       : dot_q6_K_ggml(W + static_cast<size_t>(r) * row_bytes, x, cols);
  }
}

template <class T, float (*CVT)(T)>
void mix_rows(const uint8_t* V, size_t row_bytes, int64_t j0, int64_t j1, int64_t n, const float* p, int64_t p_stride,
              int64_t n_p, float* out, int64_t out_stride) {
  for (int64_t h = 0; h < n_p; ++h) {
    float* o = out + h * out_stride;
    for (int64_t i = 0; i < n; ++i) o[i] = 0.f;
    for (int64_t j = j0; j < j1; ++j) {
      const T* v = reinterpret_cast<const T*>(V + static_cast<size_t>(j) * row_bytes);
      const float pj = p[h * p_stride + j];
      for (int64_t i = 0; i < n; ++i) o[i] += pj * CVT(v[i]);
    }
  }
}
inline float f32_id(float f) { return f; }

// ggml_v_expf (AVX2 build, ARM optimized-routines' expf): what ggml's softmax uses for every full
// group of 8 scores. Scalar, one lane at a time, same operations (fused multiply-adds included).
inline uint32_t f32_u32(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float u32_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
float ggml_expf(float x) {
  const float r = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, r);
  const float n = z - r;
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  const uint32_t e = f32_u32(z) << 23;
  const float k = u32_f32(e + f32_u32(1.0f));
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                           0x1.ffffecp-1f * b);
  if (!(std::fabs(n) > 126.f)) return std::fma(j, k, k);
  const uint32_t g = n <= 0.f ? 0x82000000u : 0u;   // over/underflow lanes
  const float s1 = u32_f32(g + 0x7f000000u);
  if (std::fabs(n) > 192.f) return s1 * s1;
  return std::fma(u32_f32(e - g), j, u32_f32(e - g)) * s1;
}
// The SoftmaxFn definition (kernels.h), scalar.
void softmax_scalar(float* sg, int64_t lo, int64_t p, float scale, bool round_f16) {
  for (int64_t j = lo; j <= p; ++j) sg[j] *= scale;
  float mx = -INFINITY;
  for (int64_t j = lo; j <= p; ++j) mx = std::max(mx, sg[j]);
  for (int64_t j = lo; j <= p; ++j) sg[j] = ggml_expf(sg[j] - mx);
  double sum = 0;
  for (int64_t j0 = lo / 8 * 8; j0 <= p; j0 += 8) {
    float v[8];
    for (int l = 0; l < 8; ++l) v[l] = (j0 + l >= lo && j0 + l <= p) ? sg[j0 + l] : 0.f;
    const float t0 = v[4] + v[0], t1 = v[5] + v[1], t2 = v[6] + v[2], t3 = v[7] + v[3];
    sum += static_cast<double>((t0 + t2) + (t1 + t3));
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t j = lo; j <= p; ++j) sg[j] *= inv;
  if (round_f16)
    for (int64_t j = lo; j <= p; ++j) sg[j] = half_to_float(float_to_half(sg[j]));
}

void round_f16_scalar(const float* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float(float_to_half(src[i]));
}

void geglu_scalar(const float* table, float* x, const float* g, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    x[i] = (v <= -10.f ? 0.f : v >= 10.f ? v : table[float_to_half(v)]) * g[i];
  }
}

KernelTable make_scalar() {
  KernelTable k;
  k.isa = Isa::Scalar;
  k.mix_f16 = mix_rows<uint16_t, half_to_float>;
  k.mix_f32 = mix_rows<float, f32_id>;
  k.geglu = geglu_scalar;
  k.softmax = softmax_scalar;
  k.round_f16 = round_f16_scalar;
  k.set(GgmlType::F32, mat_rows<DotF32>);
  k.set(GgmlType::F16, mat_rows<DotHalf<half_to_float>>);
  k.set(GgmlType::BF16, mat_rows<DotHalf<bf16_to_float>>);
  k.set(GgmlType::Q4_0, mat_rows<DotLanes32<block_q4_0, unpack_q4_0>>);
  k.set(GgmlType::Q4_1, mat_rows<DotQ4_1>);
  k.set(GgmlType::Q5_0, mat_rows<DotLanes32<block_q5_0, unpack_q5_0>>);
  k.set(GgmlType::Q5_1, mat_rows<DotQ5_1>);
  k.set(GgmlType::Q8_0, mat_rows<DotLanes32<block_q8_0, unpack_q8_0>>);
  k.set(GgmlType::Q2_K, mat_rows<DotQ2_K>);
  k.set(GgmlType::Q3_K, mat_rows<DotQ3_K>);
  k.set(GgmlType::Q4_K, mat_rows<DotQ4_K_ggml>);
  k.set(GgmlType::Q5_K, mat_rows<DotQ5_K>);
  k.set(GgmlType::Q6_K, mat_rows<DotQ6_K_ggml>);
  k.batch[static_cast<int>(GgmlType::Q4_K)] = mat_q4_K_batch;
  k.batch[static_cast<int>(GgmlType::Q6_K)] = mat_q6_K_batch;
  return k;
}

}  // namespace

const KernelTable& table_scalar() {
  static const KernelTable t = make_scalar();
  return t;
}

}  // namespace kern
}  // namespace ee
