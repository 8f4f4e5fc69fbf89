// Internal, included by each kernels_<isa>.cpp: the row/token loop around a dot-product functor.
//   struct Dot { static float dot(const uint8_t* w_row, const uint8_t* x_row, int64_t cols); };
// Tokens are walked in tiles of kTokTile so a weight row (a few KB at most) stays in L1 while it is
// used for every token of the tile; the activations of a tile stay in L1/L2.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ee {
namespace kern {
namespace {   // internal linkage: each ISA file instantiates its own copy with its own flags

constexpr int64_t kTokTile = 16;

template <class Dot>
void mat_rows(const uint8_t* W, size_t row_bytes, int64_t r0, int64_t r1, int64_t cols,
              const uint8_t* X, size_t x_stride, int64_t n_tok, float* Y, int64_t y_stride) {
  if (n_tok == 1) {
    for (int64_t r = r0; r < r1; ++r) Y[r] = Dot::dot(W + static_cast<size_t>(r) * row_bytes, X, cols);
    return;
  }
  for (int64_t t0 = 0; t0 < n_tok; t0 += kTokTile) {
    const int64_t t1 = n_tok < t0 + kTokTile ? n_tok : t0 + kTokTile;
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* w = W + static_cast<size_t>(r) * row_bytes;
      for (int64_t t = t0; t < t1; ++t) Y[t * y_stride + r] = Dot::dot(w, X + static_cast<size_t>(t) * x_stride, cols);
    }
  }
}

}  // namespace
}  // namespace kern
}  // namespace ee
