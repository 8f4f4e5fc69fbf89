// Internal, included by each kernels_<isa>.cpp: the row/token loop around a dot-product functor.
//   struct Dot { static float dot(const uint8_t* w_row, const uint8_t* x_row, int64_t cols); };
// One token (decode): rows in order with a software prefetch kPrefetchRows ahead (the weights come
// from DRAM once). Several tokens (prefill): tokens in tiles of kTokTile so a weight row (a few KB at
// most) stays in L1 while it is used for every token of the tile; the tile's activations stay in L1/L2.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace ee {
namespace kern {
namespace {   // internal linkage: each ISA file instantiates its own copy with its own flags

constexpr int64_t kTokTile = 16;
constexpr int64_t kPrefetchRows = 8;

// Optional: template <int R, int T> static void Dot::tile(const uint8_t* const* w /*R rows*/,
// const uint8_t* const* x /*T tokens*/, int64_t cols, float* out /*[R*T], out[r*T + t]*/) computes a
// register tile; each out[r*T + t] must be bit-identical to dot(w[r], x[t]). Dot::kRowsVec rows per
// pass for one token, Dot::kRows x Dot::kToks for prefill.
template <class Dot, class = void> struct has_tile : std::false_type {};
template <class Dot>
struct has_tile<Dot, std::void_t<decltype(&Dot::template tile<1, 1>)>> : std::true_type {};

// Optional: Dot::kExpand, expand(w_row, cols, dst), expanded_bytes(cols), kToksExpanded and
// tile_expanded<T>(dst, x, cols, out): prefill unpacks each weight row once per token tile into a
// buffer and runs T tokens at a time from it (same results as tile: the expansion is lossless).
template <class Dot, class = void> struct has_expand : std::false_type {};
template <class Dot>
struct has_expand<Dot, std::enable_if_t<Dot::kExpand>> : std::true_type {};

// Decode streams the weights from DRAM once: before rows [r, r + n) ask for the n rows
// kPrefetchRows ahead, so the loads overlap the dot products (Q8_0 262144x640 on Zen 2: 15.0 ->
// 18.5 GB/s, the measured read bandwidth; the hardware prefetcher alone stays ~8 rows short).
inline void prefetch_rows(const uint8_t* W, size_t row_bytes, int64_t r, int64_t r1, int64_t n) {
  if (r + kPrefetchRows >= r1) return;
  const char* pf = reinterpret_cast<const char*>(W + static_cast<size_t>(r + kPrefetchRows) * row_bytes);
  for (size_t off = 0; off < row_bytes * static_cast<size_t>(n); off += 64) __builtin_prefetch(pf + off, 0, 3);
}

template <class Dot, int R, int T>
inline void run_tile(const uint8_t* W, size_t row_bytes, int64_t r, int64_t cols, const uint8_t* X, size_t x_stride,
                     int64_t t, float* Y, int64_t y_stride) {
  const uint8_t* w[R];
  const uint8_t* x[T];
  float out[R * T];
  for (int i = 0; i < R; ++i) w[i] = W + static_cast<size_t>(r + i) * row_bytes;
  for (int j = 0; j < T; ++j) x[j] = X + static_cast<size_t>(t + j) * x_stride;
  Dot::template tile<R, T>(w, x, cols, out);
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < T; ++j) Y[(t + j) * y_stride + r + i] = out[i * T + j];
}

template <class Dot>
void mat_rows(const uint8_t* W, size_t row_bytes, int64_t r0, int64_t r1, int64_t cols,
              const uint8_t* X, size_t x_stride, int64_t n_tok, float* Y, int64_t y_stride) {
  if constexpr (has_tile<Dot>::value) {
    constexpr int RV = Dot::kRowsVec, R = Dot::kRows, T = Dot::kToks;
    if (n_tok == 1) {
      int64_t r = r0;
      for (; r + RV <= r1; r += RV) {
        prefetch_rows(W, row_bytes, r, r1, RV);
        run_tile<Dot, RV, 1>(W, row_bytes, r, cols, X, x_stride, 0, Y, y_stride);
      }
      for (; r < r1; ++r) run_tile<Dot, 1, 1>(W, row_bytes, r, cols, X, x_stride, 0, Y, y_stride);
      return;
    }
    if constexpr (has_expand<Dot>::value) {
      if (n_tok >= 2 * Dot::kToksExpanded) {   // expand each row once per token tile
        constexpr int TE = Dot::kToksExpanded;
        thread_local std::vector<uint8_t> ebuf;
        if (ebuf.size() < Dot::expanded_bytes(cols) + 32) ebuf.resize(Dot::expanded_bytes(cols) + 32);
        uint8_t* e = ebuf.data();
        for (int64_t t0 = 0; t0 < n_tok; t0 += kTokTile) {
          const int64_t t1 = n_tok < t0 + kTokTile ? n_tok : t0 + kTokTile;
          for (int64_t r = r0; r < r1; ++r) {
            const uint8_t* w = W + static_cast<size_t>(r) * row_bytes;
            Dot::expand(w, cols, e);
            int64_t t = t0;
            for (; t + TE <= t1; t += TE) {
              const uint8_t* x[TE];
              float out[TE];
              for (int j = 0; j < TE; ++j) x[j] = X + static_cast<size_t>(t + j) * x_stride;
              Dot::template tile_expanded<TE>(e, x, cols, out);
              for (int j = 0; j < TE; ++j) Y[(t + j) * y_stride + r] = out[j];
            }
            for (; t < t1; ++t) run_tile<Dot, 1, 1>(W, row_bytes, r, cols, X, x_stride, t, Y, y_stride);
          }
        }
        return;
      }
    }
    for (int64_t t0 = 0; t0 < n_tok; t0 += kTokTile) {
      const int64_t t1 = n_tok < t0 + kTokTile ? n_tok : t0 + kTokTile;
      int64_t r = r0;
      for (; r + R <= r1; r += R) {
        int64_t t = t0;
        for (; t + T <= t1; t += T) run_tile<Dot, R, T>(W, row_bytes, r, cols, X, x_stride, t, Y, y_stride);
        for (; t < t1; ++t) run_tile<Dot, R, 1>(W, row_bytes, r, cols, X, x_stride, t, Y, y_stride);
      }
      for (; r < r1; ++r) {
        int64_t t = t0;
        for (; t + T <= t1; t += T) run_tile<Dot, 1, T>(W, row_bytes, r, cols, X, x_stride, t, Y, y_stride);
        for (; t < t1; ++t) run_tile<Dot, 1, 1>(W, row_bytes, r, cols, X, x_stride, t, Y, y_stride);
      }
    }
  } else {
    if (n_tok == 1) {
      for (int64_t r = r0; r < r1; ++r) {
        prefetch_rows(W, row_bytes, r, r1, 1);
        Y[r] = Dot::dot(W + static_cast<size_t>(r) * row_bytes, X, cols);
      }
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
}

}  // namespace
}  // namespace kern
}  // namespace ee
