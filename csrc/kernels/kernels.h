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

// Rows [r0, r1) of W (row r at W + r*row_bytes), all n_tok activation rows (row t at X + t*x_stride,
// already in act_for(type) format); writes Y[t*y_stride + r].
using MatFn = void (*)(const uint8_t* W, size_t row_bytes, int64_t r0, int64_t r1, int64_t cols,
                       const uint8_t* X, size_t x_stride, int64_t n_tok, float* Y, int64_t y_stride);

constexpr int kMaxType = 40;
struct KernelTable {
  Isa isa = Isa::Scalar;
  MatFn fn[kMaxType] = {};
  bool native[kMaxType] = {};
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
