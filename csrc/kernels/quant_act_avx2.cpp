// AVX2 activation quantization: the same bytes as kern::quantize_act (kernels_scalar.cpp ->
// quant.cpp's quantize_row_q8_0 / quantize_row_q8_K), checked byte for byte in
// csrc/tests/test_kernels.cpp. Rounding: vcvtps2dq under the default MXCSR mode (nearest, ties to
// even) equals quant.cpp's nearest_int for these |values| <= 127; products are plain multiplies
// as there (no FMA), scales are computed with the same scalar expressions.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "kernels/kernels.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace ee {
namespace kern {
namespace {

inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}
// 32 int32 (4 vectors) -> 32 int8 in order (values already in [-127, 127]).
inline void pack_store(__m256i i0, __m256i i1, __m256i i2, __m256i i3, int8_t* dst) {
  const __m256i a = _mm256_packs_epi32(i0, i1), b = _mm256_packs_epi32(i2, i3);
  const __m256i c = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), c);
}

void q8_0(const float* x, uint8_t* dst, int64_t cols) {
  const int64_t nb = cols / QK;
  {
    const size_t pad0 = q8_0_aux_offset(nb) + static_cast<size_t>(nb) * 8;
    std::memset(dst + pad0, 0, q8_0_qa_offset(nb) - pad0);
  }
  block_q8_0* b = reinterpret_cast<block_q8_0*>(dst);
  float* dw = reinterpret_cast<float*>(dst + q8_0_aux_offset(nb));
  int32_t* sum = reinterpret_cast<int32_t*>(dw + nb);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t i = 0; i < nb; ++i, x += QK) {
    const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                             _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    b[i].d = float_to_half(amax / 127.f);
    const __m256 id = _mm256_set1_ps(amax != 0.f ? 127.f / amax : 0.f);
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, id)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, id));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, id)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, id));
    pack_store(i0, i1, i2, i3, b[i].qs);
    std::memcpy(dst + q8_0_qa_offset(nb) + 32 * i, b[i].qs, 32);   // the aligned copy (kernels.h)
    dw[i] = half_to_float(b[i].d);
    sum[i] = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
  }
  fill_q8_0_groups(dst, nb);
}

void q8_K(const float* x, uint8_t* dst, int64_t cols) {
  block_q8_K* b = reinterpret_cast<block_q8_K*>(dst);
  const __m256i cap = _mm256_set1_epi32(127);
  for (int64_t i = 0; i < cols / QK_K; ++i, x += QK_K, ++b) {
    const float max = q8_K_signed_max(x);   // scalar, shared with quant.cpp
    if (max == 0.f) {
      std::memset(b, 0, sizeof *b);
      continue;
    }
    const float iscale = -127.f / max;
    const __m256 is = _mm256_set1_ps(iscale);
    for (int c = 0; c < QK_K; c += 32) {
      __m256i q[4];
      for (int k = 0; k < 4; ++k)
        q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + c + 8 * k), is)), cap);
      pack_store(q[0], q[1], q[2], q[3], b->qs + c);
      b->bsums[c / 16] = static_cast<int16_t>(hsum_i32(_mm256_add_epi32(q[0], q[1])));
      b->bsums[c / 16 + 1] = static_cast<int16_t>(hsum_i32(_mm256_add_epi32(q[2], q[3])));
    }
    b->d = 1.f / iscale;
  }
}

}  // namespace

void quantize_act_avx2(Act a, const float* x, uint8_t* dst, int64_t cols) {
  switch (a) {
    case Act::Q8_0: q8_0(x, dst, cols); return;
    case Act::Q8_K: q8_K(x, dst, cols); return;
    default: quantize_act(a, x, dst, cols); return;
  }
}

}  // namespace kern
}  // namespace ee
