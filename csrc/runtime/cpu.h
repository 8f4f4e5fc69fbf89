// CPU feature detection (cpuid + xgetbv on x86, HWCAP on ARM) and the choice of kernel path.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace ee {

enum class Isa { Scalar = 0, Avx2, Avx512, Neon, Dotprod, Count };

const char* isa_name(Isa isa);
// Throws IsaError for an unknown name.
Isa isa_from_name(const std::string& name);

struct IsaError : std::runtime_error { using std::runtime_error::runtime_error; };

struct CpuInfo {
  std::string arch;                    // x86_64 | aarch64 | arm | other
  std::vector<std::string> features;   // what the CPU *and OS* support (e.g. avx2, avx512vnni, asimddp)
  std::string isa;                     // chosen path: scalar|avx2|avx512|neon|dotprod
  std::vector<std::string> available;  // paths compiled in and usable on this CPU, scalar first
  std::vector<std::string> compiled;   // paths compiled into this build
};

// Detects once; `isa` honours ENIGMA_EDGE_ISA (throws IsaError if the CPU lacks the forced path).
CpuInfo cpu_info();
// True if `isa` is compiled in and the CPU/OS supports it.
bool isa_available(Isa isa);
// The path matvec uses by default: ENIGMA_EDGE_ISA if set (IsaError if unusable), else the best.
Isa default_isa();
// Throws IsaError with the list of available paths unless isa_available(isa).
void require_isa(Isa isa);

}  // namespace ee
