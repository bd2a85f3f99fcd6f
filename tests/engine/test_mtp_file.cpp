// A separate MTP-only GGUF next to a trunk without an MTP block (docs/mtp.md "Separate MTP
// file"): the combined fixture is split in-test the way llama.cpp's converter splits it (--no-mtp
// trunk, --mtp `mtp-<name>.gguf`), and the pair must behave exactly like the combined file.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "peregrine/engine.h"
#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/model.h"
#include "test_engine_events.h"
#include "test_model_util.h"
#include "test_mtp_util.h"

namespace peregrine {
namespace {

using test::fixture;
using test::ModelScratch;
using test::Mutation;
using test::Outcome;

// The same integer type as `like` (block_count is UINT32 in the fixtures, INT32 elsewhere).
GgufValue integer_like(const GgufValue& like, int64_t v) {
  const GgufValueType t = like.type();
  const bool is_signed = t == GgufValueType::INT8 || t == GgufValueType::INT16 || t == GgufValueType::INT32 ||
                         t == GgufValueType::INT64;
  if (is_signed) return GgufValue(like.type(), int64_t{v});
  return GgufValue(like.type(), static_cast<uint64_t>(v));
}

struct SplitFiles {
  std::filesystem::path trunk, mtp;
};

// Writes `<dir>/<name>` (the trunk: no blk.L tensors, block_count L, nextn_predict_layers 0, one
// recurrent_layers entry per trunk layer) and `<dir>/mtp-<name>` (blk.L.* plus token_embd,
// output_norm and output, the metadata unchanged). `drop_from_mtp` leaves tensors out of the latter.
SplitFiles split(const std::filesystem::path& combined, const std::filesystem::path& dir, const std::string& name,
                 const std::set<std::string>& drop_from_mtp = {}) {
  const GgufFile in = GgufFile::open(combined);
  const std::string arch = in.get_string("general.architecture");
  const GgufValue& block_count = *in.find(arch + ".block_count");
  const int64_t L = *block_count.as_i64() - 1;
  const std::string prefix = "blk." + std::to_string(L) + ".";

  Mutation trunk;
  trunk.set_keys[arch + ".block_count"] = integer_like(block_count, L);
  trunk.set_keys[arch + ".nextn_predict_layers"] =
      integer_like(*in.find(arch + ".nextn_predict_layers"), 0);
  if (const GgufValue* rec = in.find(arch + ".attention.recurrent_layers")) {
    const GgufArray& a = *rec->as_array();
    trunk.set_keys[arch + ".attention.recurrent_layers"] = GgufValue::array(
        a.element_type, std::vector<GgufValue>(a.elements.begin(), a.elements.begin() + L));
  }
  Mutation mtp;
  mtp.drop_tensors = drop_from_mtp;
  for (const GgufTensorInfo& t : in.tensors()) {
    const bool block = t.name.rfind(prefix, 0) == 0;
    const bool shared = t.name == "token_embd.weight" || t.name == "output_norm.weight" || t.name == "output.weight";
    if (block) trunk.drop_tensors.insert(t.name);
    if (!block && !shared) mtp.drop_tensors.insert(t.name);
  }
  SplitFiles out{dir / name, dir / ("mtp-" + name)};
  test::rewrite_gguf(combined, out.trunk, trunk);
  test::rewrite_gguf(combined, out.mtp, mtp);
  return out;
}

ModelOptions small_options() {
  ModelOptions o;
  o.context_length = 512;
  return o;
}

std::vector<int32_t> prompt_of(const std::string& model) {
  return test::fixture_json(model).at("greedy").at("prompt").get<std::vector<int32_t>>();
}

bool same_bits(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}

TEST(MtpFile, SplitPairEqualsCombinedBitForBit) {
  ModelScratch dir("mtpfile-bits");
  const SplitFiles files = split(fixture("tiny-mtp-f32.gguf"), dir / "", "tiny.gguf");
  const GgufFile combined_file = GgufFile::open(fixture("tiny-mtp-f32.gguf"));
  const GgufFile trunk_file = GgufFile::open(files.trunk);
  const GgufFile mtp_file = GgufFile::open(files.mtp);
  EXPECT_FALSE(ModelConfig::from_gguf(trunk_file).has_mtp());
  auto combined = Model::load(combined_file, small_options());
  auto pair = Model::load(trunk_file, small_options(), &mtp_file);
  ASSERT_TRUE(pair->config().has_mtp());
  EXPECT_EQ(pair->config().n_layer, combined->config().n_layer);

  const std::vector<int32_t> prompt = prompt_of("tiny-mtp-f32");
  const int64_t N = static_cast<int64_t>(prompt.size()), n = combined->config().n_embd;
  Sequence a = combined->new_sequence(), b = pair->new_sequence();
  EXPECT_TRUE(same_bits(combined->evaluate(a, prompt, 0, LogitsFor::EveryToken),
                        pair->evaluate(b, prompt, 0, LogitsFor::EveryToken)));
  // MTP row p: token p with the trunk's hidden row p − 1 (zeros at p = 0).
  std::vector<float> rows(N * n, 0.0f);
  std::copy(a.hidden().begin(), a.hidden().end() - n, rows.begin() + n);
  const auto la = combined->evaluate_mtp(a, prompt, rows, 0, LogitsFor::EveryToken);
  const auto lb = pair->evaluate_mtp(b, prompt, rows, 0, LogitsFor::EveryToken);
  EXPECT_TRUE(same_bits(la, lb));
  EXPECT_TRUE(same_bits(a.mtp_hidden(), b.mtp_hidden()));
  // A chained draft feeds the head's own row back.
  const int32_t next = test::argmax_row(la, combined->config().n_vocab);
  const std::vector<int32_t> one{next};
  const std::vector<float> chain_a(a.mtp_hidden().end() - n, a.mtp_hidden().end());
  EXPECT_TRUE(same_bits(combined->evaluate_mtp(a, one, chain_a, N, LogitsFor::LastToken),
                        pair->evaluate_mtp(b, one, chain_a, N, LogitsFor::LastToken)));
  EXPECT_NE(combined->fingerprint(), pair->fingerprint());  // snapshots of one do not restore into the other
}

TEST(MtpFile, SpeculativeGreedyOnThePairEqualsPlain) {
  ModelScratch dir("mtpfile-spec");
  const SplitFiles files = split(fixture("tiny-mtp-f32.gguf"), dir / "", "tiny.gguf");
  const GgufFile trunk_file = GgufFile::open(files.trunk);
  const GgufFile mtp_file = GgufFile::open(files.mtp);
  const GgufFile combined_file = GgufFile::open(fixture("tiny-mtp-f32.gguf"));
  auto pair = Model::load(trunk_file, small_options(), &mtp_file);
  auto combined = Model::load(combined_file, small_options());
  const std::vector<int32_t> prompt = prompt_of("tiny-mtp-f32");
  const std::vector<int32_t> plain = test::plain_greedy(*pair, prompt, 200);
  for (int k : {1, 3, 0}) {
    SCOPED_TRACE(k);
    SpeculativeStats stats;
    bool active = false;
    EXPECT_EQ(test::speculative_greedy(*pair, prompt, 200, k, &stats, &active), plain);
    EXPECT_TRUE(active);
    EXPECT_GT(stats.accepted, 0);
    if (k == 0) continue;  // adaptive k depends on timings
    // Fixed k: the same drafts as with the combined file, so the same acceptances.
    SpeculativeStats combined_stats;
    test::speculative_greedy(*combined, prompt, 200, k, &combined_stats);
    EXPECT_EQ(stats.drafted, combined_stats.drafted);
    EXPECT_EQ(stats.accepted, combined_stats.accepted);
  }
}

TEST(MtpFile, MismatchedMtpFilesAreRefusedNamingTheFile) {
  ModelScratch dir("mtpfile-bad");
  const SplitFiles good = split(fixture("tiny-mtp-f32.gguf"), dir / "", "tiny.gguf");
  const SplitFiles moe = split(fixture("tiny-moe-f32.gguf"), dir / "", "moe.gguf");
  const SplitFiles holed =
      split(fixture("tiny-mtp-f32.gguf"), dir / "", "holed.gguf", {"blk.4.attn_k.weight"});
  const GgufFile trunk = GgufFile::open(good.trunk);

  auto refused = [&](const std::filesystem::path& mtp_path, const std::string& expected) {
    SCOPED_TRACE(mtp_path.string());
    const GgufFile mtp = GgufFile::open(mtp_path);
    try {
      Model::load(trunk, small_options(), &mtp);
      ADD_FAILURE() << "loaded";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(mtp_path.string()), std::string::npos) << what;
      EXPECT_NE(what.find(expected), std::string::npos) << what;
    }
  };
  refused(moe.mtp, "architecture is qwen35moe");
  refused(holed.mtp, "'blk.4.attn_k.weight' missing");
  refused(good.trunk, "not an MTP file");  // a trunk is no MTP file

  // A different width: the MTP file's tensors and n_embd disagree with the trunk's.
  Mutation wide;
  wide.set_keys["qwen35.embedding_length"] = GgufValue::u32(2 * static_cast<uint32_t>(
                                                                   ModelConfig::from_gguf(trunk).n_embd));
  test::rewrite_gguf(good.mtp, dir / "mtp-wide.gguf", wide);
  refused(dir / "mtp-wide.gguf", "n_embd");

  // A trunk with its own MTP block ignores the file.
  const GgufFile combined = GgufFile::open(fixture("tiny-mtp-f32.gguf"));
  const GgufFile moe_mtp = GgufFile::open(moe.mtp);
  EXPECT_TRUE(Model::load(combined, small_options(), &moe_mtp)->config().has_mtp());
}

Outcome generate(Engine& engine, const std::vector<int32_t>& prompt, MtpSetting mtp) {
  request::Generate g;
  g.prompt = prompt;
  g.max_tokens = 60;
  g.ignore_eos = true;
  g.reuse_prefix = false;
  g.mtp = mtp;
  Outcome out = test::wait_for(engine, engine.generate(std::move(g)));
  EXPECT_NE(out.done(), nullptr) << (out.error() ? out.error()->message : std::string("no Done"));
  return out;
}

ModelInfo load(Engine& engine, const std::filesystem::path& path) {
  const Outcome loaded = test::wait_for(engine, engine.load_model(path, small_options()));
  if (!loaded.last() || !loaded.last()->is<event::ModelLoaded>()) {
    ADD_FAILURE() << (loaded.error() ? loaded.error()->message : std::string("no event"));
    return {};
  }
  return loaded.last()->get_if<event::ModelLoaded>()->info;
}

TEST(MtpFile, EngineAttachesTheCompanionFile) {
  ModelScratch dir("mtpfile-engine");
  const SplitFiles files = split(fixture("tiny-mtp-f32.gguf"), dir / "", "tiny.gguf");
  const std::vector<int32_t> prompt = prompt_of("tiny-mtp-f32");
  Engine engine;
  EXPECT_TRUE(load(engine, files.trunk).has_mtp);
  const Outcome plain = generate(engine, prompt, MtpSetting::off());
  const Outcome spec = generate(engine, prompt, MtpSetting::fixed(2));
  ASSERT_NE(spec.done(), nullptr);
  EXPECT_EQ(spec.ids, plain.ids);
  EXPECT_TRUE(spec.done()->mtp.active);
  EXPECT_GT(spec.done()->mtp.accepted, 0);

  // Without the companion the trunk decodes plainly.
  std::filesystem::remove(files.mtp);
  Engine bare;
  EXPECT_FALSE(load(bare, files.trunk).has_mtp);
  const Outcome alone = generate(bare, prompt, MtpSetting::automatic());
  ASSERT_NE(alone.done(), nullptr);
  EXPECT_FALSE(alone.done()->mtp.active);
  EXPECT_EQ(alone.ids, plain.ids);
}

}  // namespace
}  // namespace peregrine
