#include "model/gguf_view.h"

#include "gguf/gguf.h"

namespace ee {

GgufFile::GgufFile(const std::string& path) : path_(path) {
  file_ = gguf::File::open(path);   // validates everything (counts, sizes, offsets, overflow)
  const gguf::File& f = *file_;
  size_ = f.size();
  for (const gguf::KV& kv : f.kvs()) {
    GgufValue v;
    v.type = static_cast<uint32_t>(kv.type);
    switch (kv.type) {
      case gguf::ValueType::STRING: v.str = std::string(f.string_at(kv.value_offset)); break;
      case gguf::ValueType::ARRAY: {
        gguf::ArrayView a = f.array_at(kv.value_offset);
        v.arr_type = static_cast<uint32_t>(a.elem);
        if (a.elem == gguf::ValueType::STRING) {
          for (auto s : a.strings()) v.strs.emplace_back(s);
        } else if (a.elem != gguf::ValueType::ARRAY) {
          const size_t es = gguf::value_type_size(a.elem);
          v.nums.reserve(a.count);
          for (uint64_t i = 0; i < a.count; ++i) {
            const uint64_t off = a.offset + i * es;
            if (a.elem == gguf::ValueType::FLOAT32 || a.elem == gguf::ValueType::FLOAT64) v.nums.push_back(f.float_at(a.elem, off));
            else if (a.elem == gguf::ValueType::BOOL) v.nums.push_back(a.data[i] ? 1.0 : 0.0);
            else if (a.elem == gguf::ValueType::UINT64) v.nums.push_back(static_cast<double>(f.uint_at(a.elem, off)));
            else v.nums.push_back(static_cast<double>(f.int_at(a.elem, off)));
          }
        }
        break;
      }
      case gguf::ValueType::FLOAT32:
      case gguf::ValueType::FLOAT64: v.num = f.float_at(kv.type, kv.value_offset); break;
      case gguf::ValueType::BOOL: v.num = f.get_bool(kv.key) ? 1 : 0; break;
      case gguf::ValueType::UINT64: v.num = static_cast<double>(f.uint_at(kv.type, kv.value_offset)); break;
      default: v.num = static_cast<double>(f.int_at(kv.type, kv.value_offset)); break;
    }
    kv_[std::string(kv.key)] = std::move(v);
  }
  for (const gguf::TensorInfo& ti : f.tensors()) {
    GgufTensor t;
    t.name = std::string(ti.name);
    t.type = ti.type;
    t.n_dims = static_cast<int>(ti.n_dims);
    for (int d = 0; d < 4; ++d) t.ne[d] = ti.ne[d];
    t.data = ti.data;
    t.nbytes = static_cast<size_t>(ti.nbytes);
    tensors_[t.name] = t;
  }
}

GgufFile::~GgufFile() = default;

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
