// The tensor-type mixture of synthetic quantized files against llama-quantize: for tiny256's
// config, Q4_K_M must give exactly the types of tests/data/qwen35-tiny/tiny-quant.gguf (made by
// llama-quantize), apart from the two overrides that file was made with.
#include <gtest/gtest.h>

#include "peregrine/gguf.h"
#include "peregrine/model_config.h"
#include "peregrine/synthetic.h"
#include "test_model_util.h"

namespace peregrine {
namespace {

using synthetic::FileType;

TEST(SyntheticPlan, Q4KMMatchesLlamaQuantizeOnTiny256) {
  const ModelConfig config = ModelConfig::from_gguf(GgufFile::open(test::fixture("tiny256-f32.gguf")));
  const GgufFile quant = GgufFile::open(test::fixture("tiny-quant.gguf"));
  const auto plan = synthetic::plan_tensors(config, FileType::Q4_K_M);
  ASSERT_EQ(plan.size(), quant.tensors().size());
  int compared = 0;
  for (const auto& p : plan) {
    const GgufTensorInfo* t = quant.find_tensor(p.name);
    ASSERT_NE(t, nullptr) << p.name;
    EXPECT_EQ(p.ne, t->ne) << p.name;
    // tiny-quant was made with --tensor-type attn_gate=q8_0 --tensor-type ssm_out=q8_0.
    if (p.name.find("attn_gate") != std::string::npos || p.name.find("ssm_out") != std::string::npos) continue;
    EXPECT_EQ(tensor_type_info(p.type).name, tensor_type_info(t->type).name) << p.name;
    ++compared;
  }
  EXPECT_EQ(compared, 71 - 6);
}

TEST(SyntheticPlan, OverriddenTensorsGetTheDefaultRule) {
  const ModelConfig config = ModelConfig::from_gguf(GgufFile::open(test::fixture("tiny256-f32.gguf")));
  for (const auto& p : synthetic::plan_tensors(config, FileType::Q4_K_M)) {
    if (p.name == "blk.0.attn_gate.weight") { EXPECT_EQ(p.type, TensorType::Q4_K); }
    if (p.name == "blk.0.ssm_out.weight") { EXPECT_EQ(p.type, TensorType::Q5_0); }  // rows of 64: Q4_K falls back
  }
}

TEST(SyntheticPlan, Q8AndF16Files) {
  const ModelConfig config = synthetic::make_config(*synthetic::builtin_shape("tiny-moe"), true);
  for (const auto& p : synthetic::plan_tensors(config, FileType::Q8_0)) {
    const bool one_d = p.ne.size() == 1;
    const bool float_kept = one_d || p.name.find("ssm_conv1d") != std::string::npos ||
                            p.name.find("ffn_gate_inp.weight") != std::string::npos;
    EXPECT_EQ(p.type, float_kept ? TensorType::F32 : TensorType::Q8_0) << p.name;
    if (p.name.find("ffn_gate_inp_shexp") != std::string::npos) { EXPECT_EQ(p.ne, (std::vector<int64_t>{64})); }
  }
  for (const auto& p : synthetic::plan_tensors(config, FileType::F16)) {
    const bool float_kept = p.ne.size() == 1 || p.name.find("ssm_conv1d") != std::string::npos ||
                            p.name.find("ffn_gate_inp.weight") != std::string::npos ||
                            p.name.find(".weight") == std::string::npos;
    EXPECT_EQ(p.type, float_kept ? TensorType::F32 : TensorType::F16) << p.name;
    if (p.name.find("ffn_gate_inp_shexp") != std::string::npos) { EXPECT_EQ(p.ne, (std::vector<int64_t>{64, 1})); }
  }
}

TEST(SyntheticPlan, RealShapesQ4KM) {
  // 27B: 65 blocks; more bits (Q6_K) for attn_v / attn_qkv by their running index and ffn_down
  // by block, llama.cpp's use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2.
  const ModelConfig big = synthetic::make_config(*synthetic::builtin_shape("qwen3.6-27b"), true);
  auto more_bits = [](int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; };
  int wv = 0, down = 0;
  for (const auto& p : synthetic::plan_tensors(big, FileType::Q4_K_M)) {
    if (p.name == "output.weight") { EXPECT_EQ(p.type, TensorType::Q6_K); }
    if (p.name == "token_embd.weight") { EXPECT_EQ(p.type, TensorType::Q4_K); }
    if (p.name.find("attn_v.weight") != std::string::npos || p.name.find("attn_qkv.weight") != std::string::npos) {
      EXPECT_EQ(p.type, more_bits(wv, 65) ? TensorType::Q6_K : TensorType::Q4_K) << p.name;
      ++wv;
    }
    if (p.name.find("ffn_down") != std::string::npos) {
      EXPECT_EQ(p.type, more_bits(down, 65) ? TensorType::Q6_K : TensorType::Q4_K) << p.name;
      ++down;
    }
    if (p.name.find("ssm_out") != std::string::npos || p.name.find("attn_gate") != std::string::npos) {
      EXPECT_EQ(p.type, TensorType::Q4_K) << p.name;
    }
  }
  EXPECT_EQ(wv, 65);
  EXPECT_EQ(down, 65);

  const ModelConfig moe = synthetic::make_config(*synthetic::builtin_shape("qwen3.6-35b-a3b"), true);
  for (const auto& p : synthetic::plan_tensors(moe, FileType::Q4_K_M)) {
    if (p.name.find("ffn_gate_inp.weight") != std::string::npos) { EXPECT_EQ(p.type, TensorType::F32) << p.name; }
    if (p.name.find("ffn_gate_inp_shexp") != std::string::npos) {
      EXPECT_EQ(p.type, TensorType::F32);
      EXPECT_EQ(p.ne, (std::vector<int64_t>{2048}));
    }
    if (p.name == "blk.0.ffn_down_exps.weight") { EXPECT_EQ(p.type, TensorType::Q6_K); }   // 0 < 41/8
    if (p.name == "blk.5.ffn_down_exps.weight") { EXPECT_EQ(p.type, TensorType::Q4_K); }
    if (p.name == "blk.7.ffn_down_shexp.weight") { EXPECT_EQ(p.type, TensorType::Q6_K); }  // (7-5)%3 == 2
    if (p.name.find("ffn_down_exps") != std::string::npos) { EXPECT_EQ(p.ne, (std::vector<int64_t>{512, 2048, 256})); }
  }
}

}  // namespace
}  // namespace peregrine
