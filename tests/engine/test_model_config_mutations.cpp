// Mutated copies of the fixtures: each defect is reported exactly (tensor problems: all of them,
// with the tensor name and what is wrong; metadata errors: the file, the key and the expectation).
#include <gtest/gtest.h>

#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/model_config.h"
#include "test_model_util.h"

namespace peregrine {
namespace {

using test::Mutation;

std::vector<TensorProblem> problems_of(const std::filesystem::path& path) {
  const GgufFile file = GgufFile::open(path);
  return check_tensors(ModelConfig::from_gguf(file), file);
}

std::string config_error_of(const std::filesystem::path& path) {
  const GgufFile file = GgufFile::open(path);
  try {
    ModelConfig::from_gguf(file);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

class Mutations : public ::testing::Test {
 protected:
  test::ModelScratch dir{"mutations"};
  std::filesystem::path mutate(const std::string& fixture, const Mutation& m, const std::string& name = "m.gguf") {
    const auto out = dir / name;
    test::rewrite_gguf(test::fixture(fixture), out, m);
    return out;
  }
};

TEST_F(Mutations, UnchangedCopyHasNoProblems) {
  EXPECT_TRUE(problems_of(mutate("tiny-f32.gguf", {})).empty());
}

TEST_F(Mutations, DroppedTensorsAreAllReported) {
  Mutation m;
  m.drop_tensors = {"blk.1.ssm_a", "blk.3.attn_k_norm.weight", "blk.4.nextn.eh_proj.weight"};
  const auto problems = problems_of(mutate("tiny-f32.gguf", m));
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0].tensor, "blk.1.ssm_a");
  EXPECT_EQ(problems[0].what, "missing");
  EXPECT_EQ(problems[1].tensor, "blk.3.attn_k_norm.weight");
  EXPECT_EQ(problems[1].what, "missing");
  EXPECT_EQ(problems[2].tensor, "blk.4.nextn.eh_proj.weight");
}

TEST_F(Mutations, OptionalTensorsMayBeMissing) {
  Mutation m;
  m.drop_tensors = {"output.weight", "blk.4.nextn.shared_head_norm.weight"};
  EXPECT_TRUE(problems_of(mutate("tiny-f32.gguf", m)).empty());
}

TEST_F(Mutations, WrongShapeIsReportedWithBothShapes) {
  Mutation m;
  m.retype["blk.3.attn_k.weight"] = {TensorType::F32, {64, 32}};
  const auto problems = problems_of(mutate("tiny-f32.gguf", m));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].tensor, "blk.3.attn_k.weight");
  EXPECT_EQ(problems[0].what, "shape [64, 32] expected [64, 64]");
}

TEST_F(Mutations, QuantizedNormIsRefused) {
  Mutation m;
  m.retype["blk.0.attn_norm.weight"] = {TensorType::Q8_0, {64}};
  m.retype["blk.0.ssm_conv1d.weight"] = {TensorType::F16, {4, 128}};  // f16 is fine for float-only tensors
  const auto problems = problems_of(mutate("tiny-f32.gguf", m));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].tensor, "blk.0.attn_norm.weight");
  EXPECT_EQ(problems[0].what, "type q8_0 not allowed: this tensor must be f32, f16 or bf16");
}

TEST_F(Mutations, UnsupportedTypeIsReported) {
  Mutation m;
  m.retype["blk.0.ffn_up.weight"] = {TensorType::IQ2_XXS, {256, 256}};
  const auto problems = problems_of(mutate("tiny256-f32.gguf", m));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].what, "type iq2_xxs is not supported by this engine");
}

TEST_F(Mutations, ExtraTensorIsReported) {
  Mutation m;
  m.extra.push_back({"blk.0.bogus.weight", {TensorType::F32, {64}}});
  const auto problems = problems_of(mutate("tiny-f32.gguf", m));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].tensor, "blk.0.bogus.weight");
  EXPECT_NE(problems[0].what.find("unexpected tensor"), std::string::npos) << problems[0].what;
}

TEST_F(Mutations, NoMtpBlockMeansMtpTensorsAreUnexpected) {
  Mutation m;
  m.set_keys["qwen35.nextn_predict_layers"] = GgufValue::u32(0);
  m.set_keys["qwen35.block_count"] = GgufValue::u32(4);
  const auto problems = problems_of(mutate("tiny-f32.gguf", m));
  EXPECT_EQ(problems.size(), 15u);  // every blk.4 tensor
  for (const auto& p : problems) EXPECT_EQ(p.tensor.rfind("blk.4.", 0), 0u) << p.tensor;
}

TEST_F(Mutations, FusedGateUpExpertsAndOneDimensionalSharedGateAreAccepted) {
  const GgufFile src = GgufFile::open(test::fixture("tiny-moe-f32.gguf"));
  Mutation m;
  for (int b = 0; b < 5; ++b) {
    const std::string p = "blk." + std::to_string(b) + ".";
    m.drop_tensors.insert(p + "ffn_gate_exps.weight");
    m.drop_tensors.insert(p + "ffn_up_exps.weight");
    m.extra.push_back({p + "ffn_gate_up_exps.weight", {TensorType::F32, {64, 64, 8}}});
    m.retype[p + "ffn_gate_inp_shexp.weight"] = {TensorType::F32, {64}};
  }
  EXPECT_TRUE(problems_of(mutate("tiny-moe-f32.gguf", m)).empty());

  Mutation both;  // fused and split at once: llama.cpp would leave the split ones unused
  both.extra.push_back({"blk.0.ffn_gate_up_exps.weight", {TensorType::F32, {64, 64, 8}}});
  const auto problems = problems_of(mutate("tiny-moe-f32.gguf", both, "both.gguf"));
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].tensor, "blk.0.ffn_gate_exps.weight");
  EXPECT_EQ(problems[0].what, "present together with the fused tensor that replaces it");
  EXPECT_EQ(problems[1].tensor, "blk.0.ffn_up_exps.weight");

  Mutation neither;
  neither.drop_tensors = {"blk.2.ffn_up_exps.weight"};
  const auto missing = problems_of(mutate("tiny-moe-f32.gguf", neither, "neither.gguf"));
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].tensor, "blk.2.ffn_up_exps.weight");
  EXPECT_EQ(missing[0].what, "missing (and no fused 'blk.2.ffn_gate_up_exps.weight' either)");
}

TEST_F(Mutations, QuantizedRowLengthMustSuitTheBlock) {
  Mutation m;
  m.retype["blk.3.attn_output.weight"] = {TensorType::Q4_K, {256, 256}};  // expected [128, 256]
  auto problems = problems_of(mutate("tiny256-f32.gguf", m));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].what, "shape [256, 256] expected [128, 256]");
}

// n_vocab comes from a tensor whose rows have n_embd values (or the tokenizer), so a transposed
// embedding table is the one problem reported: the sound output.weight is not blamed too.
TEST_F(Mutations, TransposedEmbeddingBlamesOnlyItself) {
  Mutation m;
  m.retype["token_embd.weight"] = {TensorType::F32, {512, 64}};
  const auto problems = problems_of(mutate("tiny-f32.gguf", m));
  ASSERT_EQ(problems.size(), 1u) << problems.back().tensor << ": " << problems.back().what;
  EXPECT_EQ(problems[0].tensor, "token_embd.weight");
  EXPECT_EQ(problems[0].what, "shape [512, 64] expected [64, 512]");
}

TEST_F(Mutations, TransposedTiedEmbeddingTakesTheVocabularyFromTheTokenizer) {
  Mutation m;
  m.drop_tensors = {"output.weight"};
  m.retype["token_embd.weight"] = {TensorType::F32, {512, 64}};
  const auto problems = problems_of(mutate("tiny-f32.gguf", m));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].tensor, "token_embd.weight");
  EXPECT_EQ(problems[0].what, "shape [512, 64] expected [64, 512]");
}

struct KeyCase {
  const char* label;
  const char* key;
  GgufValue value;       // set (or, when drop, removed)
  bool drop;
  const char* expected;  // substring of the error
};

class BadKeys : public Mutations, public ::testing::WithParamInterface<KeyCase> {};

TEST_P(BadKeys, ErrorNamesFileKeyAndExpectation) {
  const KeyCase& k = GetParam();
  Mutation m;
  if (k.drop)
    m.drop_keys.insert(k.key);
  else
    m.set_keys[k.key] = k.value;
  const auto path = mutate("tiny-f32.gguf", m);
  const std::string error = config_error_of(path);
  EXPECT_NE(error.find(path.string()), std::string::npos) << error;
  EXPECT_NE(error.find(std::string("'") + k.key + "'"), std::string::npos) << error;
  EXPECT_NE(error.find(k.expected), std::string::npos) << error;
}

INSTANTIATE_TEST_SUITE_P(
    Keys, BadKeys,
    ::testing::Values(
        KeyCase{"missing_embedding", "qwen35.embedding_length", {}, true, "missing (expected an integer)"},
        KeyCase{"inner_size", "qwen35.ssm.inner_size", GgufValue::u32(60), false,
                "expected ssm.time_step_rank * ssm.state_size = 64, found 60"},
        KeyCase{"hv_not_multiple", "qwen35.ssm.time_step_rank", GgufValue::u32(3), false,
                "expected a multiple of ssm.group_count (2), found 3"},
        KeyCase{"kv_heads", "qwen35.attention.head_count_kv", GgufValue::u32(3), false,
                "expected a divisor of attention.head_count (4), found 3"},
        KeyCase{"rot_odd", "qwen35.rope.dimension_count", GgufValue::u32(7), false, "expected an even value"},
        KeyCase{"rot_too_big", "qwen35.rope.dimension_count", GgufValue::u32(64), false,
                "in [2, attention.key_length = 32], found 64"},
        KeyCase{"sections_sum", "qwen35.rope.dimension_sections",
                GgufValue::array(GgufValueType::INT32, {GgufValue::i32(2), GgufValue::i32(2), GgufValue::i32(1),
                                                        GgufValue::i32(0)}),
                false, "summing to rope.dimension_count / 2 = 4"},
        KeyCase{"sections_count", "qwen35.rope.dimension_sections",
                GgufValue::array(GgufValueType::INT32, {GgufValue::i32(4)}), false, "expected 4 entries, found 1"},
        KeyCase{"value_length", "qwen35.attention.value_length", GgufValue::u32(16), false,
                "expected the same as attention.key_length (32), found 16"},
        KeyCase{"wrong_type", "qwen35.block_count", GgufValue::string("five"), false,
                "expected an integer, found STRING"},
        KeyCase{"nextn", "qwen35.nextn_predict_layers", GgufValue::u32(2), false, "expected 0 or 1"},
        KeyCase{"eps", "qwen35.attention.layer_norm_rms_epsilon", GgufValue::f32(0.0f), false,
                "expected a value in (0, 1)"},
        KeyCase{"recurrent_len", "qwen35.attention.recurrent_layers",
                GgufValue::array(GgufValueType::BOOL, {GgufValue::boolean(true)}), false,
                "expected one entry per block (5), found 1"},
        KeyCase{"arch", "general.architecture", GgufValue::string("llama"), false,
                "expected 'qwen35' or 'qwen35moe', found 'llama'"},
        KeyCase{"ffn", "qwen35.feed_forward_length", {}, true, "missing"}),
    [](const auto& info) { return std::string(info.param.label); });

TEST_F(Mutations, MoeKeysAreValidated) {
  Mutation m;
  m.set_keys["qwen35moe.expert_used_count"] = GgufValue::u32(9);
  const auto path = mutate("tiny-moe-f32.gguf", m);
  const std::string error = config_error_of(path);
  EXPECT_NE(error.find("'qwen35moe.expert_used_count': expected at most expert_count (8), found 9"), std::string::npos)
      << error;
}

}  // namespace
}  // namespace peregrine
