// Transformer inference for GGUF models: gemma3, llama, qwen2. Config, weights and run state are
// kept apart (llama2.c style). Weights point into the memory map; nothing is copied except the
// tiny norm vectors (dequantized to float once at load).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "model/gguf_view.h"
#include "model/kernels_api.h"

namespace ee {

struct ModelError : std::runtime_error { using std::runtime_error::runtime_error; };
struct Cancelled : std::runtime_error { Cancelled() : std::runtime_error("generation cancelled") {} };

enum class Arch { Llama, Qwen2, Gemma3 };

struct ModelConfig {
  std::string arch_name;
  Arch arch = Arch::Llama;
  int n_vocab = 0, n_ctx_train = 0, n_embd = 0, n_layer = 0, n_ff = 0;
  int n_head = 0, n_head_kv = 0, head_dim = 0, head_dim_v = 0, n_rot = 0;
  float eps = 1e-5f;
  float rope_base = 10000.f, rope_base_swa = 10000.f, rope_freq_scale = 1.f;
  bool rope_neox = false;
  int n_swa = 0;                      // sliding window (0 = none)
  std::vector<uint8_t> layer_swa;     // [n_layer] 1 = local (sliding-window) layer
  bool gelu = false;                  // GELU(tanh)-gated FFN, else SwiGLU
  float embd_scale = 1.f;             // gemma: sqrt(n_embd)
  float q_scale = 1.f;                // applied to q before QK (gemma)
  float kq_scale = 1.f;               // applied to scores (llama/qwen2)
  float final_softcap = 0.f;
  static ModelConfig from_gguf(const GgufFile& f);
};

struct LayerWeights {                // shapes as GGUF ne[] = {cols, rows}
  const GgufTensor* wq = nullptr;    // {n_embd, n_head*head_dim}
  const GgufTensor* wk = nullptr;    // {n_embd, n_head_kv*head_dim}
  const GgufTensor* wv = nullptr;    // {n_embd, n_head_kv*head_dim_v}
  const GgufTensor* wo = nullptr;    // {n_head*head_dim_v, n_embd}
  const GgufTensor* w_gate = nullptr;  // {n_embd, n_ff}
  const GgufTensor* w_up = nullptr;    // {n_embd, n_ff}
  const GgufTensor* w_down = nullptr;  // {n_ff, n_embd}
  std::vector<float> attn_norm;      // [n_embd]
  std::vector<float> ffn_norm;       // [n_embd]
  std::vector<float> bq, bk, bv;     // qwen2 biases [n_head*hd] [n_kv*hd] [n_kv*hd]
  std::vector<float> q_norm, k_norm; // gemma3 per-head norms [head_dim]
  std::vector<float> post_attn_norm, post_ffn_norm;  // gemma3 [n_embd]
};

struct Weights {
  const GgufTensor* tok_embd = nullptr;  // {n_embd, n_vocab}
  const GgufTensor* output = nullptr;    // {n_embd, n_vocab} (tok_embd when tied)
  std::vector<float> output_norm;        // [n_embd]
  std::vector<float> rope_freqs;         // [n_rot/2] llama3 frequency factors (empty = none)
  std::vector<LayerWeights> layers;
};

struct KvCache {
  GgmlType type = GgmlType::F16;
  int n_ctx = 0;
  int64_t k_row = 0, v_row = 0;          // elements per position: n_head_kv*head_dim(_v)
  size_t k_row_bytes = 0, v_row_bytes = 0;
  std::vector<std::vector<uint8_t>> k, v;  // [n_layer] x [n_ctx rows]
};

struct SamplerParams {
  float temperature = 0.8f;
  int top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int repeat_last_n = 64;
  float presence_penalty = 0.f, frequency_penalty = 0.f;
  std::vector<std::pair<int, float>> logit_bias;
};

class Engine {
 public:
  // ENIGMA_EDGE_NUMERICS=llama (read here) selects llama.cpp's batch-size-dependent numerics for
  // prompt batches (matmul(..., llama_batch) and its attention accumulation order for several
  // tokens): with the scalar kernels the logits are then bit-identical to llama.cpp's on x86 AVX2,
  // prompt and decode alike. Default: every token is computed as in a one-token decode, so a
  // prompt's logits do not depend on how it was split (prefix reuse, chunking).
  Engine(const std::string& path, int n_ctx, int n_threads, const std::string& kv_type);
  ~Engine();

  const ModelConfig& config() const { return cfg_; }
  const GgufFile& file() const { return *file_; }
  int n_ctx() const { return kv_.n_ctx; }
  int n_past() const { return static_cast<int>(tokens_.size()); }
  const std::vector<int>& tokens() const { return tokens_; }
  void set_threads(int n);
  int threads() const { return pool_->size(); }
  void set_n_keep(int n) { n_keep_ = n; }

  // Evaluate `toks` after the cached ones (context shift when full). With logits_all every
  // position's logits are kept (n x n_vocab), else only the last one.
  void decode(const std::vector<int>& toks, bool logits_all = false);
  // Evaluate a whole prompt, reusing the longest common prefix already in the cache.
  // Returns how many prompt tokens were reused.
  int eval_prompt(const std::vector<int>& toks, bool logits_all = false);
  void reset() { tokens_.clear(); }
  void truncate(int n) { if (n < n_past()) tokens_.resize(n); }

  const std::vector<float>& logits() const { return logits_; }  // [n_out x n_vocab]
  int n_logits_rows() const { return n_out_; }

  int sample(const SamplerParams& p, uint64_t& rng_state);

  void save_state(const std::string& path) const;
  void load_state(const std::string& path);

  void cancel() { cancel_.store(true); }
  void clear_cancel() { cancel_.store(false); }

 private:
  void forward(const int* toks, int n, int pos0, bool logits_all);
  void context_shift(int n_discard);
  void check_cancel() const { if (cancel_.load(std::memory_order_relaxed)) throw Cancelled(); }

  std::unique_ptr<GgufFile> file_;
  ModelConfig cfg_;
  Weights w_;
  KvCache kv_;
  std::optional<AttnOps> attn_;   // attention kernels for kv_.type on the default ISA
  std::unique_ptr<ThreadPool> pool_;
  std::vector<int> tokens_;
  std::vector<float> logits_;
  int n_out_ = 0;
  int n_keep_ = 0;
  bool llama_batch_ = false;   // ENIGMA_EDGE_NUMERICS=llama
  std::atomic<bool> cancel_{false};
};

}  // namespace ee
