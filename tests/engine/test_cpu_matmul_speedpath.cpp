// The CPU backend's Quantized8 matmul (8-bit activations + AVX2 integer kernels, like ggml-cpu)
// against the kernels it is built from, against the float path, and end to end against
// llama.cpp's own 8-bit-activation logits of tiny-quant (tests/data/qwen35-tiny/README.md,
// "The quantized model").
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/kernels/vec_dot.h"
#include "peregrine/backend.h"
#include "peregrine/quant.h"
#include "test_forward_util.h"

namespace peregrine {
namespace {

namespace k = cpu::kernels;

// A random n_out × n_in matrix encoded as `type`, per-32 magnitudes spread over 10⁻² so block
// scales differ, plus activations for n_tokens tokens with a few outliers.
struct RandomProduct {
  RandomProduct(TensorType type, int64_t n_in, int64_t n_out, int64_t n_tokens, uint32_t seed)
      : type(type), n_in(n_in), n_out(n_out), n_tokens(n_tokens) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> mag(-2.0f, 0.0f);
    std::vector<float> wf(static_cast<size_t>(n_in * n_out));
    for (size_t i = 0; i < wf.size(); i += 32) {
      const float s = std::pow(10.0f, mag(rng));
      for (size_t j = i; j < std::min(wf.size(), i + 32); ++j) wf[j] = s * normal(rng);
    }
    row_bytes = quant::row_bytes(type, n_in);
    bytes.resize(row_bytes * static_cast<size_t>(n_out));
    quant::quantize(type, wf.data(), bytes.data(), n_out, n_in);
    x.resize(static_cast<size_t>(n_in * n_tokens));
    for (auto& v : x) v = normal(rng);
    for (size_t i = 0; i < x.size(); i += 97) x[i] *= 8.0f;
  }
  WeightView view() const { return {type, bytes.data(), n_in, n_out, row_bytes, "random"}; }
  std::vector<float> run(Backend& be) const {
    std::vector<float> y(static_cast<size_t>(n_out * n_tokens), -1.0f);
    be.matmul(view(), x.data(), y.data(), n_tokens);
    return y;
  }

  TensorType type;
  int64_t n_in, n_out, n_tokens;
  size_t row_bytes = 0;
  std::vector<uint8_t> bytes;
  std::vector<float> x;
};

std::string type_name(TensorType t) { return std::string(tensor_type_info(t).name); }

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class SpeedPathTest : public ::testing::TestWithParam<TensorType> {};

// Every output element is exactly the kernel's dot product of its weight row with its token's
// rounded activation row (so the tiling, the token blocks and the thread split lose nothing),
// for a decode step (1 token, vec_dot_rows) and a prefill (37 tokens: a block of 32, then 5).
TEST_P(SpeedPathTest, EqualsTheKernelPerElement) {
  const TensorType type = GetParam();
  if (!k::has_vec_dot(type)) GTEST_SKIP() << "no vec_dot for this type";
  for (int64_t n_tokens : {1, 37}) {
    const RandomProduct p(type, 512, 67, n_tokens, 11);
    auto be = make_cpu_backend(2, ActivationMode::Quantized8);
    const std::vector<float> y = p.run(*be);
    std::vector<uint8_t> act(k::activation_row_bytes(type, p.n_in));
    int bad = 0;
    for (int64_t t = 0; t < n_tokens; ++t) {
      k::quantize_activations(type, p.x.data() + t * p.n_in, p.n_in, act.data());
      for (int64_t r = 0; r < p.n_out; ++r) {
        const float want = k::vec_dot(type, p.n_in, p.bytes.data() + r * p.row_bytes, act.data());
        const float got = y[static_cast<size_t>(t * p.n_out + r)];
        if (std::memcmp(&want, &got, sizeof(float)) != 0 && ++bad <= 3)
          ADD_FAILURE() << type_name(type) << " token " << t << " row " << r << ": " << got << " vs " << want;
      }
    }
    EXPECT_EQ(bad, 0) << n_tokens << " tokens";
  }
}

// The speed path against the float path (dequantized weights × float activations): the only
// difference is the 8-bit activation rounding, at most half a unit of each block's scale per
// value (a full unit allowed here, plus the f16 scale's rounding and float summation slack).
// Float-activation types must agree to float rounding. Quantized types must differ somewhere,
// or the speed path was not taken.
TEST_P(SpeedPathTest, WithinEightBitErrorOfTheFloatPath) {
  const TensorType type = GetParam();
  if (!k::has_vec_dot(type)) GTEST_SKIP() << "no vec_dot for this type";
  const RandomProduct p(type, 512, 67, 9, 5);
  auto fast = make_cpu_backend(1, ActivationMode::Quantized8);
  auto ref = make_cpu_backend(1, ActivationMode::Float);
  const std::vector<float> yq = p.run(*fast), yf = p.run(*ref);
  const bool float_acts = k::activation_type(type) == TensorType::F32;
  const int64_t blk = type == TensorType::F32 || float_acts ? 1 : (k::activation_type(type) == TensorType::Q8_K ? 256 : 32);
  std::vector<float> wrow(static_cast<size_t>(p.n_in));
  double worst_ratio = 0.0, max_err = 0.0;
  for (int64_t r = 0; r < p.n_out; ++r) {
    quant::dequantize(type, p.bytes.data() + r * p.row_bytes, wrow.data(), p.n_in);
    for (int64_t t = 0; t < p.n_tokens; ++t) {
      const float* x = p.x.data() + t * p.n_in;
      double bound = 0.0, mass = 0.0;
      for (int64_t b0 = 0; b0 < p.n_in; b0 += blk) {
        double amax = 0.0;
        for (int64_t i = b0; i < b0 + blk; ++i) amax = std::max(amax, std::abs(double(x[i])));
        for (int64_t i = b0; i < b0 + blk; ++i) {
          mass += std::abs(double(wrow[i]) * x[i]);
          if (!float_acts) bound += std::abs(double(wrow[i])) * (amax / 127.0 + std::abs(double(x[i])) * 1e-3);
        }
      }
      bound += 1e-5 * mass;
      const size_t at = static_cast<size_t>(t * p.n_out + r);
      const double err = std::abs(double(yq[at]) - yf[at]);
      max_err = std::max(max_err, err);
      worst_ratio = std::max(worst_ratio, err / bound);
      ASSERT_LE(err, bound) << type_name(type) << " row " << r << " token " << t;
    }
  }
  RecordProperty("worst_error_over_bound", std::to_string(worst_ratio));
  if (!float_acts) {
    EXPECT_GT(max_err, 0.0) << "no activation rounding visible: was the float path used?";
  }
}

// Each output element is computed by one thread in a fixed order: 1, 2 and 3 threads give the
// same bits, in both modes, for decode and prefill shapes.
TEST_P(SpeedPathTest, ThreadCountDoesNotChangeTheBits) {
  const TensorType type = GetParam();
  for (ActivationMode mode : {ActivationMode::Quantized8, ActivationMode::Float}) {
    for (int64_t n_tokens : {1, 40}) {
      const RandomProduct p(type, 512, 67, n_tokens, 3);
      auto one = make_cpu_backend(1, mode), two = make_cpu_backend(2, mode), three = make_cpu_backend(3, mode);
      const std::vector<float> y1 = p.run(*one);
      EXPECT_TRUE(bit_equal(y1, p.run(*two))) << type_name(type) << " " << n_tokens << " tokens";
      EXPECT_TRUE(bit_equal(y1, p.run(*three))) << type_name(type) << " " << n_tokens << " tokens";
      EXPECT_TRUE(bit_equal(y1, p.run(*two))) << "second call (warm scratch) differs";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, SpeedPathTest,
                         ::testing::Values(TensorType::Q4_K, TensorType::Q6_K, TensorType::Q5_K, TensorType::Q3_K,
                                           TensorType::Q2_K, TensorType::IQ4_XS, TensorType::Q8_0, TensorType::Q5_0,
                                           TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_1, TensorType::IQ4_NL,
                                           TensorType::F16, TensorType::BF16, TensorType::F32),
                         [](const auto& info) { return type_name(info.param); });

// Logits of tiny-quant with `mode` and `threads`, all 64 tokens in one step.
std::vector<float> tiny_quant_logits(const test::TinyFixture& fx, ActivationMode mode, int threads) {
  ModelOptions o;
  o.activations = mode;
  o.n_threads = threads;
  auto model = fx.load(o);
  Sequence seq = model->new_sequence();
  const auto l = model->evaluate(seq, fx.tokens, 0, LogitsFor::EveryToken);
  return {l.begin(), l.end()};
}

// llama.cpp rounds activations to 8 bits; so does Quantized8. README's suggested assertion:
// max abs ≤ 0.3, argmax agreement ≥ 62/64 (the float path reaches only 56/64 against this file).
TEST(SpeedPathForward, TinyQuantMatchesLlamaCppEightBitLogits) {
  const test::TinyFixture fx("tiny-quant");
  const std::vector<float> want = test::read_floats(test::kTinyDir / "tiny-quant.logits.f32");
  const std::vector<float> got = tiny_quant_logits(fx, ActivationMode::Quantized8, 2);
  ASSERT_EQ(got.size(), want.size());
  const size_t vocab = want.size() / fx.tokens.size();
  const double err = test::max_abs(got, want);
  const int agree = static_cast<int>(fx.tokens.size()) - test::count_argmax_mismatches(got, want, vocab);
  std::printf("[ measured ] tiny-quant Quantized8 vs llama.cpp: max abs %.3g, argmax %d/64\n", err, agree);
  RecordProperty("max_abs", std::to_string(err));
  RecordProperty("argmax_agreement", agree);
  EXPECT_LE(err, 0.3);
  EXPECT_GE(agree, 62);

  // Same model, one token at a time (the decode path, vec_dot_rows) for the first 16 positions.
  ModelOptions o;
  o.activations = ActivationMode::Quantized8;
  o.n_threads = 2;
  auto model = fx.load(o);
  Sequence seq = model->new_sequence();
  double step_err = 0.0;
  for (int64_t p = 0; p < 16; ++p) {
    const auto l = model->evaluate(seq, std::span(&fx.tokens[static_cast<size_t>(p)], 1), p, LogitsFor::LastToken);
    step_err = std::max(step_err, test::max_abs(l, std::span(want).subspan(static_cast<size_t>(p) * vocab, vocab)));
  }
  std::printf("[ measured ] token-by-token, first 16 positions: max abs %.3g\n", step_err);
  EXPECT_LE(step_err, 0.3);
}

TEST(SpeedPathForward, ThreadCountDoesNotChangeTinyQuantLogits) {
  const test::TinyFixture fx("tiny-quant");
  for (ActivationMode mode : {ActivationMode::Quantized8, ActivationMode::Float})
    EXPECT_TRUE(bit_equal(tiny_quant_logits(fx, mode, 1), tiny_quant_logits(fx, mode, 2)))
        << (mode == ActivationMode::Float ? "float" : "quantized8");
}

// Float mode is the float32 reference: tiny-quant against the float-activation numpy run, and an
// F32 model in Quantized8 mode (AVX2 float dot, no rounding) still within the F32 tolerance.
TEST(SpeedPathForward, FloatModeAndF32WeightsKeepTheirReferences) {
  const test::TinyFixture quant("tiny-quant");
  EXPECT_LE(test::max_abs(tiny_quant_logits(quant, ActivationMode::Float, 2), quant.ref("logits")), test::kLogitTol);

  const test::TinyFixture f32("tiny256-f32");
  EXPECT_LE(test::max_abs(tiny_quant_logits(f32, ActivationMode::Quantized8, 2), f32.ref("logits")), test::kLogitTol);
}

}  // namespace
}  // namespace peregrine
