// The kernels room's interface as the model uses it. When csrc/kernels and friends are present
// (after `git merge main`), their headers are used; until then a private scalar stand-in
// (kernels_tmp.cpp, serial "pool") lets the model compile and be tested.
#pragma once
#if __has_include("kernels/matvec.h") && __has_include("quant/quant.h") && __has_include("runtime/threadpool.h")
#include "kernels/matvec.h"
#include "quant/quant.h"
#include "runtime/threadpool.h"
#define EE_MODEL_TMP_KERNELS 0
#else
#define EE_MODEL_TMP_KERNELS 1
#include <cstdint>
#include "quant/types.h"
namespace ee {
class ThreadPool {
 public:
  explicit ThreadPool(int n) : n_(n < 1 ? 1 : n) {}
  int size() const { return n_; }
  void set_active(int n) { (void)n; }
  template <class F> void parallel_for(int64_t n, F&& fn) { if (n > 0) fn(int64_t(0), n, 0); }
 private:
  int n_;
};
void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n);
void quantize_row(GgmlType t, const float* src, void* dst, int64_t n);
void matvec(GgmlType wt, const void* W, int64_t rows, int64_t cols, const float* x, float* y, ThreadPool& pool);
void matmul(GgmlType wt, const void* W, int64_t rows, int64_t cols, const float* X, int64_t n_tok, float* Y, ThreadPool& pool);
}  // namespace ee
#endif
