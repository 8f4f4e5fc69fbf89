// Block formats: dequantize every supported GGUF type (bit-exact with gguf.quants.dequantize),
// quantize Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 (bit-exact with gguf.quants.quantize), F32/F16/BF16, and the
// K types approximately (see quant.cpp), plus the activation formats the kernels consume.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "quant/types.h"

namespace ee {

struct QuantError : std::invalid_argument { using std::invalid_argument::invalid_argument; };

// True for the weight types the kernels support (F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K..Q6_K).
bool is_supported_weight_type(GgmlType t);
// Throws QuantError unless `t` is supported and `n` is a positive multiple of its block size.
void check_row(GgmlType t, int64_t n, const char* what);
// Type from its name ("Q4_K", case-insensitive) or numeric id string; throws QuantError.
GgmlType ggml_type_from_name(const std::string& name);

void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n);   // n multiple of block size
void quantize_row(GgmlType t, const float* src, void* dst, int64_t n);

// Activation quantization used by the kernels (one block per 32 / 256 values), bit-identical to
// what llama.cpp's x86 CPU backend does to a matmul input (the Q8_0 *weight* quantizer,
// quantize_row(Q8_0, ...), stays gguf-py's: 1/(amax/127) and round-half-away).
// Q8_0: d = fp16(amax/127), q = round-half-even(x * (127/amax))   (ggml's AVX2 quantize_row_q8_0).
void quantize_row_q8_0(const float* x, void* dst, int64_t n);
// Q8_K: v = the signed value of largest magnitude, iscale = -127/v, q = min(127, round-half-even(
// iscale*x)), d = 1/iscale (f32, negative when v > 0), plus the 16 partial sums (quantize_row_q8_K_ref).
void quantize_row_q8_K(const float* x, void* dst, int64_t n);
// The value of largest magnitude among x[0..QK_K) with its sign (the first one on ties), 0 if all are
// zero: the Q8_K scale source, shared by quantize_row_q8_K and the AVX2 activation quantizer.
float q8_K_signed_max(const float* x);

}  // namespace ee
