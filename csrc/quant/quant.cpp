// Scalar block formats. Dequantization follows gguf.quants operation by operation (same float32
// products in the same order, no fused multiply-add: this file is built with -ffp-contract=off),
// which is what makes it bit-exact.
//
// K-type quantization is approximate (no iterative search like ggml's make_qkx/make_qx):
//   per sub-block (32 values for Q4_K/Q5_K, 16 for Q2_K/Q3_K/Q6_K) take a scale from the range
//   (min..max for the types with a min, max |x| for the symmetric ones), quantize the sub-block
//   scales/mins to 6 bits (Q4_K/Q5_K/Q3_K) / 4 bits (Q2_K) / int8 (Q6_K) against the super-block
//   maximum, then round each value with the *stored* (fp16-rounded, requantized) scales.
#include "quant/quant.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/fp16.h"

namespace ee {

bool is_supported_weight_type(GgmlType t) {
  switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16:
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1:
    case GgmlType::Q8_0: case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K:
    case GgmlType::Q5_K: case GgmlType::Q6_K:
      return true;
    default:
      return false;
  }
}

void check_row(GgmlType t, int64_t n, const char* what) {
  const GgmlTypeTraits tr = ggml_type_traits(t);
  if (!is_supported_weight_type(t))
    throw QuantError(std::string(what) + ": unsupported type " + (tr.name ? tr.name : "id " + std::to_string(static_cast<uint32_t>(t))));
  if (n <= 0 || n % tr.block != 0)
    throw QuantError(std::string(what) + ": " + tr.name + " needs a positive multiple of " + std::to_string(tr.block) +
                     " elements, got " + std::to_string(n));
}

GgmlType ggml_type_from_name(const std::string& name) {
  std::string up;
  for (char c : name) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!up.empty() && std::all_of(up.begin(), up.end(), [](char c) { return c >= '0' && c <= '9'; }) && up.size() < 6) {
    const uint32_t id = static_cast<uint32_t>(std::stoul(up));
    if (ggml_type_traits(id).name) return static_cast<GgmlType>(id);
  }
  for (uint32_t id = 0; id < 64; ++id) {
    const GgmlTypeTraits tr = ggml_type_traits(id);
    if (tr.name) {
      std::string n2;
      for (const char* p = tr.name; *p; ++p) n2 += static_cast<char>(std::toupper(static_cast<unsigned char>(*p)));
      if (n2 == up) return static_cast<GgmlType>(id);
    }
  }
  throw QuantError("unknown ggml type '" + name + "'");
}

namespace {

inline float h2f(uint16_t h) { return half_to_float(h); }
inline float round_away(float x) { return std::round(x); }   // roundf: half away from zero

// ---- dequantize, one block each (gguf.quants order of operations) ----
void deq_q4_0(const block_q4_0* b, float* y) {
  const float d = h2f(b->d);
  for (int l = 0; l < 16; ++l) {
    y[l] = d * static_cast<float>((b->qs[l] & 0xF) - 8);
    y[l + 16] = d * static_cast<float>((b->qs[l] >> 4) - 8);
  }
}
void deq_q4_1(const block_q4_1* b, float* y) {
  const float d = h2f(b->d), m = h2f(b->m);
  for (int l = 0; l < 16; ++l) {
    const float a = d * static_cast<float>(b->qs[l] & 0xF);
    const float c = d * static_cast<float>(b->qs[l] >> 4);
    y[l] = a + m;
    y[l + 16] = c + m;
  }
}
inline uint32_t load_qh(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }
void deq_q5_0(const block_q5_0* b, float* y) {
  const float d = h2f(b->d);
  const uint32_t qh = load_qh(b->qh);
  for (int l = 0; l < 16; ++l) {
    const int lo = (b->qs[l] & 0xF) | (((qh >> l) & 1) << 4);
    const int hi = (b->qs[l] >> 4) | (((qh >> (l + 16)) & 1) << 4);
    y[l] = d * static_cast<float>(lo - 16);
    y[l + 16] = d * static_cast<float>(hi - 16);
  }
}
void deq_q5_1(const block_q5_1* b, float* y) {
  const float d = h2f(b->d), m = h2f(b->m);
  const uint32_t qh = load_qh(b->qh);
  for (int l = 0; l < 16; ++l) {
    const int lo = (b->qs[l] & 0xF) | (((qh >> l) & 1) << 4);
    const int hi = (b->qs[l] >> 4) | (((qh >> (l + 16)) & 1) << 4);
    const float a = d * static_cast<float>(lo);
    const float c = d * static_cast<float>(hi);
    y[l] = a + m;
    y[l + 16] = c + m;
  }
}
void deq_q8_0(const block_q8_0* b, float* y) {
  const float d = h2f(b->d);
  for (int l = 0; l < 32; ++l) y[l] = static_cast<float>(b->qs[l]) * d;
}
void deq_q2_K(const block_q2_K* b, float* y) {
  const float d = h2f(b->d), dmin = h2f(b->dmin);
  for (int o = 0; o < QK_K; ++o) {
    const int j = o / 128, s = (o / 32) % 4, l = o % 32;
    const uint8_t sc = b->scales[o / 16];
    const float dl = d * static_cast<float>(sc & 0xF);
    const float ml = dmin * static_cast<float>(sc >> 4);
    const float q = static_cast<float>((b->qs[j * 32 + l] >> (2 * s)) & 3);
    const float t = dl * q;
    y[o] = t - ml;
  }
}
void deq_q3_K(const block_q3_K* b, float* y) {
  const float d = h2f(b->d);
  int8_t sc[16];
  get_scales_q3_K(b->scales, sc);
  for (int o = 0; o < QK_K; ++o) {
    const int j = o / 128, s = (o / 32) % 4, l = o % 32;
    const int ql = (b->qs[j * 32 + l] >> (2 * s)) & 3;
    const int h = (b->hmask[l] >> (o / 32)) & 1;
    const float dl = d * static_cast<float>(sc[o / 16]);
    y[o] = dl * static_cast<float>(ql - ((h ^ 1) << 2));
  }
}
void deq_q4_K(const block_q4_K* b, float* y) {
  const float d = h2f(b->d), dmin = h2f(b->dmin);
  for (int sb = 0; sb < 8; ++sb) {
    uint8_t sc, m;
    get_scale_min_k4(sb, b->scales, &sc, &m);
    const float ds = d * static_cast<float>(sc), dm = dmin * static_cast<float>(m);
    const uint8_t* q = b->qs + (sb / 2) * 32;
    const int shift = 4 * (sb % 2);
    for (int l = 0; l < 32; ++l) {
      const float t = ds * static_cast<float>((q[l] >> shift) & 0xF);
      y[sb * 32 + l] = t - dm;
    }
  }
}
void deq_q5_K(const block_q5_K* b, float* y) {
  const float d = h2f(b->d), dmin = h2f(b->dmin);
  for (int sb = 0; sb < 8; ++sb) {
    uint8_t sc, m;
    get_scale_min_k4(sb, b->scales, &sc, &m);
    const float ds = d * static_cast<float>(sc), dm = dmin * static_cast<float>(m);
    const uint8_t* q = b->qs + (sb / 2) * 32;
    const int shift = 4 * (sb % 2);
    for (int l = 0; l < 32; ++l) {
      const int v = ((q[l] >> shift) & 0xF) | (((b->qh[l] >> sb) & 1) << 4);
      const float t = ds * static_cast<float>(v);
      y[sb * 32 + l] = t - dm;
    }
  }
}
void deq_q6_K(const block_q6_K* b, float* y) {
  const float d = h2f(b->d);
  for (int o = 0; o < QK_K; ++o) {
    const int j = o / 128, r = o % 128, k = r / 64, m = r % 64, s = r / 32, l = r % 32;
    const int lo = (b->ql[j * 64 + m] >> (4 * k)) & 0xF;
    const int hi = (b->qh[j * 32 + l] >> (2 * s)) & 3;
    const float ds = d * static_cast<float>(b->scales[o / 16]);
    y[o] = ds * static_cast<float>((lo | (hi << 4)) - 32);
  }
}

template <class B, void (*F)(const B*, float*)>
void deq_blocks(const void* src, float* dst, int64_t n, int bs) {
  const B* b = static_cast<const B*>(src);
  for (int64_t i = 0; i < n / bs; ++i) F(b + i, dst + i * bs);
}

// ---- quantize, exact ports of gguf.quants for the legacy types ----
void q_q8_0(const float* x, block_q8_0* b) {
  float amax = 0.f;
  for (int l = 0; l < 32; ++l) amax = std::max(amax, std::fabs(x[l]));
  const float d = amax / 127.f;
  const float id = d != 0.f ? 1.f / d : 0.f;
  b->d = float_to_half(d);
  for (int l = 0; l < 32; ++l) b->qs[l] = static_cast<int8_t>(round_away(x[l] * id));
}
// Symmetric 4/5-bit: d = (value of max |x|) / -half, q = trunc(x*id + half + 0.5) clipped.
template <int HALF>
void q_sym(const float* x, uint16_t* dh, uint8_t* q) {
  float amax = 0.f, max = 0.f;
  for (int l = 0; l < 32; ++l)
    if (std::fabs(x[l]) > amax) { amax = std::fabs(x[l]); max = x[l]; }
  const float d = max / static_cast<float>(-HALF);
  const float id = d != 0.f ? 1.f / d : 0.f;
  *dh = float_to_half(d);
  for (int l = 0; l < 32; ++l) {
    const float v = std::trunc(x[l] * id + (static_cast<float>(HALF) + 0.5f));
    q[l] = static_cast<uint8_t>(std::min(std::max(v, 0.f), static_cast<float>(2 * HALF - 1)));
  }
}
// Asymmetric 4/5-bit: d = (max-min)/levels, q = trunc((x-min)*id + 0.5) clipped.
template <int LEVELS>
void q_asym(const float* x, uint16_t* dh, uint16_t* mh, uint8_t* q) {
  float mn = x[0], mx = x[0];
  for (int l = 1; l < 32; ++l) { mn = std::min(mn, x[l]); mx = std::max(mx, x[l]); }
  const float d = (mx - mn) / static_cast<float>(LEVELS);
  const float id = d != 0.f ? 1.f / d : 0.f;
  *dh = float_to_half(d);
  *mh = float_to_half(mn);
  for (int l = 0; l < 32; ++l) {
    const float v = std::trunc((x[l] - mn) * id + 0.5f);
    q[l] = static_cast<uint8_t>(std::min(std::max(v, 0.f), static_cast<float>(LEVELS)));
  }
}
void pack4(const uint8_t* q, uint8_t* qs) {
  for (int l = 0; l < 16; ++l) qs[l] = static_cast<uint8_t>((q[l] & 0xF) | (q[l + 16] << 4));
}
void pack5(const uint8_t* q, uint8_t* qh, uint8_t* qs) {
  pack4(q, qs);
  uint32_t h = 0;
  for (int l = 0; l < 32; ++l) h |= static_cast<uint32_t>((q[l] >> 4) & 1) << l;
  for (int i = 0; i < 4; ++i) qh[i] = static_cast<uint8_t>(h >> (8 * i));
}
void q_q4_0(const float* x, block_q4_0* b) { uint8_t q[32]; q_sym<8>(x, &b->d, q); pack4(q, b->qs); }
void q_q5_0(const float* x, block_q5_0* b) { uint8_t q[32]; q_sym<16>(x, &b->d, q); pack5(q, b->qh, b->qs); }
void q_q4_1(const float* x, block_q4_1* b) { uint8_t q[32]; q_asym<15>(x, &b->d, &b->m, q); pack4(q, b->qs); }
void q_q5_1(const float* x, block_q5_1* b) { uint8_t q[32]; q_asym<31>(x, &b->d, &b->m, q); pack5(q, b->qh, b->qs); }

// ---- approximate K-type quantization (see the file comment) ----
inline int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Sub-block scales/mins for the types with a min: x ~= scale*q - min, q in [0, levels].
template <int SUB, int NSUB>
void range_scales(const float* x, int levels, float* scale, float* min) {
  for (int s = 0; s < NSUB; ++s) {
    float mn = 0.f, mx = 0.f;   // include 0 so the min is >= 0 (stored unsigned)
    for (int l = 0; l < SUB; ++l) { mn = std::min(mn, x[s * SUB + l]); mx = std::max(mx, x[s * SUB + l]); }
    scale[s] = (mx - mn) / static_cast<float>(levels);
    min[s] = -mn;
  }
}
// Quantize positive sub-block values v[] to `maxq` levels against their maximum: returns d.
template <int N>
float quant_scales(const float* v, int maxq, uint8_t* out, uint16_t* dh) {
  float mx = 0.f;
  for (int i = 0; i < N; ++i) mx = std::max(mx, v[i]);
  const float d = mx / static_cast<float>(maxq);
  *dh = float_to_half(d);
  const float ds = half_to_float(*dh);
  for (int i = 0; i < N; ++i) out[i] = static_cast<uint8_t>(ds > 0.f ? clampi(static_cast<int>(round_away(v[i] / ds)), 0, maxq) : 0);
  return ds;
}
inline int qval(float x, float s, float m, int maxq) {   // x ~= s*q - m
  return s > 0.f ? clampi(static_cast<int>(round_away((x + m) / s)), 0, maxq) : 0;
}

template <int BITS, class B>
void q_q45_K(const float* x, B* b, uint8_t* q /*256*/) {
  float scale[8], min[8];
  range_scales<32, 8>(x, (1 << BITS) - 1, scale, min);
  uint8_t sc[8], m[8];
  const float d = quant_scales<8>(scale, 63, sc, &b->d);
  const float dmin = quant_scales<8>(min, 63, m, &b->dmin);
  for (int j = 0; j < 4; ++j) {
    b->scales[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    b->scales[j + 4] = static_cast<uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    b->scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
  }
  for (int s = 0; s < 8; ++s) {
    const float ss = d * static_cast<float>(sc[s]), mm = dmin * static_cast<float>(m[s]);
    for (int l = 0; l < 32; ++l) q[s * 32 + l] = static_cast<uint8_t>(qval(x[s * 32 + l], ss, mm, (1 << BITS) - 1));
  }
  for (int j = 0; j < 4; ++j)
    for (int l = 0; l < 32; ++l)
      b->qs[j * 32 + l] = static_cast<uint8_t>((q[(2 * j) * 32 + l] & 0xF) | ((q[(2 * j + 1) * 32 + l] & 0xF) << 4));
}
void q_q4_K(const float* x, block_q4_K* b) { uint8_t q[QK_K]; q_q45_K<4>(x, b, q); }
void q_q5_K(const float* x, block_q5_K* b) {
  uint8_t q[QK_K];
  q_q45_K<5>(x, b, q);
  for (int l = 0; l < 32; ++l) {
    uint8_t h = 0;
    for (int s = 0; s < 8; ++s) h |= static_cast<uint8_t>(((q[s * 32 + l] >> 4) & 1) << s);
    b->qh[l] = h;
  }
}
void q_q2_K(const float* x, block_q2_K* b) {
  float scale[16], min[16];
  range_scales<16, 16>(x, 3, scale, min);
  uint8_t sc[16], m[16];
  const float d = quant_scales<16>(scale, 15, sc, &b->d);
  const float dmin = quant_scales<16>(min, 15, m, &b->dmin);
  std::memset(b->qs, 0, sizeof b->qs);
  for (int i = 0; i < 16; ++i) b->scales[i] = static_cast<uint8_t>(sc[i] | (m[i] << 4));
  for (int o = 0; o < QK_K; ++o) {
    const int q = qval(x[o], d * static_cast<float>(sc[o / 16]), dmin * static_cast<float>(m[o / 16]), 3);
    b->qs[(o / 128) * 32 + o % 32] |= static_cast<uint8_t>(q << (2 * ((o / 32) % 4)));
  }
}
// Symmetric K types: per sub-block of 16, scale = max|x| / qmax.
void sym_scales16(const float* x, float qmax, float* scale) {
  for (int s = 0; s < 16; ++s) {
    float amax = 0.f;
    for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(x[s * 16 + l]));
    scale[s] = amax / qmax;
  }
}
void q_q3_K(const float* x, block_q3_K* b) {
  float scale[16];
  sym_scales16(x, 4.f, scale);
  uint8_t sc[16];
  const float d = quant_scales<16>(scale, 31, sc, &b->d);   // use 0..31 of the signed 6-bit range
  std::memset(b->scales, 0, sizeof b->scales);
  std::memset(b->qs, 0, sizeof b->qs);
  std::memset(b->hmask, 0, sizeof b->hmask);
  for (int i = 0; i < 16; ++i) {
    const int u = sc[i] + 32;
    b->scales[i % 8] |= static_cast<uint8_t>((u & 0xF) << (4 * (i / 8)));
    b->scales[8 + i % 4] |= static_cast<uint8_t>(((u >> 4) & 3) << (2 * (i / 4)));
  }
  for (int o = 0; o < QK_K; ++o) {
    const float s = d * static_cast<float>(sc[o / 16]);
    const int q = s > 0.f ? clampi(static_cast<int>(round_away(x[o] / s)), -4, 3) : 0;
    const int v = q + 4;
    b->qs[(o / 128) * 32 + o % 32] |= static_cast<uint8_t>((v & 3) << (2 * ((o / 32) % 4)));
    b->hmask[o % 32] |= static_cast<uint8_t>((v >> 2) << (o / 32));
  }
}
void q_q6_K(const float* x, block_q6_K* b) {
  float scale[16];
  sym_scales16(x, 31.f, scale);
  float mx = 0.f;
  for (float s : scale) mx = std::max(mx, s);
  const float d = mx / 127.f;
  b->d = float_to_half(d);
  const float ds = half_to_float(b->d);
  std::memset(b->ql, 0, sizeof b->ql);
  std::memset(b->qh, 0, sizeof b->qh);
  for (int i = 0; i < 16; ++i) b->scales[i] = static_cast<int8_t>(ds > 0.f ? clampi(static_cast<int>(round_away(scale[i] / ds)), 0, 127) : 0);
  for (int o = 0; o < QK_K; ++o) {
    const float s = ds * static_cast<float>(b->scales[o / 16]);
    const int v = (s > 0.f ? clampi(static_cast<int>(round_away(x[o] / s)), -32, 31) : 0) + 32;
    const int j = o / 128, r = o % 128;
    b->ql[j * 64 + r % 64] |= static_cast<uint8_t>((v & 0xF) << (4 * (r / 64)));
    b->qh[j * 32 + r % 32] |= static_cast<uint8_t>((v >> 4) << (2 * (r / 32)));
  }
}

template <class B, void (*F)(const float*, B*)>
void q_blocks(const float* src, void* dst, int64_t n, int bs) {
  B* b = static_cast<B*>(dst);
  for (int64_t i = 0; i < n / bs; ++i) F(src + i * bs, b + i);
}

}  // namespace

void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n) {
  check_row(t, n, "dequantize_row");
  switch (t) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16: {
      const uint8_t* p = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) { uint16_t h; std::memcpy(&h, p + 2 * i, 2); dst[i] = half_to_float(h); }
      return;
    }
    case GgmlType::BF16: {
      const uint8_t* p = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) { uint16_t h; std::memcpy(&h, p + 2 * i, 2); dst[i] = bf16_to_float(h); }
      return;
    }
    case GgmlType::Q4_0: return deq_blocks<block_q4_0, deq_q4_0>(src, dst, n, QK);
    case GgmlType::Q4_1: return deq_blocks<block_q4_1, deq_q4_1>(src, dst, n, QK);
    case GgmlType::Q5_0: return deq_blocks<block_q5_0, deq_q5_0>(src, dst, n, QK);
    case GgmlType::Q5_1: return deq_blocks<block_q5_1, deq_q5_1>(src, dst, n, QK);
    case GgmlType::Q8_0: return deq_blocks<block_q8_0, deq_q8_0>(src, dst, n, QK);
    case GgmlType::Q2_K: return deq_blocks<block_q2_K, deq_q2_K>(src, dst, n, QK_K);
    case GgmlType::Q3_K: return deq_blocks<block_q3_K, deq_q3_K>(src, dst, n, QK_K);
    case GgmlType::Q4_K: return deq_blocks<block_q4_K, deq_q4_K>(src, dst, n, QK_K);
    case GgmlType::Q5_K: return deq_blocks<block_q5_K, deq_q5_K>(src, dst, n, QK_K);
    case GgmlType::Q6_K: return deq_blocks<block_q6_K, deq_q6_K>(src, dst, n, QK_K);
    default: break;
  }
  throw QuantError("dequantize_row: unsupported type");
}

void quantize_row(GgmlType t, const float* src, void* dst, int64_t n) {
  check_row(t, n, "quantize_row");
  switch (t) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16: {
      uint8_t* p = static_cast<uint8_t*>(dst);
      for (int64_t i = 0; i < n; ++i) { const uint16_t h = float_to_half(src[i]); std::memcpy(p + 2 * i, &h, 2); }
      return;
    }
    case GgmlType::BF16: {
      uint8_t* p = static_cast<uint8_t*>(dst);
      for (int64_t i = 0; i < n; ++i) { const uint16_t h = float_to_bf16(src[i]); std::memcpy(p + 2 * i, &h, 2); }
      return;
    }
    case GgmlType::Q4_0: return q_blocks<block_q4_0, q_q4_0>(src, dst, n, QK);
    case GgmlType::Q4_1: return q_blocks<block_q4_1, q_q4_1>(src, dst, n, QK);
    case GgmlType::Q5_0: return q_blocks<block_q5_0, q_q5_0>(src, dst, n, QK);
    case GgmlType::Q5_1: return q_blocks<block_q5_1, q_q5_1>(src, dst, n, QK);
    case GgmlType::Q8_0: return q_blocks<block_q8_0, q_q8_0>(src, dst, n, QK);
    case GgmlType::Q2_K: return q_blocks<block_q2_K, q_q2_K>(src, dst, n, QK_K);
    case GgmlType::Q3_K: return q_blocks<block_q3_K, q_q3_K>(src, dst, n, QK_K);
    case GgmlType::Q4_K: return q_blocks<block_q4_K, q_q4_K>(src, dst, n, QK_K);
    case GgmlType::Q5_K: return q_blocks<block_q5_K, q_q5_K>(src, dst, n, QK_K);
    case GgmlType::Q6_K: return q_blocks<block_q6_K, q_q6_K>(src, dst, n, QK_K);
    default: break;
  }
  throw QuantError("quantize_row: unsupported type");
}

namespace {
// Round to nearest, ties to even, for |f| <= 2^22 (ggml's nearest_int): adding 1.5 * 2^23 leaves
// the integer in the low mantissa bits. Exact because this file is built without FMA contraction.
inline int nearest_int(float f) {
  const float v = f + 12582912.f;
  int32_t i;
  std::memcpy(&i, &v, 4);
  return (i & 0x007fffff) - 0x00400000;
}
}  // namespace

void quantize_row_q8_0(const float* x, void* dst, int64_t n) {
  block_q8_0* b = static_cast<block_q8_0*>(dst);
  for (int64_t i = 0; i < n / QK; ++i, x += QK, ++b) {
    float amax = 0.f;
    for (int l = 0; l < QK; ++l) amax = std::max(amax, std::fabs(x[l]));
    b->d = float_to_half(amax / 127.f);
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    for (int l = 0; l < QK; ++l) b->qs[l] = static_cast<int8_t>(nearest_int(x[l] * id));
  }
}

float q8_K_signed_max(const float* x) {
  float amax = 0.f, max = 0.f;
  for (int l = 0; l < QK_K; ++l)
    if (std::fabs(x[l]) > amax) { amax = std::fabs(x[l]); max = x[l]; }
  return max;
}

void quantize_row_q8_K(const float* x, void* dst, int64_t n) {
  block_q8_K* b = static_cast<block_q8_K*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K, ++b) {
    const float max = q8_K_signed_max(x);
    if (max == 0.f) {
      std::memset(b, 0, sizeof *b);
      continue;
    }
    const float iscale = -127.f / max;
    for (int l = 0; l < QK_K; ++l) b->qs[l] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[l])));
    for (int g = 0; g < 16; ++g) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += b->qs[g * 16 + l];
      b->bsums[g] = static_cast<int16_t>(s);
    }
    b->d = 1.f / iscale;
  }
}

}  // namespace ee
