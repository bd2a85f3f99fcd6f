// peregrine-cli bench's benchmark pieces for the GPU run (issue 7, scripts/bench-gpu.sh): the
// decode-traffic byte count behind --roofline-gbs, and --depth / --verify-widths / --roofline-gbs
// called in-process on the qwen35-tiny fixtures (CPU backend).
#include <gtest/gtest.h>

#include <numeric>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_bench_traffic.h"
#include "cli_commands.h"
#include "cli_decode_commands.h"
#include "peregrine/gguf.h"
#include "peregrine/model_config.h"
#include "peregrine/synthetic.h"

namespace peregrine::cli {
namespace {

std::string fixture(const std::string& name) { return std::string(PEREGRINE_TEST_DATA_DIR) + "/qwen35-tiny/" + name; }

GgufTensorInfo tensor(const std::string& name, uint64_t bytes) {
  GgufTensorInfo t;
  t.name = name;
  t.type = TensorType::Q8_0;
  t.n_bytes = bytes;
  return t;
}

// Two trunk layers (delta-net, attention), MoE with 8 experts of which 2 are used, one MTP block.
ModelConfig small_moe_config() {
  ModelConfig c;
  c.arch = Architecture::Qwen35Moe;
  c.n_layer = 2;
  c.n_nextn = 1;
  c.layer_kinds = {LayerKind::DeltaNet, LayerKind::FullAttention};
  c.n_head_kv = 2;
  c.head_dim = 64;
  c.ssm_conv_kernel = 4;
  c.ssm_state_size = 16;
  c.ssm_group_count = 2;
  c.ssm_time_step_rank = 4;
  c.ssm_inner_size = 64;
  c.n_expert = 8;
  c.n_expert_used = 2;
  return c;
}

TEST(DecodeTraffic, CountsActiveExpertsLmHeadAndStatesNotTheEmbedding) {
  const ModelConfig c = small_moe_config();
  const std::vector<GgufTensorInfo> tensors = {
      tensor("token_embd.weight", 1000000), tensor("output.weight", 5000), tensor("output_norm.weight", 10),
      tensor("blk.0.attn_qkv.weight", 300), tensor("blk.0.ffn_up_exps.weight", 800),
      tensor("blk.1.attn_q.weight", 200), tensor("blk.1.ffn_down_exps.weight", 1600),
      tensor("blk.2.nextn.eh_proj.weight", 70), tensor("blk.2.ffn_gate_exps.weight", 400),
      tensor("blk.2.nextn.embed_tokens.weight", 999999)};
  const DecodeTraffic t = decode_traffic(c, tensors, nullptr, TensorType::F32);
  // output + norm + 300 + 800/4 + 200 + 1600/4; no token_embd, no MTP block.
  EXPECT_EQ(t.trunk_weight_bytes, 5000u + 10 + 300 + 200 + 200 + 400);
  // eh_proj + experts/4 + the trunk's LM head (no shared_head_head); embed_tokens is a row gather.
  EXPECT_EQ(t.draft_weight_bytes, 70u + 100 + 5000);
  // One delta-net layer: conv (4-1) x (2*2*16 + 64) floats + recurrent 4 x 16 x 16 floats, read and written.
  EXPECT_EQ(t.delta_state_bytes, 2u * (3 * 128 * 4 + 4 * 16 * 16 * 4));
  // One attention layer, K and V rows of 2 heads x 64 floats.
  EXPECT_EQ(t.kv_bytes_per_position, 2u * 2 * 64 * 4);
  EXPECT_EQ(t.bytes_per_token(10), t.trunk_weight_bytes + t.delta_state_bytes + 10 * t.kv_bytes_per_position);
  EXPECT_EQ(decode_traffic(c, tensors, nullptr, TensorType::F16).kv_bytes_per_position, 2u * 2 * 64 * 2);
}

TEST(DecodeTraffic, TiedEmbeddingIsTheLmHeadAndSeparateMtpFileCounts) {
  ModelConfig c = small_moe_config();
  c.arch = Architecture::Qwen35;
  const std::vector<GgufTensorInfo> trunk = {tensor("token_embd.weight", 4000), tensor("blk.0.ffn_up.weight", 100),
                                             tensor("blk.1.ffn_up.weight", 100)};
  const std::vector<GgufTensorInfo> mtp = {tensor("token_embd.weight", 4000), tensor("blk.1.ffn_up.weight", 55),
                                           tensor("blk.2.nextn.eh_proj.weight", 30),
                                           tensor("blk.2.nextn.shared_head_head.weight", 900)};
  const DecodeTraffic t = decode_traffic(c, trunk, &mtp, TensorType::F32);
  EXPECT_EQ(t.trunk_weight_bytes, 4000u + 200);  // the MTP file's copies of trunk tensors are not the trunk's
  EXPECT_EQ(t.draft_weight_bytes, 30u + 900);    // its own LM head instead of the trunk's
  c.n_nextn = 0;
  EXPECT_EQ(decode_traffic(c, trunk, nullptr, TensorType::F32).draft_weight_bytes, 0u);
}

DecodeTraffic synthetic_traffic(const std::string& shape, synthetic::FileType type) {
  const ModelConfig c = synthetic::make_config(*synthetic::builtin_shape(shape), true);
  std::vector<GgufTensorInfo> tensors;
  for (const synthetic::PlannedTensor& p : synthetic::plan_tensors(c, type)) {
    GgufTensorInfo t;
    t.name = p.name;
    t.type = p.type;
    t.ne = p.ne;
    t.n_elements = std::accumulate(p.ne.begin(), p.ne.end(), int64_t{1}, std::multiplies<>());
    t.n_bytes = tensor_bytes(tensor_type_info(p.type), static_cast<uint64_t>(t.n_elements));
    tensors.push_back(t);
  }
  return decode_traffic(c, tensors, nullptr, TensorType::F32);
}

// The bound issue 7 states: 27B Q4_K_M streams about 16.1 GB of weights plus about 0.3 GB of
// delta-net state per token; the 35B-A3B reads only its ~3 B active parameters.
TEST(DecodeTraffic, QwenShapesMatchThePublishedBound) {
  const DecodeTraffic dense = synthetic_traffic("qwen3.6-27b", synthetic::FileType::Q4_K_M);
  EXPECT_GT(dense.trunk_weight_bytes, 15.0e9);
  EXPECT_LT(dense.trunk_weight_bytes, 17.0e9);
  EXPECT_GT(dense.delta_state_bytes, 0.28e9);
  EXPECT_LT(dense.delta_state_bytes, 0.33e9);
  EXPECT_GT(dense.draft_weight_bytes, 0.5e9);
  EXPECT_LT(dense.draft_weight_bytes, 0.15 * dense.trunk_weight_bytes);
  const DecodeTraffic moe = synthetic_traffic("qwen3.6-35b-a3b", synthetic::FileType::Q4_K_M);
  EXPECT_GT(moe.trunk_weight_bytes, 1.0e9);
  EXPECT_LT(moe.trunk_weight_bytes, 3.5e9);
}

nlohmann::json bench_json(const std::vector<std::string>& args) {
  testing::internal::CaptureStdout();
  const int rc = run_bench(args);
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(rc, 0);
  return nlohmann::json::parse(out);
}

TEST(CliBenchGpuPieces, DepthVerifyWidthsAndRooflineInJson) {
  const auto j = bench_json({"--model", fixture("tiny-mtp-f32.gguf"), "-p", "8", "-n", "6", "-r", "1", "--threads", "1",
                             "--backend", "cpu", "--depth", "16", "--verify-widths", "4", "--roofline-gbs", "20",
                             "--mtp", "2", "--acceptance", "0.8,0.6", "--json"});
  EXPECT_EQ(j.at("depth_tokens").get<int64_t>(), 16);
  EXPECT_GT(j.at("decode_tok_s").get<double>(), 0.0);
  EXPECT_NEAR(j.at("decode_ms_per_token").get<double>(), 1000.0 / j.at("decode_tok_s").get<double>(), 1e-9);
  EXPECT_EQ(j.at("mtp").at("drafted").get<int64_t>(), 2 * j.at("mtp").at("steps").get<int64_t>());

  const auto& v = j.at("verify");
  EXPECT_EQ(v.at("depth_tokens").get<int64_t>(), 16);
  ASSERT_EQ(v.at("widths").size(), 4u);
  for (size_t w = 0; w < 4; ++w) {
    EXPECT_EQ(v.at("widths")[w].at("positions").get<int64_t>(), static_cast<int64_t>(w + 1));
    EXPECT_GT(v.at("widths")[w].at("ms_per_pass").get<double>(), 0.0);
  }
  EXPECT_EQ(v.at("widths")[0].at("ratio_to_1_position").get<double>(), 1.0);
  EXPECT_GT(v.at("widths")[3].at("ratio_to_1_position").get<double>(), 0.0);
  EXPECT_GT(v.at("draft_ms_per_pass").get<double>(), 0.0);
  EXPECT_GT(v.at("draft_to_plain_step_ratio").get<double>(), 0.0);

  const auto& r = j.at("roofline");
  EXPECT_EQ(r.at("read_bandwidth_gbs").get<double>(), 20.0);
  EXPECT_DOUBLE_EQ(r.at("mean_context_tokens").get<double>(), 16 + 2.5);
  const uint64_t bytes = r.at("bytes_per_token").get<uint64_t>();
  EXPECT_EQ(bytes, r.at("trunk_weight_bytes_per_token").get<uint64_t>() + r.at("delta_state_bytes_per_token").get<uint64_t>() +
                       19 * r.at("kv_bytes_per_context_token").get<uint64_t>());
  const GgufFile file = GgufFile::open(fixture("tiny-mtp-f32.gguf"));
  EXPECT_LT(r.at("trunk_weight_bytes_per_token").get<uint64_t>(), file.file_size());
  EXPECT_GT(r.at("draft_weight_bytes_per_pass").get<uint64_t>(), 0u);
  EXPECT_NEAR(r.at("roofline_decode_tok_s").get<double>(), 20e9 / static_cast<double>(bytes), 1e-6);
  EXPECT_NEAR(r.at("decode_roofline_fraction").get<double>(),
              j.at("decode_tok_s").get<double>() / r.at("roofline_decode_tok_s").get<double>(), 1e-12);
  EXPECT_GT(r.at("achieved_gbs").get<double>(), 0.0);
}

TEST(CliBenchGpuPieces, VerifyWidthsAloneOnMoe) {
  const auto j = bench_json({"--model", fixture("tiny-moe-f32.gguf"), "-p", "0", "-n", "0", "-r", "1", "--threads",
                             "1", "--backend", "cpu", "--verify-widths", "9", "--json"});
  ASSERT_EQ(j.at("verify").at("widths").size(), 9u);
  EXPECT_GT(j.at("verify").at("draft_to_verify_1_ratio").get<double>(), 0.0);
  EXPECT_TRUE(j.at("verify").at("draft_to_plain_step_ratio").is_null());  // no decode measured
  EXPECT_TRUE(j.at("decode_tok_s").is_null());
  EXPECT_FALSE(j.contains("roofline"));
}

TEST(CliBenchGpuPieces, Misuse) {
  const std::string m = fixture("tiny-f32.gguf");
  EXPECT_THROW(run_bench({"--model", m, "--verify-widths", "0"}), UsageError);
  EXPECT_THROW(run_bench({"--model", m, "--verify-widths", "10"}), UsageError);
  EXPECT_THROW(run_bench({"--model", m, "-n", "0", "--roofline-gbs", "100"}), UsageError);
  EXPECT_THROW(run_bench({"--model", m, "--roofline-gbs", "-1"}), UsageError);
  EXPECT_THROW(run_bench({"--model", m, "--depth", "x"}), UsageError);
}

}  // namespace
}  // namespace peregrine::cli
