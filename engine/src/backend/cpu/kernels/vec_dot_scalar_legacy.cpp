// Portable dot products for float weights and the 32-value block formats (Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, IQ4_NL). They define the semantics the AVX2 kernels must reproduce: an exact integer
// dot product per block, then one float multiply-add per block in ggml's operand order.
#include "backend/cpu/kernels/vec_dot_impl.h"
#include "peregrine/quant.h"

namespace peregrine::cpu::kernels {
namespace {

// Eight interleaved partial sums, combined pairwise: keeps the rounding error of long rows small
// and mirrors the lane structure of the vector kernels.
template <typename LoadWeight>
float float_dot(int64_t n, const float* a, LoadWeight load) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) acc[l] += load(i + l) * a[i + l];
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += load(i) * a[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

// Unpacks the 32 4-bit indices of a Q4_0/Q4_1/IQ4_NL block: byte j = value j (low) and j+16.
inline void unpack_nibbles(const uint8_t* qs, uint8_t out[32]) {
  for (int j = 0; j < 16; ++j) {
    out[j] = qs[j] & 0xF;
    out[j + 16] = qs[j] >> 4;
  }
}

// Adds the fifth bit of a Q5_0/Q5_1 block (bit j of the little-endian u32 qh = value j).
inline void add_fifth_bits(uint32_t qh, uint8_t q[32]) {
  for (int j = 0; j < 32; ++j) q[j] |= static_cast<uint8_t>(((qh >> j) & 1) << 4);
}

inline int dot32(const uint8_t* q, int offset, const int8_t* a) {
  int sum = 0;
  for (int j = 0; j < 32; ++j) sum += (q[j] - offset) * a[j];
  return sum;
}

inline float f16(const uint8_t* p) { return quant::fp16_to_fp32(load_u16(p)); }
inline const int8_t* q8(const uint8_t* block, int offset) {
  return reinterpret_cast<const int8_t*>(block + offset);
}

// Signed-weight formats × Q8_0: sum over blocks of d_w * d_a * Σ q_w q_a.
template <int kBytes, typename Unpack>
float dot_x_q8_0(int64_t n, const void* wv, const void* av, Unpack unpack) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const auto* a = static_cast<const uint8_t*>(av);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b, w += kBytes, a += kQ8_0Bytes) {
    int8_t q[32];
    unpack(w, q);
    int isum = 0;
    const int8_t* aq = q8(a, 2);
    for (int j = 0; j < 32; ++j) isum += q[j] * aq[j];
    sum += (f16(w) * f16(a)) * static_cast<float>(isum);
  }
  return sum;
}

// Unsigned-weight formats with a min × Q8_1: Σ (d_w * d_a) * Σ q_w q_a + m_w * s_a.
template <int kBytes, typename Unpack>
float dot_x_q8_1(int64_t n, const void* wv, const void* av, Unpack unpack) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const auto* a = static_cast<const uint8_t*>(av);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b, w += kBytes, a += kQ8_1Bytes) {
    uint8_t q[32];
    unpack(w, q);
    const int isum = dot32(q, 0, q8(a, 4));
    sum += (f16(w) * f16(a)) * static_cast<float>(isum) + f16(w + 2) * f16(a + 2);
  }
  return sum;
}

}  // namespace

float vec_dot_f32_scalar(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const float*>(wv);
  return float_dot(n, static_cast<const float*>(av), [w](int64_t i) { return w[i]; });
}

float vec_dot_f16_scalar(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const uint8_t*>(wv);
  return float_dot(n, static_cast<const float*>(av), [w](int64_t i) { return f16(w + 2 * i); });
}

float vec_dot_bf16_scalar(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const uint8_t*>(wv);
  return float_dot(n, static_cast<const float*>(av),
                   [w](int64_t i) { return quant::bf16_to_fp32(load_u16(w + 2 * i)); });
}

float vec_dot_q4_0_scalar(int64_t n, const void* w, const void* a) {
  return dot_x_q8_0<kQ4_0Bytes>(n, w, a, [](const uint8_t* blk, int8_t* q) {
    uint8_t u[32];
    unpack_nibbles(blk + 2, u);
    for (int j = 0; j < 32; ++j) q[j] = static_cast<int8_t>(u[j] - 8);
  });
}

float vec_dot_q5_0_scalar(int64_t n, const void* w, const void* a) {
  return dot_x_q8_0<kQ5_0Bytes>(n, w, a, [](const uint8_t* blk, int8_t* q) {
    uint8_t u[32];
    unpack_nibbles(blk + 6, u);
    add_fifth_bits(load_u32(blk + 2), u);
    for (int j = 0; j < 32; ++j) q[j] = static_cast<int8_t>(u[j] - 16);
  });
}

float vec_dot_q8_0_scalar(int64_t n, const void* w, const void* a) {
  return dot_x_q8_0<kQ8_0Bytes>(n, w, a, [](const uint8_t* blk, int8_t* q) {
    std::memcpy(q, blk + 2, 32);
  });
}

float vec_dot_iq4_nl_scalar(int64_t n, const void* w, const void* a) {
  return dot_x_q8_0<kIQ4NLBytes>(n, w, a, [](const uint8_t* blk, int8_t* q) {
    uint8_t u[32];
    unpack_nibbles(blk + 2, u);
    for (int j = 0; j < 32; ++j) q[j] = kIq4Grid[u[j]];
  });
}

float vec_dot_q4_1_scalar(int64_t n, const void* w, const void* a) {
  return dot_x_q8_1<kQ4_1Bytes>(n, w, a, [](const uint8_t* blk, uint8_t* q) { unpack_nibbles(blk + 4, q); });
}

float vec_dot_q5_1_scalar(int64_t n, const void* w, const void* a) {
  return dot_x_q8_1<kQ5_1Bytes>(n, w, a, [](const uint8_t* blk, uint8_t* q) {
    unpack_nibbles(blk + 8, q);
    add_fifth_bits(load_u32(blk + 4), q);
  });
}

}  // namespace peregrine::cpu::kernels
