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
