#include "kernels/matvec.h"

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "quant/quant.h"

namespace ee {

namespace kern {
const KernelTable& table_for(Isa isa) {
  require_isa(isa);
  switch (isa) {
#ifdef EE_HAVE_AVX2
    case Isa::Avx2: return table_avx2();
#endif
#ifdef EE_HAVE_AVX512
    case Isa::Avx512: return table_avx512();
#endif
#ifdef EE_HAVE_NEON
    case Isa::Neon: return table_neon();
#endif
#ifdef EE_HAVE_DOTPROD
    case Isa::Dotprod: return table_dotprod();
#endif
    default: return table_scalar();
  }
}
QuantActFn quantize_act_for(Isa isa) {
#ifdef EE_HAVE_AVX2
  if (isa == Isa::Avx2 || isa == Isa::Avx512) return quantize_act_avx2;
#endif
  (void)isa;
  return quantize_act;
}
}  // namespace kern

namespace {

// Per-calling-thread scratch for quantized activations: grows to the largest shape seen, never
// shrinks, so steady-state decode does no allocation. 64-byte aligned storage.
uint8_t* act_scratch(size_t bytes) {
  thread_local std::vector<uint64_t> buf;
  const size_t words = (bytes + 7) / 8 + 8;
  if (buf.size() < words) buf.resize(words);
  const uintptr_t p = reinterpret_cast<uintptr_t>(buf.data());
  return reinterpret_cast<uint8_t*>((p + 63) & ~static_cast<uintptr_t>(63));
}

// The n rows of X (cols floats each) in the activation format `act`, in the calling thread's scratch
// (rows act_row_bytes apart); F32 needs no conversion and returns X. Rows are split over `pool`
// when given and there are several.
const uint8_t* quantize_rows(Isa isa, kern::Act act, const float* X, int64_t n, int64_t cols, ThreadPool* pool) {
  if (act == kern::Act::F32) return reinterpret_cast<const uint8_t*>(X);
  const size_t xs = kern::act_row_bytes(act, cols);
  uint8_t* q = act_scratch(xs * static_cast<size_t>(n));
  const kern::QuantActFn quant = kern::quantize_act_for(isa);
  auto rows = [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) quant(act, X + t * cols, q + static_cast<size_t>(t) * xs, cols);
  };
  if (pool && n > 1) pool->parallel_for(n, rows);
  else rows(0, n, 0);
  return q;
}

void check_args(GgmlType wt, const void* W, int64_t rows, int64_t cols, const void* X, int64_t n_tok, const void* Y) {
  check_row(wt, cols, "matmul");
  if (rows <= 0) throw std::invalid_argument("matmul: rows must be positive, got " + std::to_string(rows));
  if (n_tok <= 0) throw std::invalid_argument("matmul: n_tok must be positive, got " + std::to_string(n_tok));
  if (!W || !X || !Y) throw std::invalid_argument("matmul: null pointer");
  const uintptr_t align = wt == GgmlType::F32 ? 4 : 2;
  if (reinterpret_cast<uintptr_t>(W) % align)
    throw std::invalid_argument("matmul: weight data must be " + std::to_string(align) + "-byte aligned");
  if (reinterpret_cast<uintptr_t>(X) % 4) throw std::invalid_argument("matmul: activations must be 4-byte aligned");
}

}  // namespace

void matmul_isa(Isa isa, GgmlType wt, const void* W, int64_t rows, int64_t cols, const float* X, int64_t n_tok,
                float* Y, ThreadPool& pool, bool llama_batch) {
  check_args(wt, W, rows, cols, X, n_tok, Y);
  const kern::KernelTable& table = kern::table_for(isa);
  const kern::MatFn batch_fn = llama_batch && n_tok > 1 ? table.batch[static_cast<int>(wt)] : nullptr;
  const kern::MatFn fn = batch_fn ? batch_fn : table.fn[static_cast<int>(wt)];
  const kern::Act act = kern::act_for(wt);
  const size_t xs = kern::act_row_bytes(act, cols);
  const uint8_t* xq = quantize_rows(isa, act, X, n_tok, cols, &pool);
  const uint8_t* w = static_cast<const uint8_t*>(W);
  const size_t rb = ggml_row_bytes(wt, cols);
  pool.parallel_for(rows, [&](int64_t r0, int64_t r1, int) { fn(w, rb, r0, r1, cols, xq, xs, n_tok, Y, rows); });
}

void matmul(GgmlType wt, const void* W, int64_t rows, int64_t cols, const float* X, int64_t n_tok, float* Y, ThreadPool& pool,
            bool llama_batch) {
  matmul_isa(default_isa(), wt, W, rows, cols, X, n_tok, Y, pool, llama_batch);
}

void matvec(GgmlType wt, const void* W, int64_t rows, int64_t cols, const float* x, float* y, ThreadPool& pool) {
  matmul_isa(default_isa(), wt, W, rows, cols, x, 1, y, pool);
}

AttnOps::AttnOps(GgmlType type, Isa isa) : type_(type), table_(&kern::table_for(isa)) {
  if (type != GgmlType::F32 && type != GgmlType::F16 && type != GgmlType::Q8_0)
    throw std::invalid_argument(std::string("attention: unsupported KV cache type ") + (ggml_type_traits(type).name ? ggml_type_traits(type).name : "?"));
}

void AttnOps::scores(const uint8_t* K, size_t row_bytes, int64_t j0, int64_t j1, int64_t n, const float* Q, int64_t n_q,
                     float* S, int64_t s_stride) const {
  if (j1 <= j0) return;
  const auto& t = *static_cast<const kern::KernelTable*>(table_);
  const kern::Act act = kern::act_for(type_);
  const uint8_t* xq = quantize_rows(t.isa, act, Q, n_q, n, nullptr);
  const size_t xs = kern::act_row_bytes(act, n);
  t.fn[static_cast<int>(type_)](K, row_bytes, j0, j1, n, xq, xs, n_q, S, s_stride);
}

void AttnOps::mix(const uint8_t* V, size_t row_bytes, int64_t j0, int64_t j1, int64_t n, const float* p, int64_t p_stride,
                  int64_t n_p, float* out, int64_t out_stride) const {
  const auto& t = *static_cast<const kern::KernelTable*>(table_);
  if (type_ == GgmlType::F16) return t.mix_f16(V, row_bytes, j0, j1, n, p, p_stride, n_p, out, out_stride);
  if (type_ == GgmlType::F32) return t.mix_f32(V, row_bytes, j0, j1, n, p, p_stride, n_p, out, out_stride);
  // quantized cache: dequantize each row into a per-thread buffer, accumulate in f32
  float* row = reinterpret_cast<float*>(act_scratch(static_cast<size_t>(n) * 4));
  for (int64_t h = 0; h < n_p; ++h)
    for (int64_t i = 0; i < n; ++i) out[h * out_stride + i] = 0.f;
  for (int64_t j = j0; j < j1; ++j) {
    dequantize_row(type_, V + static_cast<size_t>(j) * row_bytes, row, n);
    for (int64_t h = 0; h < n_p; ++h)
      for (int64_t i = 0; i < n; ++i) out[h * out_stride + i] += p[h * p_stride + j] * row[i];
  }
}

void AttnOps::softmax(float* s, int64_t lo, int64_t hi, float scale) const {
  static_cast<const kern::KernelTable*>(table_)->softmax(s, lo, hi, scale, type_ == GgmlType::F16);
}

void AttnOps::prepare_query(const float* q, float* dst, int64_t n) const {
  if (type_ == GgmlType::F16) static_cast<const kern::KernelTable*>(table_)->round_f16(q, dst, n);
  else std::memcpy(dst, q, static_cast<size_t>(n) * sizeof(float));
}

void geglu_table(const float* table, float* x, const float* g, int64_t n, Isa isa) {
  kern::table_for(isa).geglu(table, x, g, n);
}

std::vector<GgmlType> native_types(Isa isa) {
  std::vector<GgmlType> out;
  if (!isa_available(isa)) return out;
  const kern::KernelTable& t = kern::table_for(isa);
  for (int i = 0; i < kern::kMaxType; ++i)
    if (t.native[i]) out.push_back(static_cast<GgmlType>(i));
  return out;
}

}  // namespace ee
