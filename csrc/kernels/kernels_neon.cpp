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
    for (bool& b : k.native) b = false;
    k.set(GgmlType::F32, mat_rows<neon::DotF32>);
    k.set(GgmlType::F16, mat_rows<neon::DotF16>);
    k.mix_f16 = neon::DotF16::mix;
    k.mix_f32 = neon::DotF32::mix;
    k.set(GgmlType::Q8_0, mat_rows<neon::DotQ8_0<D>>);
    k.set(GgmlType::Q4_0, mat_rows<neon::DotQ4_0<D>>);
    k.set(GgmlType::Q5_0, mat_rows<neon::DotQ5_0<D>>);
    k.set(GgmlType::Q4_1, mat_rows<neon::DotQ4_1<D>>);
    k.set(GgmlType::Q5_1, mat_rows<neon::DotQ5_1<D>>);
    k.set(GgmlType::Q4_K, mat_rows<neon::DotQ4_K<D>>);
    k.set(GgmlType::Q5_K, mat_rows<neon::DotQ5_K<D>>);
    k.set(GgmlType::Q6_K, mat_rows<neon::DotQ6_K<D>>);
    return k;
  }();
  return t;
}

}  // namespace kern
}  // namespace ee
