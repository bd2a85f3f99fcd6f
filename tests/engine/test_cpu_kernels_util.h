// Shared helpers of the CPU dot-product kernel tests: random rows, quantized weight rows and the
// float64 reference dot product of the dequantized weight and activation rows.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/kernels/vec_dot.h"
#include "peregrine/quant.h"

namespace peregrine::cpu::kernels::testing {

// Gaussian values with a per-32 scale that varies by 100x and a few outliers: exercises block
// scales, sign handling and the largest-magnitude rule of Q8_K.
inline std::vector<float> random_row(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(-2.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  float scale = 1.0f;
  for (int64_t i = 0; i < n; ++i) {
    if (i % 32 == 0) scale = std::pow(10.0f, uniform(rng));
    v[static_cast<size_t>(i)] = normal(rng) * scale;
    if (i % 97 == 5) v[static_cast<size_t>(i)] *= 8.0f;
  }
  return v;
}

inline std::vector<uint8_t> quantize_row(TensorType type, const std::vector<float>& x) {
  const auto n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> out(quant::row_bytes(type, n));
  quant::quantize(type, x.data(), out.data(), 1, n);
  return out;
}

inline std::vector<uint8_t> quantize_act(TensorType weight_type, const std::vector<float>& x) {
  const auto n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> out(activation_row_bytes(weight_type, n));
  quantize_activations(weight_type, x.data(), n, out.data());
  return out;
}

inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return quant::fp16_to_fp32(h);
}

struct Reference {
  double dot = 0.0;        // exact dot product of the dequantized rows
  double magnitude = 0.0;  // Σ |w_i a_i| (+ |m s| terms): the scale rounding errors are relative to
};

// float64 dot product of dequantize(weights) and dequantize(activations). For Q8_1 activations
// (Q4_1/Q5_1 weights) the block's min multiplies the stored s = f16(d_a Σ q_a), as in ggml, rather
// than d_a Σ q_a: the reference adds m_w (s_a − d_a Σ q_a) per block.
inline Reference reference_dot(TensorType wtype, int64_t n, const std::vector<uint8_t>& w,
                               const std::vector<uint8_t>& act) {
  std::vector<float> wf(static_cast<size_t>(n)), af(static_cast<size_t>(n));
  quant::dequantize(wtype, w.data(), wf.data(), n);
  const TensorType atype = activation_type(wtype);
  Reference r;
  if (atype == TensorType::Q8_1) {
    const size_t wblock = quant::row_bytes(wtype, 32);
    for (int64_t b = 0; b < n / 32; ++b) {
      const uint8_t* blk = act.data() + b * 36;
      const float d = half_at(blk), s = half_at(blk + 2);
      int qsum = 0;
      for (int j = 0; j < 32; ++j) {
        const int q = static_cast<int8_t>(blk[4 + j]);
        af[static_cast<size_t>(b * 32 + j)] = d * static_cast<float>(q);
        qsum += q;
      }
      const double m = half_at(w.data() + b * wblock + 2);
      r.dot += m * (static_cast<double>(s) - static_cast<double>(d) * qsum);
      r.magnitude += std::fabs(m * s);
    }
  } else if (atype == TensorType::F32) {
    std::memcpy(af.data(), act.data(), af.size() * sizeof(float));
  } else {
    quant::dequantize(atype, act.data(), af.data(), n);
  }
  for (size_t i = 0; i < wf.size(); ++i) {
    const double p = static_cast<double>(wf[i]) * static_cast<double>(af[i]);
    r.dot += p;
    r.magnitude += std::fabs(p);
  }
  return r;
}

}  // namespace peregrine::cpu::kernels::testing
