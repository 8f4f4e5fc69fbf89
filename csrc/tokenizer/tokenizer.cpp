#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string_view>
#include <queue>

#include "model/gguf_view.h"

namespace ee {
namespace {

#include "tokenizer/unicode_data.inc"

size_t utf8_len(uint8_t c) {
  static const size_t lookup[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return lookup[c >> 4];
}

// Decode UTF-8 into code points; invalid sequences become U+FFFD consuming one byte (llama.cpp).
std::vector<uint32_t> utf8_cpts(const std::string& s) {
  std::vector<uint32_t> out;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const uint8_t c = s[i];
    uint32_t cp = 0xFFFD; size_t len = 1;
    if (c < 0x80) cp = c;
    else if ((c & 0xE0) == 0xC0 && i + 1 < n && (s[i+1] & 0xC0) == 0x80) { cp = ((c & 0x1F) << 6) | (s[i+1] & 0x3F); len = 2; }
    else if ((c & 0xF0) == 0xE0 && i + 2 < n && (s[i+1] & 0xC0) == 0x80 && (s[i+2] & 0xC0) == 0x80) {
      cp = ((c & 0x0F) << 12) | ((s[i+1] & 0x3F) << 6) | (s[i+2] & 0x3F); len = 3;
    } else if ((c & 0xF8) == 0xF0 && i + 3 < n && (s[i+1] & 0xC0) == 0x80 && (s[i+2] & 0xC0) == 0x80 && (s[i+3] & 0xC0) == 0x80) {
      cp = ((c & 0x07) << 18) | ((s[i+1] & 0x3F) << 12) | ((s[i+2] & 0x3F) << 6) | (s[i+3] & 0x3F); len = 4;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) s += char(cp);
  else if (cp < 0x800) { s += char(0xC0 | (cp >> 6)); s += char(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) { s += char(0xE0 | (cp >> 12)); s += char(0x80 | ((cp >> 6) & 0x3F)); s += char(0x80 | (cp & 0x3F)); }
  else { s += char(0xF0 | (cp >> 18)); s += char(0x80 | ((cp >> 12) & 0x3F)); s += char(0x80 | ((cp >> 6) & 0x3F)); s += char(0x80 | (cp & 0x3F)); }
}

// codepoint class: 0 out of range, 1 other, 2 number, 3 letter
int cpt_class(uint32_t cp) {
  if (cp >= 0x110000) return 0;
  size_t lo = 0, hi = sizeof(kUnicodeRanges) / sizeof(kUnicodeRanges[0]) - 1;
  while (hi - lo > 1) { size_t mid = (lo + hi) / 2; if (kUnicodeRanges[mid][0] <= cp) lo = mid; else hi = mid; }
  return static_cast<int>(kUnicodeRanges[lo][1]);
}
bool cpt_space(uint32_t cp) {
  for (uint32_t w : kUnicodeWhitespace) if (w == cp) return true;
  return false;
}

struct Flags { bool letter = false, number = false, space = false, any = false; };
Flags flags_of(uint32_t cp) {
  Flags f; int c = cpt_class(cp);
  f.any = c != 0; f.letter = c == 3; f.number = c == 2; f.space = f.any && cpt_space(cp);
  return f;
}

// The Llama 3 / Qwen2 pre-tokenizer regex, hand-written like llama.cpp's
// unicode_regex_split_custom_llama3 (max_digits 3 = llama3, 1 = qwen2). Returns word lengths in cpts.
std::vector<size_t> split_llama3(const std::vector<uint32_t>& cpts, int max_digits) {
  std::vector<size_t> lens;
  const size_t end = cpts.size();
  const uint32_t OOR = 0xFFFFFFFF;
  auto get = [&](size_t p) { return p < end ? cpts[p] : OOR; };
  auto fl = [&](size_t p) { return p < end ? flags_of(cpts[p]) : Flags{}; };
  size_t prev = 0;
  auto add = [&](size_t e) { size_t len = e - prev; if (len) lens.push_back(len); prev = e; return len; };
  auto lower = [](uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; };
  for (size_t pos = 0; pos < end;) {
    const uint32_t cpt = get(pos);
    const Flags f = fl(pos);
    if (cpt == '\'' && pos + 1 < end) {
      uint32_t n1 = lower(get(pos + 1));
      if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') { pos += add(pos + 2); continue; }
      if (pos + 2 < end) {
        uint32_t n2 = lower(get(pos + 2));
        if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) { pos += add(pos + 3); continue; }
      }
    }
    if (!(cpt == '\r' || cpt == '\n' || f.number)) {
      if (f.letter || fl(pos + 1).letter) {
        pos++;
        while (fl(pos).letter) pos++;
        add(pos);
        continue;
      }
    }
    if (f.number) {
      size_t ini = pos;
      while (fl(pos).number) {
        if (++pos - ini >= size_t(max_digits)) { add(pos); ini = pos; }
      }
      add(pos);
      continue;
    }
    Flags f2 = cpt == ' ' ? fl(pos + 1) : f;
    if (!(f2.space || f2.letter || f2.number) && f.any) {
      pos += (cpt == ' ');
      while (!(f2.space || f2.letter || f2.number) && f2.any) f2 = fl(++pos);
      uint32_t c2 = get(pos);
      while (c2 == '\r' || c2 == '\n') c2 = get(++pos);
      add(pos);
      continue;
    }
    size_t nws = 0, last_rn = 0;
    while (fl(pos + nws).space) {
      uint32_t c2 = get(pos + nws);
      if (c2 == '\r' || c2 == '\n') last_rn = pos + nws + 1;
      nws++;
    }
    if (last_rn > 0) { pos = last_rn; add(pos); continue; }
    if (nws > 1 && get(pos + nws) != OOR) { pos += nws - 1; add(pos); continue; }
    if (nws > 0) { pos += nws; add(pos); continue; }
    add(++pos);
  }
  return lens;
}

// GPT-2 bytes_to_unicode table.
const std::vector<uint32_t>& byte_to_cpt() {
  static const std::vector<uint32_t> t = [] {
    std::vector<uint32_t> m(256);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      m[b] = keep ? b : 256 + n++;
    }
    return m;
  }();
  return t;
}

std::string byte_encode(const std::string& s) {
  std::string out;
  for (unsigned char b : s) append_utf8(out, byte_to_cpt()[b]);
  return out;
}

std::string byte_decode(const std::string& s) {
  static const std::unordered_map<uint32_t, uint8_t> inv = [] {
    std::unordered_map<uint32_t, uint8_t> m;
    for (int b = 0; b < 256; ++b) m[byte_to_cpt()[b]] = static_cast<uint8_t>(b);
    return m;
  }();
  std::string out;
  for (uint32_t cp : utf8_cpts(s)) {
    auto it = inv.find(cp);
    if (it != inv.end()) out += char(it->second);
    else append_utf8(out, cp);
  }
  return out;
}

}  // namespace

Tokenizer::Tokenizer(const GgufFile& f) {
  const std::string model = f.get_str("tokenizer.ggml.model", "");
  if (model.empty()) throw TokenizerError("model file has no tokenizer (tokenizer.ggml.model)");
  const GgufValue* toks = f.find("tokenizer.ggml.tokens");
  if (!toks || toks->strs.empty()) throw TokenizerError("model file has no tokenizer.ggml.tokens");
  tokens_ = toks->strs;
  const int n = static_cast<int>(tokens_.size());
  scores_.assign(n, 0.f);
  types_.assign(n, kNormal);
  if (auto* s = f.find("tokenizer.ggml.scores")) {
    if (s->nums.size() != size_t(n)) throw TokenizerError("tokenizer.ggml.scores has the wrong length");
    for (int i = 0; i < n; ++i) scores_[i] = static_cast<float>(s->nums[i]);
  }
  if (auto* t = f.find("tokenizer.ggml.token_type")) {
    if (t->nums.size() != size_t(n)) throw TokenizerError("tokenizer.ggml.token_type has the wrong length");
    for (int i = 0; i < n; ++i) types_[i] = static_cast<uint8_t>(t->nums[i]);
  }
  index_.reserve(n * 2);
  for (int i = 0; i < n; ++i) index_.emplace(tokens_[i], i);  // first occurrence wins
  std::string pre = f.get_str("tokenizer.ggml.pre", "default");
  if (model == "llama") {
    kind_ = Kind::Spm;
    bos_ = 1; eos_ = 2; unk_ = 0;
    add_bos_ = true;
    add_space_prefix_ = true;
  } else if (model == "gpt2") {
    kind_ = Kind::Bpe;
    bos_ = 11; eos_ = 11;
    if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "smaug-bpe") { pre_digits_ = 3; ignore_merges_ = true; add_bos_ = true; }
    else if (pre == "qwen2" || pre == "deepseek-r1-qwen") { pre_digits_ = 1; }
    else throw TokenizerError("unsupported BPE pre-tokenizer '" + pre + "' (supported: llama-bpe/llama3, qwen2)");
    const GgufValue* m = f.find("tokenizer.ggml.merges");
    if (!m) throw TokenizerError("BPE tokenizer without tokenizer.ggml.merges");
    merges_.reserve(m->strs.size() * 2);
    for (size_t i = 0; i < m->strs.size(); ++i) merges_.emplace(m->strs[i], static_cast<int>(i));
  } else {
    throw TokenizerError("unsupported tokenizer model '" + model + "' (supported: llama, gpt2)");
  }
  auto id_key = [&](const char* k, int& dst) {
    if (f.has(k)) { int v = static_cast<int>(f.get_num(k)); if (v >= 0 && v < n) dst = v; }
  };
  id_key("tokenizer.ggml.bos_token_id", bos_);
  id_key("tokenizer.ggml.eos_token_id", eos_);
  id_key("tokenizer.ggml.unknown_token_id", unk_);
  id_key("tokenizer.ggml.eot_token_id", eot_);
  if (f.has("tokenizer.ggml.add_bos_token")) add_bos_ = f.get_num("tokenizer.ggml.add_bos_token") != 0;
  if (f.has("tokenizer.ggml.add_eos_token")) add_eos_ = f.get_num("tokenizer.ggml.add_eos_token") != 0;
  if (f.has("tokenizer.ggml.add_space_prefix")) add_space_prefix_ = f.get_num("tokenizer.ggml.add_space_prefix") != 0;
  if (kind_ == Kind::Bpe) add_space_prefix_ = false;
  if (eot_ < 0) for (const char* t : {"<end_of_turn>", "<|eot_id|>", "<|im_end|>", "<|end|>"}) { int id = find(t); if (id >= 0) { eot_ = id; break; } }
  if (eos_ >= 0) eog_.push_back(eos_);
  if (eot_ >= 0 && eot_ != eos_) eog_.push_back(eot_);
  for (int i = 0; i < 256; ++i) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", i);
    byte_tok_[i] = find(buf);
  }
  for (int i = 0; i < n; ++i)
    if (types_[i] == kControl || types_[i] == kUserDefined || types_[i] == kUnknown) special_.push_back(i);
  std::stable_sort(special_.begin(), special_.end(), [&](int a, int b) { return tokens_[a].size() > tokens_[b].size(); });
}

bool Tokenizer::is_eog(int id) const { return std::find(eog_.begin(), eog_.end(), id) != eog_.end(); }

int Tokenizer::byte_token(uint8_t b) const {
  if (kind_ == Kind::Spm) return byte_tok_[b] >= 0 ? byte_tok_[b] : unk_;
  std::string s; append_utf8(s, byte_to_cpt()[b]);
  return find(s);
}

std::vector<int> Tokenizer::encode(const std::string& text, bool add_special, bool parse_special) const {
  struct Frag { int token; size_t off, len; };  // token >= 0: special token; else raw text [off, off+len)
  std::vector<Frag> frags;
  if (!text.empty()) frags.push_back({-1, 0, text.size()});
  for (int id : special_) {
    if (!parse_special && (types_[id] == kControl || types_[id] == kUnknown)) continue;
    const std::string& st = tokens_[id];
    if (st.empty()) continue;
    std::vector<Frag> next;
    for (const Frag& fr : frags) {
      if (fr.token >= 0) { next.push_back(fr); continue; }
      size_t off = fr.off, end = fr.off + fr.len;
      while (off < end) {
        size_t m = std::string_view(text.data(), end).find(st, off);
        if (m == std::string::npos) break;
        if (m > off) next.push_back({-1, off, m - off});
        next.push_back({id, 0, 0});
        off = m + st.size();
      }
      if (off < end) next.push_back({-1, off, end - off});
    }
    frags.swap(next);
  }
  std::vector<int> out;
  if (add_special && add_bos_ && bos_ >= 0) out.push_back(bos_);
  bool prev_special = true;
  for (const Frag& fr : frags) {
    if (fr.token >= 0) { out.push_back(fr.token); prev_special = true; continue; }
    std::string piece = text.substr(fr.off, fr.len);
    if (kind_ == Kind::Spm) {
      std::string t;
      if (add_space_prefix_ && prev_special) t = " ";
      t += piece;
      std::string esc;
      for (char ch : t) { if (ch == ' ') esc += "\xE2\x96\x81"; else esc += ch; }
      spm_encode(esc, out);
    } else {
      bpe_encode(piece, out);
    }
    prev_special = false;
  }
  if (add_special && add_eos_ && eos_ >= 0) out.push_back(eos_);
  return out;
}

void Tokenizer::spm_encode(const std::string& text, std::vector<int>& out) const {
  struct Sym { int prev, next; size_t off, n; };
  std::vector<Sym> syms;
  for (size_t off = 0; off < text.size();) {
    size_t len = std::min(text.size() - off, utf8_len(static_cast<uint8_t>(text[off])));
    int idx = static_cast<int>(syms.size());
    syms.push_back({idx - 1, off + len == text.size() ? -1 : idx + 1, off, len});
    off += len;
  }
  struct Bigram { int left, right; float score; size_t size; };
  auto cmp = [](const Bigram& l, const Bigram& r) { return l.score < r.score || (l.score == r.score && l.left > r.left); };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> q(cmp);
  std::unordered_map<std::string, std::pair<int, int>> rev_merge;
  auto try_add = [&](int l, int r) {
    if (l == -1 || r == -1) return;
    std::string s = text.substr(syms[l].off, syms[l].n + syms[r].n);
    auto it = index_.find(s);
    if (it == index_.end()) return;
    q.push({l, r, scores_[it->second], s.size()});
    rev_merge[s] = {l, r};
  };
  for (size_t i = 1; i < syms.size(); ++i) try_add(int(i) - 1, int(i));
  while (!q.empty()) {
    Bigram b = q.top(); q.pop();
    Sym& l = syms[b.left];
    Sym& r = syms[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n; r.n = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  std::function<void(int)> reseg = [&](int i) {
    std::string s = text.substr(syms[i].off, syms[i].n);
    auto it = index_.find(s);
    if (it != index_.end()) { out.push_back(it->second); return; }
    auto p = rev_merge.find(s);
    if (p == rev_merge.end()) { for (unsigned char ch : s) out.push_back(byte_token(ch)); return; }
    reseg(p->second.first);
    reseg(p->second.second);
  };
  for (int i = syms.empty() ? -1 : 0; i != -1; i = syms[i].next) reseg(i);
}

void Tokenizer::bpe_encode(const std::string& text, std::vector<int>& out) const {
  const std::vector<uint32_t> cpts = utf8_cpts(text);
  const std::vector<size_t> lens = split_llama3(cpts, pre_digits_);
  size_t start = 0;
  for (size_t wl : lens) {
    std::string raw;
    for (size_t i = start; i < start + wl; ++i) append_utf8(raw, cpts[i]);
    start += wl;
    const std::string word = byte_encode(raw);
    if (ignore_merges_) {
      int id = find(word);
      if (id >= 0) { out.push_back(id); continue; }
    }
    struct Sym { int prev, next; size_t off, n; };
    std::vector<Sym> syms;
    for (size_t off = 0; off < word.size();) {
      size_t len = std::min(word.size() - off, utf8_len(static_cast<uint8_t>(word[off])));
      int idx = static_cast<int>(syms.size());
      syms.push_back({idx - 1, off + len == word.size() ? -1 : idx + 1, off, len});
      off += len;
    }
    struct Bigram { int left, right; int rank; std::string text; };
    auto cmp = [](const Bigram& l, const Bigram& r) { return l.rank > r.rank || (l.rank == r.rank && l.left > r.left); };
    std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> q(cmp);
    auto add = [&](int l, int r) {
      if (l == -1 || r == -1) return;
      std::string a = word.substr(syms[l].off, syms[l].n), b = word.substr(syms[r].off, syms[r].n);
      auto it = merges_.find(a + " " + b);
      if (it == merges_.end()) return;
      q.push({l, r, it->second, a + b});
    };
    for (size_t i = 1; i < syms.size(); ++i) add(int(i) - 1, int(i));
    while (!q.empty()) {
      Bigram b = q.top(); q.pop();
      Sym& l = syms[b.left];
      Sym& r = syms[b.right];
      if (l.n == 0 || r.n == 0) continue;
      if (word.compare(l.off, l.n + r.n, b.text) != 0 || l.off + l.n != r.off) continue;
      l.n += r.n; r.n = 0;
      l.next = r.next;
      if (r.next >= 0) syms[r.next].prev = b.left;
      add(l.prev, b.left);
      add(b.left, l.next);
    }
    for (const Sym& s : syms) {
      if (s.n == 0) continue;
      std::string t = word.substr(s.off, s.n);
      int id = find(t);
      if (id >= 0) { out.push_back(id); continue; }
      for (char ch : t) { int bid = find(std::string(1, ch)); if (bid >= 0) out.push_back(bid); }
    }
  }
}

std::string Tokenizer::piece(int id, bool special) const {
  if (id < 0 || id >= n_vocab()) throw TokenizerError("token id " + std::to_string(id) + " out of range");
  const int t = types_[id];
  const std::string& s = tokens_[id];
  if (t == kControl || t == kUnknown || t == kUnused) {
    if (!special) return t == kUnknown && kind_ == Kind::Spm ? "\xE2\x96\x85" : "";
    return s;
  }
  if (t == kUserDefined) return s;
  if (kind_ == Kind::Spm) {
    if (t == kByte && s.size() == 6) return std::string(1, static_cast<char>(std::stoi(s.substr(3, 2), nullptr, 16)));
    std::string out;
    for (size_t i = 0; i < s.size();) {
      if (s.compare(i, 3, "\xE2\x96\x81") == 0) { out += ' '; i += 3; }
      else out += s[i++];
    }
    return out;
  }
  return byte_decode(s);
}

std::string Tokenizer::decode(const std::vector<int>& ids, bool special) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string p = piece(ids[i], special);
    if (i == 0 && kind_ == Kind::Spm && add_space_prefix_ && !p.empty() && p[0] == ' ' && !special) p.erase(0, 1);
    out += p;
  }
  return out;
}

}  // namespace ee
