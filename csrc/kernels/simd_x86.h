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
inline __m256i bits_to_bytes(const uint8_t* qh4) {
  int32_t qh;
  std::memcpy(&qh, qh4, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(qh), shuf);
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
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
// Weight values come as unsigned bytes u (< 128) with value u - OFF (OFF = 8 for Q4_0, 16 for
// Q5_0, 0 for Q4_1 / Q5_1), so one vpmaddubsw does u*x and the offset comes from the activation's
// precomputed quant sums: sum((u-OFF)*x) = sum(u*x) - OFF*sum(x). For whole groups of 8 blocks the
// OFF*sum(x) terms go into the accumulator in float, 8 blocks per FMA (lane k: d_w*d_x*OFF*sum(x)
// of block k); in the tail they are taken off in int per block (OFF/8*sum(x) in each of 8 lanes). Q8_0 weights are signed: the
// vpsignb pair moves the sign onto x. Scales: the activation's f32 copy (aux) times the weight's
// fp16. Eight blocks per outer step: their eight scale products are computed as one vector.
struct XAux {
  const float* d;
  const int32_t* sum;
  const uint8_t* qa;   // 32-byte aligned copy of the quants, 32 per block
  XAux(const uint8_t* x, int64_t nb)
      : d(reinterpret_cast<const float*>(x + q8_0_aux_offset(nb))), sum(reinterpret_cast<const int32_t*>(d + nb)),
        qa(x + q8_0_qa_offset(nb)) {}
};
template <class B>
inline __m256 scales8w(const B* a) {   // d_w[k] of 8 consecutive blocks, widened to f32
  // packed in general-purpose registers (integer ports) rather than with 8 vpinsrw on the vector
  // ports the dot products need: Q4_0 matvec +8 % (with 3 rows per pass)
  const uint64_t lo = uint64_t(a[0].d) | uint64_t(a[1].d) << 16 | uint64_t(a[2].d) << 32 | uint64_t(a[3].d) << 48;
  const uint64_t hi = uint64_t(a[4].d) | uint64_t(a[5].d) << 16 | uint64_t(a[6].d) << 32 | uint64_t(a[7].d) << 48;
  return _mm256_cvtph_ps(_mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo)));
}
// tile<R, T>: R weight rows x T activation rows in registers, one accumulator per (row, token), so
// each weight block is unpacked once per R*T products and each activation block loaded once per R
// rows. Every (row, token) accumulates the same way whatever R and T are: blocks in order, one FMA
// of the scale product d_w*d_x into a single 8-lane accumulator, then hsum8. A token's result is
// therefore bit-identical alone (decode, matvec) or in a tile (prefill): cached and uncached
// prompts give the same logits. R*T + R (+ R for Q8_0's |w|) + 3 registers must fit in 16.
template <class B, __m256i (*LOAD)(const B&), int OFF>
struct DotOff32 {
  // rows per pass for one token (decode): three rows overlap better for the nibble types (Zen 2,
  // 4096x640 in L3: Q4_0 13.3 -> 14.4 GB/s); for Q8_0 (the DRAM-bound output layer) interleaved
  // row streams measured slower than one
  static constexpr int kRowsVec = OFF < 0 ? 1 : 3;
  // prefill register tile: one weight row x 4 tokens measured best on Zen 2 (R x T in
  // {1..4} x {2..8}: 42-60 GFLOP/s; the per block-token maddubs/madd/cvt/fma bound it, not the unpack)
  static constexpr int kRows = 1, kToks = 4;

  // Where a tile reads weight blocks from: the GGUF blocks themselves (decode), or a row expanded
  // once into 32 value bytes + an f32 scale per block (prefill, kExpand: the unpack is then paid
  // once per 16 tokens instead of once per 4). Both give the same bytes and the same scales.
  struct Packed {
    const B* a;
    __m256i load(int64_t i) const { return LOAD(a[i]); }
    __m256 scales8(int64_t i) const { return scales8w(a + i); }
    float scale(int64_t i) const { return h2f(a[i].d); }
  };
  struct Expanded {
    const uint8_t* u;   // [nb][32] values as LOAD gives them
    const float* d;     // [nb] scales
    __m256i load(int64_t i) const { return load32(u + 32 * i); }
    __m256 scales8(int64_t i) const { return _mm256_loadu_ps(d + i); }
    float scale(int64_t i) const { return d[i]; }
  };
  static constexpr bool kExpand = OFF > 0;
  static constexpr int kToksExpanded = 4;
  static size_t expanded_bytes(int64_t n) { return static_cast<size_t>(n / QK) * 36; }
  static void expand(const uint8_t* w, int64_t n, uint8_t* dst) {
    const B* a = reinterpret_cast<const B*>(w);
    const int64_t nb = n / QK;
    float* d = reinterpret_cast<float*>(dst + 32 * nb);
    for (int64_t i = 0; i < nb; ++i) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32 * i), LOAD(a[i]));
      d[i] = h2f(a[i].d);
    }
  }

  template <int R, int T, class Src>
  static void tile_impl(const Src* src, const uint8_t* const* x, int64_t n, float* out) {
    const int64_t nb = n / QK;
    const uint8_t* xq[T];   // aligned quants
    const float* xd[T];
    const int32_t* xs[T];
    for (int t = 0; t < T; ++t) {
      const XAux aux(x[t], nb);
      xq[t] = aux.qa;
      xd[t] = aux.d;
      xs[t] = aux.sum;
    }
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    // in_group: the block's offset went into acc with its 8-block group; else it is taken off in int here
    auto step = [&](int64_t i, auto scale, bool in_group) __attribute__((always_inline)) {
      __m256i wv[R], aw[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        wv[r] = src[r].load(i);
        if constexpr (OFF < 0) aw[r] = _mm256_sign_epi8(wv[r], wv[r]);
      }
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const __m256i xv = _mm256_load_si256(reinterpret_cast<const __m256i*>(xq[t] + 32 * i));
        __m256i off = _mm256_setzero_si256();
        if constexpr (OFF > 0) if (!in_group) off = _mm256_set1_epi32(xs[t][i] * (OFF / 8));
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          __m256i p;
          if constexpr (OFF < 0) {
            p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw[r], _mm256_sign_epi8(xv, wv[r])), ones);
          } else {
            p = _mm256_madd_epi16(_mm256_maddubs_epi16(wv[r], xv), ones);
            if constexpr (OFF > 0) if (!in_group) p = _mm256_sub_epi32(p, off);
          }
          acc[r][t] = _mm256_fmadd_ps(scale(r, t), _mm256_cvtepi32_ps(p), acc[r][t]);
        }
      }
    };
    int64_t i = 0;
    alignas(32) float sc[R][T][8];
    for (; i + 8 <= nb; i += 8) {   // scale products of 8 blocks at once, broadcast from the stack
      __m256 osum[T];   // OFF * sum(x) of the 8 blocks, per token (exact in f32)
      if constexpr (OFF > 0)
        for (int t = 0; t < T; ++t)
          osum[t] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs[t] + i))),
                                  _mm256_set1_ps(static_cast<float>(OFF)));
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m256 dw = src[r].scales8(i);
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const __m256 s8 = _mm256_mul_ps(dw, _mm256_loadu_ps(xd[t] + i));
          _mm256_store_ps(sc[r][t], s8);
          // the 8 blocks' offsets, one per lane: acc -= d_w*d_x * OFF*sum(x)
          if constexpr (OFF > 0) acc[r][t] = _mm256_fnmadd_ps(s8, osum[t], acc[r][t]);
        }
      }
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) step(i + k, [&](int r, int t) { return _mm256_broadcast_ss(&sc[r][t][k]); }, true);
    }
    for (; i < nb; ++i)   // tail: fewer than 8 blocks left; same products, computed one by one
      step(i, [&](int r, int t) { return _mm256_set1_ps(src[r].scale(i) * xd[t][i]); }, false);
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
    const Expanded src{e, reinterpret_cast<const float*>(e + 32 * (n / QK))};
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
inline __m256i load_u4_0(const block_q4_0& b) { return unpack_nibbles(b.qs); }
inline __m256i load_q5_0(const block_q5_0& b) {
  // nibble | 0xF0 (= nibble - 16) where the 5th bit is clear, nibble where it is set
  const __m256i hi = _mm256_andnot_si256(bits_to_bytes(b.qh), _mm256_set1_epi8(static_cast<char>(0xF0)));
  return _mm256_or_si256(unpack_nibbles(b.qs), hi);
}
inline __m256i load_u5_0(const block_q5_0& b) {   // unsigned 0..31
  return _mm256_or_si256(unpack_nibbles(b.qs), _mm256_and_si256(bits_to_bytes(b.qh), _mm256_set1_epi8(0x10)));
}
using DotQ8_0 = DotOff32<block_q8_0, load_q8_0, -1>;
using DotQ4_0 = DotOff32<block_q4_0, load_u4_0, 8>;
using DotQ5_0 = DotOff32<block_q5_0, load_u5_0, 16>;

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
  return _mm256_or_si256(unpack_nibbles(b.qs), _mm256_and_si256(bits_to_bytes(b.qh), _mm256_set1_epi8(0x10)));
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
