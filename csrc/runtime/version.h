#pragma once
namespace ee {
// Library version, kept equal to the Python package's (pyproject.toml).
const char* version();
}  // namespace ee
