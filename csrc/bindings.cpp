// The only translation unit that includes pybind11. Each room has a section below; C++ rooms
// stay Python-free. Compute-heavy calls release the GIL (py::gil_scoped_release).
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "kernels/matvec.h"
#include "quant/quant.h"
#include "quant/types.h"
#include "runtime/cpu.h"
#include "runtime/threadpool.h"
#include "runtime/version.h"

namespace py = pybind11;

// ---- quant / kernels / runtime: helpers ----
namespace {
ee::GgmlType type_arg(const py::object& t) {
  if (py::isinstance<py::int_>(t)) return ee::ggml_type_from_name(std::to_string(t.cast<uint32_t>()));
  if (py::isinstance<py::str>(t)) return ee::ggml_type_from_name(t.cast<std::string>());
  if (py::hasattr(t, "value")) return ee::ggml_type_from_name(std::to_string(t.attr("value").cast<uint32_t>()));
  throw py::type_error("ggml type must be a name ('Q4_K'), an id or an enum with .value");
}
// One persistent pool per thread count, shared by the Python entry points.
ee::ThreadPool& pool_for(int threads) {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<ee::ThreadPool>> pools;
  if (threads < 1 || threads > 256) throw py::value_error("threads must be in 1..256");
  std::lock_guard<std::mutex> lk(mu);
  auto& p = pools[threads];
  if (!p) p = std::make_unique<ee::ThreadPool>(threads);
  return *p;
}
using U8 = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;
using F32 = py::array_t<float, py::array::c_style | py::array::forcecast>;
// Weight bytes as an aligned pointer (copies only when numpy handed an odd address).
struct WeightView {
  const uint8_t* p;
  std::vector<uint64_t> copy;
  WeightView(const U8& a, size_t need) {
    if (static_cast<size_t>(a.size()) < need)
      throw py::value_error("weight buffer has " + std::to_string(a.size()) + " bytes, shape needs " + std::to_string(need));
    p = a.data();
    if (reinterpret_cast<uintptr_t>(p) % 8) {
      copy.resize((need + 7) / 8);
      std::memcpy(copy.data(), p, need);
      p = reinterpret_cast<const uint8_t*>(copy.data());
    }
  }
};
py::array_t<float> run_matmul(const py::object& type, const U8& w, int64_t rows, int64_t cols, const F32& x,
                              int64_t n_tok, int threads, const py::object& isa, bool vec) {
  const ee::GgmlType t = type_arg(type);
  ee::check_row(t, cols, vec ? "matvec" : "matmul");
  if (rows <= 0) throw py::value_error("rows must be positive");
  if (x.size() != n_tok * cols)
    throw py::value_error("activations have " + std::to_string(x.size()) + " values, expected " + std::to_string(n_tok * cols));
  const ee::Isa path = isa.is_none() ? ee::default_isa() : ee::isa_from_name(isa.cast<std::string>());
  WeightView wv(w, ee::ggml_row_bytes(t, cols) * static_cast<size_t>(rows));
  ee::ThreadPool& pool = pool_for(threads);
  py::array_t<float> y = vec ? py::array_t<float>(rows) : py::array_t<float>({n_tok, rows});
  float* yp = y.mutable_data();
  const float* xp = x.data();
  {
    py::gil_scoped_release nogil;
    ee::matmul_isa(path, t, wv.p, rows, cols, xp, n_tok, yp, pool);
  }
  return y;
}
}  // namespace

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
  py::register_exception<ee::IsaError>(m, "IsaError", PyExc_RuntimeError);
  m.def("cpu_info", [] {
    const ee::CpuInfo ci = ee::cpu_info();
    py::dict d;
    d["arch"] = ci.arch;
    d["features"] = ci.features;
    d["isa"] = ci.isa;
    d["available"] = ci.available;
    d["compiled"] = ci.compiled;
    py::dict native;
    for (const auto& name : ci.available) {
      std::vector<std::string> types;
      for (ee::GgmlType t : ee::native_types(ee::isa_from_name(name))) types.emplace_back(ee::ggml_type_traits(t).name);
      native[py::str(name)] = types;
    }
    d["native_types"] = native;
    return d;
  }, "CPU arch, features, chosen kernel path (isa; ENIGMA_EDGE_ISA forces it), available and compiled paths, "
     "and per path the weight types with their own SIMD kernel. Raises IsaError if ENIGMA_EDGE_ISA is unusable.");
  m.def("dequantize", [](const py::object& type, const U8& data, int64_t n) {
    const ee::GgmlType t = type_arg(type);
    ee::check_row(t, n, "dequantize");
    WeightView wv(data, ee::ggml_row_bytes(t, n));
    py::array_t<float> out(n);
    float* o = out.mutable_data();
    { py::gil_scoped_release nogil; ee::dequantize_row(t, wv.p, o, n); }
    return out;
  }, py::arg("type"), py::arg("data"), py::arg("n"), "Dequantize n values of GGUF block data to float32.");
  m.def("quantize", [](const py::object& type, const F32& x) {
    const ee::GgmlType t = type_arg(type);
    const int64_t n = x.size();
    ee::check_row(t, n, "quantize");
    py::array_t<uint8_t> out(static_cast<py::ssize_t>(ee::ggml_row_bytes(t, n)));
    uint8_t* o = out.mutable_data();
    const float* xp = x.data();
    { py::gil_scoped_release nogil; ee::quantize_row(t, xp, o, n); }
    return out;
  }, py::arg("type"), py::arg("x"), "Quantize float32 values (flattened) to GGUF block bytes.");
  m.def("matvec", [](const py::object& type, const U8& w, int64_t rows, int64_t cols, const F32& x, int threads,
                     const py::object& isa) { return run_matmul(type, w, rows, cols, x, 1, threads, isa, true); },
        py::arg("type"), py::arg("weight"), py::arg("rows"), py::arg("cols"), py::arg("x"), py::arg("threads") = 1,
        py::arg("isa") = py::none(), "y = W x for GGUF weight bytes W (rows x cols); isa forces a kernel path.");
  m.def("matmul", [](const py::object& type, const U8& w, int64_t rows, int64_t cols, const F32& x, int threads,
                     const py::object& isa) {
    if (cols <= 0 || x.size() % cols) throw py::value_error("X size must be a multiple of cols");
    return run_matmul(type, w, rows, cols, x, x.size() / cols, threads, isa, false);
  }, py::arg("type"), py::arg("weight"), py::arg("rows"), py::arg("cols"), py::arg("x"), py::arg("threads") = 1,
     py::arg("isa") = py::none(), "Y = X W^T for X (n_tok x cols); returns (n_tok, rows).");
  // ---- model / tokenizer ----
}
