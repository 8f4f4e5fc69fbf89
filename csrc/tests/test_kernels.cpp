// Kernel paths against the scalar reference, dispatch, thread pool, half conversions.
// Cross-built for aarch64/armv7 and run under qemu-user (scripts/test.d/20-kernels-arm.sh), which
// sets ENIGMA_EDGE_EXPECT_ISA to the path the emulated CPU must get (dotprod only on A76).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/matvec.h"
#include "quant/fp16.h"
#include "quant/quant.h"
#include "runtime/cpu.h"
#include "runtime/threadpool.h"

using namespace ee;

namespace {

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                           GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                           GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

std::vector<Isa> available_paths() {
  std::vector<Isa> out;
  for (int i = 0; i < static_cast<int>(Isa::Count); ++i)
    if (isa_available(static_cast<Isa>(i))) out.push_back(static_cast<Isa>(i));
  return out;
}

struct Shape { int64_t rows, cols; };
std::vector<Shape> shapes_for(GgmlType t) {
  const uint32_t bs = ggml_type_traits(t).block;
  if (bs == 1) return {{1, 1}, {7, 13}, {33, 67}, {5, 1024}};
  if (bs == 32) return {{1, 32}, {7, 96}, {33, 160}};
  return {{1, 256}, {7, 512}, {9, 768}};
}

}  // namespace

TEST_CASE("half conversions round-trip every fp16 value") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = half_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    REQUIRE(float_to_half(f) == h);
  }
  CHECK(float_to_half(65520.f) == 0x7c00);        // rounds up to inf
  CHECK(float_to_half(65519.f) == 0x7bff);
  CHECK(float_to_half(2.9802322e-08f) == 0x0000);  // exactly half the smallest subnormal: to even
  CHECK(float_to_bf16(1.0f) == 0x3f80);
}

TEST_CASE("legacy quantize/dequantize round trip is within half a step (+ fp16 scale rounding)") {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> x(256), y(256);
  for (float& v : x) v = nd(rng);
  std::vector<uint8_t> q(ggml_row_bytes(GgmlType::Q8_0, 256));
  quantize_row(GgmlType::Q8_0, x.data(), q.data(), 256);
  dequantize_row(GgmlType::Q8_0, q.data(), y.data(), 256);
  for (int b = 0; b < 8; ++b) {
    float amax = 0;
    for (int l = 0; l < 32; ++l) amax = std::max(amax, std::fabs(x[b * 32 + l]));
    for (int l = 0; l < 32; ++l) CHECK(std::fabs(x[b * 32 + l] - y[b * 32 + l]) <= amax / 254 * 1.07f + 1e-6f);
  }
  CHECK_THROWS_AS(dequantize_row(GgmlType::Q4_0, q.data(), y.data(), 33), QuantError);
  CHECK_THROWS_AS(dequantize_row(GgmlType::IQ2_XXS, q.data(), y.data(), 256), QuantError);
}

TEST_CASE("activation quantization: every path writes the scalar bytes (ties, zeros, signs)") {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t cols = 1024;
  std::vector<std::vector<float>> rows;
  for (int r = 0; r < 40; ++r) {
    std::vector<float> x(cols);
    for (auto& v : x) v = nd(rng) * (r % 5 == 0 ? 1000.f : 1.f);
    rows.push_back(x);
  }
  std::vector<float> special(cols, 0.f);   // block 0 all zeros; then exact .5 products and +-amax ties
  for (int64_t i = 256; i < cols; ++i) special[i] = static_cast<float>((i % 7) - 3) + 0.5f;
  special[300] = 127.f; special[301] = -127.f; special[600] = -127.f; special[700] = 63.5f;
  rows.push_back(special);
  for (kern::Act a : {kern::Act::Q8_0, kern::Act::Q8_K}) {
    const size_t bytes = kern::act_row_bytes(a, cols);
    for (const auto& x : rows) {
      std::vector<uint8_t> ref(bytes), got(bytes);
      kern::quantize_act(a, x.data(), ref.data(), cols);
      for (Isa isa : available_paths()) {
        std::fill(got.begin(), got.end(), 0xAA);
        kern::quantize_act_for(isa)(a, x.data(), got.data(), cols);
        CHECK_MESSAGE(std::memcmp(ref.data(), got.data(), bytes) == 0, isa_name(isa));
      }
    }
  }
}

TEST_CASE("every compiled kernel path matches scalar for every type and shape") {
  const std::vector<Isa> paths = available_paths();
  MESSAGE("paths on this CPU: " << [&] { std::string s; for (Isa i : paths) s += std::string(isa_name(i)) + " "; return s; }());
  std::mt19937 rng(42);
  std::normal_distribution<float> nd;
  ThreadPool pool3(3);
  for (GgmlType t : kTypes) {
    for (const Shape sh : shapes_for(t)) {
      std::vector<float> wf(static_cast<size_t>(sh.rows * sh.cols));
      for (float& v : wf) v = nd(rng);
      std::vector<uint8_t> w(ggml_row_bytes(t, sh.cols) * static_cast<size_t>(sh.rows));
      for (int64_t r = 0; r < sh.rows; ++r)
        quantize_row(t, wf.data() + r * sh.cols, w.data() + r * ggml_row_bytes(t, sh.cols), sh.cols);
      std::vector<float> deq(wf.size());
      for (int64_t r = 0; r < sh.rows; ++r)
        dequantize_row(t, w.data() + r * ggml_row_bytes(t, sh.cols), deq.data() + r * sh.cols, sh.cols);
      for (int64_t n_tok : {1, 3, 19}) {
        std::vector<float> X(static_cast<size_t>(n_tok * sh.cols));
        for (float& v : X) v = nd(rng);
        std::vector<float> ref(static_cast<size_t>(n_tok * sh.rows)), got(ref.size());
        ThreadPool pool1(1);
        matmul_isa(Isa::Scalar, t, w.data(), sh.rows, sh.cols, X.data(), n_tok, ref.data(), pool1);
        for (Isa isa : paths) {
          for (int threads : {1, 2, 3}) {
            pool3.set_active(threads);
            std::fill(got.begin(), got.end(), NAN);
            matmul_isa(isa, t, w.data(), sh.rows, sh.cols, X.data(), n_tok, got.data(), pool3);
            for (int64_t tk = 0; tk < n_tok; ++tk)
              for (int64_t r = 0; r < sh.rows; ++r) {
                double mag = 0;   // bound: 1e-5 relative to sum |w x|
                for (int64_t c = 0; c < sh.cols; ++c) mag += std::fabs(deq[r * sh.cols + c] * X[tk * sh.cols + c]);
                const float a = got[tk * sh.rows + r], b = ref[tk * sh.rows + r];
                INFO(ggml_type_traits(t).name << " " << isa_name(isa) << " " << sh.rows << "x" << sh.cols << " tok " << n_tok
                     << " thr " << threads);
                REQUIRE(std::fabs(a - b) <= 1e-5 * mag * 1.02 + 1e-5);
              }
          }
        }
      }
    }
  }
}

TEST_CASE("attention kernels: every path matches a double reference; scores do not depend on batching") {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  const int64_t hd = 96, n_rows = 37, stride_vals = 3 * hd, j0 = 5, n_q = 4;   // rows hold 3 heads; use head 1
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0}) {
    const size_t rb = ggml_row_bytes(t, stride_vals), off = ggml_row_bytes(t, hd);
    std::vector<float> kf(static_cast<size_t>(n_rows * stride_vals)), vf(kf.size()), q(static_cast<size_t>(n_q * hd)), p(n_rows);
    for (float& v : kf) v = nd(rng);
    for (float& v : vf) v = nd(rng);
    for (float& v : q) v = nd(rng);
    for (float& v : p) v = std::fabs(nd(rng)) / n_rows;
    std::vector<uint8_t> K(rb * n_rows), V(rb * n_rows);
    std::vector<float> kd(kf.size()), vd(vf.size());
    for (int64_t j = 0; j < n_rows; ++j) {
      quantize_row(t, &kf[j * stride_vals], &K[j * rb], stride_vals);
      quantize_row(t, &vf[j * stride_vals], &V[j * rb], stride_vals);
      dequantize_row(t, &K[j * rb], &kd[j * stride_vals], stride_vals);
      dequantize_row(t, &V[j * rb], &vd[j * stride_vals], stride_vals);
    }
    for (Isa isa : available_paths()) {
      INFO(ggml_type_traits(t).name << " " << isa_name(isa));
      const AttnOps ops(t, isa);
      std::vector<float> S(static_cast<size_t>(n_q * n_rows), NAN), S1(n_rows, NAN), out(hd, NAN);
      ops.scores(K.data() + off, rb, j0, n_rows, hd, q.data(), n_q, S.data(), n_rows);
      for (int64_t g = 0; g < n_q; ++g) {
        ops.scores(K.data() + off, rb, j0, n_rows, hd, q.data() + g * hd, 1, S1.data(), n_rows);
        for (int64_t j = j0; j < n_rows; ++j) {
          REQUIRE(S1[j] == S[g * n_rows + j]);   // bit-identical alone or batched
          double ref = 0, mag = 0;
          for (int64_t i = 0; i < hd; ++i) {
            ref += double(q[g * hd + i]) * kd[j * stride_vals + hd + i];
            mag += std::fabs(double(q[g * hd + i]) * kd[j * stride_vals + hd + i]);
          }
          const double tol = t == GgmlType::Q8_0 ? 0.02 * mag : 1e-5 * mag;   // Q8_0 also quantizes the query
          REQUIRE(std::fabs(S[g * n_rows + j] - ref) <= tol + 1e-6);
        }
      }
      ops.mix(V.data() + off, rb, j0, n_rows, hd, p.data(), n_rows, 1, out.data(), hd);
      for (int64_t i = 0; i < hd; ++i) {
        double ref = 0, mag = 0;
        for (int64_t j = j0; j < n_rows; ++j) {
          ref += double(p[j]) * vd[j * stride_vals + hd + i];
          mag += std::fabs(double(p[j]) * vd[j * stride_vals + hd + i]);
        }
        REQUIRE(std::fabs(out[i] - ref) <= 1e-5 * mag + 1e-7);
      }
      // n_q heads at once (probabilities n_rows apart): each head bit-identical to mixing it alone
      std::vector<float> P(static_cast<size_t>(n_q * n_rows)), outs(static_cast<size_t>(n_q * hd), NAN);
      for (float& v : P) v = std::fabs(nd(rng)) / n_rows;
      ops.mix(V.data() + off, rb, j0, n_rows, hd, P.data(), n_rows, n_q, outs.data(), hd);
      for (int64_t g = 0; g < n_q; ++g) {
        ops.mix(V.data() + off, rb, j0, n_rows, hd, P.data() + g * n_rows, n_rows, 1, out.data(), hd);
        for (int64_t i = 0; i < hd; ++i) REQUIRE(outs[g * hd + i] == out[i]);
      }
    }
  }
  CHECK_THROWS_AS(AttnOps(GgmlType::Q4_K), std::invalid_argument);
}

TEST_CASE("attention softmax and query rounding: every path equals the scalar definition bit for bit") {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.f, 30.f);
  std::vector<float> base(300);
  for (float& v : base) v = nd(rng);
  base[17] = -1e30f;   // far below the max: the exp's underflow lanes
  base[40] = 200.f;
  for (GgmlType t : {GgmlType::F16, GgmlType::F32}) {
    for (auto [lo, hi] : {std::pair<int64_t, int64_t>{0, 0}, {0, 7}, {3, 3}, {5, 12}, {0, 299}, {13, 290}, {9, 16}}) {
      std::vector<float> want = base;
      AttnOps(t, Isa::Scalar).softmax(want.data(), lo, hi, 0.0625f);
      double total = 0;
      for (int64_t j = lo; j <= hi; ++j) total += want[j];
      CHECK(total == doctest::Approx(1.0).epsilon(t == GgmlType::F16 ? 2e-3 : 1e-5));
      for (Isa isa : available_paths()) {
        INFO(ggml_type_traits(t).name << " " << isa_name(isa) << " [" << lo << ", " << hi << "]");
        std::vector<float> got = base;
        AttnOps(t, isa).softmax(got.data(), lo, hi, 0.0625f);
        for (size_t j = 0; j < got.size(); ++j) REQUIRE(std::memcmp(&got[j], &want[j], 4) == 0);
        // the query's rounding for the cache type: fp16 nearest-even for F16, untouched for F32
        std::vector<float> q(base.size());
        AttnOps(t, isa).prepare_query(base.data(), q.data(), static_cast<int64_t>(q.size()));
        for (size_t j = 0; j < q.size(); ++j)
          REQUIRE(q[j] == (t == GgmlType::F16 ? half_to_float(float_to_half(base[j])) : base[j]));
      }
    }
  }
}

TEST_CASE("GELU table kernel: every path equals the scalar definition bit for bit") {
  std::vector<float> table(65536);
  for (int i = 0; i < 65536; ++i) table[i] = half_to_float(static_cast<uint16_t>(i)) * 0.75f + 0.125f;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 6.f);
  std::vector<float> x(1003), g(x.size());
  for (float& v : x) v = nd(rng);
  for (float& v : g) v = nd(rng);
  x[0] = -10.f; x[1] = 10.f; x[2] = -10.0001f; x[3] = 9.999f; x[4] = 0.f; x[5] = 65504.f; x[6] = 1e-8f;
  std::vector<float> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const float v = x[i];
    want[i] = (v <= -10.f ? 0.f : v >= 10.f ? v : table[float_to_half(v)]) * g[i];
  }
  for (Isa isa : available_paths()) {
    INFO(isa_name(isa));
    std::vector<float> got = x;
    geglu_table(table.data(), got.data(), g.data(), static_cast<int64_t>(got.size()), isa);
    for (size_t i = 0; i < x.size(); ++i) REQUIRE(got[i] == want[i]);
  }
}

TEST_CASE("dispatch: the default path is the best available, dotprod only with asimddp") {
  const CpuInfo ci = cpu_info();
  std::string feats;
  for (const auto& f : ci.features) feats += f + " ";
  MESSAGE("arch=" << ci.arch << " features=" << feats << " isa=" << ci.isa);
  const bool has_dp = std::find(ci.features.begin(), ci.features.end(), "asimddp") != ci.features.end();
  CHECK((ci.isa == "dotprod") == (has_dp && isa_available(Isa::Dotprod)));
  if (const char* want = std::getenv("ENIGMA_EDGE_EXPECT_ISA")) CHECK(ci.isa == std::string(want));
#if defined(__aarch64__)
  CHECK(isa_available(Isa::Neon));
#endif
}

TEST_CASE("ENIGMA_EDGE_ISA forces a path; an unavailable one is a clear error") {
  const char* old = std::getenv("ENIGMA_EDGE_ISA");
  std::string saved = old ? old : "";
  setenv("ENIGMA_EDGE_ISA", "scalar", 1);
  CHECK(default_isa() == Isa::Scalar);
  for (Isa isa : {Isa::Avx2, Isa::Avx512, Isa::Neon, Isa::Dotprod}) {
    if (isa_available(isa)) continue;
    setenv("ENIGMA_EDGE_ISA", isa_name(isa), 1);
    try {
      default_isa();
      FAIL("no error for " << isa_name(isa));
    } catch (const IsaError& e) {
      CHECK(std::string(e.what()).find("not available") != std::string::npos);
    }
    ThreadPool pool(1);
    float x[32] = {}, y[1];
    uint8_t w[34] = {};
    CHECK_THROWS_AS(matvec(GgmlType::Q8_0, w, 1, 32, x, y, pool), IsaError);
  }
  setenv("ENIGMA_EDGE_ISA", "sse9", 1);
  CHECK_THROWS_AS(default_isa(), IsaError);
  if (old) setenv("ENIGMA_EDGE_ISA", saved.c_str(), 1); else unsetenv("ENIGMA_EDGE_ISA");
}

TEST_CASE("thread pool covers the range once, honours set_active, propagates errors") {
  ThreadPool pool(3);
  CHECK(pool.size() == 3);
  for (int act : {1, 2, 3}) {
    pool.set_active(act);
    for (int64_t n : {1, 2, 5, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> max_worker{0};
      pool.parallel_for(n, [&](int64_t b, int64_t e, int w) {
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
        int m = max_worker.load();
        while (w > m && !max_worker.compare_exchange_weak(m, w)) {}
      });
      for (auto& h : hits) REQUIRE(h.load() == 1);
      CHECK(max_worker.load() < act);
    }
  }
  pool.set_active(3);
  CHECK_THROWS_AS(pool.parallel_for(10, [](int64_t b, int64_t, int) { if (b > 0) throw std::runtime_error("boom"); }),
                  std::runtime_error);
  CHECK_THROWS_AS(pool.parallel_for(4, [&](int64_t, int64_t, int) { pool.parallel_for(2, [](int64_t, int64_t, int) {}); }),
                  std::logic_error);
  pool.set_active(1);
  CHECK_THROWS_AS(pool.parallel_for(4, [&](int64_t, int64_t, int) { pool.parallel_for(2, [](int64_t, int64_t, int) {}); }),
                  std::logic_error);
  pool.set_active(3);
  int calls = 0;
  pool.parallel_for(0, [&](int64_t, int64_t, int) { ++calls; });
  CHECK(calls == 0);
  CHECK_THROWS_AS(ThreadPool(0), std::invalid_argument);
}
