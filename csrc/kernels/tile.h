// Internal, included by each kernels_<isa>.cpp: the row/token loop around a dot-product functor.
//   struct Dot { static float dot(const uint8_t* w_row, const uint8_t* x_row, int64_t cols); };
// Tokens are walked in tiles of kTokTile so a weight row (a few KB at most) stays in L1 while it is
// used for every token of the tile; the activations of a tile stay in L1/L2.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace ee {
namespace kern {
namespace {   // internal linkage: each ISA file instantiates its own copy with its own flags

constexpr int64_t kTokTile = 16;

// Optional: static void Dot::dot2(w_row, x_row0, x_row1, cols, float out[2]) computes two tokens per
// pass over the weight row (sharing its unpack and scale conversion); used for token pairs.
template <class Dot, class = void> struct has_dot2 : std::false_type {};
template <class Dot>
struct has_dot2<Dot, std::void_t<decltype(Dot::dot2(nullptr, nullptr, nullptr, int64_t{0}, static_cast<float*>(nullptr)))>>
    : std::true_type {};

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
      int64_t t = t0;
      if constexpr (has_dot2<Dot>::value) {
        for (; t + 2 <= t1; t += 2) {
          float out[2];
          Dot::dot2(w, X + static_cast<size_t>(t) * x_stride, X + static_cast<size_t>(t + 1) * x_stride, cols, out);
          Y[t * y_stride + r] = out[0];
          Y[(t + 1) * y_stride + r] = out[1];
        }
      }
      for (; t < t1; ++t) Y[t * y_stride + r] = Dot::dot(w, X + static_cast<size_t>(t) * x_stride, cols);   // odd token
    }
  }
}

}  // namespace
}  // namespace kern
}  // namespace ee
