// The only translation unit that includes pybind11. Each room has a section below; C++ rooms
// stay Python-free. Compute-heavy calls release the GIL (py::gil_scoped_release).
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstring>

#include "quant/types.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "runtime/version.h"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "enigma-edge C++ core (GGUF reader, quantized kernels, transformer engine)";
  m.attr("__version__") = ee::version();

  m.def("ggml_type_name", [](uint32_t id) -> py::object {
    const auto tr = ee::ggml_type_traits(id);
    if (!tr.name) return py::none();
    return py::str(tr.name);
  }, "Name of a ggml type id, or None when the id is unknown or removed.");

  // ---- gguf ----
  // ---- quant / kernels / runtime ----
  // ---- model / tokenizer ----
  {
    static py::exception<ee::Cancelled> cancelled_exc(m, "Cancelled", PyExc_RuntimeError);
    py::register_exception_translator([](std::exception_ptr p) {
      try { if (p) std::rethrow_exception(p); }
      catch (const ee::Cancelled& e) { cancelled_exc(e.what()); }
    });
    auto meta_value = [](const ee::GgufFile& f, const std::string& key) -> py::object {
      const ee::GgufValue* v = f.find(key);
      if (!v) return py::none();
      if (v->type == 8) return py::str(v->str);
      if (v->type == 9) {
        if (v->arr_type == 8) return py::cast(v->strs);
        return py::cast(v->nums);
      }
      if (v->type == 6 || v->type == 12) return py::float_(v->num);
      if (v->type == 7) return py::bool_(v->num != 0);
      return py::int_(static_cast<long long>(v->num));
    };
    py::class_<ee::SamplerParams>(m, "SamplerParams")
        .def(py::init<>())
        .def_readwrite("temperature", &ee::SamplerParams::temperature)
        .def_readwrite("top_k", &ee::SamplerParams::top_k)
        .def_readwrite("top_p", &ee::SamplerParams::top_p)
        .def_readwrite("min_p", &ee::SamplerParams::min_p)
        .def_readwrite("repeat_penalty", &ee::SamplerParams::repeat_penalty)
        .def_readwrite("repeat_last_n", &ee::SamplerParams::repeat_last_n)
        .def_readwrite("presence_penalty", &ee::SamplerParams::presence_penalty)
        .def_readwrite("frequency_penalty", &ee::SamplerParams::frequency_penalty)
        .def_readwrite("logit_bias", &ee::SamplerParams::logit_bias);
    py::class_<ee::Engine>(m, "Engine", "Transformer engine over one GGUF file (gemma3, llama, qwen2).")
        .def(py::init<const std::string&, int, int, const std::string&>(), py::arg("path"), py::arg("n_ctx"),
             py::arg("n_threads"), py::arg("kv_type") = "f16", py::call_guard<py::gil_scoped_release>())
        .def("decode", &ee::Engine::decode, py::arg("tokens"), py::arg("logits_all") = false,
             py::call_guard<py::gil_scoped_release>())
        .def("eval_prompt", &ee::Engine::eval_prompt, py::arg("tokens"), py::arg("logits_all") = false,
             py::call_guard<py::gil_scoped_release>(), "Evaluate a prompt reusing the cached common prefix; returns reused count.")
        .def("sample", [](ee::Engine& e, const ee::SamplerParams& p, uint64_t state) {
               py::gil_scoped_release rel;
               int tok = e.sample(p, state);
               return std::make_pair(tok, state);
             }, py::arg("params"), py::arg("rng_state"), "Draw the next token; returns (token, new_rng_state).")
        .def("logits", [](const ee::Engine& e) {
               const int nv = e.config().n_vocab, rows = e.n_logits_rows();
               py::array_t<float> a({rows, nv});
               std::memcpy(a.mutable_data(), e.logits().data(), sizeof(float) * size_t(rows) * nv);
               return a;
             }, "Logits of the last decode: (rows, n_vocab) float32 copy.")
        .def("cancel", &ee::Engine::cancel, "Ask a running decode (in another thread) to stop; it raises Cancelled.")
        .def("reset", &ee::Engine::reset)
        .def("truncate", &ee::Engine::truncate)
        .def("set_n_keep", &ee::Engine::set_n_keep)
        .def("set_threads", &ee::Engine::set_threads)
        .def("save_state", &ee::Engine::save_state, py::call_guard<py::gil_scoped_release>())
        .def("load_state", &ee::Engine::load_state, py::call_guard<py::gil_scoped_release>())
        .def_property_readonly("n_past", &ee::Engine::n_past)
        .def_property_readonly("n_ctx", &ee::Engine::n_ctx)
        .def_property_readonly("threads", &ee::Engine::threads)
        .def_property_readonly("tokens", &ee::Engine::tokens)
        .def_property_readonly("n_vocab", [](const ee::Engine& e) { return e.config().n_vocab; })
        .def_property_readonly("arch", [](const ee::Engine& e) { return e.config().arch_name; })
        .def_property_readonly("n_ctx_train", [](const ee::Engine& e) { return e.config().n_ctx_train; })
        .def("metadata", [meta_value](const ee::Engine& e, const std::string& key) { return meta_value(e.file(), key); },
             "A GGUF metadata value (str, int, float, bool, list) or None.")
        .def("tokenizer", [](const ee::Engine& e) { py::gil_scoped_release rel; return std::make_unique<ee::Tokenizer>(e.file()); });
    py::class_<ee::Tokenizer>(m, "Tokenizer", "SentencePiece-style or byte-level BPE tokenizer from GGUF metadata.")
        .def_static("from_file", [](const std::string& path) {
               py::gil_scoped_release rel;
               ee::GgufFile f(path);
               return std::make_unique<ee::Tokenizer>(f);
             }, py::arg("path"))
        .def("encode", [](const ee::Tokenizer& t, const std::string& text, bool add_special, bool parse_special) {
               py::gil_scoped_release rel;
               return t.encode(text, add_special, parse_special);
             }, py::arg("text"), py::arg("add_special") = true, py::arg("parse_special") = false)
        .def("piece", [](const ee::Tokenizer& t, int id, bool special) { return py::bytes(t.piece(id, special)); },
             py::arg("id"), py::arg("special") = false)
        .def("decode", [](const ee::Tokenizer& t, const std::vector<int>& ids, bool special) { return py::bytes(t.decode(ids, special)); },
             py::arg("ids"), py::arg("special") = false)
        .def("find", &ee::Tokenizer::find)
        .def("text", &ee::Tokenizer::text)
        .def("is_eog", &ee::Tokenizer::is_eog)
        .def("token_type", &ee::Tokenizer::token_type)
        .def_property_readonly("n_vocab", &ee::Tokenizer::n_vocab)
        .def_property_readonly("bos", &ee::Tokenizer::bos)
        .def_property_readonly("eos", &ee::Tokenizer::eos)
        .def_property_readonly("eot", &ee::Tokenizer::eot)
        .def_property_readonly("add_bos", &ee::Tokenizer::add_bos)
        .def_property_readonly("kind", [](const ee::Tokenizer& t) { return t.kind() == ee::Tokenizer::Kind::Spm ? "spm" : "bpe"; });
  }
}
