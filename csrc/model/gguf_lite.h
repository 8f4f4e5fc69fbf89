// Minimal private GGUF reader for the model room, used until csrc/gguf (the hardened reader) lands.
// Maps the file read-only, parses metadata and tensor infos with bounds checks, and hands out
// typed getters and tensor views into the map (never copied).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "quant/types.h"

namespace ee {

struct GgufError : std::runtime_error { using std::runtime_error::runtime_error; };

struct GgufValue {
  uint32_t type = 0;            // gguf value type (4 = u32, 6 = f32, 8 = string, 9 = array ...)
  uint32_t arr_type = 0;        // element type for arrays
  double num = 0;               // scalar numbers / bools
  std::string str;              // strings
  std::vector<std::string> strs;   // string arrays
  std::vector<double> nums;        // numeric arrays
};

struct GgufTensor {
  std::string name;
  GgmlType type;
  int64_t ne[4] = {1, 1, 1, 1};  // ne[0] = row length (fastest), ne[1] = rows
  int n_dims = 0;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
};

class GgufFile {
 public:
  explicit GgufFile(const std::string& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  bool has(const std::string& key) const { return kv_.count(key) != 0; }
  const GgufValue* find(const std::string& key) const;
  // getters throw GgufError naming the key when missing / wrong type
  double get_num(const std::string& key) const;
  double get_num(const std::string& key, double dflt) const;
  std::string get_str(const std::string& key, const std::string& dflt) const;
  std::string get_str(const std::string& key) const;
  const GgufTensor* tensor(const std::string& name) const;  // nullptr when absent
  const std::map<std::string, GgufValue>& kv() const { return kv_; }
  const std::string& path() const { return path_; }
  size_t file_size() const { return size_; }

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::map<std::string, GgufTensor> tensors_;
};

}  // namespace ee
