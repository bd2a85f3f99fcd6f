// peregrine-cli run / logits / bench, called in-process on the qwen35-tiny fixtures.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <unistd.h>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_commands.h"
#include "cli_decode_commands.h"
#include "peregrine/backend.h"
#include "peregrine/error.h"
#include "test_engine_util.h"

namespace peregrine::cli {

// These tests compare with the CPU fixtures' tolerances; on a machine with a GPU the CLI's
// default (auto) would pick CUDA, whose bounds are looser (test_cuda_forward covers those).
const bool kCliOnCpu = setenv("PEREGRINE_BACKEND", "cpu", 1) == 0;
namespace {

std::string data(const std::string& rel) { return std::string(PEREGRINE_TEST_DATA_DIR) + "/qwen35-tiny/" + rel; }

std::vector<float> read_f32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

std::string join(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("peregrine-test-" + std::to_string(::getpid()) + "-" + name)).string();
}

TEST(CliBackend, FlagAndEnvironmentChooseTheBackendAndAreValidated) {
  const std::string out = temp_path("backend.f32");
  const std::vector<std::string> args = {"--model", data("tiny-f32.gguf"), "--tokens", "1,2,3", "--out", out};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> all = args;
    all.insert(all.end(), extra.begin(), extra.end());
    return all;
  };
  EXPECT_THROW(run_logits(with({"--backend", "gpu"})), UsageError);
  ASSERT_EQ(setenv("PEREGRINE_BACKEND", "tpu", 1), 0);
  EXPECT_THROW(run_logits(args), UsageError);                  // a bad default is reported
  EXPECT_EQ(run_logits(with({"--backend", "cpu"})), 0);        // the flag wins over it
  ASSERT_EQ(setenv("PEREGRINE_BACKEND", "cpu", 1), 0);
  EXPECT_EQ(run_logits(args), 0);
  if (!cuda_backend_compiled() || cuda_device_count() == 0) {  // cuda asked for where there is none
    EXPECT_THROW(run_logits(with({"--backend", "cuda"})), Error);
  }
  std::filesystem::remove(out);
}

TEST(CliLogits, MatchesFixtureLogitsAndMtpLogits) {
  std::ifstream in(data("tiny-f32.json"));
  const auto j = nlohmann::json::parse(in);
  const auto tokens = j.at("tokens").get<std::vector<int32_t>>();
  const std::string out = temp_path("logits.f32"), mtp = temp_path("mtp.f32");
  ASSERT_EQ(run_logits({"--model", data("tiny-f32.gguf"), "--tokens", join(tokens), "--out", out, "--threads", "1"}), 0);
  EXPECT_LE(max_abs_diff(read_f32(out), read_f32(data("tiny-f32.logits.f32"))), 1e-3);

  // Chunked (10 + 10 + ... + 4) with the MTP head.
  ASSERT_EQ(run_logits({"--model", data("tiny-f32.gguf"), "--tokens", join(tokens), "--out", out, "--chunk", "10",
                        "--mtp-out", mtp, "--threads", "2", "--float-activations"}),
            0);
  EXPECT_LE(max_abs_diff(read_f32(out), read_f32(data("tiny-f32.logits.f32"))), 1e-3);
  EXPECT_LE(max_abs_diff(read_f32(mtp), read_f32(data("tiny-f32.mtp_logits.f32"))), 1e-3);
  std::filesystem::remove(out);
  std::filesystem::remove(mtp);

  EXPECT_THROW(run_logits({"--model", data("tiny-f32.gguf"), "--tokens", "1,2"}), UsageError);  // no --out
  EXPECT_THROW(run_logits({"--model", data("tiny-f32.gguf"), "--tokens", "1,,2", "--out", out}), UsageError);
  EXPECT_THROW(run_logits({"--model", data("tiny-f32.gguf"), "--tokens", "1,512", "--out", out}), Error);
}

TEST(CliRun, PromptTokensIdsGiveTheGreedyRun) {
  const auto ref = test::tiny_greedy();
  testing::internal::CaptureStdout();
  const int rc = run_run({"--model", data("tiny-f32.gguf"), "--prompt-tokens", join(ref.prompt), "--max-tokens", "32",
                          "--ids", "--threads", "1", "--ctx", "128"});
  const std::string out = testing::internal::GetCapturedStdout();
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(nlohmann::json::parse(out).get<std::vector<int32_t>>(), ref.generated);

  // Text prompt, chat rendering and sampling options run; output is text.
  testing::internal::CaptureStdout();
  EXPECT_EQ(run_run({"--model", data("tiny-f32.gguf"), "--prompt", "Paris", "--chat", "--max-tokens", "8", "--temp",
                     "0.8", "--seed", "7", "--top-k", "20"}),
            0);
  EXPECT_FALSE(testing::internal::GetCapturedStdout().empty());
}

TEST(CliRun, Misuse) {
  EXPECT_THROW(run_run({"--prompt", "x"}), UsageError);
  EXPECT_THROW(run_run({"--model", "m.gguf"}), UsageError);
  EXPECT_THROW(run_run({"--model", "m.gguf", "--prompt", "x", "--prompt-tokens", "1"}), UsageError);
  EXPECT_THROW(run_run({"--model", "m.gguf", "--prompt-tokens", "1", "--chat"}), UsageError);
  EXPECT_THROW(run_run({"--model", "m.gguf", "--prompt", "x", "--temp", "hot"}), UsageError);
  EXPECT_THROW(run_run({"--model", "m.gguf", "--prompt", "x", "--top-p", "0"}), UsageError);
  EXPECT_THROW(run_run({"--model", "m.gguf", "--prompt", "x", "--profile", "wild"}), UsageError);
  EXPECT_THROW(run_run({"--model", "/nonexistent.gguf", "--prompt", "x"}), Error);
}

// A context the machine cannot hold is refused before anything is allocated, with both numbers
// (the available memory is set, so that the test does not depend on the machine's).
TEST(CliRun, ContextBeyondAvailableMemoryIsRefusedAtOnce) {
  ASSERT_EQ(setenv("PEREGRINE_AVAILABLE_MEMORY_BYTES", "1073741824", 1), 0);
  std::string error = "no error";
  try {
    run_run({"--model", data("tiny-f32.gguf"), "--prompt-tokens", "1,2", "--max-tokens", "1", "--ctx", "16777216"});
  } catch (const Error& e) {
    error = e.what();
  }
  unsetenv("PEREGRINE_AVAILABLE_MEMORY_BYTES");
  EXPECT_NE(error.find("a context of 16777216 tokens needs 16.00 GiB for the sequence"), std::string::npos) << error;
  EXPECT_NE(error.find("1.00 GiB available"), std::string::npos) << error;
}

TEST(CliBench, JsonReport) {
  testing::internal::CaptureStdout();
  const int rc = run_bench({"--model", data("tiny-f32.gguf"), "-p", "16", "-n", "8", "-r", "2", "--threads", "1", "--json"});
  const std::string out = testing::internal::GetCapturedStdout();
  ASSERT_EQ(rc, 0);
  const auto j = nlohmann::json::parse(out);
  EXPECT_GT(j.at("prefill_tok_s").get<double>(), 0.0);
  EXPECT_GT(j.at("decode_tok_s").get<double>(), 0.0);
  EXPECT_EQ(j.at("prefill_runs_tok_s").size(), 2u);
  EXPECT_GT(j.at("peak_rss_bytes").get<uint64_t>(), 1u << 20);
  EXPECT_THROW(run_bench({"--model", data("tiny-f32.gguf"), "-p", "0", "-n", "0"}), UsageError);
  EXPECT_THROW(run_bench({"--model", data("tiny-f32.gguf"), "-x", "1"}), UsageError);
}

}  // namespace
}  // namespace peregrine::cli
