// The model end to end on the CUDA backend, against the CPU backend on every qwen35-tiny fixture:
// logits (trunk and MTP, one batch, chunks, single steps, every KV type), greedy ids, MoE
// routing, snapshot / restore, rollback, and the free-memory refusal. Every test skips without
// a CUDA device (or a build without the CUDA backend).
//
// Bounds (absolute, on logits whose magnitudes stay below about 11, so 1e-2 is ~1e-3 of the
// range): CUDA vs CPU ≤ 1e-2 with F32 and F16 KV caches, ≤ 3e-2 with Q8_0 (a value on a
// rounding boundary may quantize one step apart; the README measures Q8_0 itself at 3.2e-2 of
// F32); the same computation twice on the device (restore, rollback vs plain) ≤ 1e-4.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "test_forward_util.h"
#include "test_mtp_util.h"
#include "test_tensor_recorder.h"

namespace peregrine {
namespace {

using namespace test;

constexpr double kCudaTol = 1e-2;
constexpr double kCudaQ8Tol = 3e-2;
constexpr double kSameDeviceTol = 1e-4;
constexpr int64_t kVocab = 512;

std::vector<float> copy_of(std::span<const float> s) { return {s.begin(), s.end()}; }

// Backends made while this lives use the given prefill math; the default (TF32) comes back after.
class PrefillMath {
 public:
  explicit PrefillMath(const char* math) { setenv("PEREGRINE_CUDA_PREFILL_MATH", math, 1); }
  ~PrefillMath() { unsetenv("PEREGRINE_CUDA_PREFILL_MATH"); }
};

// Rows whose argmax differs although the CPU's top-1 leads its top-2 by more than `margin`
// (closer calls may legitimately flip within the tolerance).
int clear_argmax_mismatches(std::span<const float> got, std::span<const float> want, double margin) {
  int bad = 0;
  for (size_t r = 0; (r + 1) * kVocab <= want.size(); ++r) {
    const auto w = want.subspan(r * kVocab, kVocab);
    std::vector<float> sorted(w.begin(), w.end());
    std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<>());
    if (sorted[0] - sorted[1] > margin && argmax(got.subspan(r * kVocab, kVocab)) != argmax(w)) ++bad;
  }
  return bad;
}

class CudaForward : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0)
      GTEST_SKIP() << (cuda_backend_compiled() ? "no CUDA device on this machine" : "this build has no CUDA backend");
    fx = std::make_unique<TinyFixture>(GetParam());
  }
  PrefillMath exact_{"fp32"};
  std::unique_ptr<Model> load(BackendKind kind, ModelOptions o = {}) const {
    o.backend = kind;
    return fx->load(o);  // context 256, as the reference runs
  }
  std::vector<int32_t> greedy_prompt() const { return fx->meta["greedy"]["prompt"].get<std::vector<int32_t>>(); }
  std::unique_ptr<TinyFixture> fx;
};

TEST_P(CudaForward, LogitsMatchTheCpuBackend) {
  auto cpu = load(BackendKind::Cpu);
  auto gpu = load(BackendKind::Cuda);
  EXPECT_EQ(gpu->backend().name(), "cuda");
  EXPECT_TRUE(gpu->backend().free_memory().has_value());
  Sequence sc = cpu->new_sequence(), sg = gpu->new_sequence();
  const auto lc = copy_of(cpu->evaluate(sc, fx->tokens, 0, LogitsFor::EveryToken));
  const auto lg = copy_of(gpu->evaluate(sg, fx->tokens, 0, LogitsFor::EveryToken));
  const double err = max_abs(lg, lc);
  EXPECT_LE(err, kCudaTol) << "one 64-token batch";
  EXPECT_EQ(clear_argmax_mismatches(lg, lc, 2 * kCudaTol), 0);
  EXPECT_LE(max_abs(sg.hidden(), sc.hidden()), kCudaTol) << "hidden rows";
  EXPECT_LE(max_abs(lg, fx->ref("logits")), kCudaTol) << "against llama.cpp";
  RecordProperty("batch_max_abs", std::to_string(err));

  // The MTP head over all positions.
  const int64_t n = cpu->config().n_embd, N = static_cast<int64_t>(fx->tokens.size());
  std::vector<float> h_in(N * n, 0.0f);
  std::copy(sc.hidden().begin(), sc.hidden().end() - n, h_in.begin() + n);
  const auto mc = copy_of(cpu->evaluate_mtp(sc, fx->tokens, h_in, 0, LogitsFor::EveryToken));
  const auto mg = copy_of(gpu->evaluate_mtp(sg, fx->tokens, h_in, 0, LogitsFor::EveryToken));
  EXPECT_LE(max_abs(mg, mc), kCudaTol) << "MTP logits";
  EXPECT_EQ(clear_argmax_mismatches(mg, mc, 2 * kCudaTol), 0);
}

TEST_P(CudaForward, ChunkedPrefillAndSingleStepsMatchTheCpuBackend) {
  ModelOptions o;
  o.max_batch = 7;
  auto cpu = load(BackendKind::Cpu, o);
  auto gpu = load(BackendKind::Cuda, o);
  Sequence sc = cpu->new_sequence(), sg = gpu->new_sequence();
  size_t at = 0;
  for (size_t len : {10, 1, 1, 52}) {
    const auto part = std::span(fx->tokens).subspan(at, len);
    const auto lc = copy_of(cpu->evaluate(sc, part, sc.n_past(), LogitsFor::EveryToken));
    EXPECT_LE(max_abs(gpu->evaluate(sg, part, sg.n_past(), LogitsFor::EveryToken), lc), kCudaTol) << "chunk at " << at;
    at += len;
  }
  sc.reset();
  sg.reset();
  double worst = 0;
  for (size_t t = 0; t < fx->tokens.size(); ++t) {
    const auto one = std::span(fx->tokens).subspan(t, 1);
    const auto lc = copy_of(cpu->evaluate(sc, one, sc.n_past(), LogitsFor::LastToken));
    worst = std::max(worst, max_abs(gpu->evaluate(sg, one, sg.n_past(), LogitsFor::LastToken), lc));
  }
  EXPECT_LE(worst, kCudaTol) << "64 single-token steps";
}

TEST_P(CudaForward, KvCacheTypesMatchTheCpuBackend) {
  for (TensorType kv : {TensorType::F16, TensorType::Q8_0}) {
    ModelOptions o;
    o.kv_type = kv;
    auto cpu = load(BackendKind::Cpu, o);
    auto gpu = load(BackendKind::Cuda, o);
    Sequence sc = cpu->new_sequence(), sg = gpu->new_sequence();
    const auto lc = copy_of(cpu->evaluate(sc, fx->tokens, 0, LogitsFor::EveryToken));
    EXPECT_LE(max_abs(gpu->evaluate(sg, fx->tokens, 0, LogitsFor::EveryToken), lc),
              kv == TensorType::Q8_0 ? kCudaQ8Tol : kCudaTol)
        << tensor_type_info(kv).name;
  }
}

TEST_P(CudaForward, GreedyIdsEqualTheCpuBackendsWithAndWithoutMtp) {
  if (fx->quantized()) GTEST_SKIP() << "greedy ids are compared on the F32 fixtures";
  auto cpu = load(BackendKind::Cpu);
  auto gpu = load(BackendKind::Cuda);
  const auto prompt = greedy_prompt();
  const auto expected = plain_greedy(*cpu, prompt, 16);
  EXPECT_EQ(plain_greedy(*gpu, prompt, 16), expected) << "plain";
  for (int k : {1, 3}) EXPECT_EQ(speculative_greedy(*gpu, prompt, 16, k), expected) << "MTP k=" << k;
}

TEST_P(CudaForward, SnapshotRestoreContinuesLikeTheOriginal) {
  auto cpu = load(BackendKind::Cpu);
  auto gpu = load(BackendKind::Cuda);
  const auto first = std::span(fx->tokens).first(40), rest = std::span(fx->tokens).subspan(40);
  Sequence original = gpu->new_sequence(), restored = gpu->new_sequence(), from_cpu = gpu->new_sequence();
  Sequence sc = cpu->new_sequence();
  gpu->evaluate(original, first, 0, LogitsFor::LastToken);
  cpu->evaluate(sc, first, 0, LogitsFor::LastToken);
  gpu->restore(restored, gpu->snapshot(original));
  EXPECT_EQ(restored.n_past(), 40);
  EXPECT_LE(max_abs(restored.logits(), original.logits()), kSameDeviceTol);
  const auto lo = copy_of(gpu->evaluate(original, rest, 40, LogitsFor::EveryToken));
  EXPECT_LE(max_abs(gpu->evaluate(restored, rest, 40, LogitsFor::EveryToken), lo), kSameDeviceTol)
      << "restored on the device";
  // Snapshots move between backends (same model fingerprint).
  EXPECT_EQ(gpu->fingerprint(), cpu->fingerprint());
  gpu->restore(from_cpu, cpu->snapshot(sc));
  const auto lc = copy_of(cpu->evaluate(sc, rest, 40, LogitsFor::EveryToken));
  EXPECT_LE(max_abs(gpu->evaluate(from_cpu, rest, 40, LogitsFor::EveryToken), lc), kCudaTol)
      << "CPU snapshot restored on the device";
}

TEST_P(CudaForward, RollbackEqualsPlainDecoding) {
  auto gpu = load(BackendKind::Cuda);
  const auto prompt = greedy_prompt();
  Sequence spec = gpu->new_sequence(), plain = gpu->new_sequence();
  spec.set_delta_checkpoints(8);
  gpu->evaluate(spec, prompt, 0, LogitsFor::LastToken);
  gpu->evaluate(spec, std::span(fx->tokens).subspan(16, 6), 16, LogitsFor::EveryToken);
  gpu->rollback(spec, 19);
  gpu->evaluate(plain, std::span(fx->tokens).first(19), 0, LogitsFor::LastToken);
  EXPECT_LE(max_abs(spec.logits(), plain.logits()), kSameDeviceTol) << "logits after rollback";
  // After a rollback hidden() is the last kept token's row; the plain call kept all 19 rows.
  const auto plain_hidden = plain.hidden();
  const auto n_embd = static_cast<size_t>(gpu->config().n_embd);
  ASSERT_EQ(spec.hidden().size(), n_embd);
  EXPECT_LE(max_abs(spec.hidden(), plain_hidden.last(n_embd)), kSameDeviceTol) << "hidden after rollback";
  const auto next = std::span(fx->tokens).subspan(19, 4);
  const auto lp = copy_of(gpu->evaluate(plain, next, 19, LogitsFor::EveryToken));
  EXPECT_LE(max_abs(gpu->evaluate(spec, next, 19, LogitsFor::EveryToken), lp), kSameDeviceTol)
      << "decoding on after rollback";
}

// The default prefill products round their inputs to TF32 (10 mantissa bits): on the fixtures the
// logits of a 64-token batch then move by up to ~0.05 (measured with the emulator's TF32 model:
// 0.049), so the bound here is 0.15 and clear argmax decisions must not change.
TEST_P(CudaForward, TensorCorePrefillStaysClose) {
  PrefillMath tf32("tf32");
  auto cpu = load(BackendKind::Cpu);
  auto gpu = load(BackendKind::Cuda);
  Sequence sc = cpu->new_sequence(), sg = gpu->new_sequence();
  const auto want = copy_of(cpu->evaluate(sc, fx->tokens, 0, LogitsFor::EveryToken));
  const auto got = copy_of(gpu->evaluate(sg, fx->tokens, 0, LogitsFor::EveryToken));
  ASSERT_EQ(got.size(), want.size());
  const double err = max_abs(got, want);
  RecordProperty("tf32_prefill_max_abs", std::to_string(err));
  EXPECT_LE(err, 0.15);
  EXPECT_EQ(clear_argmax_mismatches(got, want, 0.3), 0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaForward,
                         ::testing::Values("tiny-f32", "tiny-mtp-f32", "tiny256-f32", "tiny-moe-f32", "tiny-quant"));

class CudaModel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0)
      GTEST_SKIP() << (cuda_backend_compiled() ? "no CUDA device on this machine" : "this build has no CUDA backend");
  }
  PrefillMath exact_{"fp32"};
};

TEST_F(CudaModel, MoeRoutingPicksTheCpuBackendsExperts) {
  TinyFixture fx("tiny-moe-f32");
  ModelOptions o;
  auto cpu = fx.load(o);
  o.backend = BackendKind::Cuda;
  auto gpu = fx.load(o);
  Sequence sc = cpu->new_sequence(), sg = gpu->new_sequence();
  TensorRecorder on_cpu(sc), on_gpu(sg);
  cpu->evaluate(sc, fx.tokens, 0, LogitsFor::LastToken);
  gpu->evaluate(sg, fx.tokens, 0, LogitsFor::LastToken);
  for (int64_t il = 0; il < cpu->config().n_layer; ++il) {
    const auto ec = on_cpu.ids(tensor_name::kMoeExperts, il), eg = on_gpu.ids(tensor_name::kMoeExperts, il);
    EXPECT_FALSE(ec.empty()) << "layer " << il;
    EXPECT_TRUE(std::equal(ec.begin(), ec.end(), eg.begin(), eg.end())) << "experts of layer " << il;
    EXPECT_LE(max_abs(on_gpu.floats(tensor_name::kMoeWeights, il), on_cpu.floats(tensor_name::kMoeWeights, il)), 1e-5)
        << "weights of layer " << il;
  }
}

// The free memory the load checks against is the device's: a sequence's state shows up in it.
// (The refusal itself is tested on the emulated device, test_device_discipline_decode.cpp: the
// largest context allowed, 2^24, fits these tiny models on any data-centre GPU.)
TEST_F(CudaModel, FreeMemoryDropsByASequencesState) {
  TinyFixture fx("tiny-f32");
  ModelOptions o;
  o.backend = BackendKind::Cuda;
  o.context_length = int64_t{1} << 20;  // 1 GiB of KV cache (trunk and MTP block)
  auto gpu = Model::load(fx.file, o);
  const auto before = gpu->backend().free_memory();
  ASSERT_TRUE(before.has_value());
  Sequence seq = gpu->new_sequence();
  const auto after = gpu->backend().free_memory();
  ASSERT_TRUE(after.has_value());
  ASSERT_GE(*before, *after);
  const uint64_t state = seq.memory().total();
  EXPECT_GE(state, uint64_t{1} << 30);
  EXPECT_GE(*before - *after, state - (uint64_t{64} << 20)) << "free before " << *before << ", after " << *after;
}

}  // namespace
}  // namespace peregrine
