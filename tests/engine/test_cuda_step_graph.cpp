// Step graphs (docs/cuda.md, "Step graphs"): decode, MTP verify and draft steps recorded as one
// CUDA graph each and replayed, against the same steps issued kernel by kernel.
//
// Graphs replay the very kernels with the very arguments, so captured decoding must give the
// same ids and the same logits: the bound is 1e-6 absolute (logits stay below about 11), and the
// runs are expected to be bit-identical (the test records the largest difference seen). After
// the first step of a shape, later steps of that shape must be applied to the executable graph
// with cudaGraphExecUpdate, not instantiated again. A call that waits for the device inside a
// captured step must throw a peregrine::Error that says so, and the backend must work afterwards.
// Every test skips without a CUDA device; the emulation build runs them.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "test_forward_util.h"
#include "test_mtp_util.h"

#ifdef PEREGRINE_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace peregrine {
namespace {

using namespace test;

#ifdef PEREGRINE_HAVE_CUDA

constexpr double kReplayTol = 1e-6;
constexpr int64_t kDecodeSteps = 24;

// Backends made while this lives capture step graphs or not (PEREGRINE_CUDA_GRAPHS).
class GraphSwitch {
 public:
  explicit GraphSwitch(bool on) { setenv("PEREGRINE_CUDA_GRAPHS", on ? "1" : "0", 1); }
  ~GraphSwitch() { unsetenv("PEREGRINE_CUDA_GRAPHS"); }
};

struct CudaModel {
  std::unique_ptr<Model> model;
  cuda::CudaBackend* backend = nullptr;  // owned by the model
};

CudaModel load_cuda(const TinyFixture& fx, bool graphs) {
  GraphSwitch use(graphs);
  auto backend = make_cuda_backend(0);
  CudaModel m;
  m.backend = dynamic_cast<cuda::CudaBackend*>(backend.get());
  ModelOptions o;
  o.backend = BackendKind::Cuda;
  o.context_length = 256;
  m.model = Model::load(fx.file, o, nullptr, std::move(backend));
  EXPECT_NE(m.backend, nullptr);
  EXPECT_EQ(m.backend->step_graphs_enabled(), graphs);
  return m;
}

struct Decoded {
  std::vector<int32_t> ids;
  std::vector<float> logits;  // every step's row, one after the other
};

// Greedy decoding one token per step after the prompt, keeping every logits row.
Decoded greedy_decode(Model& model, std::span<const int32_t> prompt, int64_t steps) {
  Sequence seq = model.new_sequence();
  const int64_t V = model.config().n_vocab;
  Decoded out;
  std::span<const float> row = model.evaluate(seq, prompt, 0, LogitsFor::LastToken);
  for (int64_t s = 0; s < steps; ++s) {
    out.logits.insert(out.logits.end(), row.begin(), row.end());
    const int32_t id = argmax_row(row, V);
    out.ids.push_back(id);
    row = model.evaluate(seq, std::span<const int32_t>(&id, 1), seq.n_past(), LogitsFor::LastToken);
  }
  out.logits.insert(out.logits.end(), row.begin(), row.end());
  return out;
}

class CudaStepGraph : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
    fx = std::make_unique<TinyFixture>(GetParam());
    prompt = fx->meta["greedy"]["prompt"].get<std::vector<int32_t>>();
  }
  std::unique_ptr<TinyFixture> fx;
  std::vector<int32_t> prompt;
};

TEST_P(CudaStepGraph, GreedyDecodingIsTheSameWithAndWithoutGraphs) {
  CudaModel plain = load_cuda(*fx, false), graphed = load_cuda(*fx, true);
  const Decoded want = greedy_decode(*plain.model, prompt, kDecodeSteps);
  const Decoded got = greedy_decode(*graphed.model, prompt, kDecodeSteps);
  EXPECT_EQ(got.ids, want.ids);
  ASSERT_EQ(got.logits.size(), want.logits.size());
  const double err = max_abs(got.logits, want.logits);
  EXPECT_LE(err, kReplayTol);
  RecordProperty("graph_vs_plain_max_abs", std::to_string(err));

  EXPECT_EQ(plain.backend->step_graph_stats().captures, 0) << "PEREGRINE_CUDA_GRAPHS=0 captures nothing";
  // The prompt (16 tokens) is longer than a captured step; each of the decode steps is one graph
  // of one shape: instantiated once, then updated.
  const cuda::StepGraphStats s = graphed.backend->step_graph_stats();
  EXPECT_EQ(s.captures, kDecodeSteps);
  EXPECT_EQ(s.launches, kDecodeSteps);
  EXPECT_EQ(s.instantiations, 1);
  EXPECT_EQ(s.updates, kDecodeSteps - 1);
  EXPECT_EQ(s.aborted, 0);
}

TEST_P(CudaStepGraph, SpeculativeDecodingWithGraphsGivesTheGreedyIds) {
  CudaModel plain = load_cuda(*fx, false), graphed = load_cuda(*fx, true);
  if (!plain.model->config().has_mtp()) GTEST_SKIP() << fx->name << " has no MTP head";
  const std::vector<int32_t> want = plain_greedy(*plain.model, prompt, kDecodeSteps);
  SpeculativeStats stats;
  EXPECT_EQ(speculative_greedy(*graphed.model, prompt, kDecodeSteps, 3, &stats), want);
  EXPECT_GT(stats.drafted, 0);
  const cuda::StepGraphStats s = graphed.backend->step_graph_stats();
  // Verify widths, drafts and the MTP catch-up steps are shapes of their own; every shape is
  // instantiated once and then updated, so far fewer instantiations than steps.
  EXPECT_GT(s.launches, 10);
  EXPECT_EQ(s.launches, s.instantiations + s.updates);
  EXPECT_LE(s.instantiations, 12) << "of " << s.launches << " steps";
  EXPECT_EQ(s.aborted, 0);
  RecordProperty("speculative_launches", std::to_string(s.launches));
  RecordProperty("speculative_instantiations", std::to_string(s.instantiations));
}

// An exception inside a captured step (here: a token outside the vocabulary) discards the
// capture; the sequence has not moved, and decoding goes on as if the call never happened.
TEST_P(CudaStepGraph, AnExceptionInsideACapturedStepDiscardsIt) {
  CudaModel plain = load_cuda(*fx, false), graphed = load_cuda(*fx, true);
  const Decoded want = greedy_decode(*plain.model, prompt, 4);
  Model& model = *graphed.model;
  const int64_t V = model.config().n_vocab;
  Sequence seq = model.new_sequence();
  std::vector<float> rows;
  std::span<const float> row = model.evaluate(seq, prompt, 0, LogitsFor::LastToken);
  for (int s = 0; s < 4; ++s) {
    rows.insert(rows.end(), row.begin(), row.end());
    const int32_t bad = static_cast<int32_t>(V) + s;
    const int64_t before = seq.n_past(), aborted = graphed.backend->step_graph_stats().aborted;
    EXPECT_THROW(model.evaluate(seq, std::span<const int32_t>(&bad, 1), seq.n_past(), LogitsFor::LastToken), Error);
    EXPECT_EQ(seq.n_past(), before);
    EXPECT_EQ(graphed.backend->step_graph_stats().aborted, aborted + 1);
    EXPECT_FALSE(graphed.backend->capturing());
    const int32_t id = argmax_row(std::span<const float>(rows).last(V), V);
    EXPECT_EQ(id, want.ids[s]);
    row = model.evaluate(seq, std::span<const int32_t>(&id, 1), seq.n_past(), LogitsFor::LastToken);
  }
  rows.insert(rows.end(), row.begin(), row.end());
  EXPECT_LE(max_abs(rows, want.logits), kReplayTol);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaStepGraph, ::testing::Values("tiny-mtp-f32", "tiny-moe-f32"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

// A waiting call inside a captured step is a bug: it throws a clear error, nothing of the step
// runs, and the backend keeps working.
class CudaStepCapture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
    GraphSwitch on(true);
    owned = make_cuda_backend(0);
    be = dynamic_cast<cuda::CudaBackend*>(owned.get());
    ASSERT_NE(be, nullptr);
  }
  // y += x on the backend, checked on the host element by element.
  void expect_add_works(uint32_t seed) {
    const std::vector<float> x = cuda_like_random(257, seed), y = cuda_like_random(257, seed + 1);
    BackendArray<float> dx(*be, 257), dy(*be, 257);
    be->upload(dx.data(), x.data(), dx.bytes());
    be->upload(dy.data(), y.data(), dy.bytes());
    be->add(dy.data(), dx.data(), 257);
    std::vector<float> got(257);
    be->download(got.data(), dy.data(), dy.bytes());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], y[i] + x[i]) << i;
  }
  static std::vector<float> cuda_like_random(size_t n, uint32_t seed) {
    std::vector<float> v(n);
    uint32_t s = seed * 2654435761u + 1;
    for (auto& x : v) {
      s = s * 1664525u + 1013904223u;
      x = 0.25f + static_cast<float>(s >> 8) / static_cast<float>(1u << 24);  // in [0.25, 1.25)
    }
    return v;
  }
  std::unique_ptr<Backend> owned;
  cuda::CudaBackend* be = nullptr;
};

TEST_F(CudaStepCapture, ADownloadInsideACapturedStepThrowsAndTheBackendStaysUsable) {
  BackendArray<float> a(*be, 64), b(*be, 64);
  const std::vector<float> x = cuda_like_random(64, 7);
  be->upload(a.data(), x.data(), a.bytes());
  ASSERT_TRUE(be->begin_step_capture(42));
  be->add(b.data(), a.data(), 64);
  std::vector<float> host(64);
  try {
    be->download(host.data(), b.data(), b.bytes());
    ADD_FAILURE() << "a download inside a captured step did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("captured as a CUDA graph"), std::string::npos) << e.what();
  }
  be->abort_step_capture();
  EXPECT_FALSE(be->capturing());
  EXPECT_EQ(be->step_graph_stats().aborted, 1);
  // The recorded add never ran: b is still zero (allocate() zero-fills).
  be->download(host.data(), b.data(), b.bytes());
  for (size_t i = 0; i < host.size(); ++i) ASSERT_EQ(host[i], 0.0f) << i;
  expect_add_works(11);
}

TEST_F(CudaStepCapture, AnOperationThatWaitsInsideACapturedStepFailsTheCaptureWithAClearError) {
  // top_k_rows hands its candidates to the host, so it waits for the stream: inside a capture
  // CUDA refuses that and invalidates the capture.
  const std::vector<float> x = cuda_like_random(512, 3);
  BackendArray<float> row(*be, 512);
  be->upload(row.data(), x.data(), row.bytes());
  ASSERT_TRUE(be->begin_step_capture(7));
  int32_t id = -1;
  float value = 0;
  EXPECT_THROW(be->top_k_rows(row.data(), 1, 512, 512, 1, &id, &value), Error);
  try {
    be->end_step_capture();
    ADD_FAILURE() << "an invalidated capture was launched";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("capture of a step failed"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(be->capturing());
  EXPECT_EQ(be->step_graph_stats().launches, 0);
  // Usable again, uncaptured and captured.
  be->top_k_rows(row.data(), 1, 512, 512, 1, &id, &value);
  const auto best = std::max_element(x.begin(), x.end());
  EXPECT_EQ(id, best - x.begin());
  EXPECT_EQ(value, *best);
  expect_add_works(5);
  // An upload inside a capture is recorded too (through a capture arena): the graph copies it.
  BackendArray<float> a(*be, 64), b(*be, 64);
  std::vector<float> y = cuda_like_random(64, 9);
  ASSERT_TRUE(be->begin_step_capture(7));
  be->upload(a.data(), y.data(), a.bytes());
  be->add(b.data(), a.data(), 64);
  std::fill(y.begin(), y.end(), -1.0f);  // the host buffer may change once upload returns
  y = cuda_like_random(64, 9);
  be->end_step_capture();
  std::vector<float> got(64);
  be->download(got.data(), b.data(), b.bytes());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], y[i]) << i;
  EXPECT_EQ(be->step_graph_stats().launches, 1);
}

#else

TEST(CudaStepGraph, NeedsTheCudaBackend) { GTEST_SKIP() << "this build has no CUDA backend"; }

#endif

}  // namespace
}  // namespace peregrine
