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

// Types for which `isa` has its own kernel (the rest use the scalar kernel of that type).
std::vector<GgmlType> native_types(Isa isa);

}  // namespace ee
