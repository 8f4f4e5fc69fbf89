// Internal x86 helpers shared by kernels_avx2.cpp and kernels_avx512.cpp (compiled with AVX2+FMA+F16C
// at least). Each Dot functor: SIMD body over whole blocks; float rows get an explicit scalar tail.
#pragma once
#if defined(EE_X86_SIMDE)
// Test-only build (csrc/tests/test_avx512_emulated.cpp): the same kernels on SIMDe's portable
// implementations, so the AVX-512 path is checked against scalar on CPUs without AVX-512.
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>
#include <simde/x86/fma.h>
#include "quant/fp16.h"
#else
#include <immintrin.h>
#endif

// vector types as template arguments (function-pointer loaders) lose their alignment attribute; harmless here
#pragma GCC diagnostic ignored "-Wignored-attributes"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/kernels.h"
#include "quant/blocks.h"

namespace ee {
namespace kern {
namespace x86 {
// Internal linkage on purpose: every ISA file gets its own copy compiled with its own flags, so the
// linker can never hand an AVX-512 (or dotprod) instantiation to a baseline caller.
namespace {

#if defined(EE_X86_SIMDE)
inline float h2f(uint16_t h) { return half_to_float(h); }
#define _cvtsh_ss(h) half_to_float(h)
#else
inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
#endif
inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline int hsum_i32x8(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}
// 32 signed bytes a . 32 signed bytes b -> 8 int32 partial sums (sign trick for maddubs).
inline __m256i dot_i8(__m256i a, __m256i b) {
  const __m256i ax = _mm256_sign_epi8(a, a);
  const __m256i sb = _mm256_sign_epi8(b, a);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sb), _mm256_set1_epi16(1));
}
// 32 unsigned bytes (< 128) u . 32 signed bytes b -> 16 int16 pair sums.
inline __m256i dot_u8_i16(__m256i u, __m256i b) { return _mm256_maddubs_epi16(u, b); }
// 16 packed nibble bytes -> 32 bytes: low nibbles first (elements 0..15), then high (16..31).
// One broadcast load, one variable shift of the upper 128 bits by 4, one mask.
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm256_and_si256(_mm256_srlv_epi64(q, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0F));
}
// 32 bits -> 32 bytes, 0xFF where bit i of qh is set.
inline __m256i bits_to_bytes(uint32_t qh) {
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)), shuf);
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}
inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// ---- float weights: 8-wide FMA body, scalar tail ----
// Float rows (F32 / F16 weights, the attention's f16 K cache): tile<R, T> converts each 16-value
// chunk of a weight row once for T activation rows. Per (row, token): two 8-lane accumulators
// (even / odd chunks of 8), the 8-value tail in the first, hsum8 of their sum, then a scalar
// tail: the same whatever R and T are.
template <class T_, __m256 (*LD)(const T_*), float (*CVT)(T_)>
struct DotFloat8 {
  static constexpr int kRowsVec = 1, kRows = 1, kToks = 4;
  template <int R, int T>
  static void tile(const uint8_t* const* w, const uint8_t* const* x, int64_t n, float* out) {
    const T_* a[R];
    const float* b[T];
    for (int r = 0; r < R; ++r) a[r] = reinterpret_cast<const T_*>(w[r]);
    for (int t = 0; t < T; ++t) b[t] = reinterpret_cast<const float*>(x[t]);
    __m256 e[R][T], o[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) e[r][t] = o[r][t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m256 w0 = LD(a[r] + i), w1 = LD(a[r] + i + 8);
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          e[r][t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(b[t] + i), e[r][t]);
          o[r][t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(b[t] + i + 8), o[r][t]);
        }
      }
    }
    if (i + 8 <= n) {
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) e[r][t] = _mm256_fmadd_ps(LD(a[r] + i), _mm256_loadu_ps(b[t] + i), e[r][t]);
      i += 8;
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) {
        float s = hsum8(_mm256_add_ps(e[r][t], o[r][t]));
        for (int64_t k = i; k < n; ++k) s += CVT(a[r][k]) * b[t][k];   // scalar tail
        out[r * T + t] = s;
      }
  }
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    float out;
    tile<1, 1>(&w, &x, n, &out);
    return out;
  }
  // P heads at once: out[h][i] = sum_j p[h][j] * V[j][i]. Each chunk of V is converted once for
  // all heads; every output lane sums over j in order in its own accumulator (so the result does
  // not depend on P or the chunk width).
  template <int P, int W>   // W: 8-lane chunks per pass
  static void mix_heads(const uint8_t* V, size_t row_bytes, int64_t j0, int64_t j1, int64_t i, const float* p,
                        int64_t p_stride, float* out, int64_t out_stride) {
    __m256 acc[P][W];
    for (int h = 0; h < P; ++h)
      for (int k = 0; k < W; ++k) acc[h][k] = _mm256_setzero_ps();
    for (int64_t j = j0; j < j1; ++j) {
      const T_* v = reinterpret_cast<const T_*>(V + static_cast<size_t>(j) * row_bytes) + i;
      __m256 vv[W];
#pragma GCC unroll 8
      for (int k = 0; k < W; ++k) vv[k] = LD(v + 8 * k);
#pragma GCC unroll 4
      for (int h = 0; h < P; ++h) {
        const __m256 pj = _mm256_broadcast_ss(p + h * p_stride + j);
#pragma GCC unroll 8
        for (int k = 0; k < W; ++k) acc[h][k] = _mm256_fmadd_ps(pj, vv[k], acc[h][k]);
      }
    }
    for (int h = 0; h < P; ++h)
      for (int k = 0; k < W; ++k) _mm256_storeu_ps(out + h * out_stride + i + 8 * k, acc[h][k]);
  }
  static void mix(const uint8_t* V, size_t row_bytes, int64_t j0, int64_t j1, int64_t n, const float* p, int64_t p_stride,
                  int64_t n_p, float* out, int64_t out_stride) {
    int64_t h = 0;
    for (; h + 4 <= n_p; h += 4) {   // four heads x 16 outputs = 8 accumulators
      int64_t i = 0;
      for (; i + 16 <= n; i += 16) mix_heads<4, 2>(V, row_bytes, j0, j1, i, p + h * p_stride, p_stride, out + h * out_stride, out_stride);
      for (; i + 8 <= n; i += 8) mix_heads<4, 1>(V, row_bytes, j0, j1, i, p + h * p_stride, p_stride, out + h * out_stride, out_stride);
      mix_tail(V, row_bytes, j0, j1, i, n, p + h * p_stride, p_stride, 4, out + h * out_stride, out_stride);
    }
    for (; h < n_p; ++h) {   // one head x 64 outputs = 8 accumulators
      int64_t i = 0;
      for (; i + 64 <= n; i += 64) mix_heads<1, 8>(V, row_bytes, j0, j1, i, p + h * p_stride, p_stride, out + h * out_stride, out_stride);
      for (; i + 8 <= n; i += 8) mix_heads<1, 1>(V, row_bytes, j0, j1, i, p + h * p_stride, p_stride, out + h * out_stride, out_stride);
      mix_tail(V, row_bytes, j0, j1, i, n, p + h * p_stride, p_stride, 1, out + h * out_stride, out_stride);
    }
  }
  static void mix_tail(const uint8_t* V, size_t row_bytes, int64_t j0, int64_t j1, int64_t i0, int64_t n, const float* p,
                       int64_t p_stride, int64_t n_p, float* out, int64_t out_stride) {   // scalar tail
    for (int64_t h = 0; h < n_p; ++h)
      for (int64_t i = i0; i < n; ++i) {
        float s = 0.f;
        for (int64_t j = j0; j < j1; ++j) s += p[h * p_stride + j] * CVT(reinterpret_cast<const T_*>(V + static_cast<size_t>(j) * row_bytes)[i]);
        out[h * out_stride + i] = s;
      }
  }
};
inline __m256 ld_f32(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 ld_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline float id_f32(float f) { return f; }
using DotF32 = DotFloat8<float, ld_f32, id_f32>;
using DotF16 = DotFloat8<uint16_t, ld_f16, h2f>;

// GELU table lookup times gate, 8 at a time: F16C rounds to the fp16 index (nearest even, like
// float_to_half), a gather reads the table, two blends apply the +-10 clamps; scalar tail.
inline void geglu(const float* table, float* x, const float* g, int64_t n) {
  int64_t i = 0;
  const __m256 lo = _mm256_set1_ps(-10.f), hi = _mm256_set1_ps(10.f);
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256i idx = _mm256_cvtepu16_epi32(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    __m256 y = _mm256_i32gather_ps(table, idx, 4);
    y = _mm256_blendv_ps(y, v, _mm256_cmp_ps(v, hi, _CMP_GE_OQ));
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(v, lo, _CMP_LE_OQ));
    _mm256_storeu_ps(x + i, _mm256_mul_ps(y, _mm256_loadu_ps(g + i)));
  }
  for (; i < n; ++i) {   // scalar tail
    const float v = x[i];
    x[i] = (v <= -10.f ? 0.f : v >= 10.f ? v : table[static_cast<uint16_t>(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(v), _MM_FROUND_TO_NEAREST_INT), 0))]) * g[i];
  }
}

// ggml's vector expf (ARM optimized-routines' algorithm, as in ggml_v_expf for AVX2): the same
// operations lane by lane as the scalar ggml_expf in kernels_scalar.cpp, so the results are equal.
inline __m256 v_expf(__m256 x) {
  const __m256 r = _mm256_set1_ps(0x1.8p23f);
  const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
  const __m256 n = _mm256_sub_ps(z, r);
  const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f), _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
  const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
  const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1.0f))));
  const __m256 an = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
  const __m256 c = _mm256_cmp_ps(an, _mm256_set1_ps(126.f), _CMP_GT_OQ);
  const __m256 u = _mm256_mul_ps(b, b);
  const __m256 j = _mm256_fmadd_ps(
      _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                      _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
      u, _mm256_mul_ps(_mm256_set1_ps(0x1.ffffecp-1f), b));
  const __m256 normal = _mm256_fmadd_ps(j, k, k);
  if (!_mm256_movemask_ps(c)) return normal;
  const __m256i g = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
                                     _mm256_set1_epi32(static_cast<int>(0x82000000u)));
  const __m256 s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f000000)));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
  const __m256 d = _mm256_cmp_ps(an, _mm256_set1_ps(192.f), _CMP_GT_OQ);
  return _mm256_blendv_ps(normal, _mm256_blendv_ps(_mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1), _mm256_mul_ps(s1, s1), d), c);
}
// The SoftmaxFn definition (kernels.h), 8 cells at a time; partial groups go through a zeroed
// 8-float buffer so every lane sees the same operations as in the scalar version.
inline void softmax(float* s, int64_t lo, int64_t hi, float scale, bool round_f16) {
  const __m256 vs = _mm256_set1_ps(scale);
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  int64_t j = lo;
  for (; j + 8 <= hi + 1; j += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(s + j), vs);
    _mm256_storeu_ps(s + j, v);
    vmax = _mm256_max_ps(vmax, v);
  }
  alignas(32) float m8[8];
  _mm256_store_ps(m8, vmax);
  float mx = m8[0];
  for (int l = 1; l < 8; ++l) mx = mx < m8[l] ? m8[l] : mx;
  for (; j <= hi; ++j) {   // scalar tail of the scale and max
    s[j] *= scale;
    mx = mx < s[j] ? s[j] : mx;
  }
  const __m256 vmx = _mm256_set1_ps(mx);
  double sum = 0;
  alignas(32) float buf[8];
  for (int64_t j0 = lo / 8 * 8; j0 <= hi; j0 += 8) {   // groups aligned to cell 0, as ggml sums them
    const bool full = j0 >= lo && j0 + 7 <= hi;
    __m256 v;
    if (full) {
      v = v_expf(_mm256_sub_ps(_mm256_loadu_ps(s + j0), vmx));
      _mm256_storeu_ps(s + j0, v);
    } else {
      for (int l = 0; l < 8; ++l) buf[l] = (j0 + l >= lo && j0 + l <= hi) ? s[j0 + l] - mx : 0.f;
      _mm256_store_ps(buf, v_expf(_mm256_load_ps(buf)));
      for (int l = 0; l < 8; ++l) {
        if (j0 + l >= lo && j0 + l <= hi) s[j0 + l] = buf[l];
        else buf[l] = 0.f;
      }
      v = _mm256_load_ps(buf);
    }
    sum += static_cast<double>(hsum8(v));
  }
  const __m256 inv = _mm256_set1_ps(static_cast<float>(1.0 / sum));
  j = lo;
  for (; j + 8 <= hi + 1; j += 8) {
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(s + j), inv);
    if (round_f16) v = _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    _mm256_storeu_ps(s + j, v);
  }
  for (; j <= hi; ++j) {   // scalar tail
    const __m128 v = _mm_mul_ss(_mm_set_ss(s[j]), _mm256_castps256_ps128(inv));
    s[j] = _mm_cvtss_f32(round_f16 ? _mm_cvtph_ps(_mm_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT)) : v);
  }
}

// RoundF16Fn: vcvtps2ph (nearest even, as float_to_half) and back; scalar tail the same way.
inline void round_f16(const float* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT)));
  for (; i < n; ++i) dst[i] = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtps_ph(_mm_set_ss(src[i]), _MM_FROUND_TO_NEAREST_INT)));
}

// ---- 32-blocks against Q8_0 activations ----
// Activation scales and quant sums: the f32 copy of each block's d and the sum of its 32 quants
// (kernels.h), next to the blocks; qa is the 32-byte aligned copy of the quants.
struct XAux {
  const float* d;
  const int32_t* sum;
  const uint8_t* qa;   // 32-byte aligned copy of the quants, 32 per block
  XAux(const uint8_t* x, int64_t nb)
      : d(reinterpret_cast<const float*>(x + q8_0_aux_offset(nb))), sum(reinterpret_cast<const int32_t*>(d + nb)),
        qa(x + q8_0_qa_offset(nb)) {}
};
// fp16 scales of blocks a[0..7] to f32 lanes: lane l takes block Kl,
// packed in general-purpose registers (integer ports) rather than with vpinsrw / shuffles on the
// vector ports the dot products need. The empty asm keeps each value in a GPR: without it GCC's SLP
// vectorizer turns the packing into vector shuffles.
template <class B, int K0, int K1, int K2, int K3, int K4, int K5, int K6, int K7>
inline __m256 gather_scales(const B* a) {
  auto w = [&](int k) __attribute__((always_inline)) {
    uint64_t v = a[k].d;
    asm("" : "+r"(v));
    return v;
  };
  const uint64_t lo = w(K0) | w(K1) << 16 | w(K2) << 32 | w(K3) << 48;
  const uint64_t hi = w(K4) | w(K5) << 16 | w(K6) << 32 | w(K7) << 48;
  return _mm256_cvtph_ps(_mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo)));
}
template <class B>
inline __m256 scales8w(const B* a) { return gather_scales<B, 0, 1, 2, 3, 4, 5, 6, 7>(a); }   // d_w[k], blocks in order

// Q8_0 weights: signed bytes; the vpsignb pair moves the weight's sign onto x so one vpmaddubsw does
// w*x. tile<R, T>: R weight rows x T activation rows in registers, one accumulator per (row, token),
// so each weight block is loaded once per R*T products and each activation block once per R rows.
// Every (row, token) accumulates the same way whatever R and T are: blocks in order, one FMA of the
// scale product d_w*d_x into a single 8-lane accumulator, then hsum8. A token's result is therefore
// bit-identical alone (decode, matvec) or in a tile (prefill): cached and uncached prompts give the
// same logits. Eight blocks per outer step: their eight scale products are computed as one vector.
struct DotQ8_0 {
  // one row per pass for one token: the output layer is DRAM-bound and interleaved row streams
  // measured slower than one
  static constexpr int kRowsVec = 1;
  // prefill register tile: one weight row x 4 tokens measured best on Zen 2 (R x T in {1..4} x {2..8})
  static constexpr int kRows = 1, kToks = 4;

  template <int R, int T>
  static void tile(const uint8_t* const* w, const uint8_t* const* x, int64_t n, float* out) {
    const int64_t nb = n / QK;
    const block_q8_0* a[R];
    for (int r = 0; r < R; ++r) a[r] = reinterpret_cast<const block_q8_0*>(w[r]);
    const uint8_t* xq[T];   // aligned quants
    const float* xd[T];
    for (int t = 0; t < T; ++t) {
      const XAux aux(x[t], nb);
      xq[t] = aux.qa;
      xd[t] = aux.d;
    }
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    auto step = [&](int64_t i, auto scale) __attribute__((always_inline)) {
      __m256i wv[R], aw[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        wv[r] = load32(a[r][i].qs);
        aw[r] = _mm256_sign_epi8(wv[r], wv[r]);
      }
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const __m256i xv = _mm256_load_si256(reinterpret_cast<const __m256i*>(xq[t] + 32 * i));
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw[r], _mm256_sign_epi8(xv, wv[r])), ones);
          acc[r][t] = _mm256_fmadd_ps(scale(r, t), _mm256_cvtepi32_ps(p), acc[r][t]);
        }
      }
    };
    int64_t i = 0;
    alignas(32) float sc[R][T][8];
    for (; i + 8 <= nb; i += 8) {   // scale products of 8 blocks at once, broadcast from the stack
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m256 dw = scales8w(a[r] + i);
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) _mm256_store_ps(sc[r][t], _mm256_mul_ps(dw, _mm256_loadu_ps(xd[t] + i)));
      }
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) step(i + k, [&](int r, int t) { return _mm256_broadcast_ss(&sc[r][t][k]); });
    }
    for (; i < nb; ++i)   // tail: fewer than 8 blocks left; same products, computed one by one
      step(i, [&](int r, int t) { return _mm256_set1_ps(h2f(a[r][i].d) * xd[t][i]); });
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) out[r * T + t] = hsum8(acc[r][t]);
  }
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    float out;
    tile<1, 1>(&w, &x, n, &out);
    return out;
  }
};

// Q4_0 / Q5_0: two blocks per register. Weight values are unsigned bytes u (Q4_0 0..15, Q5_0 0..31)
// standing for u - 2^SH. A block pair unpacks to lo = [a values 0..15 | b values 0..15] and hi =
// [a 16..31 | b 16..31] (Q4_0: one 2x16-byte load, one shift, two masks); two vpmaddubsw against the
// activation's grouped copy (kernels.h) and one vpaddw give 8 int16 lanes per block. Per group of 8
// blocks, vphaddw + vpmaddwd per two pairs and one vphaddd leave one exact int32 sum per block
// (lanes: blocks 0, 2, 4, 6, 1, 3, 5, 7), 2^SH*sum(x) comes off in int, and one FMA of d_w*d_x (8
// lanes) adds the group to the (row, token) accumulator; hsum8 at the end. A partial last group
// only computes its pairs (the rest are zero). Against one block per register this is about a
// third fewer vector uops per block (Zen 2, Q4_0 640x2048 in L2: 14 -> 19 GB/s).
// The same operations for any tile shape or weight source (GGUF blocks, or a row expanded once into
// lo/hi bytes and lane-ordered f32 scales), so matvec and prefill rows stay bit-identical.
template <bool TWO>
inline void unpack_pair(const block_q4_0* a, __m256i& lo, __m256i& hi) {
  const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a[0].qs));
  const __m128i q1 = TWO ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(a[1].qs)) : _mm_setzero_si128();
  const __m256i q = _mm256_set_m128i(q1, q0), m4 = _mm256_set1_epi8(0x0F);
  lo = _mm256_and_si256(q, m4);
  hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
}
template <bool TWO>
inline void unpack_pair(const block_q5_0* a, __m256i& lo, __m256i& hi) {
  const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a[0].qs));
  const __m128i q1 = TWO ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(a[1].qs)) : _mm_setzero_si128();
  const __m256i q = _mm256_set_m128i(q1, q0), m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
  // 5th bits: both qh words in every 64-bit lane; lo's bytes select bytes 0-1 of the first block's
  // word (lane 0) or the second's (lane 1), hi's bytes 2-3; then one bit per byte
  const uint64_t h = uint64_t(load_u32(a[0].qh)) | (TWO ? uint64_t(load_u32(a[1].qh)) << 32 : 0);
  const __m256i hv = _mm256_set1_epi64x(static_cast<long long>(h));
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  const __m256i sel_lo = _mm256_set_epi64x(0x0505050505050505, 0x0404040404040404, 0x0101010101010101, 0);
  const __m256i sel_hi = _mm256_set_epi64x(0x0707070707070707, 0x0606060606060606, 0x0303030303030303, 0x0202020202020202);
  const __m256i bl = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(hv, sel_lo), bit), bit);
  const __m256i bh = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(hv, sel_hi), bit), bit);
  lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_and_si256(bl, b4));
  hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), _mm256_and_si256(bh, b4));
}
template <class B>
inline __m256 scales_lanes(const B* a) { return gather_scales<B, 0, 2, 4, 6, 1, 3, 5, 7>(a); }   // kQ8GroupLane order
// 8 int16 lanes per block of a pair: lo . x[first halves] + hi . x[second halves] (each lane a sum
// of 4 products, |.| <= 4*31*127 = 15748)
inline __m256i pair_dot(__m256i lo, __m256i hi, const uint8_t* xp) {
  const __m256i xa = _mm256_load_si256(reinterpret_cast<const __m256i*>(xp));
  const __m256i xb = _mm256_load_si256(reinterpret_cast<const __m256i*>(xp + 32));
  return _mm256_add_epi16(_mm256_maddubs_epi16(lo, xa), _mm256_maddubs_epi16(hi, xb));
}
// two pairs (blocks a, b and c, d) -> int32 [a a c c | b b d d]: vphaddw (sums of 8 products,
// <= 31496, no overflow), then vpmaddwd with ones
inline __m256i two_pairs(__m256i p0, __m256i p1) { return _mm256_madd_epi16(_mm256_hadd_epi16(p0, p1), _mm256_set1_epi16(1)); }

template <class B, int SH>
struct DotPair32 {
  // rows per pass for one token, measured on Zen 2 (4096x640 and 640x2048, variants called
  // round-robin in one process): 2 rows within 4 % of 3, 1 row 5-20 % slower; finishing each row
  // before the next (fewer live registers) 5-10 % slower
  static constexpr int kRowsVec = 3;
  static constexpr int kRows = 1, kToks = 4;
  static constexpr size_t kGroupBytes = 288;   // expanded group: 4 pairs x (lo, hi), 8 f32 scales

  // Weight sources: GGUF blocks (whole groups only), or expanded groups (zero padded)
  struct Packed {
    const B* a;
    void pair(int64_t g, int k, __m256i& lo, __m256i& hi) const { unpack_pair<true>(a + 8 * g + 2 * k, lo, hi); }
    __m256 scales(int64_t g) const { return scales_lanes(a + 8 * g); }
  };
  struct Tail {   // the last m < 8 blocks of GGUF rows (pairs k < (m + 1) / 2 only)
    const B* a;     // first block of the group
    int64_t m;
    void pair(int64_t, int k, __m256i& lo, __m256i& hi) const {
      if (2 * k + 1 < m) unpack_pair<true>(a + 2 * k, lo, hi);
      else unpack_pair<false>(a + 2 * k, lo, hi);
    }
    __m256 scales(int64_t) const {
      uint64_t lo = 0, hi = 0;
      for (int64_t k = 0; k < m; ++k) {
        const int lane = kQ8GroupLane[k];
        (lane < 4 ? lo : hi) |= uint64_t(a[k].d) << (16 * (lane % 4));
      }
      return _mm256_cvtph_ps(_mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo)));
    }
  };
  struct Expanded {
    const uint8_t* e;
    void pair(int64_t g, int k, __m256i& lo, __m256i& hi) const {
      lo = load32(e + kGroupBytes * g + 64 * k);
      hi = load32(e + kGroupBytes * g + 64 * k + 32);
    }
    __m256 scales(int64_t g) const { return _mm256_loadu_ps(reinterpret_cast<const float*>(e + kGroupBytes * g + 256)); }
  };
  static constexpr bool kExpand = true;
  // tokens per expanded tile: 8 measured best (Zen 2, 64/512 tokens on 2048x640 and 640x2048:
  // Q5_0 +10 % over 4; 6 is worse, as 16-token tiles then leave 4 tokens to the packed path)
  static constexpr int kToksExpanded = 8;
  static size_t expanded_bytes(int64_t n) { return static_cast<size_t>(q8_0_groups(n / QK)) * kGroupBytes; }
  // one group from a GGUF source (np pairs; the rest of the expanded group zero) -> dst
  template <class Src>
  static void expand_group(const Src& src, int64_t g, int np, uint8_t* dst) {
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
      if (k < np) src.pair(g, k, lo, hi);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 64 * k), lo);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 64 * k + 32), hi);
    }
    _mm256_storeu_ps(reinterpret_cast<float*>(dst + 256), src.scales(g));
  }
  static void expand(const uint8_t* w, int64_t n, uint8_t* dst) {
    const Packed src{reinterpret_cast<const B*>(w)};
    const int64_t nb = n / QK, ng = nb / 8, m = nb % 8;
    for (int64_t g = 0; g < ng; ++g) expand_group(src, g, 4, dst + kGroupBytes * g);
    if (m) expand_group(Tail{src.a + 8 * ng, m}, 0, static_cast<int>((m + 1) / 2), dst + kGroupBytes * ng);
  }

  // acc[r][t] += group g of rows src[r] against tokens' groups xg[t]; pairs np.. are zero (a last group)
  template <int R, int T, class Src>
  static inline __attribute__((always_inline)) void group(const Src* src, int64_t g, const uint8_t* const* xg,
                                                          __m256 (&acc)[R][T], int np = 4) {
    __m256i h[2][R][T];
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half)
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        __m256i lo0, hi0, lo1, hi1;
        if (2 * half >= np) {
          for (int t = 0; t < T; ++t) h[half][r][t] = _mm256_setzero_si256();
          continue;
        }
        src[r].pair(g, 2 * half, lo0, hi0);
        if (2 * half + 1 < np) src[r].pair(g, 2 * half + 1, lo1, hi1);
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const __m256i p1 = 2 * half + 1 < np ? pair_dot(lo1, hi1, xg[t] + 128 * half + 64) : _mm256_setzero_si256();
          h[half][r][t] = two_pairs(pair_dot(lo0, hi0, xg[t] + 128 * half), p1);
        }
      }
    __m256i off[T];
    __m256 dx[T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      off[t] = _mm256_slli_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(xg[t] + 288)), SH);
      dx[t] = _mm256_load_ps(reinterpret_cast<const float*>(xg[t] + 256));
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 dw = src[r].scales(g);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const __m256i s = _mm256_sub_epi32(_mm256_hadd_epi32(h[0][r][t], h[1][r][t]), off[t]);
        acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx[t]), _mm256_cvtepi32_ps(s), acc[r][t]);
      }
    }
  }
  template <int R, int T, class Src>
  static void tile_impl(const Src* src, const uint8_t* const* x, int64_t n, float* out) {
    const int64_t nb = n / QK;
    const uint8_t* xg[T];
    for (int t = 0; t < T; ++t) xg[t] = x[t] + q8_0_qg_offset(nb);
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    const int64_t ng = nb / 8, m = nb % 8;
    for (int64_t g = 0; g < ng; ++g) {
      group<R, T>(src, g, xg, acc);
      for (int t = 0; t < T; ++t) xg[t] += kQ8GroupBytes;
    }
    if (m) {   // the partial last group: its pairs only
      if constexpr (std::is_same_v<Src, Packed>) {
        Tail tail[R];
        for (int r = 0; r < R; ++r) tail[r] = Tail{src[r].a + 8 * ng, m};
        group<R, T>(tail, 0, xg, acc, static_cast<int>((m + 1) / 2));
      } else {
        group<R, T>(src, ng, xg, acc, static_cast<int>((m + 1) / 2));
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) out[r * T + t] = hsum8(acc[r][t]);
  }
  template <int R, int T>
  static void tile(const uint8_t* const* w, const uint8_t* const* x, int64_t n, float* out) {
    Packed src[R];
    for (int r = 0; r < R; ++r) src[r].a = reinterpret_cast<const B*>(w[r]);
    tile_impl<R, T>(src, x, n, out);
  }
  template <int T>
  static void tile_expanded(const uint8_t* e, const uint8_t* const* x, int64_t n, float* out) {
    const Expanded src{e};
    tile_impl<1, T>(&src, x, n, out);
  }
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    float out;
    tile<1, 1>(&w, &x, n, &out);
    return out;
  }
};
inline __m256i load_q8_0(const block_q8_0& b) { return load32(b.qs); }
inline __m256i load_q4_0(const block_q4_0& b) { return _mm256_sub_epi8(unpack_nibbles(b.qs), _mm256_set1_epi8(8)); }
inline __m256i load_q5_0(const block_q5_0& b) {
  // nibble | 0xF0 (= nibble - 16) where the 5th bit is clear, nibble where it is set
  const __m256i hi = _mm256_andnot_si256(bits_to_bytes(load_u32(b.qh)), _mm256_set1_epi8(static_cast<char>(0xF0)));
  return _mm256_or_si256(unpack_nibbles(b.qs), hi);
}
using DotQ4_0 = DotPair32<block_q4_0, 3>;
using DotQ5_0 = DotPair32<block_q5_0, 4>;

// Q4_1 / Q5_1: unsigned values . x  +  min * d_x * sum(x)  (sum from the activation aux).
template <class B, __m256i (*LOAD)(const B&)>
struct DotAsym32 {
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    const B* a = reinterpret_cast<const B*>(w);
    const block_q8_0* b = reinterpret_cast<const block_q8_0*>(x);
    const int64_t nb = n / QK;
    const XAux aux(x, nb);
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.f;
    const __m256i ones16 = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < nb; ++i) {
      const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(LOAD(a[i]), load32(b[i].qs)), ones16);
      const float dx = aux.d[i];
      acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * dx), _mm256_cvtepi32_ps(p), acc);
      summ += h2f(a[i].m) * dx * static_cast<float>(aux.sum[i]);
    }
    return hsum8(acc) + summ;
  }
};
inline __m256i load_q4_1(const block_q4_1& b) { return unpack_nibbles(b.qs); }
inline __m256i load_q5_1(const block_q5_1& b) {
  return _mm256_or_si256(unpack_nibbles(b.qs), _mm256_and_si256(bits_to_bytes(load_u32(b.qh)), _mm256_set1_epi8(0x10)));
}
using DotQ4_1 = DotAsym32<block_q4_1, load_q4_1>;
using DotQ5_1 = DotAsym32<block_q5_1, load_q5_1>;

// ---- K types against Q8_K ----
// sum_g mins[g/2] * bsums[g] with 8 mins and 16 bsums.
inline int mins_dot_bsums(const uint8_t mn[8], const int16_t* bsums) {
  const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bsums));
  const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bsums + 8));
  const __m128i pairs = _mm_hadd_epi16(b0, b1);   // bsums[2j] + bsums[2j+1], j = 0..7
  const __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn)));
  __m128i s = _mm_madd_epi16(pairs, m16);
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}
// K types: tile<1, T> unpacks a weight super-block (scales, nibbles, high bits) once for T tokens.
// Per (row, token): int sums per super-block, one FMA of d_w*d_x into one accumulator, the mins
// term (Q4_K / Q5_K) in a scalar accumulator, then hsum8 - mins: the same for every T.
template <bool FIVE, class B>
struct DotQ45K {
  static constexpr int kRowsVec = 1, kRows = 1, kToks = 4;
  template <int R, int T>
  static void tile(const uint8_t* const* w, const uint8_t* const* x, int64_t n, float* out) {
    static_assert(R == 1, "K-type tiles are one weight row wide");
    const B* a = reinterpret_cast<const B*>(w[0]);
    const block_q8_K* b[T];
    for (int t = 0; t < T; ++t) b[t] = reinterpret_cast<const block_q8_K*>(x[t]);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[T];
    float accm[T];
    for (int t = 0; t < T; ++t) { acc[t] = _mm256_setzero_ps(); accm[t] = 0.f; }
    for (int64_t i = 0; i < n / QK_K; ++i) {
      uint8_t sc[8], mn[8];
      unpack_k4_scales(a[i].scales, sc, mn);
      const float dw = h2f(a[i].d), dmw = h2f(a[i].dmin);
      for (int t = 0; t < T; ++t) accm[t] += dmw * b[t][i].d * static_cast<float>(mins_dot_bsums(mn, b[t][i].bsums));
      // the 8 scales as int16 in both 128-bit lanes; one vpshufb broadcasts scale k (word k)
      const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc))));
      __m256i sumi[T];
      for (int t = 0; t < T; ++t) sumi[t] = _mm256_setzero_si256();
      __m256i hbits;
      if constexpr (FIVE) hbits = load32(a[i].qh);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const __m256i q = load32(a[i].qs + 32 * j);
        __m256i lo = _mm256_and_si256(q, m4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if constexpr (FIVE) {
          const __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j), _mm256_set1_epi8(1));
          const __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j + 1), _mm256_set1_epi8(1));
          lo = _mm256_or_si256(lo, _mm256_slli_epi16(h0, 4));
          hi = _mm256_or_si256(hi, _mm256_slli_epi16(h1, 4));
        }
        const __m256i s0 = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16(static_cast<short>(((4 * j + 1) << 8) | (4 * j))));
        const __m256i s1 = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16(static_cast<short>(((4 * j + 3) << 8) | (4 * j + 2))));
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const __m256i p0 = _mm256_madd_epi16(dot_u8_i16(lo, load32(b[t][i].qs + 64 * j)), s0);
          const __m256i p1 = _mm256_madd_epi16(dot_u8_i16(hi, load32(b[t][i].qs + 64 * j + 32)), s1);
          sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(p0, p1));
        }
      }
      for (int t = 0; t < T; ++t) acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * b[t][i].d), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
    }
    for (int t = 0; t < T; ++t) out[t] = hsum8(acc[t]) - accm[t];
  }
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    float out;
    tile<1, 1>(&w, &x, n, &out);
    return out;
  }
};
using DotQ4_K = DotQ45K<false, block_q4_K>;
using DotQ5_K = DotQ45K<true, block_q5_K>;

struct DotQ6_K {
  static constexpr int kRowsVec = 1, kRows = 1, kToks = 4;
  template <int R, int T>
  static void tile(const uint8_t* const* w, const uint8_t* const* x, int64_t n, float* out) {
    static_assert(R == 1, "K-type tiles are one weight row wide");
    const block_q6_K* a = reinterpret_cast<const block_q6_K*>(w[0]);
    const block_q8_K* b[T];
    for (int t = 0; t < T; ++t) b[t] = reinterpret_cast<const block_q8_K*>(x[t]);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; ++i) {
      // values are u - 32 with u in 0..63: sum(u*x) - 32*sum(x), sum(x) per 16 from bsums
      __m256i sumi[T];
      for (int t = 0; t < T; ++t) sumi[t] = _mm256_setzero_si256();
#pragma GCC unroll 2
      for (int j = 0; j < 2; ++j) {
        const __m256i l0 = load32(a[i].ql + 64 * j), l1 = load32(a[i].ql + 64 * j + 32);
        const __m256i h = load32(a[i].qh + 32 * j);
#pragma GCC unroll 4
        for (int s = 0; s < 4; ++s) {
          const __m256i l = s & 1 ? l1 : l0;
          const __m256i lo4 = s < 2 ? _mm256_and_si256(l, m4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
          const __m256i u = _mm256_or_si256(lo4, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * s), m3), 4));
          const int g = 8 * j + 2 * s;   // two sub-blocks of 16: one per 128-bit lane
          const __m256i scv = _mm256_set_m128i(_mm_set1_epi16(a[i].scales[g + 1]), _mm_set1_epi16(a[i].scales[g]));
#pragma GCC unroll 8
          for (int t = 0; t < T; ++t) {
            const __m256i p = _mm256_maddubs_epi16(u, load32(b[t][i].qs + 128 * j + 32 * s));
            sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, scv));
          }
        }
      }
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a[i].scales)));
      const float dw = h2f(a[i].d);
      for (int t = 0; t < T; ++t) {
        const __m256i corr = _mm256_madd_epi16(sc16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[t][i].bsums)));
        sumi[t] = _mm256_sub_epi32(sumi[t], _mm256_slli_epi32(corr, 5));
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * b[t][i].d), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) out[t] = hsum8(acc[t]);
  }
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    float out;
    tile<1, 1>(&w, &x, n, &out);
    return out;
  }
};

}  // namespace
}  // namespace x86
}  // namespace kern
}  // namespace ee
