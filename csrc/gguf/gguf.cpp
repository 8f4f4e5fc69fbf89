// GGUF reader: see gguf.h for the contract. Parsing is one forward pass over the bytes with a
// bounds-checked cursor; every count is checked against the bytes that remain before it is used
// to size anything, and every product / sum goes through an overflow-checked helper.
#include "gguf/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>

namespace ee::gguf {

namespace {

std::string format_error(const std::string& field, uint64_t offset, const std::string& what) {
  return "GGUF: " + field + " at offset " + std::to_string(offset) + ": " + what;
}

// Little-endian loads (GGUF is little-endian; big-endian files are rejected at the version).
inline uint16_t ld16(const uint8_t* p) { return uint16_t(p[0] | (uint16_t(p[1]) << 8)); }
inline uint32_t ld32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
inline uint64_t ld64(const uint8_t* p) { return uint64_t(ld32(p)) | (uint64_t(ld32(p + 4)) << 32); }

// Strict UTF-8 (the definition Python's decoder uses): no overlongs, no surrogates, <= U+10FFFF.
bool valid_utf8(const uint8_t* s, uint64_t n) {
  uint64_t i = 0;
  while (i < n) {
    const uint8_t c = s[i];
    if (c < 0x80) { ++i; continue; }
    uint32_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) { need = 2; lo = 0xA0; }
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) need = 2;
    else if (c == 0xED) { need = 2; hi = 0x9F; }
    else if (c == 0xF0) { need = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) { need = 3; hi = 0x8F; }
    else return false;
    if (n - i - 1 < need) return false;
    if (s[i + 1] < lo || s[i + 1] > hi) return false;
    for (uint32_t k = 2; k <= need; ++k)
      if ((s[i + k] & 0xC0) != 0x80) return false;
    i += need + 1;
  }
  return true;
}

// A name for messages: printable, quoted, at most 64 bytes shown.
std::string quote(std::string_view s) {
  std::string out = "'";
  size_t shown = 0;
  for (unsigned char c : s) {
    if (shown++ == 64) { out += "..."; break; }
    if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "'";
}

std::string u64s(uint64_t v) { return std::to_string(v); }

bool is_fixed(ValueType t) { return value_type_size(t) != 0; }

// The smallest encodings, used to bound counts by the bytes that remain.
constexpr uint64_t kMinKV = 8 + 1 + 4 + 1;          // key len + 1-byte key + type + 1-byte value
constexpr uint64_t kMinTensorInfo = 8 + 1 + 4 + 8 + 4 + 8;  // name len + name + n_dims + ne0 + type + offset
constexpr uint64_t kMinArray = 4 + 8;               // elem type + count

struct Mapping {
  void* addr = nullptr;
  size_t len = 0;
  ~Mapping() {
    if (addr) munmap(addr, len);
  }
};

// Indices of v sorted by name (ties by index); calls dup(first, later) for the duplicate pair whose
// later element comes first in the file, if any.
template <class T, class NameOf>
std::vector<uint32_t> sorted_by_name(const std::vector<T>& v, NameOf name, uint32_t& dup_first, uint32_t& dup_later) {
  std::vector<uint32_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0u);
  std::sort(idx.begin(), idx.end(), [&](uint32_t a, uint32_t b) {
    const std::string_view na = name(v[a]), nb = name(v[b]);
    return na < nb || (na == nb && a < b);
  });
  dup_first = dup_later = UINT32_MAX;
  for (size_t k = 1; k < idx.size(); ++k) {
    if (name(v[idx[k - 1]]) != name(v[idx[k]])) continue;
    // within a run of equal names the first index is the earliest occurrence
    size_t first = k - 1;
    while (first > 0 && name(v[idx[first - 1]]) == name(v[idx[k]])) --first;
    if (idx[k] < dup_later) {
      dup_later = idx[k];
      dup_first = idx[first];
    }
  }
  return idx;
}

template <class T, class NameOf>
const T* lookup(const std::vector<T>& v, const std::vector<uint32_t>& idx, std::string_view key, NameOf name) {
  const auto it = std::lower_bound(idx.begin(), idx.end(), key,
                                   [&](uint32_t i, std::string_view k) { return name(v[i]) < k; });
  return (it != idx.end() && name(v[*it]) == key) ? &v[*it] : nullptr;
}

std::string_view kv_name(const KV& kv) { return kv.key; }
std::string_view tensor_name(const TensorInfo& t) { return t.name; }

}  // namespace

GGUFError::GGUFError(std::string field, uint64_t offset, const std::string& what)
    : std::runtime_error(format_error(field, offset, what)), field_(std::move(field)), offset_(offset) {}

const char* value_type_name(ValueType t) {
  static const char* const names[] = {"UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
                                      "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"};
  const auto i = static_cast<uint32_t>(t);
  return i < 13 ? names[i] : "?";
}

size_t value_type_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    default: return 0;
  }
}

// ------------------------------------------------------------------------------------------------
// Parser: a bounds-checked cursor plus the name of the field being read (built only on failure).

struct Parser {
  File& f;
  const uint8_t* p;
  uint64_t size;
  uint64_t pos = 0;
  std::string prefix;                  // "kv[3] 'general.name'" / "tensor[7] 'output.weight'"
  uint64_t path[kMaxArrayDepth + 1];   // element indices of the array being walked
  int path_len = 0;

  Parser(File& file, const uint8_t* data, uint64_t n) : f(file), p(data), size(n) {}

  std::string field(const char* part) const {
    std::string s = prefix;
    for (int i = 0; i < path_len; ++i) s += "[" + u64s(path[i]) + "]";
    if (part && *part) {
      if (!s.empty()) s += ' ';
      s += part;
    }
    return s;
  }
  [[noreturn]] void fail(const char* part, uint64_t off, const std::string& what) const {
    throw GGUFError(field(part), off, what);
  }
  uint64_t remaining() const { return size - pos; }
  void need(uint64_t n, const char* part) const {
    if (n > remaining())
      fail(part, pos, "truncated: needs " + u64s(n) + " bytes, " + u64s(remaining()) +
                          " left (file size " + u64s(size) + ")");
  }
  uint32_t u32(const char* part) { need(4, part); uint32_t v = ld32(p + pos); pos += 4; return v; }
  uint64_t u64(const char* part) { need(8, part); uint64_t v = ld64(p + pos); pos += 8; return v; }

  // A GGUF string (u64 length + bytes); returns a view into the file.
  std::string_view str(const char* len_part) {
    const uint64_t at = pos;
    const uint64_t n = u64(len_part);
    if (n > remaining())
      fail(len_part, at, "string length " + u64s(n) + " runs past the end of the file (" +
                             u64s(remaining()) + " bytes left)");
    std::string_view s(reinterpret_cast<const char*>(p + pos), size_t(n));
    pos += n;
    return s;
  }

  // A name (key / tensor name): non-empty, <= 65535 bytes, valid UTF-8.
  std::string_view name(const char* what) {
    const uint64_t at = pos;
    const uint64_t n = u64((std::string(what) + " length").c_str());
    if (n == 0) fail(what, at, std::string("empty ") + what);
    if (n > kMaxKeyLength) fail(what, at, std::string(what) + " length " + u64s(n) + " exceeds " + u64s(kMaxKeyLength));
    if (n > remaining())
      fail(what, at, std::string(what) + " length " + u64s(n) + " runs past the end of the file (" +
                         u64s(remaining()) + " bytes left)");
    if (!valid_utf8(p + pos, n)) fail(what, pos, std::string(what) + " is not valid UTF-8");
    std::string_view s(reinterpret_cast<const char*>(p + pos), size_t(n));
    pos += n;
    return s;
  }

  ValueType value_type(const char* part) {
    const uint64_t at = pos;
    const uint32_t t = u32(part);
    if (t > 12) fail(part, at, "unknown value type " + u64s(t) + " (valid: 0..12)");
    return static_cast<ValueType>(t);
  }

  // Bools must be 0 or 1 (any other byte read as a C++ bool is undefined behaviour downstream).
  void check_bools(uint64_t at, uint64_t n, bool in_array) {
    for (uint64_t i = 0; i < n; ++i) {
      if (p[at + i] > 1) {
        if (in_array) path[path_len++] = i;  // path has kMaxArrayDepth + 1 slots
        fail("bool", at + i, "byte " + u64s(p[at + i]) + " is not 0 or 1");
      }
    }
  }

  // Validate one value of type t at pos and step over it. depth: arrays enclosing it.
  void value(ValueType t, int depth) {
    switch (t) {
      case ValueType::STRING:
        str("string length");
        return;
      case ValueType::ARRAY:
        array(depth + 1);
        return;
      default: {
        const uint64_t n = value_type_size(t);
        need(n, value_type_name(t));
        if (t == ValueType::BOOL) check_bools(pos, 1, false);
        pos += n;
      }
    }
  }

  void array(int depth) {
    const uint64_t at = pos;
    if (depth > kMaxArrayDepth)
      fail("array", at, "arrays nested deeper than " + u64s(kMaxArrayDepth) + " levels");
    const ValueType et = value_type("array element type");
    const uint64_t count_at = pos;
    const uint64_t count = u64("array count");
    const uint64_t rem = remaining();
    if (is_fixed(et)) {
      const uint64_t es = value_type_size(et);
      if (count > rem / es)  // count * es would exceed the file (or overflow)
        fail("array count", count_at, u64s(count) + " elements x " + u64s(es) + " bytes (" +
                                          value_type_name(et) + ") exceed the " + u64s(rem) + " bytes left");
      if (et == ValueType::BOOL) check_bools(pos, count, true);
      pos += count * es;
      return;
    }
    const uint64_t min_elem = et == ValueType::STRING ? 8 : kMinArray;
    if (count > rem / min_elem)
      fail("array count", count_at, u64s(count) + " " + value_type_name(et) + " elements (>= " +
                                        u64s(min_elem) + " bytes each) cannot fit in the " + u64s(rem) + " bytes left");
    const int slot = path_len++;
    for (uint64_t i = 0; i < count; ++i) {
      path[slot] = i;
      value(et, depth);
    }
    --path_len;
  }

  void parse();
};

void Parser::parse() {
  // ---- header
  need(4, "magic");
  if (std::memcmp(p, "GGUF", 4) != 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "expected 'GGUF' (47 47 55 46), got %02x %02x %02x %02x", p[0], p[1], p[2], p[3]);
    fail("magic", 0, buf);
  }
  pos = 4;
  const uint32_t version = u32("version");
  if (version == 0x02000000u || version == 0x03000000u)
    fail("version", 4, "big-endian GGUF files are not supported (version reads as " + u64s(version) + ")");
  if (version < 2 || version > 3)
    fail("version", 4, "unsupported version " + u64s(version) + " (supported: 2, 3)");
  f.version_ = version;
  const uint64_t n_tensors = u64("n_tensors");
  const uint64_t n_kv = u64("n_kv");
  // Counts against the bytes that remain, before anything is reserved.
  if (n_kv > remaining() / kMinKV)
    fail("n_kv", 16, u64s(n_kv) + " entries (>= " + u64s(kMinKV) + " bytes each) cannot fit in the " +
                         u64s(remaining()) + " bytes left");
  if (n_tensors > (remaining() - n_kv * kMinKV) / kMinTensorInfo)
    fail("n_tensors", 8, u64s(n_tensors) + " tensor infos (>= " + u64s(kMinTensorInfo) +
                             " bytes each) plus " + u64s(n_kv) + " KVs cannot fit in the " + u64s(remaining()) + " bytes left");
  if (n_kv >= UINT32_MAX) fail("n_kv", 16, u64s(n_kv) + " entries is absurd (max " + u64s(UINT32_MAX - 1) + ")");
  if (n_tensors >= UINT32_MAX)
    fail("n_tensors", 8, u64s(n_tensors) + " tensors is absurd (max " + u64s(UINT32_MAX - 1) + ")");
  f.kvs_.reserve(size_t(n_kv));

  // ---- metadata
  for (uint64_t i = 0; i < n_kv; ++i) {
    const uint64_t kv_at = pos;
    prefix = "kv[" + u64s(i) + "]";
    const std::string_view key = name("key");
    prefix += " " + quote(key);
    const ValueType t = value_type("value type");
    const uint64_t v_at = pos;
    value(t, 0);
    f.kvs_.push_back(KV{key, t, kv_at, v_at, pos - v_at});
  }

  // ---- duplicate keys (sorted index: no hash table to flood)
  uint32_t first, later;
  f.kv_sorted_ = sorted_by_name(f.kvs_, kv_name, first, later);
  if (later != UINT32_MAX) {
    prefix = "kv[" + u64s(later) + "] " + quote(f.kvs_[later].key);
    fail("key", f.kvs_[later].offset, "duplicate key (first at offset " + u64s(f.kvs_[first].offset) + ")");
  }

  // ---- general.alignment
  prefix.clear();
  if (const KV* a = f.find("general.alignment")) {
    prefix = "kv 'general.alignment'";
    if (a->type != ValueType::UINT32)
      fail("value type", a->value_offset - 4, std::string("must be UINT32, is ") + value_type_name(a->type));
    const uint32_t al = ld32(p + a->value_offset);
    if (al == 0) fail("value", a->value_offset, "alignment is zero");
    if (al & (al - 1)) fail("value", a->value_offset, "alignment " + u64s(al) + " is not a power of two");
    if (al > kMaxAlignment)
      fail("value", a->value_offset, "alignment " + u64s(al) + " is absurd (max " + u64s(kMaxAlignment) + ")");
    f.alignment_ = al;
  }
  const uint64_t align = f.alignment_;

  // ---- tensor infos
  f.tensors_.reserve(size_t(n_tensors));
  std::vector<uint64_t> offset_field(static_cast<size_t>(n_tensors));  // where each tensor's offset was read
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t{};
    t.info_offset = pos;
    prefix = "tensor[" + u64s(i) + "]";
    t.name = name("name");
    prefix += " " + quote(t.name);
    const uint64_t nd_at = pos;
    t.n_dims = u32("n_dims");
    if (t.n_dims == 0 || t.n_dims > 4) fail("n_dims", nd_at, u64s(t.n_dims) + " is not in 1..4");
    const uint64_t dims_at = pos;
    uint64_t n_el = 1;
    for (uint32_t d = 0; d < 4; ++d) t.ne[d] = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      const std::string part = "ne[" + u64s(d) + "]";
      const uint64_t d_at = pos;
      const uint64_t v = u64(part.c_str());
      if (v == 0) fail(part.c_str(), d_at, "zero dimension");
      if (v > uint64_t(std::numeric_limits<int64_t>::max()))
        fail(part.c_str(), d_at, "negative dimension (" + std::to_string(int64_t(v)) + " as int64)");
      if (__builtin_mul_overflow(n_el, v, &n_el) || n_el > uint64_t(std::numeric_limits<int64_t>::max()))
        fail(part.c_str(), d_at, "dimension product overflows int64 (" + u64s(v) + " x earlier dims)");
      t.ne[d] = int64_t(v);
    }
    t.n_elements = n_el;
    const uint64_t type_at = pos;
    const uint32_t type_id = u32("type");
    const GgmlTypeTraits tr = ggml_type_traits(type_id);
    if (!tr.name) fail("type", type_at, "unknown or removed ggml type id " + u64s(type_id));
    t.type = static_cast<GgmlType>(type_id);
    if (uint64_t(t.ne[0]) % tr.block != 0)
      fail("ne[0]", dims_at, "row length " + u64s(uint64_t(t.ne[0])) + " is not a multiple of the " + tr.name +
                                 " block size " + u64s(tr.block));
    uint64_t nbytes;  // (ne0 / block * bytes) * ne1 * ne2 * ne3, every step overflow-checked
    bool ovf = __builtin_mul_overflow(uint64_t(t.ne[0]) / tr.block, uint64_t(tr.bytes), &nbytes);
    for (uint32_t d = 1; d < 4 && !ovf; ++d) ovf = __builtin_mul_overflow(nbytes, uint64_t(t.ne[d]), &nbytes);
    if (ovf) fail("ne", dims_at, "tensor byte size overflows 64 bits");
    t.nbytes = nbytes;
    offset_field[size_t(i)] = pos;
    t.rel_offset = u64("offset");
    if (t.rel_offset % align != 0)
      fail("offset", offset_field[size_t(i)], u64s(t.rel_offset) + " is not a multiple of the alignment " + u64s(align));
    f.tensors_.push_back(t);
  }

  // ---- duplicate tensor names
  f.tensor_sorted_ = sorted_by_name(f.tensors_, tensor_name, first, later);
  if (later != UINT32_MAX) {
    prefix = "tensor[" + u64s(later) + "] " + quote(f.tensors_[later].name);
    fail("name", f.tensors_[later].info_offset,
         "duplicate tensor name (first at offset " + u64s(f.tensors_[first].info_offset) + ")");
  }

  // ---- data section
  prefix.clear();
  const uint64_t pad = (align - pos % align) % align;
  if (pad > remaining())
    fail("data section", pos, "padding to alignment " + u64s(align) + " needs " + u64s(pad) + " bytes, " +
                                  u64s(remaining()) + " left (file size " + u64s(size) + ")");
  f.data_offset_ = pos + pad;
  const uint64_t data_size = size - f.data_offset_;
  for (size_t i = 0; i < f.tensors_.size(); ++i) {
    TensorInfo& t = f.tensors_[i];
    prefix = "tensor[" + u64s(i) + "] " + quote(t.name);
    uint64_t end;
    if (__builtin_add_overflow(t.rel_offset, t.nbytes, &end))
      fail("offset", offset_field[i], "offset " + u64s(t.rel_offset) + " + size " + u64s(t.nbytes) + " overflows 64 bits");
    if (end > data_size)
      fail("offset", offset_field[i], "data [" + u64s(t.rel_offset) + ", " + u64s(end) +
                                          ") runs past the end of the data section (" + u64s(data_size) +
                                          " bytes from offset " + u64s(f.data_offset_) + ")");
    t.offset = f.data_offset_ + t.rel_offset;
    t.data = p + t.offset;
  }
  // Overlap: sort by offset, each tensor must start at or after the previous one's end.
  std::vector<uint32_t> order(f.tensors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = uint32_t(i);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return f.tensors_[a].rel_offset < f.tensors_[b].rel_offset ||
           (f.tensors_[a].rel_offset == f.tensors_[b].rel_offset && a < b);
  });
  for (size_t k = 1; k < order.size(); ++k) {
    const TensorInfo& prev = f.tensors_[order[k - 1]];
    const TensorInfo& cur = f.tensors_[order[k]];
    if (cur.rel_offset < prev.rel_offset + prev.nbytes) {
      const uint32_t late = std::max(order[k - 1], order[k]);  // blame the one listed later
      const TensorInfo& other = f.tensors_[late == order[k] ? order[k - 1] : order[k]];
      prefix = "tensor[" + u64s(late) + "] " + quote(f.tensors_[late].name);
      fail("offset", offset_field[late], "data [" + u64s(f.tensors_[late].rel_offset) + ", " +
                                             u64s(f.tensors_[late].rel_offset + f.tensors_[late].nbytes) +
                                             ") overlaps tensor " + quote(other.name) + " [" +
                                             u64s(other.rel_offset) + ", " + u64s(other.rel_offset + other.nbytes) + ")");
    }
  }
}

// ------------------------------------------------------------------------------------------------
// File

File::~File() = default;

std::shared_ptr<const File> File::from_buffer(const uint8_t* data, size_t size, std::shared_ptr<const void> owner) {
  static const uint8_t empty = 0;
  std::shared_ptr<File> f(new File());
  f->base_ = data ? data : &empty;
  f->size_ = data ? size : 0;
  f->owner_ = std::move(owner);
  Parser(*f, f->base_, f->size_).parse();
  return f;
}

std::shared_ptr<const File> File::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    throw OpenError(e, path, path + ": " + std::strerror(e));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw OpenError(e, path, path + ": " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    const int e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    throw OpenError(e, path, path + ": not a regular file");
  }
  if (uint64_t(st.st_size) > uint64_t(std::numeric_limits<size_t>::max()) ||
      uint64_t(st.st_size) > uint64_t(std::numeric_limits<ptrdiff_t>::max())) {
    ::close(fd);
    throw OpenError(EFBIG, path, path + ": file too large to map on this platform");
  }
  auto map = std::make_shared<Mapping>();
  const size_t len = size_t(st.st_size);
  if (len > 0) {
    void* addr = mmap(nullptr, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      throw OpenError(e, path, path + ": mmap: " + std::strerror(e));
    }
    map->addr = addr;
    map->len = len;
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  const auto* bytes = static_cast<const uint8_t*>(map->addr);
  std::shared_ptr<File> f(new File());
  static const uint8_t empty = 0;
  f->base_ = bytes ? bytes : &empty;
  f->size_ = len;
  f->owner_ = map;
  f->path_ = path;
  Parser(*f, f->base_, f->size_).parse();
  return f;
}

const KV* File::find(std::string_view key) const { return lookup(kvs_, kv_sorted_, key, kv_name); }

const TensorInfo* File::find_tensor(std::string_view name) const {
  return lookup(tensors_, tensor_sorted_, name, tensor_name);
}

const TensorInfo& File::tensor(std::string_view name) const {
  const TensorInfo* t = find_tensor(name);
  if (!t) throw GGUFError("tensor " + quote(name), 0, "no such tensor in the file");
  return *t;
}

const KV& File::require(std::string_view key, const char* want) const {
  const KV* kv = find(key);
  if (!kv) throw GGUFError("kv " + quote(key), 0, std::string("missing (expected ") + want + ")");
  return *kv;
}

static bool is_int_type(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::UINT16: case ValueType::INT16:
    case ValueType::UINT32: case ValueType::INT32: case ValueType::UINT64: case ValueType::INT64:
      return true;
    default:
      return false;
  }
}

// Any integer value as (negative?, magnitude) so range checks never wrap.
static void int_parts(const uint8_t* q, ValueType t, bool& neg, uint64_t& mag) {
  int64_t s = 0;
  uint64_t u = 0;
  bool is_signed = true;
  switch (t) {
    case ValueType::UINT8: u = q[0]; is_signed = false; break;
    case ValueType::INT8: s = int8_t(q[0]); break;
    case ValueType::UINT16: u = ld16(q); is_signed = false; break;
    case ValueType::INT16: s = int16_t(ld16(q)); break;
    case ValueType::UINT32: u = ld32(q); is_signed = false; break;
    case ValueType::INT32: s = int32_t(ld32(q)); break;
    case ValueType::UINT64: u = ld64(q); is_signed = false; break;
    case ValueType::INT64: s = int64_t(ld64(q)); break;
    default: break;
  }
  if (is_signed) {
    neg = s < 0;
    mag = neg ? uint64_t(0) - uint64_t(s) : uint64_t(s);
  } else {
    neg = false;
    mag = u;
  }
}

uint64_t File::uint_at(ValueType t, uint64_t offset) const {
  bool neg;
  uint64_t mag;
  if (!is_int_type(t) || offset > size_ || value_type_size(t) > size_ - offset)
    throw GGUFError(value_type_name(t), offset, "not an integer value inside the file");
  int_parts(base_ + offset, t, neg, mag);
  if (neg) throw GGUFError(value_type_name(t), offset, "negative value where an unsigned one is required");
  return mag;
}

int64_t File::int_at(ValueType t, uint64_t offset) const {
  bool neg;
  uint64_t mag;
  if (!is_int_type(t) || offset > size_ || value_type_size(t) > size_ - offset)
    throw GGUFError(value_type_name(t), offset, "not an integer value inside the file");
  int_parts(base_ + offset, t, neg, mag);
  if (!neg && mag > uint64_t(std::numeric_limits<int64_t>::max()))
    throw GGUFError(value_type_name(t), offset, "value " + u64s(mag) + " does not fit in int64");
  return neg ? int64_t(0 - mag) : int64_t(mag);
}

double File::float_at(ValueType t, uint64_t offset) const {
  if ((t != ValueType::FLOAT32 && t != ValueType::FLOAT64) || offset > size_ || value_type_size(t) > size_ - offset)
    throw GGUFError(value_type_name(t), offset, "not a float value inside the file");
  if (t == ValueType::FLOAT32) {
    const uint32_t b = ld32(base_ + offset);
    float v;
    std::memcpy(&v, &b, 4);
    return v;
  }
  const uint64_t b = ld64(base_ + offset);
  double v;
  std::memcpy(&v, &b, 8);
  return v;
}

std::string_view File::string_at(uint64_t offset) const {
  if (offset > size_ || size_ - offset < 8) throw GGUFError("string", offset, "not a string inside the file");
  const uint64_t n = ld64(base_ + offset);
  if (n > size_ - offset - 8) throw GGUFError("string", offset, "not a string inside the file");
  return std::string_view(reinterpret_cast<const char*>(base_ + offset + 8), size_t(n));
}

// Bytes the value of type t at q occupies, never reading past q + lim (throws if it would).
// Values inside a File were validated by the parser, so this only fails on a misused view.
static uint64_t sized(const uint8_t* q, uint64_t lim, ValueType t, int depth) {
  uint64_t n;
  if (is_fixed(t)) {
    n = value_type_size(t);
  } else if (t == ValueType::STRING) {
    if (lim < 8 || ld64(q) > lim - 8) throw GGUFError("string", 0, "string runs past its array");
    n = 8 + ld64(q);
  } else {
    if (lim < kMinArray || depth > kMaxArrayDepth) throw GGUFError("array", 0, "array runs past its parent");
    const uint32_t et = ld32(q);
    if (et > 12) throw GGUFError("array", 0, "bad element type");
    const ValueType e = static_cast<ValueType>(et);
    const uint64_t count = ld64(q + 4);
    n = kMinArray;
    if (is_fixed(e)) {
      if (count > (lim - n) / value_type_size(e)) throw GGUFError("array", 0, "array runs past its parent");
      n += count * value_type_size(e);
    } else {
      for (uint64_t i = 0; i < count; ++i) n += sized(q + n, lim - n, e, depth + 1);
    }
  }
  if (n > lim) throw GGUFError("value", 0, "value runs past its parent");
  return n;
}

static ArrayView make_array(const uint8_t* q, uint64_t abs_offset, uint64_t lim, int depth) {
  const uint64_t n = sized(q, lim, ValueType::ARRAY, depth);
  ArrayView a;
  a.elem = static_cast<ValueType>(ld32(q));
  a.count = ld64(q + 4);
  a.offset = abs_offset + kMinArray;
  a.data = q + kMinArray;
  a.nbytes = n - kMinArray;
  return a;
}

ArrayView File::array_at(uint64_t offset, int depth) const {
  if (offset > size_) throw GGUFError("array", offset, "not an array inside the file");
  return make_array(base_ + offset, offset, size_ - offset, depth);
}

// ArrayView accessors: every walk stays inside [data, data + nbytes), which the parser validated.
std::vector<uint64_t> ArrayView::element_offsets() const {
  std::vector<uint64_t> out;
  out.reserve(size_t(std::min<uint64_t>(count, nbytes)));  // every element takes >= 1 byte
  uint64_t rel = 0;
  for (uint64_t i = 0; i < count; ++i) {
    out.push_back(offset + rel);
    rel += sized(data + rel, nbytes - rel, elem, 1);
  }
  return out;
}

static uint64_t skip_to(const ArrayView& a, uint64_t i, ValueType want) {
  if (a.elem != want) throw GGUFError("array", a.offset, std::string("elements are ") + value_type_name(a.elem));
  if (i >= a.count) throw GGUFError("array", a.offset, "index " + u64s(i) + " out of range (" + u64s(a.count) + ")");
  uint64_t rel = 0;
  for (uint64_t k = 0; k < i; ++k) rel += sized(a.data + rel, a.nbytes - rel, a.elem, 1);
  return rel;
}

std::string_view ArrayView::string(uint64_t i) const {
  const uint64_t rel = skip_to(*this, i, ValueType::STRING);
  sized(data + rel, nbytes - rel, ValueType::STRING, 1);
  return std::string_view(reinterpret_cast<const char*>(data + rel + 8), size_t(ld64(data + rel)));
}

ArrayView ArrayView::array(uint64_t i) const {
  const uint64_t rel = skip_to(*this, i, ValueType::ARRAY);
  return make_array(data + rel, offset + rel, nbytes - rel, 1);
}

std::vector<std::string_view> ArrayView::strings() const {
  if (elem != ValueType::STRING) throw GGUFError("array", offset, std::string("elements are ") + value_type_name(elem));
  std::vector<std::string_view> out;
  out.reserve(size_t(std::min<uint64_t>(count, nbytes / 8)));
  uint64_t rel = 0;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t n = sized(data + rel, nbytes - rel, ValueType::STRING, 1);
    out.emplace_back(reinterpret_cast<const char*>(data + rel + 8), size_t(n - 8));
    rel += n;
  }
  return out;
}

// ---- typed getters

uint32_t File::get_u32(std::string_view key) const {
  const uint64_t v = get_u64(key);
  if (v > std::numeric_limits<uint32_t>::max())
    throw GGUFError("kv " + quote(key), find(key)->value_offset, "value " + u64s(v) + " does not fit in uint32");
  return uint32_t(v);
}

// An integer KV as (negative?, magnitude); errors name the key.
static void kv_int(const File& f, const KV& kv, bool& neg, uint64_t& mag) {
  if (!is_int_type(kv.type))
    throw GGUFError("kv " + quote(kv.key), kv.value_offset,
                    std::string("is ") + value_type_name(kv.type) + ", expected an integer");
  int_parts(f.base() + kv.value_offset, kv.type, neg, mag);
}

uint64_t File::get_u64(std::string_view key) const {
  const KV& kv = require(key, "an unsigned integer");
  bool neg;
  uint64_t mag;
  kv_int(*this, kv, neg, mag);
  if (neg) throw GGUFError("kv " + quote(key), kv.value_offset, "negative value where an unsigned one is required");
  return mag;
}

int64_t File::get_i64(std::string_view key) const {
  const KV& kv = require(key, "an integer");
  bool neg;
  uint64_t mag;
  kv_int(*this, kv, neg, mag);
  if (!neg && mag > uint64_t(std::numeric_limits<int64_t>::max()))
    throw GGUFError("kv " + quote(key), kv.value_offset, "value " + u64s(mag) + " does not fit in int64");
  return neg ? int64_t(0 - mag) : int64_t(mag);
}

int32_t File::get_i32(std::string_view key) const {
  const int64_t v = get_i64(key);
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
    throw GGUFError("kv " + quote(key), find(key)->value_offset, "value " + std::to_string(v) + " does not fit in int32");
  return int32_t(v);
}

double File::get_f64(std::string_view key) const {
  const KV& kv = require(key, "a number");
  if (kv.type == ValueType::FLOAT32 || kv.type == ValueType::FLOAT64) return float_at(kv.type, kv.value_offset);
  if (is_int_type(kv.type)) return double(int_at(kv.type, kv.value_offset));
  throw GGUFError("kv " + quote(key), kv.value_offset, std::string("is ") + value_type_name(kv.type) + ", expected a number");
}

float File::get_f32(std::string_view key) const {
  const KV& kv = require(key, "a float");
  if (kv.type != ValueType::FLOAT32 && kv.type != ValueType::FLOAT64)
    throw GGUFError("kv " + quote(key), kv.value_offset, std::string("is ") + value_type_name(kv.type) + ", expected a float");
  return float(float_at(kv.type, kv.value_offset));
}

bool File::get_bool(std::string_view key) const {
  const KV& kv = require(key, "a bool");
  if (kv.type != ValueType::BOOL)
    throw GGUFError("kv " + quote(key), kv.value_offset, std::string("is ") + value_type_name(kv.type) + ", expected BOOL");
  return base_[kv.value_offset] != 0;
}

std::string_view File::get_str(std::string_view key) const {
  const KV& kv = require(key, "a string");
  if (kv.type != ValueType::STRING)
    throw GGUFError("kv " + quote(key), kv.value_offset, std::string("is ") + value_type_name(kv.type) + ", expected STRING");
  return string_at(kv.value_offset);
}

ArrayView File::get_arr(std::string_view key) const {
  const KV& kv = require(key, "an array");
  if (kv.type != ValueType::ARRAY)
    throw GGUFError("kv " + quote(key), kv.value_offset, std::string("is ") + value_type_name(kv.type) + ", expected ARRAY");
  return array_at(kv.value_offset);
}

uint32_t File::get_u32(std::string_view key, uint32_t dflt) const { return has(key) ? get_u32(key) : dflt; }
float File::get_f32(std::string_view key, float dflt) const { return has(key) ? get_f32(key) : dflt; }
bool File::get_bool(std::string_view key, bool dflt) const { return has(key) ? get_bool(key) : dflt; }
std::string_view File::get_str(std::string_view key, std::string_view dflt) const {
  return has(key) ? get_str(key) : dflt;
}

}  // namespace ee::gguf
