#include "runtime/cpu.h"

#include <cstdint>
#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if (defined(__aarch64__) || defined(__arm__)) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace ee {

namespace {

struct Detected {
  std::string arch;
  std::vector<std::string> features;
  bool has[static_cast<int>(Isa::Count)] = {true, false, false, false, false};
};

#if defined(__x86_64__) || defined(__i386__)
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

Detected detect() {
  Detected d;
#if defined(__x86_64__) || defined(__i386__)
  d.arch = "x86_64";
  unsigned a, b, c, e;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  bool fma = false, f16c = false, avx = false, osxsave = false;
  if (max_leaf >= 1 && __get_cpuid(1, &a, &b, &c, &e)) {
    fma = c & (1u << 12); osxsave = c & (1u << 27); avx = c & (1u << 28); f16c = c & (1u << 29);
  }
  // OS support: XCR0 must enable XMM|YMM for AVX, and opmask|ZMM_Hi256|Hi16_ZMM for AVX-512.
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;
  const bool os_avx512 = (xcr0 & 0xE6) == 0xE6;
  bool avx2 = false, f = false, dq = false, bw = false, vl = false, vnni = false;
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, e);
    avx2 = b & (1u << 5); f = b & (1u << 16); dq = b & (1u << 17); bw = b & (1u << 30); vl = b & (1u << 31);
    vnni = c & (1u << 11);
  }
  auto add = [&](bool on, const char* name) { if (on) d.features.emplace_back(name); };
  add(avx && os_avx, "avx"); add(avx2 && os_avx, "avx2"); add(fma && os_avx, "fma"); add(f16c && os_avx, "f16c");
  add(f && os_avx512, "avx512f"); add(dq && os_avx512, "avx512dq"); add(bw && os_avx512, "avx512bw");
  add(vl && os_avx512, "avx512vl"); add(vnni && os_avx512, "avx512vnni");
  if (!os_avx && (avx2 || avx)) d.features.emplace_back("os-no-avx");
  if (!os_avx512 && f) d.features.emplace_back("os-no-avx512");
#ifdef EE_HAVE_AVX2
  d.has[static_cast<int>(Isa::Avx2)] = avx && avx2 && fma && f16c && os_avx;
#endif
#ifdef EE_HAVE_AVX512
  d.has[static_cast<int>(Isa::Avx512)] = d.has[static_cast<int>(Isa::Avx2)] && f && dq && bw && vl && vnni && os_avx512;
#endif
#elif defined(__aarch64__)
  d.arch = "aarch64";
  d.features.emplace_back("asimd");   // baseline of AArch64
#if defined(__linux__)
  const unsigned long hw = getauxval(AT_HWCAP);
  const bool dp = hw & (1ul << 20);   // HWCAP_ASIMDDP
  if (hw & (1ul << 1)) {} // HWCAP_ASIMD, always there
  if (dp) d.features.emplace_back("asimddp");
  if (hw & (1ul << 9)) d.features.emplace_back("asimdhp");
#else
  const bool dp = false;
#endif
#ifdef EE_HAVE_NEON
  d.has[static_cast<int>(Isa::Neon)] = true;
#endif
#ifdef EE_HAVE_DOTPROD
  d.has[static_cast<int>(Isa::Dotprod)] = dp;
#endif
#elif defined(__arm__)
  d.arch = "arm";
  bool neon = false;
#if defined(__linux__)
  const unsigned long hw = getauxval(AT_HWCAP);
  neon = hw & (1ul << 12);            // HWCAP_NEON
  if (hw & (1ul << 6)) d.features.emplace_back("vfp");
  if (neon) d.features.emplace_back("neon");
  if (hw & (1ul << 16)) d.features.emplace_back("vfpv4");
#endif
#ifdef EE_HAVE_NEON
  d.has[static_cast<int>(Isa::Neon)] = neon;
#endif
#else
  d.arch = "other";
#endif
  return d;
}

const Detected& detected() {
  static const Detected d = detect();
  return d;
}

std::string available_list() {
  std::string s;
  for (int i = 0; i < static_cast<int>(Isa::Count); ++i)
    if (detected().has[i]) s += std::string(s.empty() ? "" : ", ") + isa_name(static_cast<Isa>(i));
  return s;
}

bool compiled_in(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return true;
#ifdef EE_HAVE_AVX2
    case Isa::Avx2: return true;
#endif
#ifdef EE_HAVE_AVX512
    case Isa::Avx512: return true;
#endif
#ifdef EE_HAVE_NEON
    case Isa::Neon: return true;
#endif
#ifdef EE_HAVE_DOTPROD
    case Isa::Dotprod: return true;
#endif
    default: return false;
  }
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Neon: return "neon";
    case Isa::Dotprod: return "dotprod";
    default: return "?";
  }
}

Isa isa_from_name(const std::string& name) {
  for (int i = 0; i < static_cast<int>(Isa::Count); ++i)
    if (name == isa_name(static_cast<Isa>(i))) return static_cast<Isa>(i);
  throw IsaError("unknown ISA '" + name + "' (known: scalar, avx2, avx512, neon, dotprod)");
}

bool isa_available(Isa isa) { return isa >= Isa::Scalar && isa < Isa::Count && detected().has[static_cast<int>(isa)]; }

void require_isa(Isa isa) {
  if (isa_available(isa)) return;
  const std::string why = compiled_in(isa) ? "this CPU (or OS) does not support it" : "it is not compiled into this build";
  throw IsaError(std::string("kernel path '") + isa_name(isa) + "' is not available: " + why +
                 " (available: " + available_list() + ")");
}

Isa default_isa() {
  if (const char* env = std::getenv("ENIGMA_EDGE_ISA"); env && *env) {
    Isa isa;
    try {
      isa = isa_from_name(env);
    } catch (const IsaError& e) {
      throw IsaError(std::string("ENIGMA_EDGE_ISA: ") + e.what());
    }
    try {
      require_isa(isa);
    } catch (const IsaError& e) {
      throw IsaError(std::string("ENIGMA_EDGE_ISA=") + env + ": " + e.what());
    }
    return isa;
  }
  for (Isa isa : {Isa::Avx512, Isa::Avx2, Isa::Dotprod, Isa::Neon})
    if (isa_available(isa)) return isa;
  return Isa::Scalar;
}

CpuInfo cpu_info() {
  CpuInfo info;
  info.arch = detected().arch;
  info.features = detected().features;
  info.isa = isa_name(default_isa());
  for (int i = 0; i < static_cast<int>(Isa::Count); ++i) {
    if (detected().has[i]) info.available.emplace_back(isa_name(static_cast<Isa>(i)));
    if (compiled_in(static_cast<Isa>(i))) info.compiled.emplace_back(isa_name(static_cast<Isa>(i)));
  }
  return info;
}

}  // namespace ee
