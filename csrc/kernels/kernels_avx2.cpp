// AVX2 + FMA + F16C table (Haswell / Zen and later).
#include "kernels/kernels.h"
#include "kernels/simd_x86.h"
#include "kernels/tile.h"

namespace ee {
namespace kern {

const KernelTable& table_avx2() {
  static const KernelTable t = [] {
    KernelTable k = table_scalar();
    k.isa = Isa::Avx2;
    for (bool& b : k.native) b = false;
    k.set(GgmlType::F32, mat_rows<x86::DotF32>);
    k.set(GgmlType::F16, mat_rows<x86::DotF16>);
    k.set(GgmlType::Q8_0, mat_rows<x86::DotQ8_0>);
    k.set(GgmlType::Q4_0, mat_rows<x86::DotQ4_0>);
    k.set(GgmlType::Q5_0, mat_rows<x86::DotQ5_0>);
    k.set(GgmlType::Q4_1, mat_rows<x86::DotQ4_1>);
    k.set(GgmlType::Q5_1, mat_rows<x86::DotQ5_1>);
    k.set(GgmlType::Q4_K, mat_rows<x86::DotQ4_K>);
    k.set(GgmlType::Q5_K, mat_rows<x86::DotQ5_K>);
    k.set(GgmlType::Q6_K, mat_rows<x86::DotQ6_K>);
    k.mix_f16 = x86::DotF16::mix;
    k.mix_f32 = x86::DotF32::mix;
    k.geglu = x86::geglu;
    k.softmax = x86::softmax;
    k.round_f16 = x86::round_f16;
    return k;
  }();
  return t;
}

}  // namespace kern
}  // namespace ee
