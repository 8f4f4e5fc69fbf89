// The AVX-512 kernels compiled on SIMDe (portable implementations of the intrinsics) and checked
// against scalar, so the path is tested on machines whose CPU lacks AVX-512 (where the real
// path is also present, test_kernels.cpp checks it natively). Needs Debian's libsimde-dev.
#include <doctest/doctest.h>

#if defined(__x86_64__) && __has_include(<simde/x86/avx512.h>) && defined(EE_HAVE_AVX2)
// SIMDe returns 64-byte vector structs from internal functions: harmless ABI note, silenced
#pragma GCC diagnostic ignored "-Wpsabi"
#define EE_X86_SIMDE 1
#define EE_AVX512_TABLE table_avx512_emulated
namespace ee { namespace kern { struct KernelTable; const KernelTable& table_avx512_emulated(); } }
#include "kernels/kernels_avx512.cpp"

#include <cmath>
#include <random>
#include <vector>

#include "quant/quant.h"

TEST_CASE("AVX-512 kernels (on SIMDe) match scalar") {
  using namespace ee;
  using namespace ee::kern;
  if (!isa_available(Isa::Avx2)) { MESSAGE("no AVX2: the emulated table inherits AVX2 entries; skipped"); return; }
  const KernelTable& emu = table_avx512_emulated();
  const KernelTable& ref = table_scalar();
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
    REQUIRE(emu.native[static_cast<int>(t)]);
    const int64_t bs = ggml_type_traits(t).block;
    for (int64_t nblk : {1, 3, 4, 7}) {
      const int64_t cols = nblk * bs, rows = 5, n_tok = 3;
      const size_t rb = ggml_row_bytes(t, cols);
      std::vector<float> wf(static_cast<size_t>(rows * cols)), X(static_cast<size_t>(n_tok * cols));
      for (float& v : wf) v = nd(rng);
      for (float& v : X) v = nd(rng);
      std::vector<uint8_t> w(rb * rows);
      for (int64_t r = 0; r < rows; ++r) quantize_row(t, wf.data() + r * cols, w.data() + r * rb, cols);
      const Act act = act_for(t);
      const size_t xs = act_row_bytes(act, cols);
      std::vector<uint8_t> xq(xs * n_tok + 64);
      for (int64_t k = 0; k < n_tok; ++k) quantize_act(act, X.data() + k * cols, xq.data() + k * xs, cols);
      std::vector<float> y0(static_cast<size_t>(rows * n_tok)), y1(y0.size());
      ref.fn[static_cast<int>(t)](w.data(), rb, 0, rows, cols, xq.data(), xs, n_tok, y0.data(), rows);
      emu.fn[static_cast<int>(t)](w.data(), rb, 0, rows, cols, xq.data(), xs, n_tok, y1.data(), rows);
      for (size_t i = 0; i < y0.size(); ++i) {
        INFO(ggml_type_traits(t).name << " blocks " << nblk << " i " << i);
        REQUIRE(std::fabs(y0[i] - y1[i]) <= 1e-5f * (std::fabs(y0[i]) + 10.f * std::sqrt(static_cast<float>(cols))));
      }
    }
  }
}
#else
TEST_CASE("AVX-512 kernels (on SIMDe) match scalar") {
#if defined(__x86_64__)
  FAIL("libsimde-dev is missing (scripts/system-packages.sh test installs it)");
#else
  MESSAGE("not x86: nothing to emulate");
#endif
}
#endif
