// Each CPU backend operation against a plain float64 reference on random inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <mutex>
#include <numeric>
#include <stdexcept>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/thread_pool.h"
#include "peregrine/backend.h"
#include "test_cpu_ops_util.h"

namespace peregrine {
namespace {

using test::max_abs_diff;
using test::random_floats;

double silu64(double x) { return x / (1.0 + std::exp(-x)); }
double sigmoid64(double x) { return 1.0 / (1.0 + std::exp(-x)); }

class CpuOps : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> be = make_cpu_backend(1);
};

TEST_F(CpuOps, RmsNormMatchesFloat64) {
  const int64_t rows = 5, n = 96;
  const float eps = 1e-6f;
  auto x = random_floats(rows * n, 1, 3.0f);
  auto w = random_floats(n, 2);
  std::vector<float> y(rows * n);
  be->rmsnorm(x.data(), w.data(), y.data(), rows, n, eps);
  std::vector<double> ref(rows * n);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += double(x[r * n + i]) * x[r * n + i];
    const double s = 1.0 / std::sqrt(ss / n + eps);
    for (int64_t i = 0; i < n; ++i) ref[r * n + i] = x[r * n + i] * s * w[i];
  }
  EXPECT_LT(max_abs_diff(y, ref), 1e-5);
  // In place, and without weights.
  be->rmsnorm(x.data(), nullptr, x.data(), rows, n, eps);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(x[i] * w[i], ref[i], 1e-5);
}

TEST_F(CpuOps, PerHeadNormsWorkOnStridedViews) {
  // 3 tokens, 2 heads of 16 interleaved with 16 other values per head (like attn_q's q/gate).
  const int64_t T = 3, H = 2, d = 16;
  auto buf = random_floats(T * H * 2 * d, 3, 2.0f);
  const auto orig = buf;
  auto w = random_floats(d, 4);
  HeadView q{buf.data(), T, H, d, H * 2 * d, 2 * d};
  be->rmsnorm_heads(q, w.data(), 1e-6f);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const float* x = orig.data() + t * H * 2 * d + h * 2 * d;
      double ss = 0;
      for (int64_t i = 0; i < d; ++i) ss += double(x[i]) * x[i];
      const double s = 1.0 / std::sqrt(ss / d + 1e-6);
      for (int64_t i = 0; i < d; ++i) EXPECT_NEAR(q.head(t, h)[i], x[i] * s * w[i], 1e-5);
      for (int64_t i = d; i < 2 * d; ++i) EXPECT_EQ(q.head(t, h)[i], x[i]) << "gate half must be untouched";
    }
  buf = orig;
  be->l2norm_heads(q, 1e-6f, 0.25f);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const float* x = orig.data() + t * H * 2 * d + h * 2 * d;
      double ss = 0;
      for (int64_t i = 0; i < d; ++i) ss += double(x[i]) * x[i];
      for (int64_t i = 0; i < d; ++i) EXPECT_NEAR(q.head(t, h)[i], 0.25 * x[i] / std::sqrt(ss + 1e-6), 1e-6);
    }
}

// NeoX rotation of pairs (i, i + n_rot/2) on the first n_rot dims; dims past n_rot untouched.
void rope_reference(std::vector<double>& x, int64_t T, int64_t H, int64_t hd, const std::vector<int32_t>& pos,
                    int64_t n_rot, double base, const std::vector<bool>& rotated) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      double* v = x.data() + (t * H + h) * hd;
      for (int64_t i = 0; i < n_rot / 2; ++i) {
        if (!rotated[i]) continue;
        const double a = pos[t] * std::pow(base, -2.0 * i / n_rot);
        const double x0 = v[i], x1 = v[i + n_rot / 2];
        v[i] = x0 * std::cos(a) - x1 * std::sin(a);
        v[i + n_rot / 2] = x0 * std::sin(a) + x1 * std::cos(a);
      }
    }
}

TEST_F(CpuOps, RopeIsPartialNeox) {
  const int64_t T = 4, H = 3, hd = 32;
  const std::vector<int32_t> pos = {0, 1, 17, 250};
  for (const auto& sections : {std::vector<int32_t>{2, 1, 1, 0}, std::vector<int32_t>{1, 0, 0, 1}}) {
    auto x = random_floats(T * H * hd, 5);
    std::vector<double> ref(x.begin(), x.end());
    RopeParams p{8, 1e7f, sections};
    be->rope(HeadView::dense(x.data(), T, H, hd), pos, p);
    // [2,1,1,0]: every pair carries the position. [1,0,0,1]: pairs alternate time / fourth
    // stream, and the fourth stream is 0 for text, so pairs 1 and 3 stay unrotated.
    const bool all = sections[0] == 2;
    rope_reference(ref, T, H, hd, pos, 8, 1e7, {true, all, true, all});
    EXPECT_LT(max_abs_diff(x, ref), 2e-5) << "sections " << sections[0];
  }
  // A 64-dim rotation at a large position, as in the real models.
  auto x = random_floats(2 * 2 * 256, 6);
  std::vector<double> ref(x.begin(), x.end());
  const std::vector<int32_t> p2 = {3000, 3001};
  be->rope(HeadView::dense(x.data(), 2, 2, 256), p2, RopeParams{64, 1e7f, {11, 11, 10, 0}});
  rope_reference(ref, 2, 2, 256, p2, 64, 1e7, std::vector<bool>(32, true));
  EXPECT_LT(max_abs_diff(x, ref), 2e-3);  // angles up to 3000 rad: float32 angle rounding
}

TEST_F(CpuOps, CausalConvCarriesStateAcrossCalls) {
  const int64_t T = 7, C = 10, K = 4, stride = 13;  // input rows wider than the channels
  auto x = random_floats(T * stride, 7);
  auto w = random_floats(C * K, 8, 0.5f);
  std::vector<double> ref(T * C);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) {
      double s = 0;
      for (int64_t j = 0; j < K; ++j) {
        const int64_t src = t - (K - 1) + j;
        if (src >= 0) s += double(w[c * K + j]) * x[src * stride + c];
      }
      ref[t * C + c] = silu64(s);
    }
  std::vector<float> state((K - 1) * C, 0.0f), out(T * C);
  be->conv1d_silu(x.data(), stride, T, C, w.data(), K, state.data(), out.data());
  EXPECT_LT(max_abs_diff(out, ref), 1e-5);
  for (int64_t r = 0; r < K - 1; ++r)
    for (int64_t c = 0; c < C; ++c) EXPECT_EQ(state[r * C + c], x[(T - (K - 1) + r) * stride + c]);

  // Same sequence in calls of 2, 1, 1, 3 tokens (calls shorter than the history included).
  std::fill(state.begin(), state.end(), 0.0f);
  std::vector<float> piece(T * C);
  int64_t t0 = 0;
  for (int64_t len : {2, 1, 1, 3}) {
    be->conv1d_silu(x.data() + t0 * stride, stride, len, C, w.data(), K, state.data(), piece.data() + t0 * C);
    t0 += len;
  }
  EXPECT_LT(max_abs_diff(piece, ref), 1e-5);
}

TEST_F(CpuOps, DeltaGates) {
  const int64_t T = 3, Hv = 4;
  std::vector<float> a = {-30, -1, 0, 1, 5, 19.9f, 20.1f, 40, 0.5f, -0.5f, 2, -2};
  auto b = random_floats(T * Hv, 9, 3.0f);
  std::vector<float> dt = {0.1f, -0.2f, 0.0f, 0.3f}, aneg = {-1, -2, -4, -16};
  std::vector<float> g(T * Hv), beta(T * Hv);
  be->delta_gates(a.data(), Hv, b.data(), Hv, dt.data(), aneg.data(), T, Hv, g.data(), beta.data());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < Hv; ++j) {
      const double z = double(a[t * Hv + j]) + dt[j];
      const double sp = z > 20 ? z : std::log1p(std::exp(z));
      EXPECT_NEAR(g[t * Hv + j], aneg[j] * sp, 1e-5 * std::max(1.0, std::abs(aneg[j] * sp)));
      EXPECT_NEAR(beta[t * Hv + j], sigmoid64(b[t * Hv + j]), 1e-6);
    }
}

struct DeltaInputs {
  int64_t T, Hk, Hv, d;
  std::vector<float> q, k, v, g, beta, state0;
};

DeltaInputs make_delta_inputs(int64_t T, int64_t Hk, int64_t Hv, int64_t d, uint32_t seed) {
  DeltaInputs in{T, Hk, Hv, d, {}, {}, {}, {}, {}, {}};
  in.q = random_floats(T * Hk * d, seed);
  in.k = random_floats(T * Hk * d, seed + 1);
  in.v = random_floats(T * Hv * d, seed + 2);
  // Normalise q and k per head (as the layer does) so the recurrence stays bounded.
  for (auto* x : {&in.q, &in.k})
    for (int64_t r = 0; r < T * Hk; ++r) {
      double ss = 0;
      for (int64_t i = 0; i < d; ++i) ss += double((*x)[r * d + i]) * (*x)[r * d + i];
      for (int64_t i = 0; i < d; ++i) (*x)[r * d + i] /= std::sqrt(ss);
    }
  for (auto& x : in.q) x /= std::sqrt(float(d));
  std::mt19937 rng(seed + 3);
  std::uniform_real_distribution<float> gd(-1.5f, -0.001f), bd(0.05f, 0.95f);
  for (int64_t i = 0; i < T * Hv; ++i) {
    in.g.push_back(gd(rng));
    in.beta.push_back(bd(rng));
  }
  in.state0 = random_floats(Hv * d * d, seed + 4, 0.3f);
  return in;
}

// Recurrent delta rule in float64: S ← e^g S; u = β(v − Sᵀk); S += k uᵀ; o = Sᵀq.
void delta_reference(const DeltaInputs& in, std::vector<double>& state, std::vector<double>& out) {
  const int64_t d = in.d;
  out.assign(in.T * in.Hv * d, 0.0);
  for (int64_t t = 0; t < in.T; ++t)
    for (int64_t j = 0; j < in.Hv; ++j) {
      const float* q = in.q.data() + (t * in.Hk + j % in.Hk) * d;
      const float* k = in.k.data() + (t * in.Hk + j % in.Hk) * d;
      const float* v = in.v.data() + (t * in.Hv + j) * d;
      double* S = state.data() + j * d * d;
      for (int64_t i = 0; i < d * d; ++i) S[i] *= std::exp(double(in.g[t * in.Hv + j]));
      std::vector<double> u(d, 0.0);
      for (int64_t i = 0; i < d; ++i)
        for (int64_t c = 0; c < d; ++c) u[c] += S[i * d + c] * k[i];
      for (int64_t c = 0; c < d; ++c) u[c] = in.beta[t * in.Hv + j] * (v[c] - u[c]);
      for (int64_t i = 0; i < d; ++i)
        for (int64_t c = 0; c < d; ++c) S[i * d + c] += k[i] * u[c];
      for (int64_t i = 0; i < d; ++i)
        for (int64_t c = 0; c < d; ++c) out[(t * in.Hv + j) * d + c] += S[i * d + c] * q[i];
    }
}

TEST_F(CpuOps, DeltaRuleRecurrentAndChunkedMatchFloat64) {
  const int64_t Hk = 2, Hv = 4, d = 16;
  for (int64_t T : {1, 5, 70}) {
    DeltaInputs in = make_delta_inputs(T, Hk, Hv, d, 100 + uint32_t(T));
    std::vector<double> ref_state(in.state0.begin(), in.state0.end()), ref_out;
    delta_reference(in, ref_state, ref_out);
    DeltaNetDims dims{Hk, Hv, d};
    auto view = [&](std::vector<float>& x, int64_t H) { return HeadView::dense(x.data(), T, H, d); };
    std::vector<float> out_r(T * Hv * d), state_r = in.state0;
    be->delta_rule_recurrent(dims, view(in.q, Hk), view(in.k, Hk), view(in.v, Hv), in.g.data(), in.beta.data(),
                             state_r.data(), view(out_r, Hv));
    EXPECT_LT(max_abs_diff(out_r, ref_out), 2e-5) << "recurrent T=" << T;
    EXPECT_LT(max_abs_diff(state_r, ref_state), 2e-5) << "recurrent T=" << T;
    for (int64_t chunk : {4, 64}) {
      std::vector<float> out_c(T * Hv * d), state_c = in.state0;
      be->delta_rule_chunked(dims, view(in.q, Hk), view(in.k, Hk), view(in.v, Hv), in.g.data(), in.beta.data(),
                             state_c.data(), view(out_c, Hv), chunk);
      EXPECT_LT(max_abs_diff(out_c, ref_out), 2e-5) << "chunked T=" << T << " chunk=" << chunk;
      EXPECT_LT(max_abs_diff(state_c, ref_state), 2e-5) << "chunked T=" << T << " chunk=" << chunk;
      EXPECT_LT(max_abs_diff(out_c, out_r), 2e-5) << "chunked vs recurrent T=" << T;
    }
  }
}

TEST_F(CpuOps, AttentionIsCausalGqaSoftmax) {
  const int64_t H = 4, Hkv = 2, hd = 32, n_ctx = 40, T = 3;
  auto kc = random_floats(n_ctx * Hkv * hd, 20), vc = random_floats(n_ctx * Hkv * hd, 21);
  auto q = random_floats(T * H * hd, 22);
  const std::vector<int32_t> pos = {10, 11, 12};
  // Rows past position 12 must never be read: poison them.
  for (int64_t i = 13 * Hkv * hd; i < n_ctx * Hkv * hd; ++i) kc[i] = vc[i] = NAN;
  std::vector<float> out(T * H * hd);
  const float scale = 1.0f / std::sqrt(float(hd));
  be->attention(HeadView::dense(q.data(), T, H, hd), kc.data(), vc.data(), Hkv, pos, scale, out.data());
  std::vector<double> ref(T * H * hd, 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t kvh = h / (H / Hkv);
      std::vector<double> s(pos[t] + 1);
      double mx = -1e300, sum = 0;
      for (int64_t p = 0; p <= pos[t]; ++p) {
        double dd = 0;
        for (int64_t i = 0; i < hd; ++i) dd += double(q[(t * H + h) * hd + i]) * kc[(p * Hkv + kvh) * hd + i];
        s[p] = dd * scale;
        mx = std::max(mx, s[p]);
      }
      for (auto& x : s) sum += (x = std::exp(x - mx));
      for (int64_t p = 0; p <= pos[t]; ++p)
        for (int64_t i = 0; i < hd; ++i) ref[(t * H + h) * hd + i] += s[p] / sum * vc[(p * Hkv + kvh) * hd + i];
    }
  EXPECT_LT(max_abs_diff(out, ref), 1e-5);
}

TEST_F(CpuOps, GatesAndSwiglu) {
  const int64_t T = 2, H = 3, d = 8, n = T * H * d;
  auto x = random_floats(n, 30), z = random_floats(n, 31, 2.0f), w = random_floats(d, 32);
  auto y = x;
  be->gated_rmsnorm_heads(HeadView::dense(y.data(), T, H, d), HeadView::dense(z.data(), T, H, d), w.data(), 1e-6f);
  for (int64_t r = 0; r < T * H; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += double(x[r * d + i]) * x[r * d + i];
    for (int64_t i = 0; i < d; ++i)
      EXPECT_NEAR(y[r * d + i], x[r * d + i] / std::sqrt(ss / d + 1e-6) * w[i] * silu64(z[r * d + i]), 1e-5);
  }
  y = x;
  be->mul_sigmoid_heads(HeadView::dense(y.data(), T, H, d), HeadView::dense(z.data(), T, H, d));
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], x[i] * sigmoid64(z[i]), 1e-6);
  be->swiglu(x.data(), z.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], silu64(x[i]) * z[i], 1e-5);
  y = x;
  be->scale_rows_sigmoid(y.data(), z.data(), T * H, d);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], x[i] * sigmoid64(z[i / d]), 1e-6);
}

TEST_F(CpuOps, MoeRoutingSoftmaxTopkRenormalised) {
  const int64_t E = 6, K = 2;
  // Token 0: plain; token 1: a tie between experts 2 and 4 for second place (lower id wins).
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.5f, 0.3f, -0.2f,  //
                               3.0f, -1.0f, 1.0f, -2.0f, 1.0f, 0.0f};
  std::vector<int32_t> ids(2 * K);
  std::vector<float> wts(2 * K);
  be->moe_route(logits.data(), 2, E, K, ids.data(), wts.data());
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 3);
  EXPECT_EQ(ids[2], 0);
  EXPECT_EQ(ids[3], 2);
  // Renormalised softmax over the selected = softmax over the selected logits.
  EXPECT_NEAR(wts[0], 1.0 / (1.0 + std::exp(1.5 - 2.0)), 1e-6);
  EXPECT_NEAR(wts[0] + wts[1], 1.0, 1e-6);
  EXPECT_NEAR(wts[2], 1.0 / (1.0 + std::exp(1.0 - 3.0)), 1e-6);

  // Gather / scatter round trip.
  auto x = random_floats(4 * 3, 40);
  std::vector<int32_t> rows = {2, 0};
  std::vector<float> g(2 * 3), y(4 * 3, 1.0f), sc = {0.5f, 2.0f};
  be->gather_rows(x.data(), rows, 3, g.data());
  be->scatter_add_rows(g.data(), rows, sc, 3, y.data());
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_FLOAT_EQ(y[2 * 3 + i], 1.0f + 0.5f * x[2 * 3 + i]);
    EXPECT_FLOAT_EQ(y[0 * 3 + i], 1.0f + 2.0f * x[0 * 3 + i]);
    EXPECT_FLOAT_EQ(y[1 * 3 + i], 1.0f);
  }
}

TEST(CpuThreadPool, CoversTheRangeOnceAndRethrows) {
  cpu::ThreadPool pool(3);
  std::vector<int> hits(100, 0);
  for (int round = 0; round < 50; ++round)  // repeated runs reuse the same workers
    pool.parallel_for(100, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) hits[i]++;
    });
  for (int h : hits) EXPECT_EQ(h, 50);
  EXPECT_THROW(pool.parallel_for(10, [](int64_t b, int64_t, int) {
                 if (b > 0) throw std::runtime_error("part failed");
               }),
               std::runtime_error);
  int64_t total = 0;
  pool.parallel_for(7, [&](int64_t b, int64_t e, int) {
    static std::mutex m;
    std::lock_guard lock(m);
    total += e - b;
  });
  EXPECT_EQ(total, 7);  // still usable after an exception
}

}  // namespace
}  // namespace peregrine
