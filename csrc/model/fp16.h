// IEEE half <-> float conversion (round to nearest even), portable; matches ggml's FP32_TO_FP16.
#pragma once
#include <cstdint>
#include <cstring>

namespace ee {

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const uint32_t exp_offset = 0xE0u << 23;
  uint32_t t1 = (two_w >> 4) + exp_offset;
  float exp_scale; uint32_t es = 0x7800000u; std::memcpy(&exp_scale, &es, 4);
  float normalized; std::memcpy(&normalized, &t1, 4); normalized *= exp_scale;
  const uint32_t magic_mask = 126u << 23;
  const float magic_bias = 0.5f;
  uint32_t t2 = (two_w >> 17) | magic_mask;
  float denorm; std::memcpy(&denorm, &t2, 4); denorm -= magic_bias;
  const uint32_t denorm_cutoff = 1u << 27;
  uint32_t nb, db; std::memcpy(&nb, &normalized, 4); std::memcpy(&db, &denorm, 4);
  const uint32_t result = sign | (two_w < denorm_cutoff ? db : nb);
  float out; std::memcpy(&out, &result, 4);
  return out;
}

inline uint16_t fp32_to_fp16(float f) {
  float scale_to_inf, scale_to_zero;
  uint32_t a = 0x77800000u, b = 0x08800000u;
  std::memcpy(&scale_to_inf, &a, 4); std::memcpy(&scale_to_zero, &b, 4);
  float base = (f < 0 ? -f : f) * scale_to_inf * scale_to_zero;
  uint32_t w; std::memcpy(&w, &f, 4);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  float bf; uint32_t bb = (bias >> 1) + 0x07800000u; std::memcpy(&bf, &bb, 4);
  base = bf + base;
  uint32_t bits; std::memcpy(&bits, &base, 4);
  const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  const uint32_t mantissa_bits = bits & 0x00000FFFu;
  const uint32_t nonsign = exp_bits + mantissa_bits;
  return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

inline float round_fp16(float f) { return fp16_to_fp32(fp32_to_fp16(f)); }

}  // namespace ee
