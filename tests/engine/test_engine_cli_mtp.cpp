// peregrine-cli run --mtp and bench --mtp --acceptance, called in-process on tiny-mtp-f32.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_commands.h"
#include "cli_decode_commands.h"
#include "peregrine/error.h"

namespace peregrine::cli {
namespace {

std::string tiny_mtp() { return std::string(PEREGRINE_TEST_DATA_DIR) + "/qwen35-tiny/tiny-mtp-f32.gguf"; }

std::string prompt_ids() {
  std::ifstream in(std::string(PEREGRINE_TEST_DATA_DIR) + "/qwen35-tiny/tiny-mtp-f32.json");
  std::string s;
  for (int32_t id : nlohmann::json::parse(in).at("greedy").at("prompt").get<std::vector<int32_t>>())
    s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

std::vector<int32_t> run_ids(const std::string& mtp) {
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  const int rc = run_run({"--model", tiny_mtp(), "--prompt-tokens", prompt_ids(), "--max-tokens", "100", "--ids",
                          "--ignore-eos", "--threads", "1", "--ctx", "256", "--mtp", mtp});
  const std::string out = testing::internal::GetCapturedStdout();
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, 0);
  if (mtp != "off") {
    EXPECT_NE(err.find("mtp: "), std::string::npos) << err;
  }
  return nlohmann::json::parse(out).get<std::vector<int32_t>>();
}

TEST(CliRunMtp, IdsEqualWithAndWithoutDrafts) {
  const auto plain = run_ids("off");
  ASSERT_EQ(plain.size(), 100u);
  EXPECT_EQ(run_ids("2"), plain);
  EXPECT_EQ(run_ids("auto"), plain);
  EXPECT_THROW(run_run({"--model", tiny_mtp(), "--prompt", "x", "--mtp", "9"}), UsageError);
  EXPECT_THROW(run_run({"--model", tiny_mtp(), "--prompt", "x", "--mtp", "fast"}), UsageError);
}

TEST(CliBenchMtp, JsonReportsMeasuredAndProjectedNumbers) {
  testing::internal::CaptureStdout();
  const int rc = run_bench({"--model", tiny_mtp(), "-p", "0", "-n", "24", "-r", "1", "--threads", "1", "--mtp", "2",
                            "--acceptance", "0.8,0.6", "--json"});
  const std::string out = testing::internal::GetCapturedStdout();
  ASSERT_EQ(rc, 0);
  const auto j = nlohmann::json::parse(out);
  const auto& m = j.at("mtp");
  EXPECT_EQ(m.at("draft_length").get<int>(), 2);
  EXPECT_GT(m.at("decode_tok_s").get<double>(), 0.0);
  EXPECT_GT(m.at("steps").get<int64_t>(), 0);
  EXPECT_EQ(m.at("drafted").get<int64_t>(), 2 * m.at("steps").get<int64_t>());
  EXPECT_GT(m.at("draft_ms_per_draft").get<double>(), 0.0);
  EXPECT_GT(m.at("verify_ms_per_step").get<double>(), 0.0);
  EXPECT_EQ(m.at("accepted_at").size(), 2u);
  const auto& p = j.at("mtp_projection");
  EXPECT_NE(p.at("note").get<std::string>().find("projected"), std::string::npos);
  EXPECT_EQ(p.at("acceptance").get<std::vector<double>>(), (std::vector<double>{0.8, 0.6}));
  // E = 1 + 0.8 + 0.8 * 0.6 = 2.28 tokens per step.
  EXPECT_NEAR(p.at("projected_tokens_per_step").get<double>(), 2.28, 1e-12);
  const double step_ms = 2 * m.at("draft_ms_per_draft").get<double>() + m.at("verify_ms_per_step").get<double>() +
                         m.at("sample_ms_per_step").get<double>();
  EXPECT_NEAR(p.at("projected_step_ms").get<double>(), step_ms, 1e-9);
  EXPECT_NEAR(p.at("projected_decode_tok_s").get<double>(),
              1000.0 * p.at("projected_tokens_per_step").get<double>() / step_ms, 1e-9 * 1000.0 * 2.28 / step_ms);
  EXPECT_GT(p.at("projected_speedup_vs_plain").get<double>(), 0.0);

  // Text mode labels the projection.
  testing::internal::CaptureStdout();
  ASSERT_EQ(run_bench({"--model", tiny_mtp(), "-p", "0", "-n", "8", "-r", "1", "--threads", "1", "--mtp", "1",
                       "--acceptance", "0.5"}),
            0);
  EXPECT_NE(testing::internal::GetCapturedStdout().find("PROJECTED"), std::string::npos);

  EXPECT_THROW(run_bench({"--model", tiny_mtp(), "-n", "8", "--mtp", "auto"}), UsageError);
  EXPECT_THROW(run_bench({"--model", tiny_mtp(), "-n", "8", "--acceptance", "0.5"}), UsageError);
  EXPECT_THROW(run_bench({"--model", tiny_mtp(), "-n", "8", "--mtp", "2", "--acceptance", "1.5"}), UsageError);
}

}  // namespace
}  // namespace peregrine::cli
