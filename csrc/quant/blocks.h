// GGUF block layouts (byte-compatible with ggml / gguf-py). Sizes are checked against the type
// table in types.h. Every field is 1- or 2-byte aligned except block_q8_K (activations only).
#pragma once
#include <cstdint>
#include <cstring>

#include "quant/types.h"

namespace ee {

constexpr int QK = 32;    // elements per block of the "legacy" types
constexpr int QK_K = 256; // elements per super-block of the K types

struct block_q4_0 { uint16_t d; uint8_t qs[QK / 2]; };                       // q-8, nibbles: lo = 0..15, hi = 16..31
struct block_q4_1 { uint16_t d, m; uint8_t qs[QK / 2]; };                    // d*q + m
struct block_q5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[QK / 2]; };        // 5th bit of element i in qh bit i; q-16
struct block_q5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK / 2]; };
struct block_q8_0 { uint16_t d; int8_t qs[QK]; };
struct block_q2_K { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d, dmin; };  // scales: lo 4 bits scale, hi 4 bits min
struct block_q3_K { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; };
struct block_q4_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; };   // 8 sub-blocks of 32, 6-bit scale+min
struct block_q5_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; };
struct block_q6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; };
struct block_q8_K { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };     // activations: bsums = sums of 16

#define EE_CHECK_BLOCK(T, S) static_assert(sizeof(block_##T) == S, "block_" #T " layout")
EE_CHECK_BLOCK(q4_0, 18); EE_CHECK_BLOCK(q4_1, 20); EE_CHECK_BLOCK(q5_0, 22); EE_CHECK_BLOCK(q5_1, 24);
EE_CHECK_BLOCK(q8_0, 34); EE_CHECK_BLOCK(q2_K, 84); EE_CHECK_BLOCK(q3_K, 110); EE_CHECK_BLOCK(q4_K, 144);
EE_CHECK_BLOCK(q5_K, 176); EE_CHECK_BLOCK(q6_K, 210); EE_CHECK_BLOCK(q8_K, 292);
#undef EE_CHECK_BLOCK

// Q4_K / Q5_K: 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// All 8 scales and 8 mins of a Q4_K / Q5_K super-block at once (the SIMD kernels' form of
// get_scale_min_k4). Internal linkage: ISA files compiled with AVX2 / AVX-512 / NEON flags each keep
// their own copy, so the linker never hands one ISA's instantiation to another's caller.
namespace {
inline void unpack_k4_scales(const uint8_t* s, uint8_t sc[8], uint8_t mn[8]) {
  uint32_t w0, w1, w2;
  std::memcpy(&w0, s, 4); std::memcpy(&w1, s + 4, 4); std::memcpy(&w2, s + 8, 4);
  const uint32_t a = w0 & 0x3f3f3f3fu, b = (w2 & 0x0f0f0f0fu) | ((w0 >> 2) & 0x30303030u);
  const uint32_t c = w1 & 0x3f3f3f3fu, d = ((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 2) & 0x30303030u);
  std::memcpy(sc, &a, 4); std::memcpy(sc + 4, &b, 4);
  std::memcpy(mn, &c, 4); std::memcpy(mn + 4, &d, 4);
}
}  // namespace

// Q3_K: the 16 signed 6-bit scales (already minus 32).
inline void get_scales_q3_K(const uint8_t* s, int8_t* out) {
  for (int i = 0; i < 16; ++i) {
    const int lo = (s[i % 8] >> (4 * (i / 8))) & 0xF;
    const int hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    out[i] = static_cast<int8_t>((lo | (hi << 4)) - 32);
  }
}

}  // namespace ee
