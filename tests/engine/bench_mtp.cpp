// Costs that decide whether MTP drafting pays on this machine: one trunk decode step, one MTP
// head step, and a verify pass of k + 1 positions (checkpoints on, then rolled back), on the model
// given as argument (e.g. a synthetic bench-1b Q4_K_M from `peregrine-cli make-synthetic`).
// Usage: bench_mtp MODEL.gguf [threads]. Prints milliseconds and ratios; not a test.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "peregrine/gguf.h"
#include "peregrine/model.h"

namespace {
using Clock = std::chrono::steady_clock;
template <class F>
double time_ms(int reps, F&& f) {
  f();  // warm-up
  const auto t0 = Clock::now();
  for (int i = 0; i < reps; ++i) f();
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / reps;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace peregrine;
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_mtp MODEL.gguf [threads]\n");
    return 2;
  }
  const GgufFile file = GgufFile::open(argv[1]);
  ModelOptions o;
  o.context_length = 512;
  o.n_threads = argc > 2 ? std::atoi(argv[2]) : 1;
  auto model = Model::load(file, o);
  if (!model->config().has_mtp()) {
    std::fprintf(stderr, "%s has no MTP block\n", argv[1]);
    return 1;
  }
  const int64_t n = model->config().n_embd;
  Sequence seq = model->new_sequence();
  seq.set_delta_checkpoints(9);
  std::vector<int32_t> prompt(64);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(100 + 7 * i);
  model->evaluate(seq, prompt, 0, LogitsFor::LastToken);
  const int64_t P = seq.n_past();
  const std::vector<int32_t> batch{1, 2, 3, 4, 5, 6, 7, 8, 9};
  const int reps = 3;

  // Trunk decode step without checkpoints (plain decoding), then with (what a k = 0 step costs).
  seq.set_delta_checkpoints(0);
  Sequence plain = model->new_sequence();
  model->evaluate(plain, prompt, 0, LogitsFor::LastToken);
  std::vector<uint8_t> snap = model->snapshot(plain);
  const double step_ms = time_ms(reps, [&] {
    model->restore(plain, snap);
    model->evaluate(plain, std::span<const int32_t>(batch.data(), 1), P, LogitsFor::LastToken);
  });
  const double restore_ms = time_ms(reps, [&] { model->restore(plain, snap); });
  seq.set_delta_checkpoints(9);
  std::vector<float> h(n, 0.1f);
  model->evaluate_mtp(seq, std::span<const int32_t>(batch.data(), 1), h, 0, LogitsFor::LastToken);
  const double head_ms = time_ms(
      reps, [&] { model->evaluate_mtp(seq, std::span<const int32_t>(batch.data(), 1), h, 1, LogitsFor::LastToken); });
  std::printf("trunk decode step %.2f ms, MTP head step %.2f ms (%.2f of a trunk step)\n", step_ms - restore_ms,
              head_ms, head_ms / (step_ms - restore_ms));
  // Verify of k + 1 positions with checkpoints, rolled back to one accepted token (as after a
  // full rejection), so every repetition moves one position on.
  double base = 0;
  for (int k = 0; k <= 8; ++k) {
    const double v = time_ms(reps, [&] {
      const int64_t at = seq.n_past();
      model->evaluate(seq, std::span<const int32_t>(batch.data(), k + 1), at,
                      k > 0 ? LogitsFor::EveryToken : LogitsFor::LastToken);
      if (k > 0) model->rollback(seq, at + 1);
    });
    if (k == 0) base = v;
    std::printf("verify k=%d (%d positions): %.2f ms = %.2f x one position\n", k, k + 1, v, v / base);
  }
  return 0;
}
