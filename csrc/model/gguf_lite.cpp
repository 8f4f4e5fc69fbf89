#include <cstdint>
#include "model/gguf_lite.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

namespace ee {
namespace {

struct Cursor {
  const uint8_t* p;
  size_t n, off = 0;
  void need(size_t k) {
    if (k > n - off) throw GgufError("gguf: truncated file (need " + std::to_string(k) + " bytes at offset " + std::to_string(off) + ")");
  }
  template <class T> T get() { need(sizeof(T)); T v; std::memcpy(&v, p + off, sizeof(T)); off += sizeof(T); return v; }
  std::string str() {
    uint64_t len = get<uint64_t>();
    if (len > (1ull << 30)) throw GgufError("gguf: string length too large");
    need(len);
    std::string s(reinterpret_cast<const char*>(p + off), len);
    off += len;
    return s;
  }
};

double read_num(Cursor& c, uint32_t t) {
  switch (t) {
    case 0: return c.get<uint8_t>();
    case 1: return c.get<int8_t>();
    case 2: return c.get<uint16_t>();
    case 3: return c.get<int16_t>();
    case 4: return c.get<uint32_t>();
    case 5: return c.get<int32_t>();
    case 6: return c.get<float>();
    case 7: return c.get<uint8_t>() ? 1 : 0;
    case 10: return static_cast<double>(c.get<uint64_t>());
    case 11: return static_cast<double>(c.get<int64_t>());
    case 12: return c.get<double>();
    default: throw GgufError("gguf: bad value type " + std::to_string(t));
  }
}

}  // namespace

GgufFile::GgufFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw GgufError("cannot open model file: " + path);
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < 24) { ::close(fd); throw GgufError("not a GGUF file (too small): " + path); }
  size_ = static_cast<size_t>(st.st_size);
  map_ = mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) { map_ = nullptr; throw GgufError("mmap failed: " + path); }
  try {
    Cursor c{static_cast<const uint8_t*>(map_), size_};
    if (c.get<uint32_t>() != 0x46554747u) throw GgufError("not a GGUF file (bad magic): " + path);
    uint32_t ver = c.get<uint32_t>();
    if (ver < 2 || ver > 3) throw GgufError("unsupported GGUF version " + std::to_string(ver));
    uint64_t n_t = c.get<uint64_t>(), n_kv = c.get<uint64_t>();
    if (n_t > (1u << 24) || n_kv > (1u << 24)) throw GgufError("gguf: implausible counts");
    for (uint64_t i = 0; i < n_kv; ++i) {
      std::string key = c.str();
      GgufValue v;
      v.type = c.get<uint32_t>();
      if (v.type == 8) v.str = c.str();
      else if (v.type == 9) {
        v.arr_type = c.get<uint32_t>();
        uint64_t n = c.get<uint64_t>();
        if (n > size_) throw GgufError("gguf: array too long in " + key);
        if (v.arr_type == 8) { v.strs.reserve(n); for (uint64_t j = 0; j < n; ++j) v.strs.push_back(c.str()); }
        else if (v.arr_type == 9) throw GgufError("gguf: nested arrays unsupported in " + key);
        else { v.nums.reserve(n); for (uint64_t j = 0; j < n; ++j) v.nums.push_back(read_num(c, v.arr_type)); }
      } else v.num = read_num(c, v.type);
      kv_[key] = std::move(v);
    }
    std::vector<std::pair<GgufTensor, uint64_t>> infos;
    for (uint64_t i = 0; i < n_t; ++i) {
      GgufTensor t;
      t.name = c.str();
      t.n_dims = static_cast<int>(c.get<uint32_t>());
      if (t.n_dims < 1 || t.n_dims > 4) throw GgufError("gguf: tensor " + t.name + " has bad n_dims");
      for (int d = 0; d < t.n_dims; ++d) {
        uint64_t ne = c.get<uint64_t>();
        if (ne == 0 || ne > (1ull << 32)) throw GgufError("gguf: tensor " + t.name + " has bad dimension");
        t.ne[d] = static_cast<int64_t>(ne);
      }
      uint32_t ty = c.get<uint32_t>();
      auto tr = ggml_type_traits(ty);
      if (!tr.name) throw GgufError("gguf: tensor " + t.name + " has unknown type " + std::to_string(ty));
      t.type = static_cast<GgmlType>(ty);
      if (t.ne[0] % tr.block) throw GgufError("gguf: tensor " + t.name + " row not a multiple of its block");
      // element count <= 2^40 without __int128 (32-bit ARM has none): each factor is checked first
      uint64_t nel = 1;
      for (int d = 0; d < 4; ++d) {
        if (static_cast<uint64_t>(t.ne[d]) > (1ull << 40) / nel) throw GgufError("gguf: tensor " + t.name + " too large");
        nel *= static_cast<uint64_t>(t.ne[d]);
      }
      if (nel / tr.block * tr.bytes > static_cast<uint64_t>(SIZE_MAX)) throw GgufError("gguf: tensor " + t.name + " too large");
      t.nbytes = static_cast<size_t>(nel / tr.block * tr.bytes);
      infos.push_back({t, c.get<uint64_t>()});
    }
    uint64_t align = 32;
    if (auto* a = find("general.alignment")) align = static_cast<uint64_t>(a->num);
    if (align == 0 || (align & (align - 1))) throw GgufError("gguf: bad alignment");
    size_t data = (c.off + align - 1) / align * align;
    for (auto& [t, off] : infos) {
      if (off > size_ || data > size_ - off || t.nbytes > size_ - data - off)
        throw GgufError("gguf: tensor " + t.name + " lies past the end of the file");
      t.data = static_cast<const uint8_t*>(map_) + data + off;
      tensors_[t.name] = t;
    }
  } catch (...) {
    munmap(map_, size_);
    map_ = nullptr;
    throw;
  }
}

GgufFile::~GgufFile() { if (map_) munmap(map_, size_); }

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}
double GgufFile::get_num(const std::string& key) const {
  auto* v = find(key);
  if (!v) throw GgufError("model file is missing hyperparameter '" + key + "'");
  if (v->type == 8 || v->type == 9) throw GgufError("hyperparameter '" + key + "' is not a number");
  return v->num;
}
double GgufFile::get_num(const std::string& key, double dflt) const { return has(key) ? get_num(key) : dflt; }
std::string GgufFile::get_str(const std::string& key) const {
  auto* v = find(key);
  if (!v) throw GgufError("model file is missing metadata '" + key + "'");
  if (v->type != 8) throw GgufError("metadata '" + key + "' is not a string");
  return v->str;
}
std::string GgufFile::get_str(const std::string& key, const std::string& dflt) const { return has(key) ? get_str(key) : dflt; }
const GgufTensor* GgufFile::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

}  // namespace ee
