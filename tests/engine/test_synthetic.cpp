// make-synthetic's writer: files re-read with GgufFile, ModelConfig::from_gguf and
// check_tensors without a problem, metadata keys and types exactly as in the llama.cpp-made
// fixtures, a working Qwen-like tokenizer, sane weight statistics, determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/model_config.h"
#include "peregrine/quant.h"
#include "peregrine/synthetic.h"
#include "peregrine/tokenizer.h"
#include "test_model_util.h"

namespace peregrine {
namespace {

using synthetic::FileType;

std::filesystem::path write_synthetic(const test::ModelScratch& dir, const std::string& shape, FileType type,
                                      uint64_t seed = 1, bool mtp = true, int threads = 2,
                                      const std::string& file = "") {
  synthetic::Options o;
  o.shape = *synthetic::builtin_shape(shape);
  o.type = type;
  o.seed = seed;
  o.mtp = mtp;
  o.threads = threads;
  o.out = dir / (file.empty() ? shape + "-" + std::string(synthetic::file_type_name(type)) + ".gguf" : file);
  synthetic::write_model(o);
  return o.out;
}

// "key -> type name" as the fixture JSONs spell the types.
std::map<std::string, std::string> key_types(const GgufFile& f) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : f.metadata()) {
    std::string t(gguf_value_type_name(value.type()));
    if (const GgufArray* a = value.as_array()) t = "ARRAY[" + std::string(gguf_value_type_name(a->element_type)) + "]";
    out[key] = t;
  }
  return out;
}

std::map<std::string, std::string> fixture_key_types(const std::string& model) {
  std::map<std::string, std::string> out;
  const nlohmann::json j = test::fixture_json(model);
  for (const auto& [key, value] : j["metadata"].items()) out[key] = value["type"];
  return out;
}

struct Case {
  const char* shape;
  FileType type;
};

class SyntheticFiles : public ::testing::TestWithParam<Case> {
 protected:
  static inline test::ModelScratch* dir = nullptr;
  static void SetUpTestSuite() { dir = new test::ModelScratch("synthetic"); }
  static void TearDownTestSuite() {
    delete dir;
    dir = nullptr;
  }
};

TEST_P(SyntheticFiles, ReloadsWithZeroProblemsAndFixtureMetadata) {
  const Case c = GetParam();
  const auto path = write_synthetic(*dir, c.shape, c.type);
  const GgufFile f = GgufFile::open(path);
  const ModelConfig config = ModelConfig::from_gguf(f);
  const ModelConfig expected = synthetic::make_config(*synthetic::builtin_shape(c.shape), true);
  EXPECT_EQ(config.arch, expected.arch);
  EXPECT_EQ(config.n_vocab, expected.n_vocab);
  EXPECT_EQ(config.n_layer, expected.n_layer);
  EXPECT_EQ(config.n_nextn, 1);
  EXPECT_EQ(config.rope_sections, expected.rope_sections);
  EXPECT_EQ(config.layer_kinds, expected.layer_kinds);
  EXPECT_EQ(config.n_expert, expected.n_expert);
  for (const auto& p : check_tensors(config, f)) ADD_FAILURE() << p.tensor << ": " << p.what;

  const bool quantized = c.type == FileType::Q8_0 || c.type == FileType::Q4_K_M;
  const std::string fixture = config.is_moe() ? "tiny-moe-f32" : "tiny-f32";
  auto expected_keys = fixture_key_types(fixture);
  if (quantized) expected_keys["general.quantization_version"] = "UINT32";
  EXPECT_EQ(key_types(f), expected_keys);
  EXPECT_EQ(f.get_u64("general.file_type"), synthetic::gguf_file_type(c.type));
  if (quantized) { EXPECT_EQ(f.get_u64("general.quantization_version"), 2u); }

  // Types: 1-D tensors and ssm_conv1d stay F32 in every file; the planned type is what was written.
  const auto plan = synthetic::plan_tensors(config, c.type);
  ASSERT_EQ(plan.size(), f.tensors().size());
  for (size_t i = 0; i < plan.size(); ++i) {
    const auto& t = f.tensors()[i];
    EXPECT_EQ(t.name, plan[i].name);
    EXPECT_EQ(t.type, plan[i].type) << t.name;
    if (t.ne.size() == 1 || t.name.find("ssm_conv1d") != std::string::npos) { EXPECT_EQ(t.type, TensorType::F32) << t.name; }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, SyntheticFiles,
                         ::testing::Values(Case{"tiny", FileType::F32}, Case{"tiny", FileType::F16},
                                           Case{"tiny", FileType::Q8_0}, Case{"tiny", FileType::Q4_K_M},
                                           Case{"tiny-moe", FileType::F32}, Case{"tiny-moe", FileType::Q4_K_M}),
                         [](const auto& info) {
                           std::string n = std::string(info.param.shape) + "_" +
                                           std::string(synthetic::file_type_name(info.param.type));
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

TEST(Synthetic, DeterministicForASeedAndIndependentOfThreads) {
  test::ModelScratch dir("synthetic-det");
  const auto a = write_synthetic(dir, "tiny", FileType::Q4_K_M, 42, true, 1, "a.gguf");
  const auto b = write_synthetic(dir, "tiny", FileType::Q4_K_M, 42, true, 2, "b.gguf");
  const auto c = write_synthetic(dir, "tiny", FileType::Q4_K_M, 43, true, 2, "c.gguf");
  EXPECT_EQ(test::file_bytes(a), test::file_bytes(b));
  EXPECT_NE(test::file_bytes(a), test::file_bytes(c));
  EXPECT_EQ(test::file_bytes(a).size(), test::file_bytes(c).size());
}

TEST(Synthetic, RowPoolsAreDeterministicAndRotate) {
  // token_embd of this shape has 20000 rows of 64 (> 2^20 values): it is assembled from a pool
  // of 1024 random rows, so row r and row r + 1024 are equal and any 1024 consecutive rows differ.
  test::ModelScratch dir("synthetic-pool");
  synthetic::Options o;
  o.shape = synthetic::shape_from_json_text(R"({"base": "tiny", "n_vocab": 20000})", "pool");
  o.type = FileType::F32;
  o.seed = 9;
  o.threads = 1;
  o.out = dir / "one.gguf";
  synthetic::write_model(o);
  o.threads = 2;
  o.out = dir / "two.gguf";
  synthetic::write_model(o);
  EXPECT_EQ(test::file_bytes(dir / "one.gguf"), test::file_bytes(dir / "two.gguf"));

  const GgufFile f = GgufFile::open(o.out);
  EXPECT_TRUE(check_tensors(ModelConfig::from_gguf(f), f).empty());
  const GgufTensorInfo* embd = f.find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  const float* rows = reinterpret_cast<const float*>(embd->data);
  auto row = [&](int64_t r) { return std::vector<float>(rows + r * 64, rows + (r + 1) * 64); };
  EXPECT_EQ(row(5), row(5 + 1024));
  EXPECT_EQ(row(17000), row(17000 - 3 * 1024));
  std::set<std::vector<float>> window;
  for (int64_t r = 3000; r < 3000 + 1024; ++r) window.insert(row(r));
  EXPECT_EQ(window.size(), 1024u);
  // output.weight has its own pool (another distribution), so it does not copy token_embd.
  const float* out = reinterpret_cast<const float*>(f.find_tensor("output.weight")->data);
  EXPECT_NE(std::vector<float>(out, out + 64), row(0));
}

TEST(Synthetic, NoMtpLeavesOutTheNextNBlock) {
  test::ModelScratch dir("synthetic-nomtp");
  const auto path = write_synthetic(dir, "tiny", FileType::F32, 1, false);
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.get_u64("qwen35.block_count"), 4u);
  EXPECT_EQ(f.get_u64("qwen35.nextn_predict_layers"), 0u);
  const ModelConfig config = ModelConfig::from_gguf(f);
  EXPECT_FALSE(config.has_mtp());
  EXPECT_TRUE(check_tensors(config, f).empty());
  for (const auto& t : f.tensors()) EXPECT_NE(t.name.rfind("blk.4.", 0), 0u) << t.name;
}

TEST(Synthetic, WeightStatisticsFollowTheFixtureRecipe) {
  test::ModelScratch dir("synthetic-stats");
  const auto path = write_synthetic(dir, "tiny", FileType::F32, 5);
  const GgufFile f = GgufFile::open(path);
  auto values = [&](const std::string& name) {
    const GgufTensorInfo* t = f.find_tensor(name);
    EXPECT_NE(t, nullptr) << name;
    const float* p = reinterpret_cast<const float*>(t->data);
    return std::vector<float>(p, p + t->n_elements);
  };
  auto mean_std = [](const std::vector<float>& v) {
    double s = 0, s2 = 0;
    for (float x : v) s += x, s2 += double(x) * x;
    const double m = s / v.size();
    return std::pair<double, double>(m, std::sqrt(s2 / v.size() - m * m));
  };
  auto [em, es] = mean_std(values("token_embd.weight"));
  EXPECT_NEAR(em, 0.0, 0.02);
  EXPECT_NEAR(es, 1.0, 0.02);
  auto [qm, qs] = mean_std(values("blk.0.attn_qkv.weight"));
  EXPECT_NEAR(qs, 1.0 / 8.0, 0.01);  // 1/sqrt(64)
  auto [dm, ds] = mean_std(values("blk.0.ffn_down.weight"));
  EXPECT_LT(ds, 1.0 / std::sqrt(128.0));  // residual branch: smaller gain
  auto [nm, ns] = mean_std(values("blk.1.attn_norm.weight"));
  EXPECT_NEAR(nm, 1.0, 0.05);
  EXPECT_NEAR(ns, 0.1, 0.04);
  for (float a : values("blk.2.ssm_a")) {
    EXPECT_GE(a, -16.0f);
    EXPECT_LE(a, -1.0f);
  }
  for (float b : values("blk.2.ssm_dt.bias")) {
    const double dt = std::log1p(std::exp(double(b)));  // softplus
    EXPECT_GE(dt, 0.999e-3);
    EXPECT_LE(dt, 0.1001);
  }
  for (const auto& t : f.tensors()) {
    const float* p = reinterpret_cast<const float*>(t.data);
    for (int64_t i = 0; i < t.n_elements; ++i) ASSERT_TRUE(std::isfinite(p[i])) << t.name;
  }
}

TEST(Synthetic, TokenizerIsQwenLike) {
  test::ModelScratch dir("synthetic-tok");
  const auto path = write_synthetic(dir, "tiny", FileType::F32);
  const Tokenizer tok = Tokenizer::from_gguf(GgufFile::open(path));
  EXPECT_EQ(tok.vocab_size(), 512);
  EXPECT_EQ(tok.end_of_text(), 507);
  EXPECT_EQ(tok.im_start(), 508);
  EXPECT_EQ(tok.im_end(), 509);
  EXPECT_EQ(tok.think(), 510);
  EXPECT_EQ(tok.end_think(), 511);
  EXPECT_EQ(tok.eos(), 509);
  EXPECT_EQ(tok.bos(), 507);
  EXPECT_FALSE(tok.adds_bos());
  const std::string text = test::fixture_json("tiny-f32")["sequence_text"];
  const auto ids = tok.encode(text);
  EXPECT_LT(ids.size(), text.size() / 2);  // merges do their work
  EXPECT_EQ(tok.decode(ids), text);
  int specials = 0;
  for (int32_t id : ids) specials += id >= 507;
  EXPECT_EQ(specials, 10);  // 4 im_start, 3 im_end, think, /think, endoftext
}

TEST(Synthetic, QwenSizedVocabularyUsesQwenSpecialIds) {
  const synthetic::Vocabulary v = synthetic::make_vocabulary(248320);
  ASSERT_EQ(v.tokens.size(), 248320u);
  EXPECT_EQ(v.tokens[248044], "<|endoftext|>");
  EXPECT_EQ(v.tokens[248045], "<|im_start|>");
  EXPECT_EQ(v.tokens[248046], "<|im_end|>");
  EXPECT_EQ(v.tokens[248068], "<think>");
  EXPECT_EQ(v.tokens[248069], "</think>");
  EXPECT_EQ(v.token_types[248045], 3);
  EXPECT_EQ(v.token_types[248068], 4);
  EXPECT_EQ(v.tokens[248100], "[PAD248100]");
  EXPECT_EQ(v.token_types[248100], 5);
  EXPECT_EQ(v.tokens[0], "!");
  EXPECT_EQ(v.tokens[255], "\xC5\x83");  // U+0143, the last byte character
  EXPECT_GT(v.merges.size(), 400u);  // as many as the built-in text yields
  std::set<std::string> unique(v.tokens.begin(), v.tokens.end());
  EXPECT_EQ(unique.size(), v.tokens.size());
}

TEST(Synthetic, BuiltinShapesHaveTheRealDimensions) {
  const ModelConfig big = synthetic::make_config(*synthetic::builtin_shape("qwen3.6-27b"), true);
  EXPECT_EQ(big.n_block(), 65);
  EXPECT_EQ(big.n_rot, 64);
  EXPECT_EQ(big.rope_sections, (std::vector<int32_t>{11, 11, 10, 0}));
  EXPECT_EQ(big.ssm_inner_size, 6144);
  EXPECT_EQ(big.ssm_conv_channels(), 10240);
  EXPECT_EQ(big.n_full_attention_layers(), 16);
  const ModelConfig moe = synthetic::make_config(*synthetic::builtin_shape("qwen3.6-35b-a3b"), true);
  EXPECT_TRUE(moe.is_moe());
  EXPECT_EQ(moe.n_expert, 256);
  EXPECT_EQ(moe.ssm_inner_size, 4096);
  EXPECT_EQ(moe.n_full_attention_layers(), 10);
  const ModelConfig tiny = synthetic::make_config(*synthetic::builtin_shape("tiny"), true);
  EXPECT_EQ(tiny.rope_sections, (std::vector<int32_t>{2, 1, 1, 0}));  // as in the fixture
  for (const char* name : {"bench-1b", "bench-3b", "tiny-moe"}) EXPECT_TRUE(synthetic::builtin_shape(name)) << name;
}

TEST(Synthetic, ShapeFromJson) {
  const auto s = synthetic::shape_from_json_text(R"({"base": "tiny", "name": "wide", "n_embd": 128, "n_layer": 8})", "x.json");
  EXPECT_EQ(s.name, "wide");
  EXPECT_EQ(s.n_embd, 128);
  EXPECT_EQ(s.n_layer, 8);
  EXPECT_EQ(s.head_dim, 32);
  const auto full = synthetic::shape_from_json_text(
      R"({"architecture": "qwen35moe", "n_embd": 64, "n_layer": 4, "n_head": 4, "n_head_kv": 2, "head_dim": 32,
          "ssm_group_count": 2, "ssm_time_step_rank": 4, "ssm_state_size": 16, "n_expert": 4, "n_expert_used": 2,
          "n_ff_expert": 32, "n_ff_shared_expert": 32, "n_vocab": 400, "rope_sections": [2, 2, 0, 0]})",
      "y.json");
  EXPECT_EQ(full.arch, Architecture::Qwen35Moe);
  EXPECT_EQ(full.rope_sections, (std::vector<int32_t>{2, 2, 0, 0}));
  auto error_of = [](const char* text) {
    try {
      synthetic::shape_from_json_text(text, "bad.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of(R"({"base": "tiny", "n_emb": 3})"), "bad.json: unknown field 'n_emb' (see docs/cli.md for the shape fields)");
  EXPECT_EQ(error_of(R"({"base": "tiny", "n_embd": "wide"})"), "bad.json: field 'n_embd': expected an integer");
  EXPECT_EQ(error_of(R"({"base": "nope"})"), "bad.json: field 'base': unknown shape 'nope'");
  EXPECT_NE(error_of(R"({"base": "tiny", "ssm_time_step_rank": 3})").find("ssm.time_step_rank"), std::string::npos);
  EXPECT_NE(error_of("{not json").find("bad.json: not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(R"({"base": "tiny", "n_vocab": 100})").find("n_vocab must be at least 300"), std::string::npos);
}

}  // namespace
}  // namespace peregrine
