// GGUF v2/v3 reader: validates everything, copies nothing.
//
// A File is parsed from (ptr, size) bytes; File::open() memory-maps a path read-only (POSIX mmap)
// and owns the map, File::from_buffer() borrows bytes kept alive by an optional owner. Tensor
// data and metadata values are views into those bytes. Every malformed input throws GGUFError
// (a std::runtime_error) whose message names the field and the absolute byte offset, e.g.
//   "GGUF: tensor[3] 'blk.0.attn_q.weight' offset at offset 1234: 7 is not a multiple of the alignment 32"
//
// What "valid" means here (checked once, at parse time, so readers of a File never re-check):
//  - magic "GGUF", version 2 or 3 (little-endian only; a byte-swapped file gets its own message);
//  - n_kv / n_tensors no larger than the remaining bytes could hold (smallest KV: 14 bytes,
//    smallest tensor info: 33 bytes) -- checked before anything is reserved, so heap use is
//    linear in the bytes actually present, never in a count the file claims;
//  - at most 2^32 - 1 KVs and tensors; keys: non-empty, <= 65535 bytes, valid UTF-8, unique; value types 0..12; bools are 0 or 1
//    (anything else is undefined behaviour for C++ bool readers); strings and arrays inside the
//    file (count x element size checked against the remaining bytes without overflow); arrays
//    nest at most kMaxArrayDepth levels (bounded recursion);
//  - general.alignment: UINT32, a power of two, 1 <= a <= kMaxAlignment (default 32);
//  - tensor infos: unique non-empty UTF-8 names, 1 <= n_dims <= 4, every dimension in
//    [1, INT64_MAX], the element count and the byte size computed without overflow, known ggml
//    type id (csrc/quant/types.h; removed ids rejected), ne[0] a multiple of the block size,
//    offset a multiple of the alignment, offset + size without overflow and inside the data
//    section, no two tensors overlapping;
//  - the data section starts (aligned) inside the file.
// Not checked: UTF-8 validity of string *values* (exposed as raw bytes; decoders decide).
// Not preventable by any mmap reader: another process truncating the file while it is mapped
// makes later reads of the lost pages raise SIGBUS (llama.cpp has the same limit).
//
// Example (C++):
//   auto f = ee::gguf::File::open("model.gguf");
//   uint32_t n_layer = f->get_u32("gemma3.block_count");
//   const ee::gguf::TensorInfo& t = f->tensor("token_embd.weight");  // t.data points into the map
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "quant/types.h"

namespace ee::gguf {

// Malformed file: message names the field and the byte offset; field()/offset() expose both.
class GGUFError : public std::runtime_error {
 public:
  GGUFError(std::string field, uint64_t offset, const std::string& what);
  const std::string& field() const noexcept { return field_; }
  uint64_t offset() const noexcept { return offset_; }

 private:
  std::string field_;
  uint64_t offset_;
};

// The file could not be opened / mapped (not a format problem): carries errno.
class OpenError : public std::runtime_error {
 public:
  OpenError(int err, std::string path, const std::string& what)
      : std::runtime_error(what), errno_(err), path_(std::move(path)) {}
  int error_code() const noexcept { return errno_; }
  const std::string& path() const noexcept { return path_; }

 private:
  int errno_;
  std::string path_;
};

// Metadata value types, numbered as in the GGUF spec.
enum class ValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* value_type_name(ValueType t);  // "UINT8" ... "FLOAT64"
size_t value_type_size(ValueType t);       // bytes of a fixed-size scalar; 0 for STRING / ARRAY

constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kMaxAlignment = 1u << 20;  // larger is "absurd": rejected
constexpr int kMaxArrayDepth = 8;             // arrays of arrays ... at most this deep
constexpr uint64_t kMaxKeyLength = 65535;     // GGUF spec: keys are at most 2^16-1 bytes

class File;

// A validated array value inside the file. Fixed-size element arrays are contiguous
// (data, count * value_type_size(elem)); STRING / ARRAY elements are variable-size and are reached
// through element_offsets() or the walking accessors.
struct ArrayView {
  ValueType elem = ValueType::UINT8;
  uint64_t count = 0;
  uint64_t offset = 0;           // absolute offset of the first element
  uint64_t nbytes = 0;           // bytes of all elements
  const uint8_t* data = nullptr; // == file base + offset

  // Absolute offsets of every element (STRING / ARRAY arrays); for fixed-size arrays, too.
  std::vector<uint64_t> element_offsets() const;
  // Element i as a string (elem == STRING) or a nested array (elem == ARRAY): O(i) walk; use
  // element_offsets() + File::string_at / array_at for random access over many elements.
  std::string_view string(uint64_t i) const;
  ArrayView array(uint64_t i) const;
  std::vector<std::string_view> strings() const;  // all elements of a STRING array
};

// One key/value pair. The value is `type` at value_offset (after the 4-byte type id).
struct KV {
  std::string_view key;
  ValueType type;
  uint64_t offset;        // absolute offset of the entry (its key length)
  uint64_t value_offset;  // absolute offset of the value
  uint64_t value_bytes;   // bytes the value occupies
};

struct TensorInfo {
  std::string_view name;
  GgmlType type;
  uint32_t n_dims;        // 1..4
  int64_t ne[4];          // ggml order: ne[0] is the row length (innermost); unused dims are 1
  uint64_t n_elements;
  uint64_t nbytes;
  uint64_t rel_offset;    // offset inside the data section, as stored in the file
  uint64_t offset;        // absolute file offset (data_offset + rel_offset)
  uint64_t info_offset;   // absolute offset of this tensor's info entry (its name length)
  const uint8_t* data;    // points into the file bytes (the map)
};

class File {
 public:
  // mmap `path` read-only (PROT_READ, MAP_PRIVATE) and parse it; throws OpenError / GGUFError.
  static std::shared_ptr<const File> open(const std::string& path);
  // Parse bytes owned elsewhere; `owner` (may be null) is kept alive as long as the File.
  static std::shared_ptr<const File> from_buffer(const uint8_t* data, size_t size,
                                                 std::shared_ptr<const void> owner = {});
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const uint8_t* base() const { return base_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // ---- metadata
  const std::vector<KV>& kvs() const { return kvs_; }   // file order
  const KV* find(std::string_view key) const;           // nullptr when absent
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // Typed getters; throw GGUFError when the key is absent, of another kind, or out of range.
  // Integer getters accept any integer type whose value fits (no wrap-around); get_f32 accepts
  // FLOAT32 or FLOAT64; get_f64 also any integer.
  uint32_t get_u32(std::string_view key) const;
  int32_t get_i32(std::string_view key) const;
  uint64_t get_u64(std::string_view key) const;
  int64_t get_i64(std::string_view key) const;
  float get_f32(std::string_view key) const;
  double get_f64(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  std::string_view get_str(std::string_view key) const;
  ArrayView get_arr(std::string_view key) const;
  // Same with a default for an absent key (a present key of the wrong kind still throws).
  uint32_t get_u32(std::string_view key, uint32_t dflt) const;
  float get_f32(std::string_view key, float dflt) const;
  bool get_bool(std::string_view key, bool dflt) const;
  std::string_view get_str(std::string_view key, std::string_view dflt) const;

  // Scalar decoders for a KV (or an array element) of the given type at an absolute offset.
  int64_t int_at(ValueType t, uint64_t offset) const;      // UINT8..INT64 except UINT64 > INT64_MAX
  uint64_t uint_at(ValueType t, uint64_t offset) const;    // UINT8..UINT64, non-negative values
  double float_at(ValueType t, uint64_t offset) const;     // FLOAT32 / FLOAT64
  std::string_view string_at(uint64_t offset) const;       // a string whose length field is at offset
  ArrayView array_at(uint64_t offset, int depth = 1) const;  // an array whose elem-type field is at offset

  // ---- tensors
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // file order
  const TensorInfo* find_tensor(std::string_view name) const;
  const TensorInfo& tensor(std::string_view name) const;  // throws GGUFError when absent

 private:
  File() = default;
  void parse();
  const KV& require(std::string_view key, const char* want) const;

  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  std::shared_ptr<const void> owner_;  // keeps the bytes alive (the mapping, or a caller's buffer)
  std::string path_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<KV> kvs_;
  std::vector<TensorInfo> tensors_;
  // Indices sorted by name: O(n log n) duplicate detection and O(log n) lookups whatever the
  // names are (no hash table an attacker could flood with colliding keys).
  std::vector<uint32_t> kv_sorted_;
  std::vector<uint32_t> tensor_sorted_;
  friend struct Parser;
};

}  // namespace ee::gguf
