// Internal: one dispatch table per ISA. Each entry computes a tile of Y = X * W^T for a range of
// weight rows; matvec is the n_tok == 1 case. Every ISA file fills its table from the same
// templates (tile.h) with its own dot-product functors, and inherits the scalar entry for a type it
// does not specialise; `native` records which entries are its own (reported by cpu_info).
#pragma once
#include <cstddef>
#include <cstdint>

#include "quant/types.h"
#include "runtime/cpu.h"

namespace ee {
namespace kern {

// What the activations are converted to before the dot products for a given weight type.
enum class Act { F32, Q8_0, Q8_K };
Act act_for(GgmlType wt);
// Bytes of one activation row of `cols` values in that format.
size_t act_row_bytes(Act a, int64_t cols);
// Quantize one activation row into that format (Q8_0 rows carry the aux arrays below).
void quantize_act(Act a, const float* x, uint8_t* dst, int64_t cols);
#ifdef EE_HAVE_AVX2
// The same bytes with AVX2 (quant_act_avx2.cpp); used by the AVX2 and AVX-512 paths.
void quantize_act_avx2(Act a, const float* x, uint8_t* dst, int64_t cols);
#endif
// Activation quantizer for a kernel path.
using QuantActFn = void (*)(Act, const float*, uint8_t*, int64_t);
QuantActFn quantize_act_for(Isa isa);

namespace {   // internal linkage: also used by ISA files compiled with other flags
// A Q8_0 activation row is nb standard block_q8_0 (bit-identical to ggml's quantize_row_q8_0),
// then, 4-byte aligned, float d[nb] (each block's fp16 scale widened) and int32 sum[nb] (sum of
// the block's 32 quants): SIMD kernels use them to skip a conversion per block and to apply the
// -8 / -16 offset of Q4_0 / Q5_0 (and the min of Q4_1 / Q5_1) once per block. Scalar ignores them.
constexpr size_t q8_0_aux_offset(int64_t nb) { return (static_cast<size_t>(nb) * 34 + 3) & ~static_cast<size_t>(3); }
// ... then, 32-byte aligned (zero padding before), a copy of every block's 32 quants: x86 kernels
// load them aligned instead of from the 34-byte blocks (every other load there splits a cache line).
// The row size is a multiple of 32, so consecutive rows in a 32-byte aligned buffer stay aligned.
constexpr size_t q8_0_qa_offset(int64_t nb) { return (q8_0_aux_offset(nb) + static_cast<size_t>(nb) * 8 + 31) & ~static_cast<size_t>(31); }
// ... then the same quants regrouped for the x86 Q4_0 / Q5_0 kernels, which take two weight blocks
// per 256-bit register: per group of 8 blocks (the last one zero-padded), 4 block pairs of 64 bytes
// ([x_2k[0:16] | x_2k+1[0:16]] then [x_2k[16:32] | x_2k+1[16:32]]), then the 8 blocks' d (f32) and
// sum (int32) in the lane order those kernels reduce to: blocks 0, 2, 4, 6, 1, 3, 5, 7.
constexpr int64_t q8_0_groups(int64_t nb) { return (nb + 7) / 8; }
constexpr size_t kQ8GroupBytes = 320;
constexpr int kQ8GroupLane[8] = {0, 4, 1, 5, 2, 6, 3, 7};   // block k of a group -> its lane
constexpr size_t q8_0_qg_offset(int64_t nb) { return q8_0_qa_offset(nb) + static_cast<size_t>(nb) * 32; }
}  // namespace
// Fills the grouped copy of a Q8_0 activation row from its blocks and aux arrays (kernels_scalar.cpp;
// every quantizer calls it, so the bytes are the same on every path).
void fill_q8_0_groups(uint8_t* row, int64_t nb);

// Rows [r0, r1) of W (row r at W + r*row_bytes), all n_tok activation rows (row t at X + t*x_stride,
// already in act_for(type) format); writes Y[t*y_stride + r].
using MatFn = void (*)(const uint8_t* W, size_t row_bytes, int64_t r0, int64_t r1, int64_t cols,
                       const uint8_t* X, size_t x_stride, int64_t n_tok, float* Y, int64_t y_stride);

// Attention's value mix for n_p heads sharing V: out[h*out_stride + i] = sum_{j in [j0, j1)}
// p[h*p_stride + j] * V[j][i], V row j = n values of the cache type at V + j*row_bytes.
// Accumulates in f32, j in order, each output lane on its own (independent of n_p).
using MixFn = void (*)(const uint8_t* V, size_t row_bytes, int64_t j0, int64_t j1, int64_t n, const float* p,
                       int64_t p_stride, int64_t n_p, float* out, int64_t out_stride);

// GELU through an fp16-indexed table (ggml's GGML_GELU_FP16), times a gate: x[i] = gelu(x[i]) * g[i]
// with gelu(x) = 0 for x <= -10, x for x >= 10, else table[fp16(x)] (table: 65536 floats, indexed
// by the fp16 bits of x, rounded to nearest even).
using GegluFn = void (*)(const float* table, float* x, const float* g, int64_t n);

// Attention softmax in place over s[lo..hi] (inclusive), as ggml computes it: s *= scale, e =
// ggml's vector expf(s - max) (ARM optimized-routines' expf, FMAs included), the sum taken over the
// cache cells in groups of 8 aligned to index 0 (each group in float, _mm256 hsum order; groups in
// double), s = e * (float)(1/sum); then, if round_f16, each probability rounded to fp16 (f16 cache).
using SoftmaxFn = void (*)(float* s, int64_t lo, int64_t hi, float scale, bool round_f16);

// dst[i] = src[i] rounded to fp16 (nearest even) and back: what ggml does to a query before an f16
// K cache dot product.
using RoundF16Fn = void (*)(const float* src, float* dst, int64_t n);

constexpr int kMaxType = 40;
struct KernelTable {
  Isa isa = Isa::Scalar;
  MatFn fn[kMaxType] = {};
  bool native[kMaxType] = {};
  // llama.cpp's prompt-batch accumulation where it differs from its one-token order (Q4_K, Q6_K;
  // scalar only, see kernels_scalar.cpp): used by matmul(..., llama_batch = true). Rows computed
  // this way depend on the batch size, so they are not bit-identical to matvec.
  MatFn batch[kMaxType] = {};
  MixFn mix_f16 = nullptr, mix_f32 = nullptr;
  GegluFn geglu = nullptr;
  SoftmaxFn softmax = nullptr;
  RoundF16Fn round_f16 = nullptr;
  // Out of line (kernels_scalar.cpp) so ISA files never emit their own copy of shared code.
  void set(GgmlType t, MatFn f);
};

const KernelTable& table_scalar();
#ifdef EE_HAVE_AVX2
const KernelTable& table_avx2();
#endif
#ifdef EE_HAVE_AVX512
const KernelTable& table_avx512();
#endif
#ifdef EE_HAVE_NEON
const KernelTable& table_neon();
#endif
#ifdef EE_HAVE_DOTPROD
const KernelTable& table_dotprod();
#endif

// Table for an ISA; throws IsaError if the path is not compiled in or the CPU lacks it.
const KernelTable& table_for(Isa isa);

}  // namespace kern
}  // namespace ee
