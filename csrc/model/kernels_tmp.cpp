// TEMPORARY scalar stand-in for the kernels room (see kernels_api.h); compiled out once the real
// kernels are merged. Not a kernel implementation to keep: no SIMD, no threads.
#include "model/kernels_api.h"
#if EE_MODEL_TMP_KERNELS
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>
#include "model/fp16.h"

namespace ee {
static inline float h2f(const uint8_t* p) { uint16_t h; std::memcpy(&h, p, 2); return fp16_to_fp32(h); }

void dequantize_row(GgmlType t, const void* src, float* y, int64_t n) {
  const uint8_t* b = static_cast<const uint8_t*>(src);
  switch (t) {
    case GgmlType::F32: std::memcpy(y, b, n * 4); return;
    case GgmlType::F16: for (int64_t i = 0; i < n; ++i) y[i] = h2f(b + 2 * i); return;
    case GgmlType::Q8_0:
      for (int64_t i = 0; i < n / 32; ++i, b += 34) { float d = h2f(b); for (int j = 0; j < 32; ++j) y[i*32+j] = d * (int8_t)b[2+j]; }
      return;
    case GgmlType::Q4_0:
      for (int64_t i = 0; i < n / 32; ++i, b += 18) { float d = h2f(b); for (int j = 0; j < 16; ++j) { y[i*32+j] = d * ((b[2+j] & 15) - 8); y[i*32+j+16] = d * ((b[2+j] >> 4) - 8); } }
      return;
    case GgmlType::Q5_0:
      for (int64_t i = 0; i < n / 32; ++i, b += 22) {
        float d = h2f(b); uint32_t qh; std::memcpy(&qh, b + 2, 4); const uint8_t* qs = b + 6;
        for (int j = 0; j < 16; ++j) {
          int xh0 = ((qh >> j) << 4) & 0x10, xh1 = (qh >> (j + 12)) & 0x10;
          y[i*32+j] = d * (((qs[j] & 15) | xh0) - 16); y[i*32+j+16] = d * (((qs[j] >> 4) | xh1) - 16);
        }
      }
      return;
    case GgmlType::Q4_K:
      for (int64_t i = 0; i < n / 256; ++i, b += 144) {
        float d = h2f(b), dmin = h2f(b + 2); const uint8_t* sc = b + 4; const uint8_t* q = b + 16;
        float* yy = y + i * 256; int is = 0;
        auto gs = [&](int j, uint8_t& s, uint8_t& m) {
          if (j < 4) { s = sc[j] & 63; m = sc[j+4] & 63; }
          else { s = (sc[j+4] & 0xF) | ((sc[j-4] >> 6) << 4); m = (sc[j+4] >> 4) | ((sc[j] >> 6) << 4); }
        };
        for (int j = 0; j < 256; j += 64) {
          uint8_t s, m; gs(is, s, m); float d1 = d * s, m1 = dmin * m; gs(is + 1, s, m); float d2 = d * s, m2 = dmin * m;
          for (int l = 0; l < 32; ++l) *yy++ = d1 * (q[l] & 0xF) - m1;
          for (int l = 0; l < 32; ++l) *yy++ = d2 * (q[l] >> 4) - m2;
          q += 32; is += 2;
        }
      }
      return;
    case GgmlType::Q6_K:
      for (int64_t i = 0; i < n / 256; ++i, b += 210) {
        const uint8_t* ql = b; const uint8_t* qh = b + 128; const int8_t* sc = (const int8_t*)(b + 192); float d = h2f(b + 208);
        float* yy = y + i * 256;
        for (int nn = 0; nn < 256; nn += 128) {
          for (int l = 0; l < 32; ++l) {
            int is = l / 16;
            int q1 = (int8_t)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = (int8_t)((ql[l+32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = (int8_t)((ql[l+32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            yy[l] = d * sc[is] * q1; yy[l+32] = d * sc[is+2] * q2; yy[l+64] = d * sc[is+4] * q3; yy[l+96] = d * sc[is+6] * q4;
          }
          yy += 128; ql += 64; qh += 32; sc += 8;
        }
      }
      return;
    default: throw std::runtime_error(std::string("temporary kernels: unsupported type ") + ggml_type_traits(t).name);
  }
}

void quantize_row(GgmlType t, const float* x, void* dst, int64_t n) {
  uint8_t* b = static_cast<uint8_t*>(dst);
  if (t == GgmlType::F32) { std::memcpy(b, x, n * 4); return; }
  if (t == GgmlType::F16) { for (int64_t i = 0; i < n; ++i) { uint16_t h = fp32_to_fp16(x[i]); std::memcpy(b + 2*i, &h, 2); } return; }
  if (t != GgmlType::Q8_0) throw std::runtime_error("temporary kernels: quantize_row supports F32/F16/Q8_0");
  for (int64_t i = 0; i < n / 32; ++i, b += 34) {
    float amax = 0; for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[i*32+j]));
    float d = amax / 127.f, id = d ? 1.f / d : 0.f; uint16_t h = fp32_to_fp16(d); std::memcpy(b, &h, 2);
    for (int j = 0; j < 32; ++j) b[2+j] = (uint8_t)(int8_t)std::lround(x[i*32+j] * id);
  }
}

void matmul(GgmlType wt, const void* W, int64_t rows, int64_t cols, const float* X, int64_t n_tok, float* Y, ThreadPool&) {
  std::vector<float> w(cols);
  const size_t rb = ggml_row_bytes(wt, cols);
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(wt, static_cast<const uint8_t*>(W) + r * rb, w.data(), cols);
    for (int64_t t = 0; t < n_tok; ++t) { const float* x = X + t * cols; double s = 0; for (int64_t c = 0; c < cols; ++c) s += w[c] * x[c]; Y[t * rows + r] = (float)s; }
  }
}
void matvec(GgmlType wt, const void* W, int64_t rows, int64_t cols, const float* x, float* y, ThreadPool& pool) { matmul(wt, W, rows, cols, x, 1, y, pool); }
}  // namespace ee
#endif
