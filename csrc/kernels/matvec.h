// Quantized matrix-vector (decode) and matrix-matrix (prefill) products on GGUF weights.
//
//   ee::ThreadPool pool(2);
//   ee::matvec(ee::GgmlType::Q4_K, W, rows, cols, x, y, pool);   // y[r] = sum_c W[r,c] x[c]
//
// The activation is quantized once per call (Q8_0 for the 32-blocks, Q8_K for the K types; float
// for F32/F16/BF16 weights) into a per-thread scratch buffer that only grows; the dot products are
// integer. Rows are split across the pool's active workers in contiguous ranges.
#pragma once
#include <cstdint>
#include <vector>

#include "quant/types.h"
#include "runtime/cpu.h"
#include "runtime/threadpool.h"

namespace ee {

// W: rows x cols, GGUF row-major (row r at (const uint8_t*)W + r*ggml_row_bytes(wt, cols)).
// y[r] = sum_c W[r,c]*x[c]   (x: cols floats, y: rows floats).
void matvec(GgmlType wt, const void* W, int64_t rows, int64_t cols, const float* x, float* y, ThreadPool& pool);
// Y[t,r] = sum_c W[r,c]*X[t,c]  (X: n_tok x cols row-major, Y: n_tok x rows row-major).
// llama_batch: for n_tok > 1 use llama.cpp's batch-size-dependent accumulation where a kernel table
// has one (KernelTable::batch); default false keeps every row bit-identical to matvec.
void matmul(GgmlType wt, const void* W, int64_t rows, int64_t cols, const float* X, int64_t n_tok, float* Y, ThreadPool& pool,
            bool llama_batch = false);

// Same with an explicit kernel path (tests compare every path against Isa::Scalar).
// Throws IsaError if the path is unavailable, QuantError / std::invalid_argument on bad shapes.
void matmul_isa(Isa isa, GgmlType wt, const void* W, int64_t rows, int64_t cols, const float* X, int64_t n_tok,
                float* Y, ThreadPool& pool, bool llama_batch = false);

// Attention over a KV cache: cached row j (j in [j0, j1)) holds n values of `type` (F32, F16 or
// Q8_0) at base + j*row_bytes. Bound once to the default ISA's kernels; no allocation per call
// except a per-thread scratch for quantized queries (Q8_0) that only grows.
//
//   ee::AttnOps ops(ee::GgmlType::F16);
//   ops.scores(K, k_row_bytes, 0, n_past, head_dim, q, 1, s, n_past);   // s[j] = q . K[j]
//   ops.mix(V, v_row_bytes, 0, n_past, head_dim, p, n_past, 1, out, head_dim);   // out = sum_j p[j] V[j]
class AttnOps {
 public:
  explicit AttnOps(GgmlType type, Isa isa = default_isa());
  // S[g*s_stride + j] = dot(Q + g*n, row j) for g in [0, n_q): the matvec kernel of `type`, so a
  // query's scores do not depend on how many queries are computed together.
  void scores(const uint8_t* K, size_t row_bytes, int64_t j0, int64_t j1, int64_t n, const float* Q, int64_t n_q,
              float* S, int64_t s_stride) const;
  // out[h*out_stride + i] = sum_j p[h*p_stride + j] * row_j[i] for h in [0, n_p) (p indexed by j
  // like S), accumulated in f32 in order of j; a head's result does not depend on n_p.
  void mix(const uint8_t* V, size_t row_bytes, int64_t j0, int64_t j1, int64_t n, const float* p, int64_t p_stride,
           int64_t n_p, float* out, int64_t out_stride) const;
  // In place over s[lo..hi]: softmax of scale*s as ggml computes it (its vector expf, sums in groups
  // of 8 cells), probabilities rounded to fp16 for an F16 cache. Same result on every path.
  void softmax(float* s, int64_t lo, int64_t hi, float scale) const;
  // dst = the query as the cache type's dot product sees it: rounded to fp16 for an F16 cache,
  // copied otherwise. Same result on every path.
  void prepare_query(const float* q, float* dst, int64_t n) const;

 private:
  GgmlType type_;
  const void* table_;
};

// x[i] = gelu(x[i]) * g[i] through a GELU table indexed by the fp16 bits of x (65536 floats; ggml's
// GGML_GELU_FP16: 0 below -10, identity above 10). Same result on every path.
void geglu_table(const float* table, float* x, const float* g, int64_t n, Isa isa = default_isa());

// Types for which `isa` has its own kernel (the rest use the scalar kernel of that type).
std::vector<GgmlType> native_types(Isa isa);

}  // namespace ee
