// GGUF reader without Python: the C++ API the engine uses, malformed inputs, truncation at every
// byte, and the mmap path. Also cross-built for aarch64 / armhf (32-bit size_t) and run under qemu.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gguf/gguf.h"

using namespace ee;
using namespace ee::gguf;

namespace {

// Little-endian GGUF byte builder; remembers where each field went so tests can patch it.
struct Builder {
  std::vector<uint8_t> b;
  size_t u32(uint32_t v) { size_t at = b.size(); for (int i = 0; i < 4; ++i) b.push_back(uint8_t(v >> (8 * i))); return at; }
  size_t u64(uint64_t v) { size_t at = b.size(); for (int i = 0; i < 8; ++i) b.push_back(uint8_t(v >> (8 * i))); return at; }
  size_t str(const std::string& s) { size_t at = u64(s.size()); b.insert(b.end(), s.begin(), s.end()); return at; }
  void f32(float f) { uint32_t v; std::memcpy(&v, &f, 4); u32(v); }
  void set_u64(size_t at, uint64_t v) { for (int i = 0; i < 8; ++i) b[at + i] = uint8_t(v >> (8 * i)); }
  void set_u32(size_t at, uint32_t v) { for (int i = 0; i < 4; ++i) b[at + i] = uint8_t(v >> (8 * i)); }
};

struct Sample {
  std::vector<uint8_t> bytes;
  size_t n_kv_at, key_block_count, tok_count_at, w_dims_at, w_type_at, q_offset_at, data_offset;
};

// 5 KVs, 2 tensors (F32 4x2 at 0, Q8_0 32x1 at 32); the file ends right after the last tensor.
Sample sample() {
  Builder w;
  Sample s{};
  w.b.insert(w.b.end(), {'G', 'G', 'U', 'F'});
  w.u32(3);
  w.u64(2);
  s.n_kv_at = w.u64(5);
  w.str("general.architecture"); w.u32(8); w.str("llama");
  s.key_block_count = w.str("llama.block_count"); w.u32(4); w.u32(18);
  w.str("k.i8"); w.u32(1); w.b.push_back(uint8_t(-3));
  w.str("k.f32"); w.u32(6); w.f32(0.5f);
  w.str("tok"); w.u32(9); w.u32(8); s.tok_count_at = w.u64(2); w.str("a"); w.str("bc");
  w.str("w"); w.u32(2); s.w_dims_at = w.u64(4); w.u64(2); s.w_type_at = w.u32(0); w.u64(0);
  w.str("q"); w.u32(1); w.u64(32); w.u32(8); s.q_offset_at = w.u64(32);
  while (w.b.size() % 32) w.b.push_back(0);
  s.data_offset = w.b.size();
  for (int i = 0; i < 32 + 34; ++i) w.b.push_back(uint8_t(i));
  s.bytes = w.b;
  return s;
}

std::shared_ptr<const File> parse(const std::vector<uint8_t>& bytes) {
  // an exact-size heap copy, so ASan / valgrind would flag any read past the end
  auto own = std::make_shared<std::vector<uint8_t>>(bytes);
  return File::from_buffer(own->data(), own->size(), own);
}

void expect_error(const std::vector<uint8_t>& bytes, const std::string& field, uint64_t offset) {
  try {
    parse(bytes);
    FAIL("no GGUFError for field " << field);
  } catch (const GGUFError& e) {
    CHECK_MESSAGE(e.field().find(field) != std::string::npos, e.what());
    CHECK_MESSAGE(e.offset() == offset, e.what());
    CHECK(std::string(e.what()).find("at offset " + std::to_string(offset)) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("gguf: typed getters and tensors of a valid file") {
  const Sample s = sample();
  auto f = parse(s.bytes);
  CHECK(f->version() == 3);
  CHECK(f->alignment() == 32);
  CHECK(f->data_offset() == s.data_offset);
  CHECK(f->kvs().size() == 5);
  CHECK(f->get_str("general.architecture") == "llama");
  CHECK(f->get_u32("llama.block_count") == 18);
  CHECK(f->get_i32("k.i8") == -3);
  CHECK(f->get_f32("k.f32") == 0.5f);
  CHECK(f->get_u32("missing.key", 7u) == 7u);
  CHECK_THROWS_AS(f->get_u32("k.i8"), GGUFError);        // negative into unsigned
  CHECK_THROWS_AS(f->get_str("llama.block_count"), GGUFError);
  CHECK_THROWS_AS(f->get_u32("missing.key"), GGUFError);
  const ArrayView toks = f->get_arr("tok");
  CHECK(toks.elem == ValueType::STRING);
  CHECK(toks.count == 2);
  CHECK(toks.strings() == std::vector<std::string_view>{"a", "bc"});
  CHECK(toks.string(1) == "bc");
  const TensorInfo& w = f->tensor("w");
  CHECK(w.n_dims == 2);
  CHECK(w.ne[0] == 4);
  CHECK(w.ne[1] == 2);
  CHECK(w.ne[2] == 1);
  CHECK(w.nbytes == 32);
  CHECK(w.data == f->base() + s.data_offset);  // zero-copy
  const TensorInfo& q = f->tensor("q");
  CHECK(q.type == GgmlType::Q8_0);
  CHECK(q.nbytes == 34);
  CHECK(q.offset == s.data_offset + 32);
  CHECK(f->find_tensor("nope") == nullptr);
  CHECK_THROWS_AS(f->tensor("nope"), GGUFError);
}

TEST_CASE("gguf: truncation at every byte is a GGUFError") {
  const Sample s = sample();
  for (size_t n = 0; n < s.bytes.size(); ++n) {
    std::vector<uint8_t> cut(s.bytes.begin(), s.bytes.begin() + long(n));
    CHECK_THROWS_AS(parse(cut), GGUFError);
  }
}

TEST_CASE("gguf: malformed fields name themselves and their offset") {
  const Sample s = sample();
  {
    Builder w{s.bytes};
    w.set_u64(s.n_kv_at, ~uint64_t(0));
    expect_error(w.b, "n_kv", 16);
  }
  {
    Builder w{s.bytes};
    w.set_u64(s.tok_count_at, uint64_t(1) << 62);
    expect_error(w.b, "array count", s.tok_count_at);
  }
  {
    Builder w{s.bytes};  // 2^40 x 2^40 elements: the dimension product overflows int64
    w.set_u64(s.w_dims_at, uint64_t(1) << 40);
    w.set_u64(s.w_dims_at + 8, uint64_t(1) << 40);
    expect_error(w.b, "ne[1]", s.w_dims_at + 8);
  }
  {
    Builder w{s.bytes};
    w.set_u32(s.w_type_at, 4);  // Q4_2: removed from ggml
    expect_error(w.b, "type", s.w_type_at);
  }
  {
    Builder w{s.bytes};
    w.set_u64(s.q_offset_at, 0);  // overlaps "w"
    expect_error(w.b, "offset", s.q_offset_at);
  }
  {
    Builder w{s.bytes};
    w.set_u64(s.q_offset_at, ~uint64_t(0) - 31);  // aligned, offset + size wraps around
    expect_error(w.b, "offset", s.q_offset_at);
  }
}

TEST_CASE("gguf: File::open maps a file; errors carry errno") {
  const Sample s = sample();
  char path[] = "/tmp/ee_gguf_test_XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, s.bytes.data(), s.bytes.size()) == ssize_t(s.bytes.size()));
  close(fd);
  {
    auto f = File::open(path);
    CHECK(f->size() == s.bytes.size());
    CHECK(f->tensor("q").nbytes == 34);
    CHECK(f->tensor("q").data[0] == 32);  // the byte pattern written at data offset + 32
  }
  unlink(path);
  try {
    File::open(path);
    FAIL("no OpenError");
  } catch (const OpenError& e) {
    CHECK(e.error_code() == ENOENT);
  }
}
