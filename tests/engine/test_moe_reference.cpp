// The qwen35moe FFN of our forward pass against a straightforward float64 implementation written
// here from the weights in the file: router softmax over all experts, top-k (best first),
// weights renormalised to sum 1, SwiGLU experts, plus the shared expert scaled by
// sigmoid(ffn_gate_inp_shexp·x). The model is a small F32 `qwen35moe` made with make-synthetic's
// API; a tensor observer (model/tensor_observer.h) records every MoE layer's input rows, routing
// and output rows, so each layer is checked on exactly the rows it saw — in a multi-token prefill
// step, in single-token decode steps, and in the MTP block.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "peregrine/gguf.h"
#include "peregrine/model.h"
#include "peregrine/synthetic.h"
#include "test_model_util.h"
#include "test_tensor_recorder.h"

namespace peregrine {
namespace {

// A float tensor of the file as doubles, in ggml order (ne[0] contiguous).
std::vector<double> read_f32(const GgufFile& file, const std::string& name) {
  const GgufTensorInfo* t = file.find_tensor(name);
  if (!t) throw Error("test: tensor " + name + " is missing from " + file.display_name());
  if (t->type != TensorType::F32) throw Error("test: tensor " + name + " is not F32");
  std::vector<float> f(static_cast<size_t>(t->n_elements));
  std::memcpy(f.data(), t->data, f.size() * sizeof(float));
  return std::vector<double>(f.begin(), f.end());
}

// rows × cols matrix (row r at r * cols) times x.
std::vector<double> matvec(const double* m, int64_t rows, int64_t cols, const std::vector<double>& x) {
  std::vector<double> y(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t c = 0; c < cols; ++c) s += m[r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

double silu(double v) { return v / (1.0 + std::exp(-v)); }
double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// down · (silu(gate · x) ⊙ (up · x)); gate and up are [ff][n], down is [n][ff].
std::vector<double> swiglu(const double* gate, const double* up, const double* down, int64_t n, int64_t ff,
                           const std::vector<double>& x) {
  const std::vector<double> g = matvec(gate, ff, n, x), u = matvec(up, ff, n, x);
  std::vector<double> act(static_cast<size_t>(ff));
  for (int64_t f = 0; f < ff; ++f) act[f] = silu(g[f]) * u[f];
  return matvec(down, n, ff, act);
}

struct MoeLayerReference {
  MoeLayerReference(const GgufFile& file, int64_t block, const ModelConfig& c)
      : n(c.n_embd), E(c.n_expert), K(c.n_expert_used), ff(c.n_ff_expert), ffs(c.n_ff_shared_expert) {
    const std::string p = "blk." + std::to_string(block) + ".";
    router = read_f32(file, p + "ffn_gate_inp.weight");  // [E][n]
    if (file.find_tensor(p + "ffn_gate_up_exps.weight")) {
      // Fused per expert: the first ff rows are the gate, the next ff the up projection.
      const std::vector<double> fused = read_f32(file, p + "ffn_gate_up_exps.weight");  // [E][2ff][n]
      gate_exps.resize(static_cast<size_t>(E * ff * n));
      up_exps.resize(gate_exps.size());
      for (int64_t e = 0; e < E; ++e) {
        const double* at = fused.data() + e * 2 * ff * n;
        std::copy(at, at + ff * n, gate_exps.begin() + e * ff * n);
        std::copy(at + ff * n, at + 2 * ff * n, up_exps.begin() + e * ff * n);
      }
    } else {
      gate_exps = read_f32(file, p + "ffn_gate_exps.weight");  // [E][ff][n]
      up_exps = read_f32(file, p + "ffn_up_exps.weight");
    }
    down_exps = read_f32(file, p + "ffn_down_exps.weight");  // [E][n][ff]
    gate_shexp = read_f32(file, p + "ffn_gate_shexp.weight");    // [ffs][n]
    up_shexp = read_f32(file, p + "ffn_up_shexp.weight");
    down_shexp = read_f32(file, p + "ffn_down_shexp.weight");    // [n][ffs]
    gate_inp_shexp = read_f32(file, p + "ffn_gate_inp_shexp.weight");  // [n]
  }

  struct Result {
    std::vector<int32_t> experts;  // best first
    std::vector<double> weights;
    double shared_gate = 0;
    std::vector<double> out;
    double boundary_gap = 0;  // router logit of the k-th choice minus the (k+1)-th
  };

  Result run(const std::vector<double>& x) const {
    Result r;
    const std::vector<double> logits = matvec(router.data(), E, n, x);
    const double mx = *std::max_element(logits.begin(), logits.end());
    std::vector<double> p(static_cast<size_t>(E));
    double z = 0;
    for (int64_t e = 0; e < E; ++e) z += p[e] = std::exp(logits[e] - mx);
    for (double& v : p) v /= z;
    std::vector<int32_t> order(static_cast<size_t>(E));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
    r.experts.assign(order.begin(), order.begin() + K);
    r.boundary_gap = K < E ? logits[order[K - 1]] - logits[order[K]] : 1.0;
    double sum = 0;
    for (int32_t e : r.experts) sum += p[e];
    for (int32_t e : r.experts) r.weights.push_back(p[e] / sum);

    double g = 0;
    for (int64_t i = 0; i < n; ++i) g += gate_inp_shexp[i] * x[i];
    r.shared_gate = sigmoid(g);
    r.out = swiglu(gate_shexp.data(), up_shexp.data(), down_shexp.data(), n, ffs, x);
    for (double& v : r.out) v *= r.shared_gate;
    for (int64_t j = 0; j < K; ++j) {
      const int64_t e = r.experts[j];
      const std::vector<double> y = swiglu(gate_exps.data() + e * ff * n, up_exps.data() + e * ff * n,
                                           down_exps.data() + e * n * ff, n, ff, x);
      for (int64_t i = 0; i < n; ++i) r.out[i] += r.weights[j] * y[i];
    }
    return r;
  }

  int64_t n, E, K, ff, ffs;
  std::vector<double> router, gate_exps, up_exps, down_exps, gate_shexp, up_shexp, down_shexp, gate_inp_shexp;
};

// What the comparison of one call's captures found, over all layers and tokens.
struct Tally {
  int64_t rows = 0, ambiguous = 0;
  double max_out_err = 0, max_out = 0, max_weight_err = 0, max_gate_err = 0;
  std::set<int32_t> experts_used;
};

// Compares the recorded routing and FFN output of `block` for the T tokens recorded.
void check_block(const test::TensorRecorder& seen, const MoeLayerReference& ref, int64_t block, int64_t T,
                 Tally& tally) {
  const int64_t n = ref.n, K = ref.K;
  const auto inputs = seen.floats(tensor_name::kMoeInput, block);
  const auto outputs = seen.floats(tensor_name::kMoeOutput, block);
  const auto experts = seen.ids(tensor_name::kMoeExperts, block);
  const auto weights = seen.floats(tensor_name::kMoeWeights, block);
  const auto gates = seen.shared_expert_scales(block);
  ASSERT_EQ(static_cast<int64_t>(inputs.size()), T * n) << "block " << block;
  ASSERT_EQ(static_cast<int64_t>(outputs.size()), T * n) << "block " << block;
  ASSERT_EQ(static_cast<int64_t>(experts.size()), T * K) << "block " << block;
  ASSERT_EQ(static_cast<int64_t>(weights.size()), T * K) << "block " << block;
  ASSERT_EQ(static_cast<int64_t>(gates.size()), T) << "block " << block;
  for (int64_t t = 0; t < T; ++t) {
    const std::vector<double> x(inputs.begin() + t * n, inputs.begin() + (t + 1) * n);
    const MoeLayerReference::Result r = ref.run(x);
    ++tally.rows;
    // A near-tie at the top-k boundary may legitimately round either way in float32.
    if (r.boundary_gap < 1e-4) {
      ++tally.ambiguous;
      continue;
    }
    const std::vector<int32_t> got(experts.begin() + t * K, experts.begin() + (t + 1) * K);
    ASSERT_EQ(got, r.experts) << "block " << block << " token " << t;
    tally.experts_used.insert(got.begin(), got.end());
    for (int64_t j = 0; j < K; ++j)
      tally.max_weight_err = std::max(tally.max_weight_err, std::abs(weights[t * K + j] - r.weights[j]));
    tally.max_gate_err = std::max(tally.max_gate_err, std::abs(gates[t] - r.shared_gate));
    for (int64_t i = 0; i < n; ++i) {
      tally.max_out_err = std::max(tally.max_out_err, std::abs(outputs[t * n + i] - r.out[i]));
      tally.max_out = std::max(tally.max_out, std::abs(r.out[i]));
    }
  }
}

class MoeReference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = new test::ModelScratch("moe-reference");
    synthetic::Options o;
    // tiny-moe with more experts and a wider top-k than the fixture, so the ranking matters.
    o.shape = synthetic::shape_from_json_text(
        R"({"base": "tiny-moe", "name": "moe-reference", "n_expert": 16, "n_expert_used": 4,
            "n_ff_expert": 24, "n_ff_shared_expert": 40})",
        "moe-reference");
    o.type = synthetic::FileType::F32;
    o.seed = 7;
    o.mtp = true;
    o.threads = 1;
    o.out = *scratch_ / "moe-reference.gguf";
    synthetic::write_model(o);
    file_ = new GgufFile(GgufFile::open(o.out));
  }
  static void TearDownTestSuite() {
    delete file_;
    delete scratch_;
  }

  static test::ModelScratch* scratch_;
  static GgufFile* file_;
};
test::ModelScratch* MoeReference::scratch_ = nullptr;
GgufFile* MoeReference::file_ = nullptr;

TEST_F(MoeReference, EveryMoeLayerMatchesAFloat64Reference) {
  ModelOptions mo;
  mo.context_length = 64;
  mo.n_threads = 2;
  auto model = Model::load(*file_, mo);
  const ModelConfig& c = model->config();
  ASSERT_TRUE(c.is_moe());
  ASSERT_EQ(c.n_expert, 16);
  ASSERT_EQ(c.n_expert_used, 4);
  ASSERT_TRUE(c.has_mtp());
  std::vector<MoeLayerReference> refs;
  for (int64_t b = 0; b <= c.n_layer; ++b) refs.emplace_back(*file_, b, c);  // block n_layer: MTP

  Sequence seq = model->new_sequence();
  test::TensorRecorder seen(seq);
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(c.n_vocab) - 1);
  Tally tally;

  // Prefill: 12 tokens in one step (the expert loop groups tokens per expert).
  std::vector<int32_t> prompt(12);
  for (auto& t : prompt) t = token(rng);
  model->evaluate(seq, prompt, 0, LogitsFor::EveryToken);
  for (int64_t b = 0; b < c.n_layer; ++b) check_block(seen, refs[b], b, 12, tally);
  ASSERT_FALSE(HasFatalFailure());

  // The MTP block over the same tokens (its FFN is an MoE layer too).
  const std::vector<float> hidden(seq.hidden().begin(), seq.hidden().end());
  seen.clear();
  model->evaluate_mtp(seq, prompt, hidden, 0, LogitsFor::EveryToken);
  check_block(seen, refs[c.n_layer], c.n_layer, 12, tally);
  ASSERT_FALSE(HasFatalFailure());

  // Decode: single tokens.
  for (int step = 0; step < 4; ++step) {
    const int32_t id = token(rng);
    seen.clear();
    model->evaluate(seq, std::span<const int32_t>(&id, 1), seq.n_past(), LogitsFor::LastToken);
    for (int64_t b = 0; b < c.n_layer; ++b) check_block(seen, refs[b], b, 1, tally);
    ASSERT_FALSE(HasFatalFailure());
  }

  RecordProperty("max_ffn_out_abs_err", fmt::format("{:.3e}", tally.max_out_err));
  RecordProperty("max_ffn_out_abs", fmt::format("{:.3e}", tally.max_out));
  RecordProperty("max_routing_weight_abs_err", fmt::format("{:.3e}", tally.max_weight_err));
  EXPECT_EQ(tally.rows, 4 * 12 + 12 + 4 * 4);
  EXPECT_LE(tally.ambiguous, 1) << "too many near-ties at the top-k boundary to check the routing";
  EXPECT_GE(tally.experts_used.size(), 12u) << "the routing hardly varies: the check would prove little";
  EXPECT_LT(tally.max_weight_err, 2e-6);
  EXPECT_LT(tally.max_gate_err, 2e-6);
  EXPECT_GT(tally.max_out, 1e-3);  // a vanishing FFN would match anything
  EXPECT_LT(tally.max_out_err, 5e-6 * std::max(1.0, tally.max_out)) << "largest |out| " << tally.max_out;
}

// The observer is what the reference is fed: it must see every named tensor of every layer, step
// by step in the order the forward pass computes them, with the step's shapes — on both expert
// paths (host-grouped for long steps, backend-routed for short ones) and in the MTP block — and
// nothing once removed.
TEST_F(MoeReference, ObserverSeesEveryNamedTensorOfEveryStep) {
  ModelOptions mo;
  mo.context_length = 64;
  mo.max_batch = 10;  // 12 tokens: a step of 10 (host-grouped experts), then one of 2 (backend-routed)
  auto model = Model::load(*file_, mo);
  const ModelConfig& c = model->config();
  const int64_t n = c.n_embd, K = c.n_expert_used;
  using Shown = test::TensorRecorder::Shown;
  auto one_step = [&](std::vector<Shown>& out, int64_t il, int64_t T) {
    namespace name = tensor_name;
    out.push_back({std::string(name::kLayerInput), il, T, n, false});
    out.push_back({std::string(name::kMoeInput), il, T, n, false});
    out.push_back({std::string(name::kSharedExpertGate), il, T, 1, false});
    out.push_back({std::string(name::kMoeExperts), il, T, K, true});
    out.push_back({std::string(name::kMoeWeights), il, T, K, false});
    out.push_back({std::string(name::kMoeOutput), il, T, n, false});
  };
  Sequence seq = model->new_sequence();
  const std::vector<int32_t> prompt = {3, 141, 59, 265, 35, 89, 79, 223, 84, 62, 64, 33};
  {
    test::TensorRecorder seen(seq);
    model->evaluate(seq, prompt, 0, LogitsFor::LastToken);
    std::vector<Shown> expected;
    for (int64_t T : {10, 2})
      for (int64_t il = 0; il < c.n_layer; ++il) one_step(expected, il, T);
    EXPECT_EQ(seen.shown(), expected);
    // The token embeddings enter layer 0; experts are ids of this model.
    EXPECT_EQ(static_cast<int64_t>(seen.floats(tensor_name::kLayerInput, 0).size()), 12 * n);
    for (int32_t e : seen.ids(tensor_name::kMoeExperts, c.n_layer - 1)) EXPECT_TRUE(e >= 0 && e < c.n_expert) << e;

    seen.clear();
    const std::vector<float> hidden(seq.hidden().end() - n, seq.hidden().end());
    model->evaluate_mtp(seq, std::span<const int32_t>(&prompt.back(), 1), hidden, 0, LogitsFor::LastToken);
    expected.clear();
    one_step(expected, c.n_layer, 1);
    EXPECT_EQ(seen.shown(), expected);
  }
  int64_t calls = 0;
  observe_tensors(seq, [&](std::string_view, int64_t, const ObservedTensor&) { ++calls; });
  const int32_t next = 35;
  model->evaluate(seq, std::span<const int32_t>(&next, 1), seq.n_past(), LogitsFor::LastToken);
  EXPECT_EQ(calls, c.n_layer * 6);
  observe_tensors(seq, {});
  model->evaluate(seq, std::span<const int32_t>(&next, 1), seq.n_past(), LogitsFor::LastToken);
  EXPECT_EQ(calls, c.n_layer * 6) << "a removed observer was called";
}

}  // namespace
}  // namespace peregrine
