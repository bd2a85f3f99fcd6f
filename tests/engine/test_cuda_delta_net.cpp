// CUDA gated delta rule (recurrent and chunked forms) against the CPU backend: fewer key heads
// than value heads, head dims 32, 48 and 128, 1 / 5 / 70 tokens (70 crosses a 64-token chunk),
// starting from a non-zero state; outputs and the updated state are both compared. q, k and v
// are strided views into one row per token, q | k | v channels side by side, as the model has
// them after the convolution.
#include <cmath>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "peregrine/error.h"

namespace peregrine::test {
namespace {

// Both comparisons differ only in rounding: recurrent vs recurrent in summation order, the CUDA
// chunked form (which steps token by token) vs the CPU chunked form (the WY/UT chunk algebra) in
// the algebra's extra roundings too. On these inputs the two CPU forms differ by ~1e-7 (outputs
// of magnitude ~0.1, states ~0.3); an indexing mistake shows as errors ~1e-2.
constexpr double kRelTol = 1e-4;
constexpr double kAbsTol = 1e-5;
constexpr int64_t kChunk = 64;

struct DeltaCase {
  int64_t n_k_heads, n_v_heads, head_dim, n_tokens;
};

std::string describe(const DeltaCase& c, const char* form) {
  return std::string(form) + " Hk" + std::to_string(c.n_k_heads) + " Hv" + std::to_string(c.n_v_heads) + " d" +
         std::to_string(c.head_dim) + " T" + std::to_string(c.n_tokens);
}

// Inputs of one case on the host (delta_net_inputs) and the views of them the backends take.
struct DeltaInputs : DeltaNetHostInputs {
  DeltaInputs(const DeltaCase& c, uint32_t seed)
      : DeltaNetHostInputs(delta_net_inputs(c.n_k_heads, c.n_v_heads, c.head_dim, c.n_tokens, seed)) {}

  HeadView q(float* base, const DeltaCase& c) const {
    return {base, c.n_tokens, c.n_k_heads, c.head_dim, row_stride, c.head_dim};
  }
  HeadView k(float* base, const DeltaCase& c) const {
    return {base + c.n_k_heads * c.head_dim, c.n_tokens, c.n_k_heads, c.head_dim, row_stride, c.head_dim};
  }
  HeadView v(float* base, const DeltaCase& c) const {
    return {base + 2 * c.n_k_heads * c.head_dim, c.n_tokens, c.n_v_heads, c.head_dim, row_stride, c.head_dim};
  }
};

enum class Form { Recurrent, Chunked };

void run_form(Backend& be, Form form, const DeltaCase& c, const DeltaInputs& in, float* rows, const float* g,
              const float* beta, float* state, float* out) {
  const DeltaNetDims dims{c.n_k_heads, c.n_v_heads, c.head_dim};
  const HeadView o = HeadView::dense(out, c.n_tokens, c.n_v_heads, c.head_dim);
  if (form == Form::Recurrent)
    be.delta_rule_recurrent(dims, in.q(rows, c), in.k(rows, c), in.v(rows, c), g, beta, state, o);
  else
    be.delta_rule_chunked(dims, in.q(rows, c), in.k(rows, c), in.v(rows, c), g, beta, state, o, kChunk);
}

void compare_delta_rule(Backend& gpu, Backend& cpu, Form form, const DeltaCase& c, uint32_t seed) {
  const DeltaInputs in(c, seed);
  const int64_t n_out = c.n_tokens * c.n_v_heads * c.head_dim;

  std::vector<float> rows = in.rows, g = in.g, beta = in.beta, expected_state = in.state;
  std::vector<float> expected_out(static_cast<size_t>(n_out));
  run_form(cpu, form, c, in, rows.data(), g.data(), beta.data(), expected_state.data(), expected_out.data());

  BackendArray<float> rows_dev = to_backend(gpu, in.rows), g_dev = to_backend(gpu, in.g),
                      beta_dev = to_backend(gpu, in.beta), state_dev = to_backend(gpu, in.state);
  BackendArray<float> out = poisoned(gpu, n_out);
  run_form(gpu, form, c, in, rows_dev.data(), g_dev.data(), beta_dev.data(), state_dev.data(), out.data());

  const std::string what = describe(c, form == Form::Chunked ? "chunked" : "recurrent");
  expect_close(to_host(gpu, out), expected_out, kRelTol, kAbsTol, what + " out");
  expect_close(to_host(gpu, state_dev), expected_state, kRelTol, kAbsTol, what + " state");
}

const DeltaCase kCases[] = {
    {2, 4, 32, 1},  {2, 4, 32, 5},  {2, 4, 32, 70},  {2, 4, 128, 1},
    {2, 4, 128, 5}, {2, 4, 128, 70}, {4, 8, 128, 70}, {1, 3, 32, 5},
    {1, 2, 48, 9},  // a head dim that leaves the last 32-column tile partly empty
};

class CudaDeltaNet : public CudaTest {};

TEST_F(CudaDeltaNet, RecurrentMatchesCpu) {
  uint32_t seed = 1;
  for (const DeltaCase& c : kCases) compare_delta_rule(*gpu, *cpu, Form::Recurrent, c, seed += 4);
}

TEST_F(CudaDeltaNet, ChunkedMatchesCpu) {
  uint32_t seed = 101;
  for (const DeltaCase& c : kCases) compare_delta_rule(*gpu, *cpu, Form::Chunked, c, seed += 4);
}

// Two calls carry the state between them exactly like one call over all tokens.
TEST_F(CudaDeltaNet, StateCarriesAcrossCalls) {
  const DeltaCase whole{2, 4, 128, 70};
  const DeltaInputs in(whole, 500);
  const int64_t per_token = whole.n_v_heads * whole.head_dim;
  BackendArray<float> rows = to_backend(*gpu, in.rows), g = to_backend(*gpu, in.g), beta = to_backend(*gpu, in.beta);

  BackendArray<float> state_once = to_backend(*gpu, in.state);
  BackendArray<float> out_once = poisoned(*gpu, whole.n_tokens * per_token);
  run_form(*gpu, Form::Chunked, whole, in, rows.data(), g.data(), beta.data(), state_once.data(), out_once.data());

  BackendArray<float> state_split = to_backend(*gpu, in.state);
  BackendArray<float> out_split = poisoned(*gpu, whole.n_tokens * per_token);
  const int64_t first = 33;
  for (auto [t0, n] : {std::pair<int64_t, int64_t>{0, first}, std::pair<int64_t, int64_t>{first, whole.n_tokens - first}}) {
    const DeltaCase part{whole.n_k_heads, whole.n_v_heads, whole.head_dim, n};
    run_form(*gpu, Form::Recurrent, part, in, rows.data() + t0 * in.row_stride, g.data() + t0 * whole.n_v_heads,
             beta.data() + t0 * whole.n_v_heads, state_split.data(), out_split.data() + t0 * per_token);
  }
  // One chunked call (the chunked kernel from 16 tokens on) and two recurrent calls agree up to
  // rounding.
  expect_close(to_host(*gpu, out_split), to_host(*gpu, out_once), kRelTol, kAbsTol, "split calls out");
  expect_close(to_host(*gpu, state_split), to_host(*gpu, state_once), kRelTol, kAbsTol, "split calls state");
}

TEST_F(CudaDeltaNet, RejectsHeadDimAbove128) {
  const DeltaCase c{1, 1, 160, 1};
  const DeltaInputs in(c, 9);
  BackendArray<float> rows = to_backend(*gpu, in.rows), g = to_backend(*gpu, in.g), beta = to_backend(*gpu, in.beta),
                      state = to_backend(*gpu, in.state);
  BackendArray<float> out(*gpu, c.head_dim);
  EXPECT_THROW(run_form(*gpu, Form::Recurrent, c, in, rows.data(), g.data(), beta.data(), state.data(), out.data()),
               Error);
}

}  // namespace
}  // namespace peregrine::test
