// The CUDA chunked gated delta rule (WY/UT form, cuda_delta_net_chunked.cu) against the CPU
// backend's chunked form: lengths 1, 63, 64, 65 and 200 (a partial chunk, exactly one, one plus
// one token, several), head dims 32 / 48 / 64 / 128, key:value head ratios 1:1, 1:2, 1:3 (the
// 27B model's 16:48) and 2:4, from a non-zero state; every output and every state value compared.
// The kernel is also called directly below the routing threshold (1 and 5 tokens) and with
// one-chunk segments, and two calls must carry the state like one.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#if PEREGRINE_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_prefill.h"
#endif
#include "cuda_test_util.h"
#include "peregrine/error.h"

namespace peregrine::test {
namespace {

// The GPU and CPU chunked forms run the same algebra with different summation orders (and the
// GPU inverts I + L where the CPU substitutes), so only rounding differs: on these inputs
// (outputs ~0.1, states ~0.3) a few 1e-7. A wrong index or decay shows as errors ~1e-2.
constexpr double kRelTol = 1e-4;
constexpr double kAbsTol = 1e-5;

constexpr int64_t kChunk = 64;

struct Shape {
  int64_t n_k_heads, n_v_heads, head_dim;
};

std::string describe(const Shape& s, int64_t n_tokens) {
  return "Hk" + std::to_string(s.n_k_heads) + " Hv" + std::to_string(s.n_v_heads) + " d" +
         std::to_string(s.head_dim) + " T" + std::to_string(n_tokens);
}

// One case's inputs on the host (delta_net_inputs) and views of them.
struct Inputs : DeltaNetHostInputs {
  Shape shape;
  int64_t n_tokens = 0;

  Inputs(const Shape& s, int64_t T, uint32_t seed)
      : DeltaNetHostInputs(delta_net_inputs(s.n_k_heads, s.n_v_heads, s.head_dim, T, seed)), shape(s), n_tokens(T) {}

  // Views of tokens [t0, t0 + n) of a copy of `rows` at `base`.
  HeadView q(float* base, int64_t t0, int64_t n) const {
    return {base + t0 * row_stride, n, shape.n_k_heads, shape.head_dim, row_stride, shape.head_dim};
  }
  HeadView k(float* base, int64_t t0, int64_t n) const {
    return {base + t0 * row_stride + shape.n_k_heads * shape.head_dim, n, shape.n_k_heads, shape.head_dim,
            row_stride, shape.head_dim};
  }
  HeadView v(float* base, int64_t t0, int64_t n) const {
    return {base + t0 * row_stride + 2 * shape.n_k_heads * shape.head_dim, n, shape.n_v_heads, shape.head_dim,
            row_stride, shape.head_dim};
  }
  DeltaNetDims dims() const { return {shape.n_k_heads, shape.n_v_heads, shape.head_dim}; }
  int64_t out_size() const { return n_tokens * shape.n_v_heads * shape.head_dim; }
};

struct Expected {
  std::vector<float> out, state;
};

Expected cpu_chunked(Backend& cpu, const Inputs& in) {
  std::vector<float> rows = in.rows, g = in.g, beta = in.beta;
  Expected e{std::vector<float>(static_cast<size_t>(in.out_size())), in.state};
  const HeadView o = HeadView::dense(e.out.data(), in.n_tokens, in.shape.n_v_heads, in.shape.head_dim);
  cpu.delta_rule_chunked(in.dims(), in.q(rows.data(), 0, in.n_tokens), in.k(rows.data(), 0, in.n_tokens),
                         in.v(rows.data(), 0, in.n_tokens), g.data(), beta.data(), e.state.data(), o, kChunk);
  return e;
}

// The inputs on the device, the output poisoned.
struct DeviceCase {
  BackendArray<float> rows, g, beta, state, out;
  DeviceCase(Backend& gpu, const Inputs& in)
      : rows(to_backend(gpu, in.rows)),
        g(to_backend(gpu, in.g)),
        beta(to_backend(gpu, in.beta)),
        state(to_backend(gpu, in.state)),
        out(poisoned(gpu, in.out_size())) {}
  HeadView out_view(const Inputs& in, int64_t t0, int64_t n) {
    const int64_t per_token = in.shape.n_v_heads * in.shape.head_dim;
    return HeadView::dense(out.data() + t0 * per_token, n, in.shape.n_v_heads, in.shape.head_dim);
  }
};

void expect_matches(Backend& gpu, DeviceCase& dev, const Expected& e, const std::string& what) {
  expect_close_sci(to_host(gpu, dev.out), e.out, kRelTol, kAbsTol, what + " out");
  expect_close_sci(to_host(gpu, dev.state), e.state, kRelTol, kAbsTol, what + " state");
}

const Shape kShapes[] = {{1, 1, 32}, {1, 2, 48}, {1, 3, 64}, {2, 4, 128}};

class CudaDeltaNetChunked : public CudaTest {};

// Through Backend::delta_rule_chunked: 1 token takes the recurrent kernel, the rest the WY/UT
// kernels.
TEST_F(CudaDeltaNetChunked, MatchesCpuChunkedForm) {
  uint32_t seed = 1;
  for (const Shape& s : kShapes)
    for (int64_t T : {1, 63, 64, 65, 200}) {
      const Inputs in(s, T, seed += 4);
      const Expected e = cpu_chunked(*cpu, in);
      DeviceCase dev(*gpu, in);
      gpu->delta_rule_chunked(in.dims(), in.q(dev.rows.data(), 0, T), in.k(dev.rows.data(), 0, T),
                              in.v(dev.rows.data(), 0, T), dev.g.data(), dev.beta.data(), dev.state.data(),
                              dev.out_view(in, 0, T), kChunk);
      expect_matches(*gpu, dev, e, describe(s, T));
    }
}

// Two calls (a partial chunk, then the rest) carry the state like one call over all tokens.
TEST_F(CudaDeltaNetChunked, StateCarriesAcrossCalls) {
  const Shape s{1, 2, 64};
  const int64_t T = 150, first = 70;
  const Inputs in(s, T, 300);
  const Expected e = cpu_chunked(*cpu, in);
  DeviceCase dev(*gpu, in);
  for (auto [t0, n] : {std::pair<int64_t, int64_t>{0, first}, std::pair<int64_t, int64_t>{first, T - first}})
    gpu->delta_rule_chunked(in.dims(), in.q(dev.rows.data(), t0, n), in.k(dev.rows.data(), t0, n),
                            in.v(dev.rows.data(), t0, n), dev.g.data() + t0 * s.n_v_heads,
                            dev.beta.data() + t0 * s.n_v_heads, dev.state.data(), dev.out_view(in, t0, n), kChunk);
  expect_matches(*gpu, dev, e, "two calls " + describe(s, T));
}

TEST_F(CudaDeltaNetChunked, RejectsHeadDimAbove128) {
  const Inputs in({1, 1, 160}, 20, 9);
  DeviceCase dev(*gpu, in);
  EXPECT_THROW(gpu->delta_rule_chunked(in.dims(), in.q(dev.rows.data(), 0, 20), in.k(dev.rows.data(), 0, 20),
                                       in.v(dev.rows.data(), 0, 20), dev.g.data(), dev.beta.data(),
                                       dev.state.data(), dev.out_view(in, 0, 20), kChunk),
               Error);
}

#if PEREGRINE_HAVE_CUDA
// The WY/UT kernels themselves below the routing threshold (a chunk of 1 and of 5 tokens), and
// with one chunk per segment (the segment loop that bounds the scratch of long prompts).
TEST_F(CudaDeltaNetChunked, KernelDirectlyShortBatchesAndSegments) {
  auto* cuda_gpu = dynamic_cast<cuda::CudaBackend*>(gpu.get());
  ASSERT_NE(cuda_gpu, nullptr);
  uint32_t seed = 500;
  struct Run {
    Shape shape;
    int64_t n_tokens, max_segment_chunks;
  };
  for (const Run& r : {Run{{2, 4, 128}, 1, 0}, Run{{1, 3, 48}, 5, 0}, Run{{1, 2, 64}, 150, 1},
                       Run{{2, 4, 32}, 129, 2}}) {
    const Inputs in(r.shape, r.n_tokens, seed += 4);
    const Expected e = cpu_chunked(*cpu, in);
    DeviceCase dev(*gpu, in);
    const int64_t T = r.n_tokens;
    cuda::delta_rule_chunked_wy(*cuda_gpu, in.dims(), in.q(dev.rows.data(), 0, T), in.k(dev.rows.data(), 0, T),
                                in.v(dev.rows.data(), 0, T), dev.g.data(), dev.beta.data(), dev.state.data(),
                                dev.out_view(in, 0, T), r.max_segment_chunks);
    expect_matches(*gpu, dev, e,
                   "direct " + describe(r.shape, T) + " segment " + std::to_string(r.max_segment_chunks));
  }
}
#endif

}  // namespace
}  // namespace peregrine::test
