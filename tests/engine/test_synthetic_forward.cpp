// Synthetic weights keep activations finite and bounded: a deep synthetic model run by our own
// forward pass over a long sequence (the residual-branch gain 1/sqrt(2L) is what makes this hold).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "peregrine/gguf.h"
#include "peregrine/model.h"
#include "peregrine/synthetic.h"
#include "test_model_util.h"
#include "test_tensor_recorder.h"

namespace peregrine {
namespace {

double rms(std::span<const float> v) {
  double s = 0;
  for (float x : v) s += double(x) * x;
  return std::sqrt(s / static_cast<double>(v.size()));
}

TEST(SyntheticForward, DeepModelStaysFiniteOverALongSequence) {
  test::ModelScratch dir("synthetic-forward");
  synthetic::Options o;
  o.shape = synthetic::shape_from_json_text(R"({"base": "tiny", "name": "tiny-deep", "n_layer": 32})", "deep");
  o.type = synthetic::FileType::Q8_0;
  o.seed = 11;
  o.out = dir / "deep.gguf";
  synthetic::write_model(o);

  const GgufFile file = GgufFile::open(o.out);
  ModelOptions mo;
  mo.context_length = 1024;
  mo.max_batch = 256;
  auto model = Model::load(file, mo);
  Sequence seq = model->new_sequence();
  test::TensorRecorder recorder(seq);  // the residual stream entering every layer
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> token(0, 506);
  double worst_rms = 0;
  for (int64_t start = 0; start < 1024; start += 256) {
    std::vector<int32_t> tokens(256);
    for (auto& t : tokens) t = token(rng);
    recorder.clear();
    const auto logits = model->evaluate(seq, tokens, start, LogitsFor::EveryToken);
    for (float x : logits) ASSERT_TRUE(std::isfinite(x)) << "at chunk " << start;
    for (int64_t l = 0; l < o.shape.n_layer; ++l) {
      const auto inputs = recorder.floats(tensor_name::kLayerInput, l);
      ASSERT_EQ(static_cast<int64_t>(inputs.size()), 256 * o.shape.n_embd);
      worst_rms = std::max(worst_rms, rms(inputs));
    }
    EXPECT_LT(rms(logits), 20.0);
  }
  RecordProperty("worst_layer_input_rms", std::to_string(worst_rms));
  // Embeddings have RMS 1; the residual stream must not blow up with depth or length.
  EXPECT_LT(worst_rms, 4.0);
  EXPECT_GT(worst_rms, 0.5);
}

}  // namespace
}  // namespace peregrine
