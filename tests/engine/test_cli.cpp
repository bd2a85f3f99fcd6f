// peregrine-cli inspect / tokenize / detokenize / make-synthetic, run as a program: output,
// exit codes (0 ok, 1 bad file or data, 2 misuse) and error messages.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "peregrine/gguf.h"
#include "test_model_util.h"

namespace peregrine {
namespace {

struct RunResult {
  int rc = -1;
  std::string out, err;
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

class Cli : public ::testing::Test {
 protected:
  test::ModelScratch dir{"cli"};

  // Runs peregrine-cli with `args` (already shell-quoted where needed) and `stdin_text`; stdout
  // goes to `stdout_path` when one is given (r.out is then empty). `shell_prefix` runs in the
  // same shell first (ulimit, trap).
  RunResult run(const std::string& args, const std::string& stdin_text = "", const std::string& stdout_path = "",
                const std::string& shell_prefix = "") {
    const auto in = dir / "stdin", out = dir / "stdout", err = dir / "stderr";
    std::ofstream(in, std::ios::binary) << stdin_text;
    std::filesystem::remove(out);
    const std::string cmd = shell_prefix + quote(std::string(PEREGRINE_BINARY_DIR) + "/bin/peregrine-cli") + " " +
                            args + " <" + quote(in.string()) + " >" +
                            quote(stdout_path.empty() ? out.string() : stdout_path) + " 2>" + quote(err.string());
    const int status = std::system(cmd.c_str());
    RunResult r;
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }
  std::string fixture(const std::string& name) { return quote(test::fixture(name).string()); }
};

TEST_F(Cli, InspectTextShowsConfigTensorsAndCheck) {
  const RunResult r = run("inspect " + fixture("tiny-moe-f32.gguf"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("architecture: qwen35moe"), std::string::npos);
  EXPECT_NE(r.out.find("moe: 8 experts, 2 used"), std::string::npos);
  EXPECT_NE(r.out.find("layers: DDDA"), std::string::npos);
  EXPECT_NE(r.out.find("mtp: yes (block 4)"), std::string::npos);
  EXPECT_NE(r.out.find("blk.0.ffn_gate_exps.weight"), std::string::npos);
  EXPECT_NE(r.out.find("[64, 32, 8]"), std::string::npos);
  EXPECT_NE(r.out.find("tensor check: OK"), std::string::npos);
  EXPECT_NE(r.out.find("total: 1887776 tensor bytes"), std::string::npos);
}

TEST_F(Cli, InspectJsonIsMachineReadable) {
  const RunResult r = run("inspect --json " + fixture("tiny-quant.gguf"));
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["architecture"], "qwen35");
  EXPECT_EQ(j["mtp"], true);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["config"]["n_embd"], 256);
  EXPECT_EQ(j["config"]["layer_kinds"][3], "full_attention");
  EXPECT_EQ(j["tensors"].size(), 71u);
  EXPECT_EQ(j["tensors"][0]["name"], "output.weight");
  EXPECT_EQ(j["tensors"][0]["type"], "q6_K");
  EXPECT_EQ(j["tensors"][0]["bytes"], 107520);
  EXPECT_TRUE(j["problems"].empty());
  EXPECT_EQ(j["metadata"]["general.file_type"], "15");
}

TEST_F(Cli, InspectReportsProblemsAndFails) {
  test::Mutation m;
  m.drop_tensors = {"blk.2.ssm_norm.weight"};
  test::rewrite_gguf(test::fixture("tiny-f32.gguf"), dir / "broken.gguf", m);
  const RunResult r = run("inspect --json " + quote((dir / "broken.gguf").string()));
  EXPECT_EQ(r.rc, 1);
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ok"], false);
  ASSERT_EQ(j["problems"].size(), 1u);
  EXPECT_EQ(j["problems"][0]["tensor"], "blk.2.ssm_norm.weight");
  EXPECT_EQ(j["problems"][0]["what"], "missing");

  test::Mutation k;
  k.drop_keys = {"qwen35.ssm.state_size"};
  test::rewrite_gguf(test::fixture("tiny-f32.gguf"), dir / "nokey.gguf", k);
  const RunResult t = run("inspect " + quote((dir / "nokey.gguf").string()));
  EXPECT_EQ(t.rc, 1);
  EXPECT_NE(t.err.find("key 'qwen35.ssm.state_size': missing"), std::string::npos) << t.err;
}

// A block count of 2^40 allocated gigabytes for seconds before a std::bad_alloc; the header is now
// bounded by the file's tensors first.
TEST_F(Cli, InspectRefusesABlockCountTheFileCannotHold) {
  test::Mutation m;
  m.set_keys["qwen35.block_count"] = GgufValue::u64(uint64_t{1} << 40);
  test::rewrite_gguf(test::fixture("tiny-f32.gguf"), dir / "blocks.gguf", m);
  const RunResult r = run("inspect " + quote((dir / "blocks.gguf").string()));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("key 'qwen35.block_count': 1099511627776 blocks, but the file's tensors stop at blk.4"),
            std::string::npos)
      << r.err;
}

TEST_F(Cli, TokenizeMatchesLlamaCpp) {
  // tokenizer_checks in the fixture JSON are llama.cpp's ids (parse_special on and off).
  const nlohmann::json fixture_data = test::fixture_json("tiny256-f32");
  for (const auto& check : fixture_data["tokenizer_checks"]) {
    const bool special = check["parse_special"];
    const RunResult r =
        run("tokenize --model " + fixture("tiny256-f32.gguf") + (special ? "" : " --no-special"), check["text"]);
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out), check["ids"]) << check["text"];
  }
}

TEST_F(Cli, TokenizeWithHuggingFaceTokenizerJson) {
  // tests/data/tokenizer-qwen3 corpus entry 455: ids (all specials) and ids_no_control.
  const std::string tokenizer = quote((std::filesystem::path(PEREGRINE_TEST_DATA_DIR) / "tokenizer-qwen3" / "tokenizer.json").string());
  const std::string text = "<|im_start|>assistant\n<think>\n\n</think>\n\nThe answer is 4.<|im_end|>";
  const RunResult r = run("tokenize --tokenizer " + tokenizer, text);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out),
            nlohmann::json::parse("[151644, 77091, 198, 151667, 271, 151668, 271, 785, 4226, 374, 220, 19, 13, 151645]"));
  const RunResult n = run("tokenize --no-special --tokenizer=" + tokenizer, text);
  ASSERT_EQ(n.rc, 0) << n.err;
  EXPECT_EQ(nlohmann::json::parse(n.out),
            nlohmann::json::parse("[27, 91, 318, 4906, 91, 29, 77091, 198, 151667, 271, 151668, 271, 785, 4226, 374, 220, "
                                  "19, 15757, 91, 318, 6213, 91, 29]"));
  const RunResult d = run("detokenize --tokenizer " + tokenizer, n.out);
  ASSERT_EQ(d.rc, 0) << d.err;
  EXPECT_EQ(d.out, text);
}

TEST_F(Cli, DetokenizeRoundTrips) {
  const auto j = test::fixture_json("tiny-f32");
  const RunResult r = run("detokenize --model " + fixture("tiny-f32.gguf"), j["tokens"].dump());
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string text = j["sequence_text"];
  EXPECT_EQ(r.out, text.substr(0, r.out.size()));
  EXPECT_GT(r.out.size(), 100u);
  const RunResult back = run("tokenize --model " + fixture("tiny-f32.gguf"), r.out);
  EXPECT_EQ(nlohmann::json::parse(back.out), j["tokens"]);
}

TEST_F(Cli, DetokenizeRefusesIdsBeyondInt64WithoutWrapping) {
  const RunResult big = run("detokenize --model " + fixture("tiny-f32.gguf"), "[1, 9223372036854775808]");
  EXPECT_EQ(big.rc, 1);
  EXPECT_NE(big.err.find("element 1: id 9223372036854775808 is outside the vocabulary [0, 512)"), std::string::npos)
      << big.err;
  EXPECT_EQ(big.err.find("-9223372036854775808"), std::string::npos) << big.err;
  const RunResult huge = run("detokenize --model " + fixture("tiny-f32.gguf"), "[18446744073709551616]");
  EXPECT_EQ(huge.rc, 1);
  EXPECT_NE(huge.err.find("element 0: 1.8446744073709552e+19 is not an integer token id"), std::string::npos)
      << huge.err;
  const RunResult negative = run("detokenize --model " + fixture("tiny-f32.gguf"), "[3, -1]");
  EXPECT_EQ(negative.rc, 1);
  EXPECT_NE(negative.err.find("element 1: id -1 is outside the vocabulary"), std::string::npos) << negative.err;
}

// Damaged tokenizer metadata: `run` refuses such a file, so `inspect` must not call it valid.
TEST_F(Cli, InspectValidatesTheTokenizerAsRunDoes) {
  test::Mutation bad_type;
  {
    const GgufFile f = GgufFile::open(test::fixture("tiny-f32.gguf"));
    std::vector<GgufValue> types = f.find("tokenizer.ggml.token_type")->as_array()->elements;
    types[40] = GgufValue::i32(77);  // not a llama.cpp token type
    bad_type.set_keys.emplace("tokenizer.ggml.token_type", GgufValue::array(GgufValueType::INT32, std::move(types)));
  }
  test::rewrite_gguf(test::fixture("tiny-f32.gguf"), dir / "badtype.gguf", bad_type);
  const RunResult t = run("inspect " + quote((dir / "badtype.gguf").string()));
  EXPECT_EQ(t.rc, 1);
  EXPECT_NE(t.out.find("tokenizer: ERROR"), std::string::npos) << t.out;
  EXPECT_NE(t.err.find("tokenizer.ggml.token_type[40] = 77 is not a token type"), std::string::npos) << t.err;

  test::Mutation bad_merge;
  {
    const GgufFile f = GgufFile::open(test::fixture("tiny-f32.gguf"));
    std::vector<GgufValue> merges = f.find("tokenizer.ggml.merges")->as_array()->elements;
    merges[3] = GgufValue::string("qq zz");  // tokens the vocabulary does not have
    bad_merge.set_keys.emplace("tokenizer.ggml.merges", GgufValue::array(GgufValueType::STRING, std::move(merges)));
  }
  test::rewrite_gguf(test::fixture("tiny-f32.gguf"), dir / "badmerge.gguf", bad_merge);
  const RunResult j = run("inspect --json " + quote((dir / "badmerge.gguf").string()));
  EXPECT_EQ(j.rc, 1);
  const auto report = nlohmann::json::parse(j.out);
  EXPECT_EQ(report["ok"], false);
  EXPECT_NE(report["tokenizer_error"].get<std::string>().find("merge 3 'qq zz' refers to unknown token 'qq'"),
            std::string::npos)
      << report["tokenizer_error"];
  EXPECT_TRUE(report["problems"].empty());  // the tensors are fine

  const RunResult good = run("inspect --json " + fixture("tiny-f32.gguf"));
  ASSERT_EQ(good.rc, 0) << good.err;
  EXPECT_EQ(nlohmann::json::parse(good.out)["tokenizer"]["vocab_size"], 512);
}

// Output that cannot be written (a full disk, here /dev/full) fails the command with the reason.
TEST_F(Cli, OutputToAFullDeviceFailsWithTheReason) {
  const std::string tiny = fixture("tiny-f32.gguf");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"tokenize --model " + tiny, "hello world"},
      {"detokenize --model " + tiny, "[10, 20, 30]"},
      {"inspect " + tiny, ""},
      {"inspect --json " + tiny, ""},
      {"tokenize --help", ""},
      {"run --model " + tiny + " --prompt-tokens 1,2,3 --max-tokens 4 --threads 1 --ctx 64", ""},
      {"run --model " + tiny + " --prompt-tokens 1,2,3 --max-tokens 4 --threads 1 --ctx 64 --ids", ""},
      {"make-synthetic --shape tiny --type F32 --no-mtp --out " + quote((dir / "s.gguf").string()), ""},
  };
  for (const auto& [args, input] : cases) {
    const RunResult r = run("--log-level off " + args, input, "/dev/full");
    EXPECT_EQ(r.rc, 1) << args << "\n" << r.err;
    EXPECT_NE(r.err.find("error: stdout: cannot write the output: No space left on device"), std::string::npos)
        << args << "\n" << r.err;
  }
}

// A streaming run stops at the first write that fails instead of generating to the end.
TEST_F(Cli, RunStopsStreamingAtTheFirstFailedWrite) {
  const RunResult r = run("run --model " + fixture("tiny-f32.gguf") +
                              " --prompt-tokens 1,2,3 --max-tokens 200 --ignore-eos --threads 1 --ctx 256",
                          "", "/dev/full");
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("generated: 200 tokens"), std::string::npos) << r.err;  // no statistics of a full run
}

// logits --out writes under a temporary name and renames: a failed write (here the file size
// limit, with SIGXFSZ ignored so that write() returns EFBIG) leaves nothing under the final name,
// an older file there untouched, and no temporary file behind.
TEST_F(Cli, LogitsThatCannotBeWrittenLeaveNoPartialFile) {
  const auto out = dir / "logits.f32", kept = dir / "kept.f32";
  std::ofstream(kept, std::ios::binary) << "older logits";
  std::string tokens = "1";
  for (int i = 2; i <= 16; ++i) tokens += "," + std::to_string(i);  // 16 rows x 512 floats = 32 KiB
  const std::string limit = "trap '' XFSZ; ulimit -f 8; ";           // 4 or 8 KiB, by the shell's block size
  const std::string args = "--log-level off logits --model " + fixture("tiny-f32.gguf") + " --tokens " + tokens +
                           " --threads 1 --out ";

  const RunResult fresh = run(args + quote(out.string()), "", "", limit);
  EXPECT_EQ(fresh.rc, 1) << fresh.err;
  EXPECT_NE(fresh.err.find(out.string() + ": write failed: File too large"), std::string::npos) << fresh.err;
  EXPECT_FALSE(std::filesystem::exists(out));

  const RunResult replace = run(args + quote(kept.string()), "", "", limit);
  EXPECT_EQ(replace.rc, 1) << replace.err;
  EXPECT_EQ(slurp(kept), "older logits");

  for (const auto& entry : std::filesystem::directory_iterator((dir / "").parent_path()))
    EXPECT_TRUE(entry.path().filename() == "kept.f32" || entry.path().filename().string().rfind("std", 0) == 0)
        << "left behind: " << entry.path();

  const RunResult ok = run(args + quote(out.string()));  // without the limit the same command succeeds
  ASSERT_EQ(ok.rc, 0) << ok.err;
  EXPECT_EQ(std::filesystem::file_size(out), 16u * 512u * 4u);
}

TEST_F(Cli, MakeSyntheticThenInspect) {
  const std::string out = quote((dir / "tiny.gguf").string());
  const RunResult r = run("make-synthetic --shape tiny --type Q4_K_M --out " + out + " --seed 3");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("wrote"), std::string::npos);
  EXPECT_NE(r.err.find("make-synthetic"), std::string::npos);  // progress at info level
  const RunResult i = run("inspect --json " + out);
  ASSERT_EQ(i.rc, 0) << i.out;
  EXPECT_EQ(nlohmann::json::parse(i.out)["ok"], true);

  std::ofstream(dir / "shape.json") << R"({"base": "tiny-moe", "name": "moe-wide", "n_embd": 128})";
  const RunResult s = run("make-synthetic --shape " + quote((dir / "shape.json").string()) +
                          " --type F16 --no-mtp --out " + quote((dir / "moe.gguf").string()));
  ASSERT_EQ(s.rc, 0) << s.err;
  const auto j = nlohmann::json::parse(run("inspect --json " + quote((dir / "moe.gguf").string())).out);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["mtp"], false);
  EXPECT_EQ(j["config"]["n_embd"], 128);
  EXPECT_EQ(j["name"], "moe-wide");
}

// Shapes too large to write are refused before anything is allocated or written: a layer count
// past what a loader accepts, dimensions past any model's, a file larger than the free space.
TEST_F(Cli, MakeSyntheticRefusesWhatCannotBeWritten) {
  const std::filesystem::path out = dir / "big.gguf";
  auto make = [&](const std::string& shape_json) {
    std::ofstream(dir / "shape.json") << shape_json;
    return run("make-synthetic --shape " + quote((dir / "shape.json").string()) + " --type F32 --out " +
               quote(out.string()));
  };
  const RunResult layers = make(R"({"base": "tiny", "n_layer": 100000000})");
  EXPECT_EQ(layers.rc, 1);
  EXPECT_NE(layers.err.find("n_layer: 100000000 trunk layers; expected at most 511"), std::string::npos)
      << layers.err;
  const RunResult vocab = make(R"({"base": "tiny", "n_vocab": 100000000000})");
  EXPECT_EQ(vocab.rc, 1);
  EXPECT_NE(vocab.err.find("n_vocab: 100000000000; expected at most 16777216"), std::string::npos) << vocab.err;

  // 1.2 PB of F32 weights: refused with the size and the free space, before the file is created.
  const RunResult wide = make(R"({"base": "tiny", "n_embd": 4194304, "n_ff": 4194304})");
  EXPECT_EQ(wide.rc, 1);
  EXPECT_NE(wide.err.find("the model would take 1196316.5"), std::string::npos) << wide.err;
  EXPECT_NE(wide.err.find("free on"), std::string::npos) << wide.err;

  // The free-space probe can be set: the tiny model (about 1.3 MB) does not fit in 1000 bytes.
  ASSERT_EQ(setenv("PEREGRINE_AVAILABLE_DISK_BYTES", "1000", 1), 0);
  const RunResult tiny = run("make-synthetic --shape tiny --type F32 --out " + quote(out.string()));
  unsetenv("PEREGRINE_AVAILABLE_DISK_BYTES");
  EXPECT_EQ(tiny.rc, 1);
  EXPECT_NE(tiny.err.find("but only 1000 B are free on"), std::string::npos) << tiny.err;
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_FALSE(std::filesystem::exists(out.string() + ".tmp"));
}

struct Misuse {
  const char* label;
  const char* args;
  int rc;
  const char* message;
};

class CliMisuse : public Cli, public ::testing::WithParamInterface<Misuse> {};

TEST_P(CliMisuse, ExitCodeAndMessage) {
  const Misuse& m = GetParam();
  std::string args = m.args;
  for (size_t p; (p = args.find("$TINY")) != std::string::npos;) args.replace(p, 5, fixture("tiny-f32.gguf"));
  for (size_t p; (p = args.find("$DIR")) != std::string::npos;) args.replace(p, 4, (dir / "").string());
  const RunResult r = run(args, "[1, 2, \"x\"]");
  EXPECT_EQ(r.rc, m.rc) << r.err;
  EXPECT_NE(r.err.find(m.message), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CliMisuse,
    ::testing::Values(
        Misuse{"no_command", "", 2, "usage: peregrine-cli"},
        Misuse{"unknown_command", "frobnicate", 2, "unknown command 'frobnicate'"},
        Misuse{"inspect_no_file", "inspect", 2, "inspect: expected exactly one MODEL.gguf argument"},
        Misuse{"inspect_bad_option", "inspect --yaml $TINY", 2, "inspect: unknown option '--yaml'"},
        Misuse{"inspect_missing_file", "inspect /nonexistent/model.gguf", 1, "/nonexistent/model.gguf"},
        Misuse{"inspect_not_gguf", "inspect $DIRstdin", 1, "stdin"},  // the JSON text fed on stdin
        Misuse{"tokenize_no_model", "tokenize", 2, "missing --model MODEL.gguf or --tokenizer"},
        Misuse{"tokenize_both", "tokenize --model $TINY --tokenizer x.json", 2, "either --model or --tokenizer"},
        Misuse{"tokenize_no_value", "tokenize --model", 2, "option --model needs a value"},
        Misuse{"tokenize_missing_json", "tokenize --tokenizer /nonexistent/tokenizer.json", 1,
               "/nonexistent/tokenizer.json"},
        Misuse{"detokenize_bad_ids", "detokenize --model $TINY", 1, "stdin: expected a JSON array of token ids"},
        Misuse{"synthetic_no_shape", "make-synthetic --type F32 --out $DIRx.gguf", 2,
               "make-synthetic: missing required option --shape"},
        Misuse{"synthetic_bad_shape", "make-synthetic --shape huge --type F32 --out $DIRx.gguf", 2,
               "unknown shape 'huge'"},
        Misuse{"synthetic_bad_type", "make-synthetic --shape tiny --type Q3_K --out $DIRx.gguf", 2,
               "unknown --type 'Q3_K'"},
        Misuse{"synthetic_bad_seed", "make-synthetic --shape tiny --type F32 --seed -4 --out $DIRx.gguf", 2,
               "--seed: expected a non-negative integer"},
        Misuse{"synthetic_both_mtp", "make-synthetic --shape tiny --type F32 --mtp --no-mtp --out $DIRx.gguf", 2,
               "--mtp and --no-mtp exclude each other"},
        Misuse{"synthetic_missing_json", "make-synthetic --shape /nonexistent/s.json --type F32 --out $DIRx.gguf", 1,
               "/nonexistent/s.json: cannot open the shape file"},
        Misuse{"synthetic_unwritable", "make-synthetic --shape tiny --type F32 --out /nonexistent/dir/x.gguf", 1,
               "/nonexistent/dir/x.gguf"},
        Misuse{"log_level", "--log-level loud inspect $TINY", 2, "--log-level needs one of"}),
    [](const auto& info) { return std::string(info.param.label); });

}  // namespace
}  // namespace peregrine
