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

#include "gguf/gguf.h"
#include "quant/types.h"
#include "runtime/cpu.h"
#include "runtime/threadpool.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "runtime/version.h"

namespace py = pybind11;

// ---- gguf (helpers) ----
namespace {
namespace gg = ee::gguf;
using FilePtr = std::shared_ptr<const gg::File>;

PyObject* g_gguf_error = nullptr;  // enigma_edge._core.GGUFError (a ValueError); lives forever

// An owner object for numpy views: holds a reference to the File, so the map outlives the view.
py::capsule file_owner(const FilePtr& f) {
  return py::capsule(new FilePtr(f), [](void* p) { delete static_cast<FilePtr*>(p); });
}

// Read-only numpy view of `shape` elements of numpy type `dtype` at absolute `offset`.
py::array file_view(const FilePtr& f, const char* dtype, const std::vector<uint64_t>& dims, uint64_t offset) {
  std::vector<py::ssize_t> shape;
  for (uint64_t d : dims) {  // 32-bit hosts: a dimension may not fit Py_ssize_t
    if (d > uint64_t(PY_SSIZE_T_MAX)) throw gg::GGUFError("view", offset, "dimension too large for this platform");
    shape.push_back(py::ssize_t(d));
  }
  py::array a(py::dtype(dtype), std::move(shape), static_cast<const void*>(f->base() + offset), file_owner(f));
  a.attr("setflags")(py::arg("write") = false);
  return a;
}

const char* numpy_dtype(gg::ValueType t) {
  switch (t) {
    case gg::ValueType::UINT8: return "<u1";   case gg::ValueType::INT8: return "<i1";
    case gg::ValueType::UINT16: return "<u2";  case gg::ValueType::INT16: return "<i2";
    case gg::ValueType::UINT32: return "<u4";  case gg::ValueType::INT32: return "<i4";
    case gg::ValueType::FLOAT32: return "<f4"; case gg::ValueType::BOOL: return "?";
    case gg::ValueType::UINT64: return "<u8";  case gg::ValueType::INT64: return "<i8";
    case gg::ValueType::FLOAT64: return "<f8";
    default: return nullptr;
  }
}

// Strict UTF-8 decode; `field` builds the name for the error message only when it is needed.
template <class FieldFn>
py::str decode_utf8(std::string_view s, FieldFn&& field, uint64_t offset) {
  PyObject* o = PyUnicode_DecodeUTF8(s.data(), py::ssize_t(s.size()), "strict");
  if (!o) {
    PyErr_Clear();
    throw gg::GGUFError(field(), offset, "string is not valid UTF-8");
  }
  return py::reinterpret_steal<py::str>(o);
}

// Scalar at an absolute offset as a Python value.
py::object scalar_value(const FilePtr& f, gg::ValueType t, uint64_t off) {
  switch (t) {
    case gg::ValueType::UINT8: case gg::ValueType::UINT16: case gg::ValueType::UINT32: case gg::ValueType::UINT64:
      return py::int_(f->uint_at(t, off));
    case gg::ValueType::INT8: case gg::ValueType::INT16: case gg::ValueType::INT32: case gg::ValueType::INT64:
      return py::int_(f->int_at(t, off));
    case gg::ValueType::FLOAT32: case gg::ValueType::FLOAT64:
      return py::float_(f->float_at(t, off));
    case gg::ValueType::BOOL:
      return py::bool_(f->base()[off] != 0);
    default:
      throw std::logic_error("scalar_value: not a scalar type");
  }
}

// Lazy, read-only sequence over any array value: elements are decoded only when read, so a
// 262k-token list costs nothing until used and numpy is imported only by .numpy() / np.asarray.
struct LazyArray {
  FilePtr f;
  gg::ArrayView a;
  std::string field;                 // for error messages: "kv 'tokenizer.ggml.tokens'"
  std::vector<uint64_t> offs;        // element offsets of STRING / ARRAY arrays, on first access
  uint64_t offset_of(uint64_t i) {
    if (const size_t es = gg::value_type_size(a.elem)) return a.offset + i * es;
    if (offs.empty() && a.count) offs = a.element_offsets();
    return offs[i];
  }
  std::string name(uint64_t i) const { return field + "[" + std::to_string(i) + "]"; }
  py::object item(uint64_t i) {
    const uint64_t off = offset_of(i);
    if (a.elem == gg::ValueType::STRING) return decode_utf8(f->string_at(off), [&] { return name(i); }, off + 8);
    if (a.elem == gg::ValueType::ARRAY) return py::cast(LazyArray{f, f->array_at(off, 2), name(i), {}});
    return scalar_value(f, a.elem, off);
  }
  // Every element as plain Python values (nested arrays as lists).
  py::list tolist() {
    py::list out(a.count);
    for (uint64_t k = 0; k < a.count; ++k) {
      if (a.elem == gg::ValueType::ARRAY) {
        LazyArray sub{f, f->array_at(offset_of(k), 2), name(k), {}};
        out[k] = sub.tolist();
      } else {
        out[k] = item(k);
      }
    }
    return out;
  }
  py::array numpy() const {
    const char* dt = numpy_dtype(a.elem);
    if (!dt) throw py::type_error(std::string("a GGUF array of ") + gg::value_type_name(a.elem) + " has no numpy view");
    return file_view(f, dt, {a.count}, a.offset);
  }
};

py::object kv_value(const FilePtr& f, const gg::KV& kv) {
  const std::string field = "kv '" + std::string(kv.key) + "'";
  if (kv.type == gg::ValueType::STRING)
    return decode_utf8(f->string_at(kv.value_offset), [&] { return field; }, kv.value_offset + 8);
  if (kv.type == gg::ValueType::ARRAY) return py::cast(LazyArray{f, f->array_at(kv.value_offset), field, {}});
  return scalar_value(f, kv.type, kv.value_offset);
}

// "UINT32", "ARRAY[STRING]", "ARRAY[ARRAY[INT32]]" (inner type of the first element; "ARRAY[]" if empty)
std::string type_string(const FilePtr& f, gg::ValueType t, uint64_t value_offset) {
  if (t != gg::ValueType::ARRAY) return gg::value_type_name(t);
  const gg::ArrayView a = f->array_at(value_offset);
  if (a.elem != gg::ValueType::ARRAY) return std::string("ARRAY[") + gg::value_type_name(a.elem) + "]";
  if (a.count == 0) return "ARRAY[ARRAY[]]";
  return "ARRAY[" + type_string(f, gg::ValueType::ARRAY, a.offset) + "]";  // element 0 starts at a.offset
}

// numpy view of a tensor: typed for plain types (numpy order = reversed ggml dims), bytes for
// block-quantized types (last dim = bytes per row). BF16 has no numpy dtype: uint16 bit patterns.
py::array tensor_view(const FilePtr& f, const gg::TensorInfo& t) {
  std::vector<uint64_t> shape;
  for (int d = int(t.n_dims) - 1; d >= 0; --d) shape.push_back(uint64_t(t.ne[d]));
  const char* dt = nullptr;
  switch (t.type) {
    case ee::GgmlType::F32: dt = "<f4"; break;
    case ee::GgmlType::F16: dt = "<f2"; break;
    case ee::GgmlType::BF16: dt = "<u2"; break;
    case ee::GgmlType::F64: dt = "<f8"; break;
    case ee::GgmlType::I8: dt = "<i1"; break;
    case ee::GgmlType::I16: dt = "<i2"; break;
    case ee::GgmlType::I32: dt = "<i4"; break;
    case ee::GgmlType::I64: dt = "<i8"; break;
    default: {
      const auto tr = ee::ggml_type_traits(t.type);
      dt = "<u1";
      shape.back() = uint64_t(t.ne[0]) / tr.block * tr.bytes;
    }
  }
  return file_view(f, dt, shape, t.offset);
}

// The Python handle: close() drops the reference; the map goes when the last view goes too.
struct PyGGUF {
  FilePtr f;
  const FilePtr& get() const {
    if (!f) throw py::value_error("GGUF file is closed");
    return f;
  }
};

void bind_gguf(py::module_& m) {
  g_gguf_error = PyErr_NewExceptionWithDoc(
      "enigma_edge._core.GGUFError",
      "Malformed GGUF file. .field names the field, .offset the byte offset.", PyExc_ValueError, nullptr);
  m.attr("GGUFError") = py::handle(g_gguf_error);  // the module keeps a reference; g_gguf_error is never freed
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const gg::GGUFError& e) {
      py::object inst = py::reinterpret_borrow<py::object>(g_gguf_error)(e.what());
      inst.attr("field") = e.field();
      inst.attr("offset") = e.offset();
      PyErr_SetObject(g_gguf_error, inst.ptr());
    } catch (const gg::OpenError& e) {
      py::object inst = py::module_::import("builtins").attr("OSError")(
          e.error_code(), std::string(std::strerror(e.error_code())), e.path());
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(inst.ptr())), inst.ptr());
    }
  });

  py::class_<LazyArray>(m, "GGUFArray",
      "Lazy, read-only sequence over a GGUF array value (elements decoded on access); numeric arrays\n"
      "also give a zero-copy read-only numpy view with .numpy() or np.asarray(arr).")
      .def("__len__", [](const LazyArray& a) { return a.a.count; })
      .def("__getitem__", [](LazyArray& a, py::ssize_t i) {
        const py::ssize_t n = py::ssize_t(a.a.count);
        if (i < 0) i += n;
        if (i < 0 || i >= n) throw py::index_error("GGUFArray index out of range");
        return a.item(uint64_t(i));
      })
      .def("__getitem__", [](LazyArray& a, const py::slice& s) {
        size_t start, stop, step, len;
        if (!s.compute(a.a.count, &start, &stop, &step, &len)) throw py::error_already_set();
        py::list out(len);
        for (size_t k = 0; k < len; ++k) out[k] = a.item(start + k * step);
        return out;
      })
      .def("tolist", &LazyArray::tolist, "All elements as plain Python values (nested arrays as lists).")
      .def("__iter__", [](py::object self) {
        return py::iter(py::module_::import("builtins").attr("map")(
            self.attr("__getitem__"), py::module_::import("builtins").attr("range")(py::len(self))));
      })
      .def("numpy", &LazyArray::numpy, "Zero-copy read-only numpy view (numeric and BOOL arrays).")
      .def("__array__", [](const LazyArray& a, py::object dtype, py::object copy) {
        py::object v = a.numpy();
        if (!dtype.is_none()) v = v.attr("astype")(dtype);
        else if (!copy.is_none() && copy.cast<bool>()) v = v.attr("copy")();
        return v;
      }, py::arg("dtype") = py::none(), py::arg("copy") = py::none())
      .def_property_readonly("element_type", [](const LazyArray& a) { return gg::value_type_name(a.a.elem); })
      .def_property_readonly("offset", [](const LazyArray& a) { return a.a.offset; })
      .def("__repr__", [](const LazyArray& a) {
        return "<GGUFArray " + std::string(gg::value_type_name(a.a.elem)) + " x " + std::to_string(a.a.count) + ">";
      });

  py::class_<PyGGUF>(m, "GGUFReader", "Validated GGUF file over a read-only mmap (use enigma_edge.gguf.open).")
      .def(py::init([](const std::string& path) {
        FilePtr f;
        {
          py::gil_scoped_release nogil;
          f = gg::File::open(path);
        }
        return PyGGUF{std::move(f)};
      }), py::arg("path"))
      .def_static("from_bytes", [](py::bytes data) {
        auto buf = std::make_shared<std::string>(data);  // owned copy
        FilePtr f;
        {
          py::gil_scoped_release nogil;
          f = gg::File::from_buffer(reinterpret_cast<const uint8_t*>(buf->data()), buf->size(), buf);
        }
        return PyGGUF{std::move(f)};
      })
      .def("close", [](PyGGUF& g) { g.f.reset(); })
      .def_property_readonly("closed", [](const PyGGUF& g) { return !g.f; })
      .def_property_readonly("version", [](const PyGGUF& g) { return g.get()->version(); })
      .def_property_readonly("alignment", [](const PyGGUF& g) { return g.get()->alignment(); })
      .def_property_readonly("data_offset", [](const PyGGUF& g) { return g.get()->data_offset(); })
      .def_property_readonly("file_size", [](const PyGGUF& g) { return g.get()->size(); })
      .def("kv_entries", [](const PyGGUF& g) {
        const FilePtr& f = g.get();
        py::list out;
        for (const auto& kv : f->kvs())
          out.append(py::make_tuple(py::str(kv.key.data(), kv.key.size()), type_string(f, kv.type, kv.value_offset),
                                    kv.offset, kv_value(f, kv)));
        return out;
      }, "[(key, type string, entry offset, value)] in file order.")
      .def("tensor_infos", [](const PyGGUF& g) {
        const FilePtr& f = g.get();
        py::list out;
        for (const auto& t : f->tensors()) {
          py::tuple shape(t.n_dims);
          for (uint32_t d = 0; d < t.n_dims; ++d) shape[d] = py::int_(t.ne[d]);
          out.append(py::make_tuple(py::str(t.name.data(), t.name.size()), uint32_t(t.type),
                                    ee::ggml_type_traits(t.type).name, shape, t.n_elements, t.offset,
                                    t.rel_offset, t.nbytes));
        }
        return out;
      }, "[(name, type id, type name, ggml shape, n_elements, offset, rel_offset, nbytes)] in file order.")
      // The C++ engine's typed getters (range-checked, GGUFError on a missing key or wrong kind).
      .def("get_u32", [](const PyGGUF& g, const std::string& k) { return g.get()->get_u32(k); })
      .def("get_i32", [](const PyGGUF& g, const std::string& k) { return g.get()->get_i32(k); })
      .def("get_u64", [](const PyGGUF& g, const std::string& k) { return g.get()->get_u64(k); })
      .def("get_i64", [](const PyGGUF& g, const std::string& k) { return g.get()->get_i64(k); })
      .def("get_f32", [](const PyGGUF& g, const std::string& k) { return g.get()->get_f32(k); })
      .def("get_f64", [](const PyGGUF& g, const std::string& k) { return g.get()->get_f64(k); })
      .def("get_bool", [](const PyGGUF& g, const std::string& k) { return g.get()->get_bool(k); })
      .def("get_str", [](const PyGGUF& g, const std::string& k) {
        const std::string_view v = g.get()->get_str(k);
        return py::bytes(v.data(), v.size());
      }, "Raw bytes of a STRING value.")
      .def("get_strings", [](const PyGGUF& g, const std::string& k) {
        py::list out;
        for (std::string_view v : g.get()->get_arr(k).strings()) out.append(py::bytes(v.data(), v.size()));
        return out;
      }, "Raw bytes of every element of a STRING array.")
      .def("tensor_data", [](const PyGGUF& g, const std::string& name) {
        const FilePtr& f = g.get();
        return tensor_view(f, f->tensor(name));
      }, py::arg("name"));
}
}  // namespace

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
  bind_gguf(m);
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
