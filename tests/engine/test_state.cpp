// KV-cache precision (F32 / F16 / Q8_0) and the memory a sequence reports: the attention kernel
// over a rounded cache against the float kernel over the same rounded values, and the whole
// forward pass with F16 / Q8_0 caches against F32 caches on the qwen35-tiny fixtures.
#include <gtest/gtest.h>

#include <cstring>
#include <iostream>
#include <random>
#include <vector>

#include "peregrine/backend.h"
#include "peregrine/error.h"
#include "peregrine/quant.h"
#include "test_forward_util.h"

namespace peregrine {
namespace {

using namespace test;

// Measured on the five fixtures (64 positions, trunk and MTP logits; docs/state.md): F16 ≤ 5.9e-4
// on the trunk and ≤ 1.8e-3 on the MTP head; Q8_0 ≤ 1.9e-2 trunk, ≤ 3.2e-2 MTP. The bounds leave
// headroom for other compilers; argmax must agree everywhere.
constexpr double kF16LogitTol = 3e-3;
constexpr double kQ8LogitTol = 5e-2;

// ---- the attention kernel ----------------------------------------------------------------------

// attention() over an F16 / Q8_0 cache is, by construction, the float kernel applied to the
// dequantized cache: same products, same order. So the comparison is exact.
class KvKernel : public ::testing::TestWithParam<TensorType> {};

TEST_P(KvKernel, RoundedCacheEqualsFloatKernelOnDequantizedValues) {
  const TensorType type = GetParam();
  struct Shape {
    int64_t T, H, Hkv;
    std::vector<int32_t> pos;
  };
  // A prefill-like step (groups of 3 heads) and a decode step whose group of 4 heads is split
  // between threads when there are more threads than KV heads.
  for (const Shape& sh : {Shape{5, 6, 2, {3, 17, 18, 30, 39}}, Shape{1, 8, 2, {39}}}) {
    const int64_t T = sh.T, H = sh.H, Hkv = sh.Hkv, hd = 64, n_ctx = 40;
    const int64_t row = Hkv * hd;
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> q(T * H * hd), k(n_ctx * row), v(n_ctx * row);
    for (auto* x : {&q, &k, &v})
      for (float& f : *x) f = nd(rng);
    std::vector<float> first;
    for (int threads : {1, 2, 4}) {
      auto be = make_cpu_backend(threads);
      const size_t rb = quant::row_bytes(type, row);
      std::vector<uint8_t> kc(n_ctx * rb), vc(n_ctx * rb);
      be->kv_store(type, k.data(), n_ctx, row, kc.data());
      be->kv_store(type, v.data(), n_ctx, row, vc.data());
      // The store is the format's reference rounding (the quant module's, byte-identical to ggml).
      std::vector<uint8_t> kq(n_ctx * rb);
      quant::quantize(type, k.data(), kq.data(), n_ctx, row);
      EXPECT_EQ(kc, kq);
      std::vector<float> kd(n_ctx * row), vd(n_ctx * row);
      quant::dequantize(type, kc.data(), kd.data(), n_ctx * row);
      quant::dequantize(type, vc.data(), vd.data(), n_ctx * row);

      std::vector<float> got(T * H * hd), want(T * H * hd);
      const KvView view{type, kc.data(), vc.data(), rb, Hkv};
      be->attention(HeadView::dense(q.data(), T, H, hd), view, sh.pos, 0.125f, got.data());
      be->attention(HeadView::dense(q.data(), T, H, hd), kd.data(), vd.data(), Hkv, sh.pos, 0.125f, want.data());
      EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float))) << threads << " threads";
      if (first.empty()) first = got;
      EXPECT_EQ(0, std::memcmp(got.data(), first.data(), got.size() * sizeof(float))) << threads << " threads";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, KvKernel, ::testing::Values(TensorType::F32, TensorType::F16, TensorType::Q8_0),
                         [](const auto& info) { return std::string(tensor_type_info(info.param).name); });

TEST(KvKernel, RejectsUnsupportedTypes) {
  auto be = make_cpu_backend(1);
  std::vector<float> x(64, 1.0f);
  std::vector<uint8_t> out(1024);
  EXPECT_THROW(be->kv_store(TensorType::Q4_0, x.data(), 1, 64, out.data()), Error);
  EXPECT_THROW(be->kv_store(TensorType::Q8_0, x.data(), 1, 48, out.data()), Error);  // not a multiple of 32
}

// ---- the forward pass with rounded caches -----------------------------------------------------

class KvPrecision : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { fx = std::make_unique<TinyFixture>(GetParam()); }
  std::unique_ptr<Model> load(TensorType kv) const {
    ModelOptions o;
    o.kv_type = kv;
    return fx->load(o);
  }
  // Logits of every position (one 64-token batch, then the same 64 tokens one at a time) and the
  // MTP head's logits over them.
  struct Run {
    std::vector<float> batch, steps, mtp;
  };
  Run run(TensorType kv) const {
    auto model = load(kv);
    Run r;
    Sequence seq = model->new_sequence();
    EXPECT_EQ(seq.kv_type(), kv);
    auto l = model->evaluate(seq, fx->tokens, 0, LogitsFor::EveryToken);
    r.batch.assign(l.begin(), l.end());
    const int64_t n = model->config().n_embd, N = static_cast<int64_t>(fx->tokens.size());
    std::vector<float> h_in(N * n, 0.0f);
    std::copy(seq.hidden().begin(), seq.hidden().end() - n, h_in.begin() + n);
    auto m = model->evaluate_mtp(seq, fx->tokens, h_in, 0, LogitsFor::EveryToken);
    r.mtp.assign(m.begin(), m.end());
    seq.reset();
    for (size_t t = 0; t < fx->tokens.size(); ++t) {
      auto s = model->evaluate(seq, std::span(fx->tokens).subspan(t, 1), t, LogitsFor::LastToken);
      r.steps.insert(r.steps.end(), s.begin(), s.end());
    }
    return r;
  }
  std::unique_ptr<TinyFixture> fx;
};

TEST_P(KvPrecision, RoundedCachesStayCloseToF32) {
  const size_t V = 512;
  const Run f32 = run(TensorType::F32);
  for (TensorType kv : {TensorType::F16, TensorType::Q8_0}) {
    const Run r = run(kv);
    const double tol = kv == TensorType::F16 ? kF16LogitTol : kQ8LogitTol;
    const double d_batch = max_abs(r.batch, f32.batch), d_steps = max_abs(r.steps, f32.steps),
                 d_mtp = max_abs(r.mtp, f32.mtp);
    std::cout << "[ kv-precision ] " << fx->name << " " << tensor_type_info(kv).name << ": max |dlogit| batch "
              << d_batch << ", decode steps " << d_steps << ", MTP " << d_mtp << " (bound " << tol << ")\n";
    EXPECT_LE(d_batch, tol);
    EXPECT_LE(d_steps, tol);
    EXPECT_LE(d_mtp, tol);
    EXPECT_GT(d_batch, 0.0) << "the cache is not rounded at all";
    EXPECT_EQ(count_argmax_mismatches(r.batch, f32.batch, V), 0);
    EXPECT_EQ(count_argmax_mismatches(r.steps, f32.steps, V), 0);
    EXPECT_EQ(count_argmax_mismatches(r.mtp, f32.mtp, V), 0);
  }
}

TEST_P(KvPrecision, F16CacheStaysWithinLlamaCppTolerance) {
  // The rounding of the cache is small next to the fixture tolerance itself.
  const Run r = run(TensorType::F16);
  EXPECT_LE(max_abs(r.batch, fx->ref("logits")), kLogitTol);
  EXPECT_EQ(count_argmax_mismatches(r.batch, fx->ref("logits"), 512), 0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, KvPrecision,
                         ::testing::Values("tiny-f32", "tiny-mtp-f32", "tiny-moe-f32", "tiny256-f32", "tiny-quant"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

// ---- memory ----------------------------------------------------------------------------------

TEST(SequenceMemory, AllocatedForTheContextAndReportedPerComponent) {
  TinyFixture fx("tiny-f32");
  for (TensorType kv : {TensorType::F32, TensorType::F16, TensorType::Q8_0}) {
    ModelOptions o;
    o.context_length = 100;
    o.kv_type = kv;
    auto model = Model::load(fx.file, o);
    const ModelConfig& c = model->config();
    Sequence seq = model->new_sequence();
    const SequenceMemory m = seq.memory();
    const uint64_t row = quant::row_bytes(kv, c.n_head_kv * c.head_dim);
    const int64_t n_attn = c.n_full_attention_layers(), n_delta = c.n_layer - n_attn;
    EXPECT_EQ(m.kv_bytes, uint64_t(n_attn) * 2 * 100 * row);
    EXPECT_EQ(m.mtp_kv_bytes, c.has_mtp() ? 2 * 100 * row : 0);
    EXPECT_EQ(m.conv_bytes, uint64_t(n_delta) * (c.ssm_conv_kernel - 1) * c.ssm_conv_channels() * 4);
    EXPECT_EQ(m.recurrent_bytes, uint64_t(n_delta) * c.ssm_time_step_rank * c.ssm_state_size * c.ssm_state_size * 4);
    EXPECT_EQ(m.total(), m.kv_bytes + m.conv_bytes + m.recurrent_bytes + m.mtp_kv_bytes);
    std::cout << "[ memory ] tiny-f32 context 100, KV " << tensor_type_info(kv).name << ": KV " << m.kv_bytes
              << " B, conv " << m.conv_bytes << " B, recurrent " << m.recurrent_bytes << " B, MTP KV "
              << m.mtp_kv_bytes << " B\n";
  }
  // F16 halves the KV cache; Q8_0 stores 34 bytes per 32 values.
  const int64_t row_values = 2 * 32;  // tiny: 2 KV heads × 32
  EXPECT_EQ(quant::row_bytes(TensorType::F16, row_values) * 2, quant::row_bytes(TensorType::F32, row_values));
  EXPECT_EQ(quant::row_bytes(TensorType::Q8_0, row_values), size_t(68));
}

TEST(SequenceMemory, UnsupportedKvTypeIsRefusedAtLoad) {
  TinyFixture fx("tiny-f32");
  ModelOptions o;
  o.kv_type = TensorType::Q4_K;
  try {
    Model::load(fx.file, o);
    FAIL() << "q4_K KV cache accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("KV cache type q4_K"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace peregrine
