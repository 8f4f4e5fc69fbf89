// AVX-512 (F/BW/VL/DQ) + VNNI table (Ice Lake, Zen 4 and later). Two 32-blocks per 512-bit register,
// VPDPBUSD (u8 x s8 -> s32) for the dot products; types without a kernel here use the AVX2 ones.
// The same source is compiled on SIMDe by csrc/tests/test_avx512_emulated.cpp (EE_X86_SIMDE), so it
// is tested against scalar even on CPUs without AVX-512.
#include "kernels/kernels.h"
#include "kernels/simd_x86.h"
#include "kernels/tile.h"

// GCC 12 flags its own _mm512_cast*256*512 helpers (undefined upper half by design)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#ifndef EE_AVX512_TABLE
#define EE_AVX512_TABLE table_avx512
#endif

namespace ee {
namespace kern {
namespace x86 {
namespace {

// s8 . s8 over 64 bytes into 16 int32 lanes: |a| as unsigned, sign of a moved onto b.
inline __m512i dp_s8(__m512i acc, __m512i a, __m512i b) {
  const auto neg = _mm512_movepi8_mask(a);
  const __m512i sb = _mm512_mask_sub_epi8(b, neg, _mm512_setzero_si512(), b);
  return _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(a), sb);
}
inline __m512i join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }
// Written with 256-bit halves where SIMDe 0.7 (the emulated test build) lacks the 512-bit form;
// these run once per row or per super-block.
inline float hsum16(__m512 v) {
  return hsum8(_mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}
inline int hsum16_i32(__m512i v) { return hsum_i32x8(_mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1))); }
inline __m512 cvt_ps(__m512i v) {
#if defined(EE_X86_SIMDE)
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_cvtepi32_ps(_mm512_castsi512_si256(v))),
                            _mm256_cvtepi32_ps(_mm512_extracti64x4_epi64(v, 1)), 1);
#else
  return _mm512_cvtepi32_ps(v);
#endif
}
inline __m512 scales2(float s0, float s1) {   // lanes 0-7: s0, lanes 8-15: s1
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(s0)), _mm256_set1_ps(s1), 1);
}

template <class B, __m256i (*LOAD)(const B&)>
struct DotSym32x2 {
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    const B* a = reinterpret_cast<const B*>(w);
    const block_q8_0* b = reinterpret_cast<const block_q8_0*>(x);
    const int64_t nb = n / QK;
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
      const __m512i wv = join(LOAD(a[i]), LOAD(a[i + 1]));
      const __m512i xv = join(load32(b[i].qs), load32(b[i + 1].qs));
      const __m512i p = dp_s8(_mm512_setzero_si512(), wv, xv);
      acc = _mm512_fmadd_ps(cvt_ps(p), scales2(h2f(a[i].d) * h2f(b[i].d), h2f(a[i + 1].d) * h2f(b[i + 1].d)), acc);
    }
    float s = hsum16(acc);
    for (; i < nb; ++i) {   // odd block count: one-block tail with 256-bit VNNI
      const __m256i wv = LOAD(a[i]);
      const __m256i sx = _mm256_sign_epi8(load32(b[i].qs), wv);
      const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(wv, wv), sx);
      s += h2f(a[i].d) * h2f(b[i].d) * static_cast<float>(hsum_i32x8(p));
    }
    return s;
  }
};
using DotQ8_0v = DotSym32x2<block_q8_0, load_q8_0>;
using DotQ4_0v = DotSym32x2<block_q4_0, load_q4_0>;
using DotQ5_0v = DotSym32x2<block_q5_0, load_q5_0>;

// Q4_K: 64 values (two sub-blocks) per VPDPBUSD; nibbles are already unsigned.
struct DotQ4_Kv {
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    const block_q4_K* a = reinterpret_cast<const block_q4_K*>(w);
    const block_q8_K* b = reinterpret_cast<const block_q8_K*>(x);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m512 acc = _mm512_setzero_ps();
    float accm = 0.f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
      uint8_t sc[8], mn[8];
      unpack_k4_scales(a[i].scales, sc, mn);
      accm += h2f(a[i].dmin) * b[i].d * static_cast<float>(mins_dot_bsums(mn, b[i].bsums));
      __m512i sumi = _mm512_setzero_si512();
      for (int j = 0; j < 4; ++j) {
        const __m256i q = load32(a[i].qs + 32 * j);
        const __m512i u = join(_mm256_and_si256(q, m4), _mm256_and_si256(_mm256_srli_epi16(q, 4), m4));
        const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, _mm512_loadu_si512(b[i].qs + 64 * j));
        // per-lane scale: lanes 0-7 -> sub-block 2j, 8-15 -> 2j+1
        const __m512i scv = join(_mm256_set1_epi32(sc[2 * j]), _mm256_set1_epi32(sc[2 * j + 1]));
        sumi = _mm512_add_epi32(sumi, _mm512_mullo_epi32(p, scv));
      }
      acc = _mm512_fmadd_ps(_mm512_set1_ps(h2f(a[i].d) * b[i].d), cvt_ps(sumi), acc);
    }
    return hsum16(acc) - accm;
  }
};

// Q6_K: u in 0..63 (value u - 32): sum(u*x) with VPDPBUSD, minus 32 * sum(x) from the bsums.
struct DotQ6_Kv {
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    const block_q6_K* a = reinterpret_cast<const block_q6_K*>(w);
    const block_q8_K* b = reinterpret_cast<const block_q8_K*>(x);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    float sum = 0.f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a[i].scales)));
      const __m256i corr = _mm256_madd_epi16(sc16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].bsums)));
      // scale of lane k of a 64-value product: group (k / 4)
      const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a[i].scales));
      const __m512i sc32 = join(_mm256_cvtepi8_epi32(sc8), _mm256_cvtepi8_epi32(_mm_srli_si128(sc8, 8)));
      __m512i sumi = _mm512_setzero_si512();
      for (int j = 0; j < 2; ++j) {
        const __m256i l0 = load32(a[i].ql + 64 * j), l1 = load32(a[i].ql + 64 * j + 32);
        const __m256i h = load32(a[i].qh + 32 * j);
        const __m256i u0 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
        const __m256i u1 = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3), 4));
        const __m256i u2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4));
        const __m256i u3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3), 4));
        for (int half = 0; half < 2; ++half) {
          const __m512i u = half ? join(u2, u3) : join(u0, u1);
          const int g0 = 8 * j + 4 * half;   // first of the 4 groups of 16 in these 64 values
          const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, _mm512_loadu_si512(b[i].qs + 128 * j + 64 * half));
          const __m512i idx = _mm512_set_epi32(g0 + 3, g0 + 3, g0 + 3, g0 + 3, g0 + 2, g0 + 2, g0 + 2, g0 + 2,
                                               g0 + 1, g0 + 1, g0 + 1, g0 + 1, g0, g0, g0, g0);
          sumi = _mm512_add_epi32(sumi, _mm512_mullo_epi32(p, _mm512_permutexvar_epi32(idx, sc32)));
        }
      }
      const int total = hsum16_i32(sumi) - 32 * hsum_i32x8(corr);
      sum += h2f(a[i].d) * b[i].d * static_cast<float>(total);
    }
    return sum;
  }
};

}  // namespace
}  // namespace x86

const KernelTable& EE_AVX512_TABLE() {
  static const KernelTable t = [] {
    KernelTable k = table_avx2();
    k.isa = Isa::Avx512;
    for (bool& b : k.native) b = false;
    k.set(GgmlType::Q8_0, mat_rows<x86::DotQ8_0v>);
    k.set(GgmlType::Q4_0, mat_rows<x86::DotQ4_0v>);
    k.set(GgmlType::Q5_0, mat_rows<x86::DotQ5_0v>);
    k.set(GgmlType::Q4_K, mat_rows<x86::DotQ4_Kv>);
    k.set(GgmlType::Q6_K, mat_rows<x86::DotQ6_Kv>);
    return k;
  }();
  return t;
}

}  // namespace kern
}  // namespace ee
