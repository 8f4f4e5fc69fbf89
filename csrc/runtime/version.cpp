#include "runtime/version.h"
namespace ee {
const char* version() { return "0.1.0"; }
}  // namespace ee
