// Tokenizers driven by GGUF metadata, id-for-id compatible with llama.cpp:
//  - "llama": SentencePiece-style (scores, highest-score bigram merges, byte fallback <0xNN>)
//  - "gpt2":  byte-level BPE with merges; pre-tokenizers of Llama 3 ("llama-bpe") and Qwen2
// Special (control / user-defined) tokens are split out of the text first, like llama.cpp.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace ee {

class GgufFile;

struct TokenizerError : std::runtime_error { using std::runtime_error::runtime_error; };

class Tokenizer {
 public:
  enum class Kind { Spm, Bpe };
  enum TokenType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

  explicit Tokenizer(const GgufFile& f);

  std::vector<int> encode(const std::string& text, bool add_special, bool parse_special) const;
  // Bytes of one token (may be a partial UTF-8 sequence). Control tokens are empty unless special.
  std::string piece(int id, bool special) const;
  std::string decode(const std::vector<int>& ids, bool special) const;

  int n_vocab() const { return static_cast<int>(tokens_.size()); }
  int bos() const { return bos_; }
  int eos() const { return eos_; }
  int eot() const { return eot_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  Kind kind() const { return kind_; }
  bool is_eog(int id) const;
  int token_type(int id) const { return id >= 0 && id < n_vocab() ? types_[id] : 0; }
  const std::string& text(int id) const { return tokens_.at(id); }
  int find(const std::string& text) const { auto it = index_.find(text); return it == index_.end() ? -1 : it->second; }

 private:
  void spm_encode(const std::string& text, std::vector<int>& out) const;
  void bpe_encode(const std::string& text, std::vector<int>& out) const;
  int byte_token(uint8_t b) const;

  Kind kind_ = Kind::Spm;
  int pre_digits_ = 3;            // llama3: \p{N}{1,3}; qwen2: \p{N}
  bool ignore_merges_ = false;
  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::vector<uint8_t> types_;
  std::unordered_map<std::string, int> index_;
  std::unordered_map<std::string, int> merges_;   // "left right" -> rank
  std::vector<int> special_;                      // control/user-defined/unknown ids, longest first
  std::vector<int> eog_;
  int bos_ = -1, eos_ = -1, eot_ = -1, unk_ = -1;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
  int byte_tok_[256];
};

}  // namespace ee
