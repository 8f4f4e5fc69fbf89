// NEON table: aarch64 baseline (Pi 3/4/Zero 2 W in 64-bit mode) and armv7 with -mfpu=neon-vfpv4.
#include "kernels/kernels.h"
#include "kernels/simd_neon.h"
#include "kernels/tile.h"

namespace ee {
namespace kern {

const KernelTable& table_neon() {
  static const KernelTable t = [] {
    using D = neon::DotMull;
    KernelTable k = table_scalar();
    k.isa = Isa::Neon;
    neon::set_kernels<D>(k);
    return k;
  }();
  return t;
}

}  // namespace kern
}  // namespace ee
