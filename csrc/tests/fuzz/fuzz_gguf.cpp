// libFuzzer harness for the GGUF reader (csrc/gguf). Built with clang + ASan + UBSan
// (ENIGMA_EDGE_FUZZ=ON, see scripts/test.d/30-fuzz-gguf.sh). Any input must either parse or
// throw GGUFError; anything else (crash, sanitizer report, other exception, huge malloc) is a bug.
// After a successful parse every accessor is exercised, so the "validated once" contract of
// gguf.h is fuzzed too: accessors must never read outside the buffer.
#include <cstddef>
#include <cstdint>

#include "gguf/gguf.h"

namespace gg = ee::gguf;

static volatile uint64_t g_sink;

static void touch_array(const gg::ArrayView& a, int depth) {
  const std::vector<uint64_t> offs = a.element_offsets();
  g_sink = g_sink + offs.size();
  if (a.count == 0) return;
  if (a.elem == gg::ValueType::STRING) {
    for (std::string_view s : a.strings()) g_sink = g_sink + s.size() + (s.empty() ? 0 : uint8_t(s.back()));
    g_sink = g_sink + a.string(a.count - 1).size();
  } else if (a.elem == gg::ValueType::ARRAY && depth < 16) {
    touch_array(a.array(0), depth + 1);
    touch_array(a.array(a.count - 1), depth + 1);
  } else if (a.nbytes) {
    g_sink = g_sink + a.data[0] + a.data[a.nbytes - 1];
  }
}

template <class F>
static void maybe(F&& f) {
  try {
    f();
  } catch (const gg::GGUFError&) {  // wrong type / out of range: a clean error is the contract
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::shared_ptr<const gg::File> f;
  try {
    f = gg::File::from_buffer(data, size);
  } catch (const gg::GGUFError&) {
    return 0;
  }
  for (const gg::KV& kv : f->kvs()) {
    maybe([&] { g_sink = g_sink + f->get_u32(kv.key); });
    maybe([&] { g_sink = g_sink + uint64_t(f->get_i32(kv.key)); });
    maybe([&] { g_sink = g_sink + f->get_u64(kv.key); });
    maybe([&] { g_sink = g_sink + uint64_t(f->get_i64(kv.key)); });
    maybe([&] { g_sink = g_sink + uint64_t(f->get_f32(kv.key) != 0); });
    maybe([&] { g_sink = g_sink + uint64_t(f->get_f64(kv.key) != 0); });
    maybe([&] { g_sink = g_sink + f->get_bool(kv.key); });
    maybe([&] { g_sink = g_sink + f->get_str(kv.key).size(); });
    maybe([&] { touch_array(f->get_arr(kv.key), 0); });
    if (f->find(kv.key) != &kv) __builtin_trap();
  }
  maybe([&] { g_sink = g_sink + f->get_u32("general.alignment", 32); });
  for (const gg::TensorInfo& t : f->tensors()) {
    if (&f->tensor(t.name) != &t) __builtin_trap();
    if (t.offset + t.nbytes > size || t.data != data + t.offset || t.offset % f->alignment()) __builtin_trap();
    g_sink = g_sink + t.data[0] + t.data[t.nbytes - 1];
  }
  return 0;
}
