// CUDA norms, rope, copies, elementwise helpers and the delta-net helpers (conv1d, gates)
// against the CPU backend. Every test: random inputs, poisoned (NaN) or sentinel-filled outputs,
// every value compared under the bound stated next to it (docs/cuda.md lists them).
//
// The CPU backend works on host memory, so its side runs directly on std::vector data.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "peregrine/error.h"

namespace peregrine::test {
namespace {

// Reductions: the device sums in float in a tree, the CPU in double in order; a few float
// roundings of the scale factor, nothing more.
constexpr double kNormRel = 1e-5, kNormAbs = 1e-6;
// exp / cos / sin: CUDA's accurate functions are within 2 ulp, glibc's within 1.
constexpr double kTranscRel = 1e-5, kTranscAbs = 1e-6;

using CudaOps = CudaTest;

// A [T][H][2·d] buffer viewed as its first halves (the q rows of attn_q, interleaved with gates).
HeadView interleaved(float* data, int64_t T, int64_t H, int64_t d) { return {data, T, H, d, H * 2 * d, 2 * d}; }

TEST_F(CudaOps, RmsNormWithAndWithoutWeightInPlaceToo) {
  for (const int64_t n : {int64_t{1000}, int64_t{5120}, int64_t{7}}) {
    for (const bool with_weight : {true, false}) {
      for (const bool in_place : {false, true}) {
        const int64_t rows = 5;
        std::vector<float> x = cuda_random(rows * n, 1, 3.0f);
        const std::vector<float> w = cuda_random(n, 2);
        std::vector<float> expected(rows * n);
        std::vector<float> x_cpu = x;
        cpu->rmsnorm(x_cpu.data(), with_weight ? w.data() : nullptr, in_place ? x_cpu.data() : expected.data(), rows, n,
                     1e-6f);
        if (in_place) expected = x_cpu;

        BackendArray<float> dx = to_backend(*gpu, x), dw = to_backend(*gpu, w), dy = poisoned(*gpu, rows * n);
        gpu->rmsnorm(dx.data(), with_weight ? dw.data() : nullptr, in_place ? dx.data() : dy.data(), rows, n, 1e-6f);
        const std::string what =
            "rmsnorm n=" + std::to_string(n) + (with_weight ? " w" : "") + (in_place ? " in place" : "");
        expect_close(to_host(*gpu, in_place ? dx : dy), expected, kNormRel, kNormAbs, what);
      }
    }
  }
}

TEST_F(CudaOps, RmsNormHeadsOnInterleavedView) {
  for (const int64_t d : {int64_t{128}, int64_t{256}, int64_t{96}}) {
    const int64_t T = 3, H = 5;
    std::vector<float> buf = cuda_random(T * H * 2 * d, 3, 2.0f);
    const std::vector<float> w = cuda_random(d, 4);
    std::vector<float> expected = buf;
    cpu->rmsnorm_heads(interleaved(expected.data(), T, H, d), w.data(), 1e-6f);

    BackendArray<float> dbuf = to_backend(*gpu, buf), dw = to_backend(*gpu, w);
    gpu->rmsnorm_heads(interleaved(dbuf.data(), T, H, d), dw.data(), 1e-6f);
    // The whole buffer: the gate halves between the heads must come back untouched.
    expect_close(to_host(*gpu, dbuf), expected, kNormRel, kNormAbs, "rmsnorm_heads d=" + std::to_string(d));
  }
}

TEST_F(CudaOps, L2NormHeadsOnStridedChannels) {
  // q|k|v channels of one token side by side: the k heads, token stride 3·H·d.
  const int64_t T = 4, H = 6, d = 128;
  std::vector<float> buf = cuda_random(T * 3 * H * d, 5);
  std::vector<float> expected = buf;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  cpu->l2norm_heads(HeadView{expected.data() + H * d, T, H, d, 3 * H * d, d}, 1e-6f, scale);

  BackendArray<float> dbuf = to_backend(*gpu, buf);
  gpu->l2norm_heads(HeadView{dbuf.data() + H * d, T, H, d, 3 * H * d, d}, 1e-6f, scale);
  expect_close(to_host(*gpu, dbuf), expected, kNormRel, kNormAbs, "l2norm_heads");
}

TEST_F(CudaOps, GatedRmsNormHeads) {
  const int64_t T = 5, H = 8, d = 128;
  std::vector<float> x = cuda_random(T * H * d, 6, 2.0f);
  const std::vector<float> z = cuda_random(T * H * d, 7, 4.0f), w = cuda_random(d, 8);
  std::vector<float> expected = x;
  std::vector<float> z_cpu = z;
  cpu->gated_rmsnorm_heads(HeadView::dense(expected.data(), T, H, d), HeadView::dense(z_cpu.data(), T, H, d), w.data(),
                           1e-6f);

  BackendArray<float> dx = to_backend(*gpu, x), dz = to_backend(*gpu, z), dw = to_backend(*gpu, w);
  gpu->gated_rmsnorm_heads(HeadView::dense(dx.data(), T, H, d), HeadView::dense(dz.data(), T, H, d), dw.data(), 1e-6f);
  expect_close(to_host(*gpu, dx), expected, kNormRel, kTranscAbs, "gated_rmsnorm_heads");
  expect_close(to_host(*gpu, dz), z, 0, 0, "gated_rmsnorm_heads leaves z alone");
}

struct RopeCase {
  std::string name;
  int64_t head_dim, n_rot;
  std::vector<int32_t> sections;
};

TEST_F(CudaOps, RopeMatchesCpuForSectionsAndLargePositions) {
  const std::vector<RopeCase> cases = {
      {"qwen3.5 partial rotary, sections 11/11/10/0", 256, 64, {11, 11, 10, 0}},
      {"an extra stream that stays unrotated", 128, 64, {8, 8, 8, 8}},
      {"no sections, full rotary", 128, 128, {}},
  };
  const std::vector<int32_t> positions = {0, 1, 7, 4095, 100000, 262143};
  const int64_t T = static_cast<int64_t>(positions.size()), H = 4;
  for (const RopeCase& c : cases) {
    RopeParams p;
    p.n_rot = c.n_rot;
    p.freq_base = 10000000.0f;
    p.sections = c.sections;
    std::vector<float> buf = cuda_random(T * H * 2 * c.head_dim, 9);
    std::vector<float> expected = buf;
    cpu->rope(interleaved(expected.data(), T, H, c.head_dim), positions, p);

    BackendArray<float> dbuf = to_backend(*gpu, buf);
    gpu->rope(interleaved(dbuf.data(), T, H, c.head_dim), positions, p);
    // Angles are bit-identical (same float products); only cos/sin differ by an ulp or two.
    expect_close(to_host(*gpu, dbuf), expected, kTranscRel, kTranscAbs, "rope: " + c.name);
  }
}

TEST_F(CudaOps, Copy2dStridedAndContiguous) {
  struct Shape {
    int64_t src_stride, dst_stride, rows, n;
  };
  for (const Shape s : {Shape{70, 90, 9, 64}, Shape{64, 64, 9, 64}, Shape{1000, 300, 3, 257}}) {
    const std::vector<float> src = cuda_random(s.rows * s.src_stride, 10);
    // A sentinel instead of NaN: values the copy must not touch are compared too.
    std::vector<float> expected(s.rows * s.dst_stride, -7.0f);
    cpu->copy_2d(src.data(), s.src_stride, expected.data(), s.dst_stride, s.rows, s.n);

    BackendArray<float> dsrc = to_backend(*gpu, src);
    BackendArray<float> ddst = to_backend(*gpu, std::vector<float>(s.rows * s.dst_stride, -7.0f));
    gpu->copy_2d(dsrc.data(), s.src_stride, ddst.data(), s.dst_stride, s.rows, s.n);
    expect_close(to_host(*gpu, ddst), expected, 0, 0,
                 "copy_2d " + std::to_string(s.src_stride) + "→" + std::to_string(s.dst_stride));
  }
}

TEST_F(CudaOps, AddIsExact) {
  const int64_t n = 100003;
  const std::vector<float> x = cuda_random(n, 11), y = cuda_random(n, 12);
  std::vector<float> expected = y;
  cpu->add(expected.data(), x.data(), n);
  BackendArray<float> dx = to_backend(*gpu, x), dy = to_backend(*gpu, y);
  gpu->add(dy.data(), dx.data(), n);
  expect_close(to_host(*gpu, dy), expected, 0, 0, "add");
}

TEST_F(CudaOps, SwiGlu) {
  const int64_t n = 100003;
  const std::vector<float> gate = cuda_random(n, 13, 8.0f), up = cuda_random(n, 14);
  std::vector<float> expected(n);
  cpu->swiglu(gate.data(), up.data(), expected.data(), n);
  BackendArray<float> dg = to_backend(*gpu, gate), du = to_backend(*gpu, up), dy = poisoned(*gpu, n);
  gpu->swiglu(dg.data(), du.data(), dy.data(), n);
  expect_close(to_host(*gpu, dy), expected, kTranscRel, kTranscAbs, "swiglu");
}

TEST_F(CudaOps, MulSigmoidHeadsWithInterleavedGate) {
  // attn_q rows: each head's queries followed by its gate values.
  const int64_t T = 3, H = 16, d = 256;
  std::vector<float> buf = cuda_random(T * H * 2 * d, 15, 6.0f);
  std::vector<float> expected = buf;
  cpu->mul_sigmoid_heads(interleaved(expected.data(), T, H, d), interleaved(expected.data() + d, T, H, d));
  BackendArray<float> dbuf = to_backend(*gpu, buf);
  gpu->mul_sigmoid_heads(interleaved(dbuf.data(), T, H, d), interleaved(dbuf.data() + d, T, H, d));
  expect_close(to_host(*gpu, dbuf), expected, kTranscRel, kTranscAbs, "mul_sigmoid_heads");
}

// Runs conv1d_silu steps of the given token counts on both backends, comparing the output of
// every step and the state after it (the state is only moved, so it must match exactly).
void compare_conv_steps(Backend& gpu, Backend& cpu, const std::vector<int64_t>& steps, int64_t kernel, uint32_t seed) {
  const int64_t channels = 300, x_stride = channels + 37, n_hist = kernel - 1;
  const std::vector<float> w = cuda_random(channels * kernel, seed);
  std::vector<float> state_cpu = cuda_random(n_hist * channels, seed + 1);
  BackendArray<float> dw = to_backend(gpu, w), dstate = to_backend(gpu, state_cpu);
  for (size_t step = 0; step < steps.size(); ++step) {
    const int64_t T = steps[step];
    const std::vector<float> x = cuda_random(T * x_stride, seed + 2 + static_cast<uint32_t>(step), 2.0f);
    std::vector<float> expected(T * channels);
    cpu.conv1d_silu(x.data(), x_stride, T, channels, w.data(), kernel, state_cpu.data(), expected.data());

    BackendArray<float> dx = to_backend(gpu, x), dout = poisoned(gpu, T * channels);
    gpu.conv1d_silu(dx.data(), x_stride, T, channels, dw.data(), kernel, dstate.data(), dout.data());
    const std::string what =
        "conv1d kernel " + std::to_string(kernel) + " step " + std::to_string(step) + " T=" + std::to_string(T);
    expect_close(to_host(gpu, dout), expected, kTranscRel, kTranscAbs, what + " output");
    expect_close(to_host(gpu, dstate), state_cpu, 0, 0, what + " state");
  }
}

TEST_F(CudaOps, Conv1dSiluCarriesItsStateAcrossCalls) {
  // Fewer tokens than the history (the state shifts partly into itself), exactly as many, more.
  compare_conv_steps(*gpu, *cpu, {1, 2, 1, 3, 9, 1}, 4, 16);
  compare_conv_steps(*gpu, *cpu, {5, 1}, 2, 17);
  compare_conv_steps(*gpu, *cpu, {4, 1}, 1, 18);  // no history at all
}

TEST_F(CudaOps, DeltaGatesOnStridedRowsBothSoftplusBranches) {
  const int64_t T = 6, Hv = 48, a_stride = Hv + 5, b_stride = Hv + 11;
  const std::vector<float> a = cuda_random(T * a_stride, 19, 30.0f);  // a + dt_bias crosses 20 both ways
  const std::vector<float> b = cuda_random(T * b_stride, 20, 6.0f);
  const std::vector<float> dt_bias = cuda_random(Hv, 21);
  std::vector<float> a_neg = cuda_random(Hv, 22, 4.0f);
  for (float& v : a_neg) v = -std::abs(v);
  std::vector<float> g_expected(T * Hv), beta_expected(T * Hv);
  cpu->delta_gates(a.data(), a_stride, b.data(), b_stride, dt_bias.data(), a_neg.data(), T, Hv, g_expected.data(),
                   beta_expected.data());

  BackendArray<float> da = to_backend(*gpu, a), db = to_backend(*gpu, b), dbias = to_backend(*gpu, dt_bias),
                      dneg = to_backend(*gpu, a_neg), dg = poisoned(*gpu, T * Hv), dbeta = poisoned(*gpu, T * Hv);
  gpu->delta_gates(da.data(), a_stride, db.data(), b_stride, dbias.data(), dneg.data(), T, Hv, dg.data(), dbeta.data());
  expect_close(to_host(*gpu, dg), g_expected, kTranscRel, kTranscAbs, "delta_gates g");
  expect_close(to_host(*gpu, dbeta), beta_expected, kTranscRel, kTranscAbs, "delta_gates beta");
}

TEST_F(CudaOps, EmptyCallsDoNothing) {
  BackendArray<float> x = to_backend(*gpu, cuda_random(64, 23));
  const std::vector<float> before = to_host(*gpu, x);
  gpu->rmsnorm(x.data(), nullptr, x.data(), 0, 64, 1e-6f);
  gpu->add(x.data(), x.data(), 0);
  gpu->copy_2d(x.data(), 8, x.data(), 8, 0, 8);
  gpu->rope(HeadView::dense(x.data(), 0, 1, 64), {}, RopeParams{64, 10000.0f, {}});
  gpu->gather_rows(x.data(), {}, 8, x.data());
  gpu->scatter_add_rows(x.data(), {}, {}, 8, x.data());
  EXPECT_EQ(to_host(*gpu, x), before);
}

}  // namespace
}  // namespace peregrine::test
