// ModelConfig::from_gguf and check_tensors on the five llama.cpp-made fixtures: every config
// value equals the generator's config in the fixture JSON, and no tensor problem is reported.
#include <gtest/gtest.h>

#include "peregrine/gguf.h"
#include "peregrine/model_config.h"
#include "test_model_util.h"

namespace peregrine {
namespace {

class FixtureConfig : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureConfig, MatchesGeneratorConfig) {
  const std::string model = GetParam();
  const GgufFile file = GgufFile::open(test::fixture(model + ".gguf"));
  const ModelConfig c = ModelConfig::from_gguf(file);
  const nlohmann::json g = test::fixture_json(model)["generator"]["config"];

  EXPECT_EQ(c.arch_name, g["architecture"].is_string() ? g["architecture"].get<std::string>() : "qwen35");
  EXPECT_EQ(c.arch == Architecture::Qwen35Moe, c.arch_name == "qwen35moe");
  EXPECT_EQ(c.name, g["name"].get<std::string>());
  EXPECT_EQ(c.n_vocab, g["n_vocab"].get<int64_t>());
  EXPECT_EQ(c.n_embd, g["n_embd"].get<int64_t>());
  EXPECT_EQ(c.n_layer, g["n_trunk"].get<int64_t>());
  EXPECT_EQ(c.n_nextn, g["n_nextn"].get<int64_t>());
  EXPECT_EQ(c.n_block(), g["block_count"].get<int64_t>());
  EXPECT_TRUE(c.has_mtp());
  EXPECT_EQ(c.context_length, g["context_length"].get<int64_t>());
  EXPECT_FLOAT_EQ(c.rms_eps, g["rms_eps"].get<float>());
  EXPECT_EQ(c.n_head, g["n_head"].get<int64_t>());
  EXPECT_EQ(c.n_head_kv, g["n_head_kv"].get<int64_t>());
  EXPECT_EQ(c.head_dim, g["head_dim"].get<int64_t>());
  EXPECT_EQ(c.n_rot, g["n_rot"].get<int64_t>());
  EXPECT_FLOAT_EQ(c.rope_freq_base, g["rope_freq_base"].get<float>());
  EXPECT_EQ(c.rope_sections, g["rope_sections"].get<std::vector<int32_t>>());
  EXPECT_EQ(c.ssm_conv_kernel, g["ssm_d_conv"].get<int64_t>());
  EXPECT_EQ(c.ssm_state_size, g["ssm_d_state"].get<int64_t>());
  EXPECT_EQ(c.ssm_group_count, g["ssm_n_group"].get<int64_t>());
  EXPECT_EQ(c.ssm_time_step_rank, g["ssm_dt_rank"].get<int64_t>());
  EXPECT_EQ(c.ssm_inner_size, g["ssm_d_inner"].get<int64_t>());
  EXPECT_EQ(c.full_attention_interval, g["full_attention_interval"].get<int64_t>());
  EXPECT_EQ(c.n_ff, g["n_ff"].get<int64_t>());
  if (c.is_moe()) {
    EXPECT_EQ(c.n_expert, g["n_expert"].get<int64_t>());
    EXPECT_EQ(c.n_expert_used, g["n_expert_used"].get<int64_t>());
    EXPECT_EQ(c.n_ff_expert, g["n_ff_exp"].get<int64_t>());
    EXPECT_EQ(c.n_ff_shared_expert, g["n_ff_shexp"].get<int64_t>());
  } else {
    EXPECT_FALSE(g.contains("n_expert"));
    EXPECT_EQ(c.n_expert, 0);
  }
  const auto kinds = g["layer_kinds"].get<std::vector<std::string>>();
  ASSERT_EQ(static_cast<int64_t>(kinds.size()), c.n_block());
  for (int64_t i = 0; i < c.n_layer; ++i) EXPECT_EQ(layer_kind_name(c.layer_kinds[i]), kinds[i]) << "layer " << i;
  EXPECT_EQ(kinds.back(), "mtp");
}

TEST_P(FixtureConfig, AllTensorsPresentAndValid) {
  const std::string model = GetParam();
  const GgufFile file = GgufFile::open(test::fixture(model + ".gguf"));
  const ModelConfig c = ModelConfig::from_gguf(file);
  const auto problems = check_tensors(c, file);
  for (const auto& p : problems) ADD_FAILURE() << p.tensor << ": " << p.what;
  // Every tensor of the file is one the spec expects (no extras), and the count matches.
  size_t required = 0;
  for (const auto& s : expected_tensors(c)) required += !s.optional;
  EXPECT_GE(file.tensors().size(), required);
  EXPECT_EQ(file.tensors().size(), test::fixture_json(model)["tensors"].size());
}

INSTANTIATE_TEST_SUITE_P(Qwen35Tiny, FixtureConfig,
                         ::testing::Values("tiny-f32", "tiny-mtp-f32", "tiny256-f32", "tiny-quant", "tiny-moe-f32"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

TEST(ModelConfig, RecurrentLayersArrayDecidesLayerKinds) {
  // tiny256 carries attention.recurrent_layers; it says the same as the interval rule.
  const GgufFile file = GgufFile::open(test::fixture("tiny256-f32.gguf"));
  ASSERT_NE(file.find("qwen35.attention.recurrent_layers"), nullptr);
  const ModelConfig c = ModelConfig::from_gguf(file);
  EXPECT_EQ(c.layer_kinds, (std::vector<LayerKind>{LayerKind::DeltaNet, LayerKind::DeltaNet, LayerKind::DeltaNet,
                                                   LayerKind::FullAttention}));
  EXPECT_EQ(c.n_full_attention_layers(), 1);
}

TEST(ModelConfig, ExpectedTensorsOfTinyMatchFixtureOrderAndShapes) {
  const GgufFile file = GgufFile::open(test::fixture("tiny-f32.gguf"));
  const ModelConfig c = ModelConfig::from_gguf(file);
  std::vector<const TensorSpec*> written;
  const auto specs = expected_tensors(c);
  for (const auto& s : specs)
    if (file.find_tensor(s.name)) written.push_back(&s);
  ASSERT_EQ(written.size(), file.tensors().size());
  for (size_t i = 0; i < written.size(); ++i) {
    EXPECT_EQ(written[i]->name, file.tensors()[i].name) << "position " << i;
    EXPECT_EQ(written[i]->ne, file.tensors()[i].ne) << written[i]->name;
  }
}

TEST(ModelConfig, MoeSpecAllowsFusedGateUpAndOneDimensionalSharedGate) {
  const GgufFile file = GgufFile::open(test::fixture("tiny-moe-f32.gguf"));
  const ModelConfig c = ModelConfig::from_gguf(file);
  const auto specs = expected_tensors(c);
  auto find = [&](const std::string& name) -> const TensorSpec* {
    for (const auto& s : specs)
      if (s.name == name) return &s;
    return nullptr;
  };
  const TensorSpec* fused = find("blk.0.ffn_gate_up_exps.weight");
  ASSERT_NE(fused, nullptr);
  EXPECT_TRUE(fused->optional);
  EXPECT_EQ(fused->ne, (std::vector<int64_t>{64, 64, 8}));
  EXPECT_EQ(fused->replaces, (std::vector<std::string>{"blk.0.ffn_gate_exps.weight", "blk.0.ffn_up_exps.weight"}));
  const TensorSpec* shexp_gate = find("blk.4.ffn_gate_inp_shexp.weight");
  ASSERT_NE(shexp_gate, nullptr);
  EXPECT_EQ(shexp_gate->ne, (std::vector<int64_t>{64, 1}));
  EXPECT_EQ(shexp_gate->alt_ne, (std::vector<std::vector<int64_t>>{{64}}));
  EXPECT_EQ(shexp_gate->block, 4);
}

}  // namespace
}  // namespace peregrine
