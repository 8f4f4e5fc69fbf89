// NEON + dotprod table (armv8.2-a: Pi 5's Cortex-A76): the same kernels with SDOT as the primitive.
#include "kernels/kernels.h"
#include "kernels/simd_neon.h"
#include "kernels/tile.h"

namespace ee {
namespace kern {

namespace {
struct DotSdot {
  static inline int32x4_t dot16(int8x16_t a, int8x16_t b) { return vdotq_s32(vdupq_n_s32(0), a, b); }
};
}  // namespace

const KernelTable& table_dotprod() {
  static const KernelTable t = [] {
    using D = DotSdot;
    KernelTable k = table_neon();
    k.isa = Isa::Dotprod;
    neon::set_kernels<D>(k);
    return k;
  }();
  return t;
}

}  // namespace kern
}  // namespace ee
