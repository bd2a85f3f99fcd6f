// ProfilingBackend (engine/src/backend/profile): bit-identical forwarding, call counts that follow
// from the model structure, host-clock totals bounded by the wall time, the device-timer path
// (with a fake timer), and `peregrine-cli bench --op-profile --json` on the qwen35-tiny fixtures.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/profile/op_profiler.h"
#include "cli_commands.h"
#include "cli_decode_commands.h"
#include "test_forward_util.h"

namespace peregrine::test {
namespace {

std::unique_ptr<Model> load_on(const TinyFixture& f, std::unique_ptr<Backend> backend) {
  ModelOptions o;
  o.context_length = 256;
  return Model::load(f.file, o, nullptr, std::move(backend));
}

// Logits of a prompt evaluated at once, then of `n_decode` single-token steps, concatenated.
std::vector<float> run_tokens(Model& m, const std::vector<int32_t>& tokens, size_t n_prompt, size_t n_decode) {
  Sequence seq = m.new_sequence();
  std::vector<float> all;
  auto keep = [&](std::span<const float> logits) { all.insert(all.end(), logits.begin(), logits.end()); };
  keep(m.evaluate(seq, std::span<const int32_t>(tokens.data(), n_prompt), 0, LogitsFor::EveryToken));
  for (size_t i = 0; i < n_decode; ++i)
    keep(m.evaluate(seq, std::span<const int32_t>(&tokens[n_prompt + i], 1), seq.n_past(), LogitsFor::LastToken));
  return all;
}

int64_t calls_of(const OpProfile& p, std::string_view op) {
  int64_t n = 0;
  for (const OpProfileRow& r : p.rows) n += r.op == op ? r.calls : 0;
  return n;
}

// Matrix products of one single-token trunk step: delta-net layers qkv, gate, beta, alpha, out;
// attention layers q, k, v, out; per layer a SwiGLU FFN (gate, up, down) or, for MoE, the router,
// the shared expert (3) and its gate (the routed experts are matmul_experts calls); plus the LM head.
int64_t matmuls_per_decode_step(const ModelConfig& c) {
  const int64_t attn = c.n_full_attention_layers(), delta = c.n_layer - attn;
  const int64_t ffn = c.is_moe() ? 1 + 3 + 1 : 3;
  return 5 * delta + 4 * attn + ffn * c.n_layer + 1;
}

TEST(OpProfiler, ForwardsBitIdenticallyWhileProfiling) {
  for (const std::string name : {"tiny-f32", "tiny-moe-f32", "tiny-quant"}) {
    SCOPED_TRACE(name);
    const TinyFixture f(name);
    ASSERT_GE(f.tokens.size(), 6u);
    auto plain = load_on(f, make_cpu_backend(1));
    auto owned = std::make_unique<ProfilingBackend>(make_cpu_backend(1));
    ProfilingBackend& profiler = *owned;
    auto profiled = load_on(f, std::move(owned));
    EXPECT_EQ(profiled->backend().name(), "cpu");
    profiler.set_enabled(true);
    const std::vector<float> a = run_tokens(*plain, f.tokens, 4, 2);
    const std::vector<float> b = run_tokens(*profiled, f.tokens, 4, 2);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
    EXPECT_GT(calls_of(profiler.report(), "matmul"), 0);
  }
}

TEST(OpProfiler, CountsOneDecodeStepAsTheModelStructureImplies) {
  for (const std::string name : {"tiny-f32", "tiny-moe-f32"}) {
    SCOPED_TRACE(name);
    const TinyFixture f(name);
    auto owned = std::make_unique<ProfilingBackend>(make_cpu_backend(1));
    ProfilingBackend& profiler = *owned;
    auto model = load_on(f, std::move(owned));
    const ModelConfig& c = model->config();
    Sequence seq = model->new_sequence();
    model->evaluate(seq, std::span<const int32_t>(f.tokens.data(), 3), 0, LogitsFor::LastToken);
    EXPECT_TRUE(profiler.report().rows.empty()) << "nothing is recorded while disabled";

    profiler.set_enabled(true);
    const auto t0 = std::chrono::steady_clock::now();
    model->evaluate(seq, std::span<const int32_t>(&f.tokens[3], 1), 3, LogitsFor::LastToken);
    const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    profiler.set_enabled(false);
    const OpProfile p = profiler.report();

    EXPECT_FALSE(p.device_timing);
    const int64_t attn = c.n_full_attention_layers();
    EXPECT_EQ(calls_of(p, "matmul"), matmuls_per_decode_step(c));
    EXPECT_EQ(calls_of(p, "attention"), attn);
    EXPECT_EQ(calls_of(p, "delta_rule_recurrent"), c.n_layer - attn);
    EXPECT_EQ(calls_of(p, "delta_rule_chunked"), 0);
    EXPECT_EQ(calls_of(p, "rmsnorm"), 2 * c.n_layer + 1);
    EXPECT_EQ(calls_of(p, "add"), 2 * c.n_layer);
    // A decode step keeps the MoE routing on the backend: gate, up and down of the routed experts.
    EXPECT_EQ(calls_of(p, "moe_route"), 0);
    EXPECT_EQ(calls_of(p, "moe_route_device"), c.is_moe() ? c.n_layer : 0);
    EXPECT_EQ(calls_of(p, "matmul_experts"), c.is_moe() ? 3 * c.n_layer : 0);
    EXPECT_EQ(calls_of(p, "moe_combine"), c.is_moe() ? c.n_layer : 0);

    // One row per weight role and shape: the FFN's up projection is called once per layer.
    const std::string up = c.is_moe() ? "ffn_up_shexp " : "ffn_up ";
    int64_t up_calls = 0;
    for (const OpProfileRow& r : p.rows) {
      if (r.op == "matmul" && r.detail.starts_with(up)) {
        up_calls += r.calls;
        EXPECT_NE(r.detail.find(" T=1"), std::string::npos) << r.detail;
        EXPECT_GT(r.gbs(), 0.0);
      }
      EXPECT_GE(r.ms, 0.0) << r.op << " " << r.detail;
    }
    EXPECT_EQ(up_calls, c.n_layer);

    // Totals: positive, at most the wall time of the step, shares summing to one, largest first.
    double sum = 0, shares = 0;
    for (size_t i = 0; i < p.rows.size(); ++i) {
      sum += p.rows[i].ms;
      shares += p.rows[i].share;
      if (i > 0) {
        EXPECT_GE(p.rows[i - 1].ms, p.rows[i].ms);
      }
    }
    EXPECT_GT(p.total_ms, 0.0);
    EXPECT_DOUBLE_EQ(p.total_ms, sum);
    EXPECT_LE(p.total_ms, wall_ms);
    EXPECT_NEAR(shares, 1.0, 1e-9);
    EXPECT_NE(format_op_profile(p).find("matmul"), std::string::npos);

    profiler.clear();
    EXPECT_TRUE(profiler.report().rows.empty());
  }
}

TEST(OpProfiler, ScalesMatmulBytesWithTheWeight) {
  const TinyFixture f("tiny-quant");
  auto owned = std::make_unique<ProfilingBackend>(make_cpu_backend(1));
  ProfilingBackend& profiler = *owned;
  auto model = load_on(f, std::move(owned));
  Sequence seq = model->new_sequence();
  profiler.set_enabled(true);
  model->evaluate(seq, std::span<const int32_t>(f.tokens.data(), 1), 0, LogitsFor::LastToken);
  const OpProfile p = profiler.report();
  // The LM head: output.weight, or the tied embedding.
  const GgufTensorInfo* head = f.file.find_tensor("output.weight");
  if (!head) head = f.file.find_tensor("token_embd.weight");
  ASSERT_NE(head, nullptr);
  const std::string role = head->name == "output.weight" ? "output " : "token_embd ";
  int64_t head_calls = 0;
  for (const OpProfileRow& r : p.rows)
    if (r.op == "matmul" && r.detail.starts_with(role)) {
      head_calls += r.calls;
      EXPECT_GE(r.bytes, head->n_bytes);  // the weight, plus the activation rows
      EXPECT_LT(r.bytes, head->n_bytes + (uint64_t{1} << 20));
    }
  EXPECT_EQ(head_calls, 1);
}

// ---- the device-timer path, with a fake clock ---------------------------------------------

struct FakeClock {
  int started = 0, stopped = 0, read = 0;
};

// Every span reads 0.25 ms; counts how the profiler uses its timers.
class FakeTimer final : public OpTimer {
 public:
  explicit FakeTimer(FakeClock& c) : c_(c) {}
  void start() override { ++c_.started; }
  void stop() override { ++c_.stopped; }
  double elapsed_ms() override {
    ++c_.read;
    return 0.25;
  }

 private:
  FakeClock& c_;
};

// The CPU backend with a timer: every call forwarded.
class TimedCpuBackend final : public Backend {
 public:
  explicit TimedCpuBackend(FakeClock& clock) : clock_(clock), cpu_(make_cpu_backend(1)) {}
  std::unique_ptr<OpTimer> make_op_timer() override { return std::make_unique<FakeTimer>(clock_); }

  std::string_view name() const override { return "timed-cpu"; }
  void* allocate(uint64_t b) override { return cpu_->allocate(b); }
  void release(void* p) noexcept override { cpu_->release(p); }
  void upload(void* d, const void* s, uint64_t b) override { cpu_->upload(d, s, b); }
  void download(void* d, const void* s, uint64_t b) override { cpu_->download(d, s, b); }
  void copy(void* d, const void* s, uint64_t b) override { cpu_->copy(d, s, b); }
  void fill_zero(void* d, uint64_t b) override { cpu_->fill_zero(d, b); }
  const uint8_t* place_weights(const uint8_t* h, uint64_t b, std::string_view n) override {
    return cpu_->place_weights(h, b, n);
  }
  void matmul(const WeightView& w, const float* x, float* y, int64_t T) override { cpu_->matmul(w, x, y, T); }
  void get_rows(const WeightView& t, std::span<const int32_t> ids, float* out) override { cpu_->get_rows(t, ids, out); }
  void rmsnorm(const float* x, const float* w, float* y, int64_t r, int64_t n, float e) override {
    cpu_->rmsnorm(x, w, y, r, n, e);
  }
  void rmsnorm_heads(const HeadView& x, const float* w, float e) override { cpu_->rmsnorm_heads(x, w, e); }
  void l2norm_heads(const HeadView& x, float e, float s) override { cpu_->l2norm_heads(x, e, s); }
  void rope(const HeadView& x, std::span<const int32_t> p, const RopeParams& r) override { cpu_->rope(x, p, r); }
  void copy_2d(const float* s, int64_t ss, float* d, int64_t ds, int64_t r, int64_t n) override {
    cpu_->copy_2d(s, ss, d, ds, r, n);
  }
  void add(float* y, const float* x, int64_t n) override { cpu_->add(y, x, n); }
  void swiglu(const float* g, const float* u, float* y, int64_t n) override { cpu_->swiglu(g, u, y, n); }
  void mul_sigmoid_heads(const HeadView& x, const HeadView& g) override { cpu_->mul_sigmoid_heads(x, g); }
  void gated_rmsnorm_heads(const HeadView& x, const HeadView& z, const float* w, float e) override {
    cpu_->gated_rmsnorm_heads(x, z, w, e);
  }
  void conv1d_silu(const float* x, int64_t xs, int64_t T, int64_t c, const float* w, int64_t k, float* s,
                   float* o) override {
    cpu_->conv1d_silu(x, xs, T, c, w, k, s, o);
  }
  void delta_gates(const float* a, int64_t as, const float* b, int64_t bs, const float* dt, const float* an, int64_t T,
                   int64_t hv, float* g, float* beta) override {
    cpu_->delta_gates(a, as, b, bs, dt, an, T, hv, g, beta);
  }
  void delta_rule_recurrent(const DeltaNetDims& d, const HeadView& q, const HeadView& k, const HeadView& v,
                            const float* g, const float* b, float* s, const HeadView& o) override {
    cpu_->delta_rule_recurrent(d, q, k, v, g, b, s, o);
  }
  void delta_rule_chunked(const DeltaNetDims& d, const HeadView& q, const HeadView& k, const HeadView& v,
                          const float* g, const float* b, float* s, const HeadView& o, int64_t c) override {
    cpu_->delta_rule_chunked(d, q, k, v, g, b, s, o, c);
  }
  void kv_store(TensorType t, const float* s, int64_t r, int64_t n, uint8_t* d) override { cpu_->kv_store(t, s, r, n, d); }
  using Backend::attention;
  void attention(const HeadView& q, const KvView& kv, std::span<const int32_t> p, float s, float* o) override {
    cpu_->attention(q, kv, p, s, o);
  }
  void moe_route(const float* l, int64_t T, int64_t E, int64_t k, int32_t* ids, float* w) override {
    cpu_->moe_route(l, T, E, k, ids, w);
  }
  void gather_rows(const float* x, std::span<const int32_t> r, int64_t n, float* o) override {
    cpu_->gather_rows(x, r, n, o);
  }
  void scatter_add_rows(const float* x, std::span<const int32_t> r, std::span<const float> s, int64_t n,
                        float* y) override {
    cpu_->scatter_add_rows(x, r, s, n, y);
  }
  void scale_rows_sigmoid(float* x, const float* g, int64_t T, int64_t n) override {
    cpu_->scale_rows_sigmoid(x, g, T, n);
  }

 private:
  FakeClock& clock_;
  std::unique_ptr<Backend> cpu_;
};

TEST(OpProfiler, DeviceTimersAreReadOnlyAtReport) {
  const TinyFixture f("tiny-f32");
  FakeClock clock;
  auto owned = std::make_unique<ProfilingBackend>(std::make_unique<TimedCpuBackend>(clock));
  ProfilingBackend& profiler = *owned;
  EXPECT_TRUE(profiler.device_timing());
  auto model = load_on(f, std::move(owned));
  Sequence seq = model->new_sequence();
  model->evaluate(seq, std::span<const int32_t>(f.tokens.data(), 2), 0, LogitsFor::LastToken);
  EXPECT_EQ(clock.started, 0) << "timers only run while enabled";

  profiler.set_enabled(true);
  model->evaluate(seq, std::span<const int32_t>(&f.tokens[2], 1), 2, LogitsFor::LastToken);
  profiler.set_enabled(false);
  EXPECT_GT(clock.started, 0);
  EXPECT_EQ(clock.started, clock.stopped);
  EXPECT_EQ(clock.read, 0) << "reading a timer would wait for the device inside the step";

  const OpProfile p = profiler.report();
  EXPECT_TRUE(p.device_timing);
  EXPECT_EQ(clock.read, clock.stopped);
  int64_t calls = 0;
  for (const OpProfileRow& r : p.rows) calls += r.calls;
  EXPECT_EQ(calls, clock.stopped);
  EXPECT_NEAR(p.total_ms, 0.25 * static_cast<double>(calls), 1e-9);
  EXPECT_EQ(calls_of(p, "matmul"), matmuls_per_decode_step(model->config()));

  const int reads = clock.read;
  EXPECT_NEAR(profiler.report().total_ms, p.total_ms, 1e-9) << "a second report reads nothing again";
  EXPECT_EQ(clock.read, reads);
}

// ---- peregrine-cli bench --op-profile ---------------------------------------------------------

// On the CPU backend (the bench's default, auto, would take a CUDA device where one exists and
// time with device events).
nlohmann::json bench_json(std::vector<std::string> args) {
  args.insert(args.begin(), {"--backend", "cpu"});
  testing::internal::CaptureStdout();
  const int rc = cli::run_bench(args);
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(rc, 0);
  return nlohmann::json::parse(out);
}

TEST(CliBenchOpProfile, JsonHasTheDecodeStepTable) {
  const std::string model = (kTinyDir / "tiny-f32.gguf").string();
  const auto j = bench_json({"--model", model, "-p", "4", "-n", "4", "-r", "1", "--threads", "1", "--op-profile",
                             "--json"});
  ASSERT_TRUE(j.contains("op_profile"));
  const auto& rows = j.at("op_profile");
  ASSERT_TRUE(rows.is_array());
  std::map<std::string, int64_t> calls;
  double ms = 0, share = 0;
  for (const auto& r : rows) {
    for (const char* key : {"op", "detail", "calls", "ms", "share", "gbs"}) EXPECT_TRUE(r.contains(key)) << key;
    calls[r.at("op").get<std::string>()] += r.at("calls").get<int64_t>();
    ms += r.at("ms").get<double>();
    share += r.at("share").get<double>();
  }
  const TinyFixture f("tiny-f32");
  const ModelConfig c = ModelConfig::from_gguf(f.file);
  EXPECT_EQ(calls["matmul"], matmuls_per_decode_step(c));
  EXPECT_EQ(calls["attention"], c.n_full_attention_layers());
  EXPECT_EQ(calls["delta_rule_recurrent"], c.n_layer - c.n_full_attention_layers());
  EXPECT_GT(calls["rmsnorm"], 0);
  EXPECT_NEAR(share, 1.0, 1e-6);
  const auto& info = j.at("op_profile_info");
  EXPECT_EQ(info.at("positions").get<int64_t>(), 1);
  EXPECT_NEAR(info.at("ops_ms").get<double>(), ms, 1e-9);
  EXPECT_LE(ms, info.at("wall_ms").get<double>());
  EXPECT_EQ(info.at("timing").get<std::string>(), "host clock around synchronize");
  EXPECT_FALSE(j.contains("op_profile_verify"));
}

TEST(CliBenchOpProfile, VerifyPassOfKPlusOnePositionsWithMtp) {
  const std::string model = (kTinyDir / "tiny-mtp-f32.gguf").string();
  const auto j = bench_json({"--model", model, "-p", "0", "-n", "4", "-r", "1", "--threads", "1", "--depth", "5",
                             "--mtp", "2", "--op-profile", "--json"});
  const auto& verify = j.at("op_profile_verify");
  EXPECT_EQ(verify.at("positions").get<int64_t>(), 3);
  int64_t recurrent = 0, matmul = 0;
  for (const auto& r : verify.at("rows")) {
    const std::string op = r.at("op").get<std::string>();
    if (op == "delta_rule_recurrent") recurrent += r.at("calls").get<int64_t>();
    if (op == "matmul") {
      matmul += r.at("calls").get<int64_t>();
      EXPECT_NE(r.at("detail").get<std::string>().find("T=3"), std::string::npos) << r.at("detail");
    }
  }
  const TinyFixture f("tiny-mtp-f32");
  const ModelConfig c = ModelConfig::from_gguf(f.file);
  // Checkpointed verification runs the delta rule token by token.
  EXPECT_EQ(recurrent, 3 * (c.n_layer - c.n_full_attention_layers()));
  EXPECT_EQ(matmul, matmuls_per_decode_step(c));
  EXPECT_EQ(j.at("op_profile_info").at("depth_tokens").get<int64_t>(), 5);
}

TEST(CliBenchOpProfile, TextTable) {
  const std::string model = (kTinyDir / "tiny-f32.gguf").string();
  testing::internal::CaptureStdout();
  EXPECT_EQ(cli::run_bench({"--model", model, "-p", "0", "-n", "2", "-r", "1", "--op-profile"}), 0);
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("op profile of one decode step"), std::string::npos) << out;
  EXPECT_NE(out.find("matmul"), std::string::npos);
  EXPECT_NE(out.find("ffn_down"), std::string::npos);
}

}  // namespace
}  // namespace peregrine::test
