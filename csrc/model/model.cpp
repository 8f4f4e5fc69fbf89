// Forward pass, KV cache, context shift, prefix reuse and state files for gemma3 / llama / qwen2.
// Numerics follow llama.cpp's CPU graph (ggml, x86 AVX2 build) so outputs can be compared token for
// token: RMSNorm summing float squares in double, RoPE angles built by repeated multiplication and
// rotated with fused multiply-adds, GELU through an fp16 table, softmax with ggml's vectorised expf
// and its per-8 partial sums, and (for an f16 KV cache) q and softmax weights rounded to fp16 as
// ggml's f16 matmul does. Each of these was checked bit for bit against llama.cpp's intermediate
// tensors (tools/parity/); see Engine's constructor comment for the batch-dependent parts.
#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "quant/fp16.h"

namespace ee {
namespace {

std::string arch_key(const std::string& a, const char* k) { return a + "." + k; }

int req_int(const GgufFile& f, const std::string& key, std::vector<std::string>& missing) {
  if (!f.has(key)) { missing.push_back(key); return 0; }
  return static_cast<int>(f.get_num(key));
}

std::vector<float> load_vec(const GgufTensor* t, int64_t n, const std::string& name) {
  if (!t) throw ModelError("model file is missing tensor '" + name + "'");
  int64_t nel = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
  if (nel != n) throw ModelError("tensor '" + name + "' has " + std::to_string(nel) + " elements, expected " + std::to_string(n));
  std::vector<float> v(n);
  dequantize_row(t->type, t->data, v.data(), n);
  return v;
}

const GgufTensor* need(const GgufFile& f, const std::string& name, int64_t cols, int64_t rows) {
  const GgufTensor* t = f.tensor(name);
  if (!t) throw ModelError("model file is missing tensor '" + name + "'");
  if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != 1 || t->ne[3] != 1)
    throw ModelError("tensor '" + name + "' has shape {" + std::to_string(t->ne[0]) + ", " + std::to_string(t->ne[1]) +
                     "}, expected {" + std::to_string(cols) + ", " + std::to_string(rows) + "}");
  return t;
}

// fp16 -> fp32 through a 256 KB table (the f16 KV cache is read once per cached position).
const float* h2f_table() {
  static const std::vector<float> t = [] {
    std::vector<float> v(65536);
    for (int i = 0; i < 65536; ++i) v[i] = half_to_float(static_cast<uint16_t>(i));
    return v;
  }();
  return t.data();
}

// ggml's GELU (tanh approximation) evaluated through an fp16 table, as ggml_vec_geglu_f32 does.
const std::vector<uint16_t>& gelu_table() {
  static const std::vector<uint16_t> table = [] {
    std::vector<uint16_t> t(65536);
    for (int i = 0; i < 65536; ++i) {
      float x = half_to_float(static_cast<uint16_t>(i));
      // ggml builds its table with -mfma: 1 + a*x*x is contracted to fma(a*x, x, 1) (changes one entry)
      float y = 0.5f * x * (1.0f + std::tanh(0.79788456080286535587989211986876f * x * std::fma(0.044715f * x, x, 1.0f)));
      t[i] = float_to_half(y);
    }
    return t;
  }();
  return table;
}

// The same table widened to f32 (what the SIMD GELU gathers from).
const float* gelu_table_f32() {
  static const std::vector<float> t = [] {
    std::vector<float> v(65536);
    const std::vector<uint16_t>& h = gelu_table();
    for (int i = 0; i < 65536; ++i) v[i] = half_to_float(h[i]);
    return v;
  }();
  return t.data();
}


// y = x / rms(x) * w  (ggml_rms_norm then ggml_mul)
void rms_norm(const float* x, const float* w, float* y, int n, float eps) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += static_cast<double>(x[i] * x[i]);   // float square, double sum (ggml)
  const float scale = 1.0f / std::sqrt(static_cast<float>(s / n) + eps);
  for (int i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
}

// RoPE of one head vector in place (ggml_rope_ext with ext_factor 0, attn_factor 1).
void rope(float* x, int n_rot, float pos, float base, float freq_scale, bool neox, const float* freq_factors) {
  const float theta_scale = std::pow(base, -2.0f / n_rot);
  float theta = pos;
  for (int i0 = 0; i0 < n_rot; i0 += 2) {
    const float ff = freq_factors ? freq_factors[i0 / 2] : 1.0f;
    const float th = freq_scale * (theta / ff);
    const float c = std::cos(th), s = std::sin(th);
    float *a, *b;
    if (neox) { a = x + i0 / 2; b = x + i0 / 2 + n_rot / 2; }
    else { a = x + i0; b = x + i0 + 1; }
    const float x0 = *a, x1 = *b;
    *a = std::fma(x0, c, -(x1 * s));   // as ggml's rope compiled with -mfma contracts them
    *b = std::fma(x0, s, x1 * c);
    theta *= theta_scale;
  }
}


GgmlType parse_kv_type(const std::string& s) {
  if (s == "f16") return GgmlType::F16;
  if (s == "f32") return GgmlType::F32;
  if (s == "q8_0") return GgmlType::Q8_0;
  throw ModelError("unsupported kv_type '" + s + "' (use f16, q8_0 or f32)");
}

}  // namespace

ModelConfig ModelConfig::from_gguf(const GgufFile& f) {
  ModelConfig c;
  if (!f.has("general.architecture")) throw ModelError("model file has no 'general.architecture'");
  c.arch_name = f.get_str("general.architecture");
  const std::string& a = c.arch_name;
  if (a == "llama") c.arch = Arch::Llama;
  else if (a == "qwen2") c.arch = Arch::Qwen2;
  else if (a == "gemma3") c.arch = Arch::Gemma3;
  else throw ModelError("unsupported architecture '" + a + "' (supported: gemma3, llama, qwen2)");
  std::vector<std::string> missing;
  c.n_embd = req_int(f, arch_key(a, "embedding_length"), missing);
  c.n_layer = req_int(f, arch_key(a, "block_count"), missing);
  c.n_ff = req_int(f, arch_key(a, "feed_forward_length"), missing);
  c.n_head = req_int(f, arch_key(a, "attention.head_count"), missing);
  c.n_ctx_train = req_int(f, arch_key(a, "context_length"), missing);
  if (!f.has(arch_key(a, "attention.layer_norm_rms_epsilon"))) missing.push_back(arch_key(a, "attention.layer_norm_rms_epsilon"));
  if (!missing.empty()) {
    std::string m;
    for (auto& k : missing) m += (m.empty() ? "" : ", ") + k;
    throw ModelError("model file is missing hyperparameters: " + m);
  }
  c.eps = static_cast<float>(f.get_num(arch_key(a, "attention.layer_norm_rms_epsilon")));
  c.n_head_kv = static_cast<int>(f.get_num(arch_key(a, "attention.head_count_kv"), c.n_head));
  if (c.n_head <= 0 || c.n_head_kv <= 0 || c.n_head % c.n_head_kv) throw ModelError("bad head counts in model file");
  if (c.n_embd <= 0 || c.n_layer <= 0 || c.n_ff <= 0 || c.n_layer > 1024) throw ModelError("bad model dimensions in model file");
  c.head_dim = static_cast<int>(f.get_num(arch_key(a, "attention.key_length"), c.n_embd / c.n_head));
  c.head_dim_v = static_cast<int>(f.get_num(arch_key(a, "attention.value_length"), c.head_dim));
  if (c.head_dim_v != c.head_dim) throw ModelError("key_length != value_length is not supported");
  c.n_rot = static_cast<int>(f.get_num(arch_key(a, "rope.dimension_count"), c.head_dim));
  if (c.n_rot <= 0 || c.n_rot > c.head_dim || c.n_rot % 2) throw ModelError("bad rope.dimension_count");
  c.rope_base = static_cast<float>(f.get_num(arch_key(a, "rope.freq_base"), 10000.0));
  std::string scaling = f.get_str(arch_key(a, "rope.scaling.type"), "none");
  double factor = f.get_num(arch_key(a, "rope.scaling.factor"), 0.0);
  if (scaling == "linear" && factor > 0) c.rope_freq_scale = static_cast<float>(1.0 / factor);
  else if (scaling == "yarn") throw ModelError("rope scaling 'yarn' is not supported");
  c.layer_swa.assign(c.n_layer, 0);
  c.kq_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  if (c.arch == Arch::Gemma3) {
    c.rope_neox = true;
    c.gelu = true;
    c.embd_scale = std::sqrt(static_cast<float>(c.n_embd));
    c.q_scale = c.n_layer == 62 ? 1.0f / std::sqrt(static_cast<float>(c.n_embd / c.n_head)) : 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    c.kq_scale = 1.0f;
    c.n_swa = static_cast<int>(f.get_num(arch_key(a, "attention.sliding_window"), 0));
    c.rope_base_swa = static_cast<float>(f.get_num(arch_key(a, "rope.freq_base_swa"), 10000.0));
    c.final_softcap = static_cast<float>(f.get_num(arch_key(a, "final_logit_softcapping"), 0.0));
    if (c.n_swa > 0) for (int il = 0; il < c.n_layer; ++il) c.layer_swa[il] = (il % 6) < 5;  // llama.cpp's default period 6
  } else if (c.arch == Arch::Qwen2) {
    c.rope_neox = true;
  }
  return c;
}

Engine::Engine(const std::string& path, int n_ctx, int n_threads, const std::string& kv_type) {
  file_ = std::make_unique<GgufFile>(path);
  const GgufFile& f = *file_;
  cfg_ = ModelConfig::from_gguf(f);
  const ModelConfig& c = cfg_;
  const auto* emb = f.tensor("token_embd.weight");
  if (!emb) throw ModelError("model file is missing tensor 'token_embd.weight'");
  if (emb->ne[0] != c.n_embd) throw ModelError("token_embd.weight rows do not match embedding_length");
  cfg_.n_vocab = static_cast<int>(emb->ne[1]);
  w_.tok_embd = emb;
  w_.output = f.tensor("output.weight") ? need(f, "output.weight", c.n_embd, c.n_vocab) : emb;
  w_.output_norm = load_vec(f.tensor("output_norm.weight"), c.n_embd, "output_norm.weight");
  if (auto* rf = f.tensor("rope_freqs.weight")) w_.rope_freqs = load_vec(rf, c.n_rot / 2, "rope_freqs.weight");
  const int64_t q_dim = int64_t(c.n_head) * c.head_dim, kv_dim = int64_t(c.n_head_kv) * c.head_dim;
  w_.layers.resize(c.n_layer);
  for (int il = 0; il < c.n_layer; ++il) {
    auto& L = w_.layers[il];
    const std::string p = "blk." + std::to_string(il) + ".";
    L.attn_norm = load_vec(f.tensor(p + "attn_norm.weight"), c.n_embd, p + "attn_norm.weight");
    L.wq = need(f, p + "attn_q.weight", c.n_embd, q_dim);
    L.wk = need(f, p + "attn_k.weight", c.n_embd, kv_dim);
    L.wv = need(f, p + "attn_v.weight", c.n_embd, kv_dim);
    L.wo = need(f, p + "attn_output.weight", q_dim, c.n_embd);
    L.ffn_norm = load_vec(f.tensor(p + "ffn_norm.weight"), c.n_embd, p + "ffn_norm.weight");
    L.w_gate = need(f, p + "ffn_gate.weight", c.n_embd, c.n_ff);
    L.w_up = need(f, p + "ffn_up.weight", c.n_embd, c.n_ff);
    L.w_down = need(f, p + "ffn_down.weight", c.n_ff, c.n_embd);
    if (c.arch == Arch::Qwen2) {
      L.bq = load_vec(f.tensor(p + "attn_q.bias"), q_dim, p + "attn_q.bias");
      L.bk = load_vec(f.tensor(p + "attn_k.bias"), kv_dim, p + "attn_k.bias");
      L.bv = load_vec(f.tensor(p + "attn_v.bias"), kv_dim, p + "attn_v.bias");
    }
    if (c.arch == Arch::Gemma3) {
      L.q_norm = load_vec(f.tensor(p + "attn_q_norm.weight"), c.head_dim, p + "attn_q_norm.weight");
      L.k_norm = load_vec(f.tensor(p + "attn_k_norm.weight"), c.head_dim, p + "attn_k_norm.weight");
      L.post_attn_norm = load_vec(f.tensor(p + "post_attention_norm.weight"), c.n_embd, p + "post_attention_norm.weight");
      L.post_ffn_norm = load_vec(f.tensor(p + "post_ffw_norm.weight"), c.n_embd, p + "post_ffw_norm.weight");
    }
  }
  if (n_ctx <= 0) n_ctx = std::min(c.n_ctx_train > 0 ? c.n_ctx_train : 4096, 4096);
  if (n_ctx < 8 || n_ctx > (1 << 20)) throw ModelError("n_ctx must be between 8 and 1048576");
  kv_.type = parse_kv_type(kv_type);
  if (kv_.type == GgmlType::Q8_0 && c.head_dim % 32) throw ModelError("q8_0 KV cache needs head_dim % 32 == 0");
  attn_.emplace(kv_.type);
  kv_.n_ctx = n_ctx;
  kv_.k_row = kv_dim;
  kv_.v_row = kv_dim;
  kv_.k_row_bytes = ggml_row_bytes(kv_.type, kv_dim);
  kv_.v_row_bytes = ggml_row_bytes(kv_.type, kv_dim);
  kv_.k.resize(c.n_layer);
  kv_.v.resize(c.n_layer);
  for (int il = 0; il < c.n_layer; ++il) {
    kv_.k[il].assign(kv_.k_row_bytes * n_ctx, 0);
    kv_.v[il].assign(kv_.v_row_bytes * n_ctx, 0);
  }
  if (c.gelu) gelu_table_f32();
  h2f_table();
  if (const char* num = std::getenv("ENIGMA_EDGE_NUMERICS"); num && *num) {
    if (std::string(num) == "llama") llama_batch_ = true;
    else if (std::string(num) != "default")
      throw ModelError(std::string("ENIGMA_EDGE_NUMERICS: unknown value '") + num + "' (use default or llama)");
  }
  pool_ = std::make_unique<ThreadPool>(n_threads > 0 ? n_threads : 1);
}

Engine::~Engine() = default;

void Engine::set_threads(int n) {
  n = n > 0 ? n : 1;
  // Lowering / restoring within the pool's size only changes how many workers take rows (the
  // thermal governor does this between generations); a bigger count needs a new pool.
  if (pool_ && n <= pool_->size()) {
    pool_->set_active(n);
  } else {
    pool_ = std::make_unique<ThreadPool>(n);
  }
}

namespace {
// Multiply n_tok activations (rows of x, stride cols) by W: y[t][rows].
void linear(const GgufTensor* W, const float* x, int n_tok, float* y, ThreadPool& pool, bool llama_batch) {
  const int64_t cols = W->ne[0], rows = W->ne[1];
  if (n_tok == 1) matvec(W->type, W->data, rows, cols, x, y, pool);
  else matmul(W->type, W->data, rows, cols, x, n_tok, y, pool, llama_batch);
}

// Reduction of ggml's dot-product lanes (f16/f32 K and V, n a multiple of 8): 32 lanes = one token
// (ggml_vec_dot_f16: 4 accumulators of 8, lane = index % 32), 8 lanes = a prompt batch
// (llamafile's tinyBLAS: one accumulator of 8, lane = index % 8), each summed in ggml's order.
inline float reduce_lanes_ggml(const float* l, int n_lanes) {
  float x[8];
  if (n_lanes == 32) {
    for (int k = 0; k < 8; ++k) x[k] = (l[k] + l[16 + k]) + (l[8 + k] + l[24 + k]);
    const float t0 = x[0] + x[4], t1 = x[1] + x[5], t2 = x[2] + x[6], t3 = x[3] + x[7];
    return (t0 + t1) + (t2 + t3);
  }
  const float t0 = l[4] + l[0], t1 = l[5] + l[1], t2 = l[6] + l[2], t3 = l[7] + l[3];
  return (t0 + t2) + (t1 + t3);
}
inline float dot_ggml(const float* a, const float* b, int n, int n_lanes) {
  float l[32] = {};
  for (int i = 0; i < n; ++i) l[i % n_lanes] = std::fma(a[i], b[i], l[i % n_lanes]);
  return reduce_lanes_ggml(l, n_lanes);
}

void kv_load(GgmlType t, const uint8_t* row, int64_t off, int n, float* dst) {
  switch (t) {
    case GgmlType::F32: std::memcpy(dst, reinterpret_cast<const float*>(row) + off, n * sizeof(float)); break;
    case GgmlType::F16: {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(row) + off;
      const float* tab = h2f_table();
      for (int i = 0; i < n; ++i) dst[i] = tab[h[i]];
      break;
    }
    default: dequantize_row(t, row + ggml_row_bytes(t, off), dst, n);
  }
}
}  // namespace

void Engine::forward(const int* toks, int n, int pos0, bool logits_all) {
  const ModelConfig& c = cfg_;
  const int d = c.n_embd, hd = c.head_dim, nh = c.n_head, nkv = c.n_head_kv;
  const int q_dim = nh * hd, kv_dim = nkv * hd;
  const int group = nh / nkv;
  ThreadPool& pool = *pool_;
  std::vector<float> x(size_t(n) * d), xb(size_t(n) * d), xb2(size_t(n) * d);
  std::vector<float> q(size_t(n) * q_dim), k(size_t(n) * kv_dim), v(size_t(n) * kv_dim), att(size_t(n) * q_dim);
  std::vector<float> hg(size_t(n) * c.n_ff), hu(size_t(n) * c.n_ff);

  const bool llama_order = llama_batch_ && (kv_.type == GgmlType::F16 || kv_.type == GgmlType::F32);
  // embeddings
  const size_t erb = ggml_row_bytes(w_.tok_embd->type, d);
  for (int t = 0; t < n; ++t) {
    if (toks[t] < 0 || toks[t] >= c.n_vocab) throw ModelError("token id " + std::to_string(toks[t]) + " out of range");
    dequantize_row(w_.tok_embd->type, w_.tok_embd->data + size_t(toks[t]) * erb, &x[size_t(t) * d], d);
    if (c.embd_scale != 1.f) for (int i = 0; i < d; ++i) x[size_t(t) * d + i] *= c.embd_scale;
  }
  const float* ff = w_.rope_freqs.empty() ? nullptr : w_.rope_freqs.data();

  for (int il = 0; il < c.n_layer; ++il) {
    check_cancel();
    const LayerWeights& L = w_.layers[il];
    const bool swa = c.layer_swa[il] != 0;
    const float base = swa ? c.rope_base_swa : c.rope_base;
    const float fscale = swa ? 1.0f : c.rope_freq_scale;
    // per-token element-wise work is spread over the pool too (prefill); n == 1 runs inline
    pool.parallel_for(n, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t) rms_norm(&x[size_t(t) * d], L.attn_norm.data(), &xb[size_t(t) * d], d, c.eps);
    });
    linear(L.wq, xb.data(), n, q.data(), pool, llama_batch_);
    linear(L.wk, xb.data(), n, k.data(), pool, llama_batch_);
    linear(L.wv, xb.data(), n, v.data(), pool, llama_batch_);
    pool.parallel_for(n, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t) {
        const float pos = static_cast<float>(pos0 + t);
        float* qt = &q[size_t(t) * q_dim];
        float* kt = &k[size_t(t) * kv_dim];
        float* vt = &v[size_t(t) * kv_dim];
        if (!L.bq.empty()) {
          for (int i = 0; i < q_dim; ++i) qt[i] += L.bq[i];
          for (int i = 0; i < kv_dim; ++i) { kt[i] += L.bk[i]; vt[i] += L.bv[i]; }
        }
        for (int h = 0; h < nh; ++h) {
          float* qh = qt + h * hd;
          if (!L.q_norm.empty()) rms_norm(qh, L.q_norm.data(), qh, hd, c.eps);
          rope(qh, c.n_rot, pos, base, fscale, c.rope_neox, ff);
          if (c.q_scale != 1.f) for (int i = 0; i < hd; ++i) qh[i] *= c.q_scale;
        }
        for (int h = 0; h < nkv; ++h) {
          float* kh = kt + h * hd;
          if (!L.k_norm.empty()) rms_norm(kh, L.k_norm.data(), kh, hd, c.eps);
          rope(kh, c.n_rot, pos, base, fscale, c.rope_neox, ff);
        }
        quantize_row(kv_.type, kt, kv_.k[il].data() + size_t(pos0 + t) * kv_.k_row_bytes, kv_dim);
        quantize_row(kv_.type, vt, kv_.v[il].data() + size_t(pos0 + t) * kv_.v_row_bytes, kv_dim);
      }
    });
    // attention: a task is one token and either one query head (few tokens: spread heads over the
    // workers) or all query heads sharing a KV head (prefill: each cached row is read once per group)
    const uint8_t* kc = kv_.k[il].data();
    const uint8_t* vc = kv_.v[il].data();
    const int hp = (int64_t(n) * nkv >= 2 * pool.size()) ? group : 1;   // heads per task
    const int tasks_per_tok = nh / hp;
    pool.parallel_for(int64_t(n) * tasks_per_tok, [&](int64_t b, int64_t e, int) {
      const int span = pos0 + n;
      thread_local std::vector<float> sc, qv;
      if (sc.size() < size_t(hp) * span) sc.resize(size_t(hp) * span);
      if (qv.size() < size_t(hp) * hd) qv.resize(size_t(hp) * hd);
      // llama.cpp order (ENIGMA_EDGE_NUMERICS=llama, f16/f32 cache): lane partial sums, fused multiply-adds
      const int n_lanes = llama_order ? (n == 1 ? 32 : 8) : 0;
      std::vector<float> kbuf(llama_order ? hd : 0), lanes(size_t(n_lanes) * hp * hd);
      for (int64_t task = b; task < e; ++task) {
        const int t = static_cast<int>(task / tasks_per_tok);
        const int h0 = static_cast<int>(task % tasks_per_tok) * hp;
        const int kvh = h0 / group;
        const int p = pos0 + t;
        const int lo = (swa && c.n_swa > 0) ? std::max(0, p - c.n_swa + 1) : 0;
        const size_t head_off = ggml_row_bytes(kv_.type, int64_t(kvh) * hd);   // this KV head's slice of a row
        for (int g = 0; g < hp; ++g) {
          const float* qh = &q[size_t(t) * q_dim + size_t(h0 + g) * hd];
          attn_->prepare_query(qh, &qv[size_t(g) * hd], hd);
        }
        if (llama_order) {
          for (int j = lo; j <= p; ++j) {
            kv_load(kv_.type, kc + size_t(j) * kv_.k_row_bytes, int64_t(kvh) * hd, hd, kbuf.data());
            for (int g = 0; g < hp; ++g) sc[size_t(g) * span + j] = dot_ggml(&qv[size_t(g) * hd], kbuf.data(), hd, n_lanes);
          }
        } else {
          attn_->scores(kc + head_off, kv_.k_row_bytes, lo, p + 1, hd, qv.data(), hp, sc.data(), span);
        }
        for (int g = 0; g < hp; ++g) attn_->softmax(&sc[size_t(g) * span], lo, p, c.kq_scale);
        float* out = &att[size_t(t) * q_dim + size_t(h0) * hd];
        if (!llama_order) {
          attn_->mix(vc + head_off, kv_.v_row_bytes, lo, p + 1, hd, sc.data(), span, hp, out, hd);
          continue;
        }
        std::fill(lanes.begin(), lanes.end(), 0.f);
        for (int j = lo; j <= p; ++j) {   // cell j feeds lane j % n_lanes of ggml's dot over the cache cells
          kv_load(kv_.type, vc + size_t(j) * kv_.v_row_bytes, int64_t(kvh) * hd, hd, kbuf.data());
          for (int g = 0; g < hp; ++g) {
            const float pj = sc[size_t(g) * span + j];
            float* lg = &lanes[(size_t(g) * n_lanes + j % n_lanes) * hd];
            for (int i = 0; i < hd; ++i) lg[i] = std::fma(pj, kbuf[i], lg[i]);
          }
        }
        for (int g = 0; g < hp; ++g)
          for (int i = 0; i < hd; ++i) {
            float l[32];
            for (int k = 0; k < n_lanes; ++k) l[k] = lanes[(size_t(g) * n_lanes + k) * hd + i];
            out[size_t(g) * hd + i] = reduce_lanes_ggml(l, n_lanes);
          }
      }
    });
    linear(L.wo, att.data(), n, xb2.data(), pool, llama_batch_);
    // x[t] += post_norm(xb2[t]) (Gemma normalises a block's output before the residual add)
    auto add_residual = [&](int64_t t, const std::vector<float>& post_norm) {
      float* xt = &x[size_t(t) * d];
      float* o = &xb2[size_t(t) * d];
      if (!post_norm.empty()) rms_norm(o, post_norm.data(), o, d, c.eps);
      for (int i = 0; i < d; ++i) xt[i] += o[i];
    };
    pool.parallel_for(n, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t) {
        add_residual(t, L.post_attn_norm);
        rms_norm(&x[size_t(t) * d], L.ffn_norm.data(), &xb[size_t(t) * d], d, c.eps);
      }
    });
    linear(L.w_gate, xb.data(), n, hg.data(), pool, llama_batch_);
    linear(L.w_up, xb.data(), n, hu.data(), pool, llama_batch_);
    pool.parallel_for(n, [&](int64_t t0, int64_t t1, int) {
      const size_t b = size_t(t0) * c.n_ff, e = size_t(t1) * c.n_ff;
      if (c.gelu) {
        geglu_table(gelu_table_f32(), &hg[b], &hu[b], int64_t(e - b));
      } else {
        for (size_t i = b; i < e; ++i) { const float g = hg[i]; hg[i] = (g / (1.0f + std::exp(-g))) * hu[i]; }
      }
    });
    linear(L.w_down, hg.data(), n, xb2.data(), pool, llama_batch_);
    pool.parallel_for(n, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t) add_residual(t, L.post_ffn_norm);
    });
  }
  check_cancel();
  // output
  const int first = logits_all ? 0 : n - 1;
  const int n_out = n - first;
  for (int t = first; t < n; ++t) rms_norm(&x[size_t(t) * d], w_.output_norm.data(), &xb[size_t(t - first) * d], d, c.eps);
  logits_.resize(size_t(n_out) * c.n_vocab);
  linear(w_.output, xb.data(), n_out, logits_.data(), pool, llama_batch_);
  if (c.final_softcap > 0) for (auto& l : logits_) l = std::tanh(l / c.final_softcap) * c.final_softcap;
  n_out_ = n_out;
}

void Engine::context_shift(int n_discard) {
  const int n_past = this->n_past();
  const int keep = std::min(n_keep_, n_past);
  n_discard = std::min(n_discard, n_past - keep);
  if (n_discard <= 0) return;
  const ModelConfig& c = cfg_;
  const int hd = c.head_dim, nkv = c.n_head_kv, kv_dim = nkv * hd;
  const float* ff = w_.rope_freqs.empty() ? nullptr : w_.rope_freqs.data();
  std::vector<float> buf(kv_dim);
  for (int il = 0; il < c.n_layer; ++il) {
    const bool swa = c.layer_swa[il] != 0;
    const float base = swa ? c.rope_base_swa : c.rope_base;
    const float fscale = swa ? 1.0f : c.rope_freq_scale;
    for (int j = keep + n_discard; j < n_past; ++j) {
      uint8_t* src = kv_.k[il].data() + size_t(j) * kv_.k_row_bytes;
      uint8_t* dst = kv_.k[il].data() + size_t(j - n_discard) * kv_.k_row_bytes;
      kv_load(kv_.type, src, 0, kv_dim, buf.data());
      for (int h = 0; h < nkv; ++h) rope(buf.data() + h * hd, c.n_rot, static_cast<float>(-n_discard), base, fscale, c.rope_neox, ff);
      quantize_row(kv_.type, buf.data(), dst, kv_dim);
      std::memmove(kv_.v[il].data() + size_t(j - n_discard) * kv_.v_row_bytes,
                   kv_.v[il].data() + size_t(j) * kv_.v_row_bytes, kv_.v_row_bytes);
    }
  }
  tokens_.erase(tokens_.begin() + keep, tokens_.begin() + keep + n_discard);
}

void Engine::decode(const std::vector<int>& toks, bool logits_all) {
  if (toks.empty()) throw ModelError("decode: no tokens");
  const int n_ctx = kv_.n_ctx;
  const int keep = std::min(n_keep_, n_past());
  if (static_cast<int>(toks.size()) > n_ctx - keep)
    throw ModelError(std::to_string(toks.size()) + " tokens do not fit the context (n_ctx " + std::to_string(n_ctx) + ")");
  if (n_past() + static_cast<int>(toks.size()) > n_ctx) {
    // context shift: keep the first n_keep tokens, drop at least half of the rest
    const int n_discard = std::max((n_past() - keep) / 2, n_past() + static_cast<int>(toks.size()) - n_ctx);
    context_shift(n_discard);
  }
  clear_cancel();
  const int chunk = logits_all ? 1 << 30 : 256;
  std::vector<float> all;
  for (size_t off = 0; off < toks.size(); off += chunk) {
    const int m = static_cast<int>(std::min<size_t>(chunk, toks.size() - off));
    forward(toks.data() + off, m, n_past(), logits_all);
    tokens_.insert(tokens_.end(), toks.begin() + off, toks.begin() + off + m);
  }
}

int Engine::eval_prompt(const std::vector<int>& toks, bool logits_all) {
  if (toks.empty()) throw ModelError("empty prompt");
  size_t common = 0;
  while (common < toks.size() && common < tokens_.size() && toks[common] == tokens_[common]) ++common;
  if (common == toks.size() || logits_all) common = logits_all ? 0 : toks.size() - 1;
  tokens_.resize(common);
  decode(std::vector<int>(toks.begin() + common, toks.end()), logits_all);
  return static_cast<int>(common);
}

// ---- sampling: penalties -> logit bias -> top-k -> top-p -> min-p -> temperature -> draw ----
int Engine::sample(const SamplerParams& p, uint64_t& rng_state) {
  if (n_out_ == 0) throw ModelError("sample: no logits (decode first)");
  const int nv = cfg_.n_vocab;
  std::vector<float> l(logits_.end() - nv, logits_.end());
  if (p.repeat_penalty != 1.f || p.presence_penalty != 0.f || p.frequency_penalty != 0.f) {
    const int n = p.repeat_last_n < 0 ? n_past() : std::min(p.repeat_last_n, n_past());
    std::vector<std::pair<int, int>> counts;
    {
      std::vector<int> last(tokens_.end() - n, tokens_.end());
      std::sort(last.begin(), last.end());
      for (size_t i = 0; i < last.size();) { size_t j = i; while (j < last.size() && last[j] == last[i]) ++j; counts.push_back({last[i], int(j - i)}); i = j; }
    }
    for (auto [tok, cnt] : counts) {
      if (tok < 0 || tok >= nv) continue;
      float& v = l[tok];
      if (v <= 0) v *= p.repeat_penalty; else v /= p.repeat_penalty;
      v -= float(cnt) * p.frequency_penalty + (cnt > 0 ? 1.f : 0.f) * p.presence_penalty;
    }
  }
  for (auto [tok, b] : p.logit_bias) if (tok >= 0 && tok < nv) l[tok] += b;
  if (p.temperature <= 0.f) return static_cast<int>(std::max_element(l.begin(), l.end()) - l.begin());
  // candidates
  std::vector<int> idx(nv);
  for (int i = 0; i < nv; ++i) idx[i] = i;
  int k = p.top_k > 0 ? std::min(p.top_k, nv) : nv;
  auto cmp = [&](int a, int b) { return l[a] > l[b] || (l[a] == l[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), cmp);
  idx.resize(k);
  // top-p on softmax of the untempered logits
  auto probs = [&](std::vector<double>& pr) {
    pr.resize(idx.size());
    double mx = l[idx[0]], s = 0;
    for (size_t i = 0; i < idx.size(); ++i) { pr[i] = std::exp(double(l[idx[i]]) - mx); s += pr[i]; }
    for (auto& v : pr) v /= s;
  };
  std::vector<double> pr;
  if (p.top_p < 1.f) {
    probs(pr);
    double cum = 0; size_t keep = idx.size();
    for (size_t i = 0; i < idx.size(); ++i) { cum += pr[i]; if (cum >= p.top_p) { keep = i + 1; break; } }
    idx.resize(std::max<size_t>(keep, 1));
  }
  if (p.min_p > 0.f) {
    const float thr = l[idx[0]] + std::log(p.min_p);
    size_t keep = 1;
    while (keep < idx.size() && l[idx[keep]] >= thr) ++keep;
    idx.resize(keep);
  }
  // temperature + draw
  pr.resize(idx.size());
  double mx = l[idx[0]] / p.temperature, s = 0;
  for (size_t i = 0; i < idx.size(); ++i) { pr[i] = std::exp(double(l[idx[i]]) / p.temperature - mx); s += pr[i]; }
  std::mt19937_64 rng(rng_state);
  double r = std::uniform_real_distribution<double>(0.0, s)(rng);
  rng_state = rng();
  for (size_t i = 0; i < idx.size(); ++i) { r -= pr[i]; if (r <= 0) return idx[i]; }
  return idx.back();
}

// ---- state files ----
namespace {
constexpr char kMagic[8] = {'E', 'E', 'K', 'V', 'S', 'T', '0', '1'};
}

void Engine::save_state(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream o(tmp, std::ios::binary | std::ios::trunc);
    if (!o) throw ModelError("cannot write state file: " + path);
    uint64_t hdr[8] = {file_->file_size(), uint64_t(cfg_.n_layer), uint64_t(kv_.k_row), uint64_t(kv_.type),
                       uint64_t(cfg_.n_vocab), uint64_t(tokens_.size()), uint64_t(n_out_ ? 1 : 0), 0};
    o.write(kMagic, 8);
    o.write(reinterpret_cast<const char*>(hdr), sizeof(hdr));
    o.write(reinterpret_cast<const char*>(tokens_.data()), tokens_.size() * sizeof(int));
    if (n_out_) o.write(reinterpret_cast<const char*>(&logits_[logits_.size() - cfg_.n_vocab]), cfg_.n_vocab * sizeof(float));
    for (int il = 0; il < cfg_.n_layer; ++il) {
      o.write(reinterpret_cast<const char*>(kv_.k[il].data()), tokens_.size() * kv_.k_row_bytes);
      o.write(reinterpret_cast<const char*>(kv_.v[il].data()), tokens_.size() * kv_.v_row_bytes);
    }
    o.flush();
    if (!o) throw ModelError("failed writing state file: " + path);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw ModelError("cannot rename state file into place: " + path);
}

void Engine::load_state(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError("cannot open state file: " + path);
  char magic[8];
  uint64_t hdr[8];
  in.read(magic, 8);
  in.read(reinterpret_cast<char*>(hdr), sizeof(hdr));
  if (!in || std::memcmp(magic, kMagic, 8) != 0) throw ModelError("not an enigma-edge state file: " + path);
  if (hdr[0] != file_->file_size() || hdr[1] != uint64_t(cfg_.n_layer) || hdr[2] != uint64_t(kv_.k_row) ||
      hdr[3] != uint64_t(kv_.type) || hdr[4] != uint64_t(cfg_.n_vocab))
    throw ModelError("state file " + path + " was saved for a different model or KV type");
  const uint64_t n = hdr[5];
  if (n > uint64_t(kv_.n_ctx)) throw ModelError("state file holds " + std::to_string(n) + " tokens, more than n_ctx");
  std::vector<int> toks(n);
  in.read(reinterpret_cast<char*>(toks.data()), n * sizeof(int));
  std::vector<float> last;
  if (hdr[6]) { last.resize(cfg_.n_vocab); in.read(reinterpret_cast<char*>(last.data()), last.size() * sizeof(float)); }
  for (int il = 0; il < cfg_.n_layer; ++il) {
    in.read(reinterpret_cast<char*>(kv_.k[il].data()), n * kv_.k_row_bytes);
    in.read(reinterpret_cast<char*>(kv_.v[il].data()), n * kv_.v_row_bytes);
  }
  if (!in) { tokens_.clear(); n_out_ = 0; throw ModelError("state file is truncated: " + path); }
  for (int t : toks) if (t < 0 || t >= cfg_.n_vocab) { tokens_.clear(); n_out_ = 0; throw ModelError("state file has a bad token id"); }
  tokens_ = std::move(toks);
  logits_ = std::move(last);
  n_out_ = logits_.empty() ? 0 : 1;
}

}  // namespace ee
