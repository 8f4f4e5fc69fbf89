// The only translation unit that includes pybind11. Each room has a section below; C++ rooms
// stay Python-free. Compute-heavy calls release the GIL (py::gil_scoped_release).
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "quant/types.h"
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
}
