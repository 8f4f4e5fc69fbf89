// Internal ARM NEON kernels, shared by kernels_neon.cpp (aarch64 baseline and armv7 -mfpu=neon)
// and kernels_dotprod.cpp (armv8.2-a+dotprod). Everything is written against one primitive,
//   int32x4_t DOT::dot16(int8x16_t a, int8x16_t b)   // 4 partial sums of a[i]*b[i]
// which is vmull/vmlal + pairwise add on plain NEON and one SDOT with dotprod.
#pragma once
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/tile.h"
#include "quant/blocks.h"

namespace ee {
namespace kern {
namespace neon {
// Internal linkage on purpose: every ISA file gets its own copy compiled with its own flags, so the
// linker can never hand an AVX-512 (or dotprod) instantiation to a baseline caller.
namespace {

inline float h2f(uint16_t h) {
#if defined(__aarch64__)
  __fp16 f;
  std::memcpy(&f, &h, 2);
  return static_cast<float>(f);
#else
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);   // vfpv4 half conversion
#endif
}
inline int32_t hsum_s32(int32x4_t v) {
#if defined(__aarch64__)
  return vaddvq_s32(v);
#else
  const int32x2_t s = vadd_s32(vget_low_s32(v), vget_high_s32(v));
  return vget_lane_s32(vpadd_s32(s, s), 0);
#endif
}
inline float hsum_f32(float32x4_t v) {
#if defined(__aarch64__)
  return vaddvq_f32(v);
#else
  const float32x2_t s = vadd_f32(vget_low_f32(v), vget_high_f32(v));
  return vget_lane_f32(vpadd_f32(s, s), 0);
#endif
}
inline float32x4_t fma_f32(float32x4_t acc, float32x4_t a, float32x4_t b) {
#if defined(__aarch64__)
  return vfmaq_f32(acc, a, b);
#else
  return vmlaq_f32(acc, a, b);
#endif
}

// Plain NEON: widening multiplies, products of int8 (activations are in [-127, 127]) fit int16 pairs.
struct DotMull {
  static inline int32x4_t dot16(int8x16_t a, int8x16_t b) {
    int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    p = vmlal_s8(p, vget_high_s8(a), vget_high_s8(b));
    return vpaddlq_s16(p);
  }
};

inline int8x16_t ld8(const int8_t* p) { return vld1q_s8(p); }
inline int8x16_t ld8(const uint8_t* p) { return vreinterpretq_s8_u8(vld1q_u8(p)); }

// ---- float rows (F32 / F16 weights, the attention's f16 KV cache): 4-wide body, scalar tail ----
template <class T, float32x4_t (*LD)(const T*), float (*CVT)(T)>
struct DotFloat4 {
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    const T* a = reinterpret_cast<const T*>(w);
    const float* b = reinterpret_cast<const float*>(x);
    float32x4_t acc0 = vdupq_n_f32(0.f), acc1 = vdupq_n_f32(0.f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      acc0 = fma_f32(acc0, LD(a + i), vld1q_f32(b + i));
      acc1 = fma_f32(acc1, LD(a + i + 4), vld1q_f32(b + i + 4));
    }
    for (; i + 4 <= n; i += 4) acc0 = fma_f32(acc0, LD(a + i), vld1q_f32(b + i));
    float s = hsum_f32(vaddq_f32(acc0, acc1));
    for (; i < n; ++i) s += CVT(a[i]) * b[i];   // scalar tail
    return s;
  }
  // out[h][i] = sum_j p[h][j] * V[j][i], head by head, 16 outputs in four accumulators per pass;
  // each output lane sums over j in order.
  static void mix(const uint8_t* V, size_t row_bytes, int64_t j0, int64_t j1, int64_t n, const float* p, int64_t p_stride,
                  int64_t n_p, float* out, int64_t out_stride) {
    for (int64_t h = 0; h < n_p; ++h) {
      const float* ph = p + h * p_stride;
      float* o = out + h * out_stride;
      int64_t i = 0;
      for (; i + 16 <= n; i += 16) {
        float32x4_t a0 = vdupq_n_f32(0.f), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t j = j0; j < j1; ++j) {
          const T* v = reinterpret_cast<const T*>(V + static_cast<size_t>(j) * row_bytes) + i;
          const float32x4_t pj = vdupq_n_f32(ph[j]);
          a0 = fma_f32(a0, pj, LD(v));
          a1 = fma_f32(a1, pj, LD(v + 4));
          a2 = fma_f32(a2, pj, LD(v + 8));
          a3 = fma_f32(a3, pj, LD(v + 12));
        }
        vst1q_f32(o + i, a0); vst1q_f32(o + i + 4, a1); vst1q_f32(o + i + 8, a2); vst1q_f32(o + i + 12, a3);
      }
      for (; i < n; ++i) {   // scalar tail
        float sum = 0.f;
        for (int64_t j = j0; j < j1; ++j) sum += ph[j] * CVT(reinterpret_cast<const T*>(V + static_cast<size_t>(j) * row_bytes)[i]);
        o[i] = sum;
      }
    }
  }
};
inline float32x4_t ld_f32(const float* p) { return vld1q_f32(p); }
inline float32x4_t ld_f16(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
inline float id_f32(float f) { return f; }
using DotF32 = DotFloat4<float, ld_f32, id_f32>;
using DotF16 = DotFloat4<uint16_t, ld_f16, h2f>;

// ---- 32-blocks against Q8_0: LOAD gives the 32 signed weight values as two int8x16 ----
template <class DOT, class B, void (*LOAD)(const B&, int8x16_t&, int8x16_t&)>
struct DotSym32 {
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    const B* a = reinterpret_cast<const B*>(w);
    const block_q8_0* b = reinterpret_cast<const block_q8_0*>(x);
    const int64_t nb = n / QK;
    float32x4_t acc0 = vdupq_n_f32(0.f), acc1 = vdupq_n_f32(0.f);
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
      int8x16_t w0, w1, v0, v1;
      LOAD(a[i], w0, w1);
      LOAD(a[i + 1], v0, v1);
      const int32x4_t p0 = vaddq_s32(DOT::dot16(w0, ld8(b[i].qs)), DOT::dot16(w1, ld8(b[i].qs + 16)));
      const int32x4_t p1 = vaddq_s32(DOT::dot16(v0, ld8(b[i + 1].qs)), DOT::dot16(v1, ld8(b[i + 1].qs + 16)));
      acc0 = fma_f32(acc0, vcvtq_f32_s32(p0), vdupq_n_f32(h2f(a[i].d) * h2f(b[i].d)));
      acc1 = fma_f32(acc1, vcvtq_f32_s32(p1), vdupq_n_f32(h2f(a[i + 1].d) * h2f(b[i + 1].d)));
    }
    for (; i < nb; ++i) {   // odd block count: one-block tail
      int8x16_t w0, w1;
      LOAD(a[i], w0, w1);
      const int32x4_t p0 = vaddq_s32(DOT::dot16(w0, ld8(b[i].qs)), DOT::dot16(w1, ld8(b[i].qs + 16)));
      acc0 = fma_f32(acc0, vcvtq_f32_s32(p0), vdupq_n_f32(h2f(a[i].d) * h2f(b[i].d)));
    }
    return hsum_f32(vaddq_f32(acc0, acc1));
  }
};
inline void load_q8_0(const block_q8_0& b, int8x16_t& w0, int8x16_t& w1) { w0 = ld8(b.qs); w1 = ld8(b.qs + 16); }
inline void load_q4_0(const block_q4_0& b, int8x16_t& w0, int8x16_t& w1) {
  const uint8x16_t q = vld1q_u8(b.qs);
  const int8x16_t eight = vdupq_n_s8(8);
  w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), eight);
  w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
}
// 16 bytes, 0xFF where bit (base + i) of qh is set.
inline uint8x16_t bits16(uint32_t qh, int base) {
  static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t v = vcombine_u8(vdup_n_u8(static_cast<uint8_t>(qh >> base)), vdup_n_u8(static_cast<uint8_t>(qh >> (base + 8))));
  return vtstq_u8(v, vld1q_u8(kBit));
}
inline void load_q5_0(const block_q5_0& b, int8x16_t& w0, int8x16_t& w1) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  const uint8x16_t q = vld1q_u8(b.qs), f0 = vdupq_n_u8(0xF0);
  // nibble | 0xF0 (= nibble - 16) where the 5th bit is clear, nibble where it is set
  w0 = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(q, vdupq_n_u8(0x0F)), vbicq_u8(f0, bits16(qh, 0))));
  w1 = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(q, 4), vbicq_u8(f0, bits16(qh, 16))));
}
template <class DOT> using DotQ8_0 = DotSym32<DOT, block_q8_0, load_q8_0>;
template <class DOT> using DotQ4_0 = DotSym32<DOT, block_q4_0, load_q4_0>;
template <class DOT> using DotQ5_0 = DotSym32<DOT, block_q5_0, load_q5_0>;

// Q4_1 / Q5_1: unsigned values (< 32, fine as int8) . x  +  min * sum(x)
template <class DOT, class B, void (*LOAD)(const B&, int8x16_t&, int8x16_t&)>
struct DotAsym32 {
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    const B* a = reinterpret_cast<const B*>(w);
    const block_q8_0* b = reinterpret_cast<const block_q8_0*>(x);
    float32x4_t acc = vdupq_n_f32(0.f);
    float summ = 0.f;
    const int8x16_t ones = vdupq_n_s8(1);
    for (int64_t i = 0; i < n / QK; ++i) {
      int8x16_t w0, w1;
      LOAD(a[i], w0, w1);
      const int8x16_t x0 = ld8(b[i].qs), x1 = ld8(b[i].qs + 16);
      const int32x4_t p = vaddq_s32(DOT::dot16(w0, x0), DOT::dot16(w1, x1));
      const float dx = h2f(b[i].d);
      acc = fma_f32(acc, vcvtq_f32_s32(p), vdupq_n_f32(h2f(a[i].d) * dx));
      summ += h2f(a[i].m) * dx * static_cast<float>(hsum_s32(vaddq_s32(DOT::dot16(ones, x0), DOT::dot16(ones, x1))));
    }
    return hsum_f32(acc) + summ;
  }
};
inline void load_q4_1(const block_q4_1& b, int8x16_t& w0, int8x16_t& w1) {
  const uint8x16_t q = vld1q_u8(b.qs);
  w0 = vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F)));
  w1 = vreinterpretq_s8_u8(vshrq_n_u8(q, 4));
}
inline void load_q5_1(const block_q5_1& b, int8x16_t& w0, int8x16_t& w1) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  const uint8x16_t q = vld1q_u8(b.qs), h = vdupq_n_u8(0x10);
  w0 = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(q, vdupq_n_u8(0x0F)), vandq_u8(h, bits16(qh, 0))));
  w1 = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(q, 4), vandq_u8(h, bits16(qh, 16))));
}
template <class DOT> using DotQ4_1 = DotAsym32<DOT, block_q4_1, load_q4_1>;
template <class DOT> using DotQ5_1 = DotAsym32<DOT, block_q5_1, load_q5_1>;

// ---- K types against Q8_K ----
inline int32_t mins_dot_bsums(const uint8_t mn[8], const int16_t* bsums) {
  const int16x8_t b0 = vld1q_s16(bsums), b1 = vld1q_s16(bsums + 8);
#if defined(__aarch64__)
  const int16x8_t pairs = vpaddq_s16(b0, b1);
#else
  const int16x8_t pairs = vcombine_s16(vpadd_s16(vget_low_s16(b0), vget_high_s16(b0)), vpadd_s16(vget_low_s16(b1), vget_high_s16(b1)));
#endif
  const int16x8_t m16 = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mn)));
  int32x4_t s = vmull_s16(vget_low_s16(pairs), vget_low_s16(m16));
  s = vmlal_s16(s, vget_high_s16(pairs), vget_high_s16(m16));
  return hsum_s32(s);
}
template <class DOT, bool FIVE, class B>
struct DotQ45K {
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    const B* a = reinterpret_cast<const B*>(w);
    const block_q8_K* b = reinterpret_cast<const block_q8_K*>(x);
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float sum = 0.f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
      uint8_t sc[8], mn[8];
      unpack_k4_scales(a[i].scales, sc, mn);
      const float dx = b[i].d;
      const float summ = static_cast<float>(mins_dot_bsums(mn, b[i].bsums));
      int32x4_t sumi = vdupq_n_s32(0);
      uint8x16_t h0, h1;
      if constexpr (FIVE) { h0 = vld1q_u8(a[i].qh); h1 = vld1q_u8(a[i].qh + 16); }
      for (int j = 0; j < 4; ++j) {
        const uint8x16_t q0 = vld1q_u8(a[i].qs + 32 * j), q1 = vld1q_u8(a[i].qs + 32 * j + 16);
        uint8x16_t l0 = vandq_u8(q0, m4), l1 = vandq_u8(q1, m4), u0 = vshrq_n_u8(q0, 4), u1 = vshrq_n_u8(q1, 4);
        if constexpr (FIVE) {
          const uint8x16_t b0 = vdupq_n_u8(static_cast<uint8_t>(1u << (2 * j))), b1 = vdupq_n_u8(static_cast<uint8_t>(1u << (2 * j + 1)));
          const uint8x16_t t = vdupq_n_u8(0x10);
          l0 = vorrq_u8(l0, vandq_u8(vtstq_u8(h0, b0), t));
          l1 = vorrq_u8(l1, vandq_u8(vtstq_u8(h1, b0), t));
          u0 = vorrq_u8(u0, vandq_u8(vtstq_u8(h0, b1), t));
          u1 = vorrq_u8(u1, vandq_u8(vtstq_u8(h1, b1), t));
        }
        const int8_t* xq = b[i].qs + 64 * j;
        const int32x4_t plo = vaddq_s32(DOT::dot16(vreinterpretq_s8_u8(l0), ld8(xq)), DOT::dot16(vreinterpretq_s8_u8(l1), ld8(xq + 16)));
        const int32x4_t phi = vaddq_s32(DOT::dot16(vreinterpretq_s8_u8(u0), ld8(xq + 32)), DOT::dot16(vreinterpretq_s8_u8(u1), ld8(xq + 48)));
        sumi = vmlaq_n_s32(sumi, plo, sc[2 * j]);
        sumi = vmlaq_n_s32(sumi, phi, sc[2 * j + 1]);
      }
      sum += dx * (h2f(a[i].d) * static_cast<float>(hsum_s32(sumi)) - h2f(a[i].dmin) * summ);
    }
    return sum;
  }
};
template <class DOT> using DotQ4_K = DotQ45K<DOT, false, block_q4_K>;
template <class DOT> using DotQ5_K = DotQ45K<DOT, true, block_q5_K>;

template <class DOT>
struct DotQ6_K {
  static float dot(const uint8_t* w, const uint8_t* x, int64_t n) {
    const block_q6_K* a = reinterpret_cast<const block_q6_K*>(w);
    const block_q8_K* b = reinterpret_cast<const block_q8_K*>(x);
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(0x03);
    const int8x16_t m32 = vdupq_n_s8(32);
    float sum = 0.f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
      int32x4_t sumi = vdupq_n_s32(0);
      for (int j = 0; j < 2; ++j) {
        const uint8_t* ql = a[i].ql + 64 * j;
        const uint8_t* qh = a[i].qh + 32 * j;
        const int8_t* sc = a[i].scales + 8 * j;
        const int8_t* xq = b[i].qs + 128 * j;
        for (int h = 0; h < 2; ++h) {   // 16-byte halves of the 32-byte lanes
          const uint8x16_t l0 = vld1q_u8(ql + 16 * h), l1 = vld1q_u8(ql + 32 + 16 * h);
          const uint8x16_t hh = vld1q_u8(qh + 16 * h);
          const uint8x16_t u[4] = {
              vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(hh, m3), 4)),
              vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hh, 2), m3), 4)),
              vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hh, 4), m3), 4)),
              vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(hh, 6), 4)),
          };
          for (int s = 0; s < 4; ++s) {
            const int off = 32 * s + 16 * h;   // element offset inside the 128-element half
            const int8x16_t v = vsubq_s8(vreinterpretq_s8_u8(u[s]), m32);
            sumi = vmlaq_n_s32(sumi, DOT::dot16(v, ld8(xq + off)), sc[off / 16]);
          }
        }
      }
      sum += b[i].d * h2f(a[i].d) * static_cast<float>(hsum_s32(sumi));
    }
    return sum;
  }
};

// The NEON table entries, for a dot16 primitive (vmull on plain NEON, SDOT with dotprod).
template <class D>
void set_kernels(KernelTable& k) {
  for (bool& b : k.native) b = false;
  k.set(GgmlType::F32, mat_rows<DotF32>);
  k.set(GgmlType::F16, mat_rows<DotF16>);
  k.mix_f16 = DotF16::mix;
  k.mix_f32 = DotF32::mix;
  k.set(GgmlType::Q8_0, mat_rows<DotQ8_0<D>>);
  k.set(GgmlType::Q4_0, mat_rows<DotQ4_0<D>>);
  k.set(GgmlType::Q5_0, mat_rows<DotQ5_0<D>>);
  k.set(GgmlType::Q4_1, mat_rows<DotQ4_1<D>>);
  k.set(GgmlType::Q5_1, mat_rows<DotQ5_1<D>>);
  k.set(GgmlType::Q4_K, mat_rows<DotQ4_K<D>>);
  k.set(GgmlType::Q5_K, mat_rows<DotQ5_K<D>>);
  k.set(GgmlType::Q6_K, mat_rows<DotQ6_K<D>>);
}

}  // namespace
}  // namespace neon
}  // namespace kern
}  // namespace ee
