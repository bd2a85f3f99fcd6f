// How the CPU backend multiplies quantized (and F16/BF16) weights with activations.
#pragma once

namespace peregrine {

// Quantized8: like ggml-cpu, each activation row is rounded once per matrix product to the 8-bit
// block format paired with the weight type (Q8_K / Q8_0 / Q8_1; float for F16/BF16/F32) and the
// product runs on the AVX2 integer dot-product kernels — fast, and what llama.cpp's CPU backend
// computes (tests/data/qwen35-tiny: within 0.3 of tiny-quant.logits.f32).
// Float: every weight row is dequantized and multiplied with float activations — slower, no
// activation rounding; reproduces the float64 references (tiny-quant.float_*.f32) within 1e-3.
enum class ActivationMode { Quantized8, Float };

}  // namespace peregrine
