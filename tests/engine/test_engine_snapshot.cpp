// Snapshot / Restore through peregrine::Engine with its real worker thread, on the qwen35-tiny
// fixtures: a restored sequence continues exactly like the original, in another engine too, and
// bad bytes are refused without touching the sequence.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <cstring>

#include "decode/engine_snapshot.h"
#include "model/sequence_snapshot.h"
#include "peregrine/engine.h"
#include "test_engine_events.h"
#include "test_engine_util.h"

namespace peregrine {
namespace {

using test::Outcome;
using test::wait_for;

request::Generate greedy(std::vector<int32_t> prompt, int32_t max_tokens) {
  request::Generate g;
  g.prompt = std::move(prompt);
  g.max_tokens = max_tokens;
  g.ignore_eos = true;
  return g;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void load(Engine& engine, const std::string& path, int64_t context = 512) {
  ModelOptions o;
  o.context_length = context;
  const Outcome loaded = wait_for(engine, engine.load_model(path, o));
  ASSERT_TRUE(loaded.last() && loaded.last()->is<event::ModelLoaded>()) << path;
}

event::SnapshotTaken take_snapshot(Engine& engine) {
  const Outcome out = wait_for(engine, engine.snapshot());
  const auto* taken = out.closing<event::SnapshotTaken>();
  EXPECT_NE(taken, nullptr) << (out.error() ? out.error()->message : "no event");
  return taken ? *taken : event::SnapshotTaken{};
}

std::string restore_error(Engine& engine, std::vector<uint8_t> bytes) {
  const Outcome out = wait_for(engine, engine.restore(std::move(bytes)));
  EXPECT_NE(out.error(), nullptr) << "the restore was accepted";
  return out.error() ? out.error()->message : std::string();
}

std::string tiny_moe_path() { return std::string(PEREGRINE_TEST_DATA_DIR) + "/qwen35-tiny/tiny-moe-f32.gguf"; }

TEST(EngineSnapshot, RestoreContinuesExactlyLikeTheOriginalInAnotherEngine) {
  const auto ref = test::tiny_greedy();
  Engine original;
  load(original, test::tiny_model_path());
  const Outcome first = wait_for(original, original.generate(greedy(ref.prompt, 20)));
  ASSERT_NE(first.done(), nullptr);
  ASSERT_EQ(first.ids.size(), 20u);

  // Evaluated so far: the 16 prompt ids and the first 19 generated ones (the 20th was not).
  const event::SnapshotTaken snap = take_snapshot(original);
  EXPECT_EQ(snap.n_past, 16 + 19);
  EXPECT_NE(snap.model_fingerprint, 0u);
  EXPECT_GT(snap.bytes.size(), 35u * sizeof(int32_t));

  // Continuing without a restore: evaluates only the 20th id, then matches llama.cpp's greedy run.
  const std::vector<int32_t> continued_prompt = concat(ref.prompt, first.ids);
  const Outcome continued = wait_for(original, original.generate(greedy(continued_prompt, 12)));
  ASSERT_NE(continued.done(), nullptr);
  EXPECT_EQ(continued.done()->reused_prompt_tokens, 35);
  EXPECT_EQ(concat(first.ids, continued.ids), ref.generated);

  // A fresh engine that loaded the same file: restore, then the same request gives the same ids
  // and evaluates only the one new id.
  Engine fresh;
  load(fresh, test::tiny_model_path());
  const Outcome restored = wait_for(fresh, fresh.restore(snap.bytes));
  const auto* r = restored.closing<event::Restored>();
  ASSERT_NE(r, nullptr) << (restored.error() ? restored.error()->message : "");
  EXPECT_EQ(r->n_past, 35);
  const Outcome resumed = wait_for(fresh, fresh.generate(greedy(continued_prompt, 12)));
  ASSERT_NE(resumed.done(), nullptr);
  EXPECT_EQ(resumed.ids, continued.ids);
  EXPECT_EQ(resumed.done()->reused_prompt_tokens, 35);
  EXPECT_EQ(resumed.done()->prompt_tokens, 36);
  EXPECT_EQ(take_snapshot(fresh).model_fingerprint, snap.model_fingerprint);

  // Branching: the original engine, which moved on, goes back to the snapshot and repeats.
  ASSERT_NE(wait_for(original, original.restore(snap.bytes)).closing<event::Restored>(), nullptr);
  const Outcome again = wait_for(original, original.generate(greedy(continued_prompt, 12)));
  ASSERT_NE(again.done(), nullptr);
  EXPECT_EQ(again.ids, continued.ids);
  EXPECT_EQ(again.done()->reused_prompt_tokens, 35);

  // A prompt that does not extend the restored ids starts over (and still gives llama.cpp's ids).
  ASSERT_NE(wait_for(fresh, fresh.restore(snap.bytes)).closing<event::Restored>(), nullptr);
  const Outcome other = wait_for(fresh, fresh.generate(greedy(ref.prompt, 8)));
  ASSERT_NE(other.done(), nullptr);
  EXPECT_EQ(other.done()->reused_prompt_tokens, 0);
  EXPECT_EQ(other.ids, std::vector<int32_t>(ref.generated.begin(), ref.generated.begin() + 8));
}

TEST(EngineSnapshot, EmptySequenceRoundTrips) {
  const auto ref = test::tiny_greedy();
  Engine engine;
  load(engine, test::tiny_model_path());
  const event::SnapshotTaken empty = take_snapshot(engine);
  EXPECT_EQ(empty.n_past, 0);
  wait_for(engine, engine.generate(greedy(ref.prompt, 4)));
  const Outcome restored = wait_for(engine, engine.restore(empty.bytes));
  ASSERT_NE(restored.closing<event::Restored>(), nullptr);
  EXPECT_EQ(restored.closing<event::Restored>()->n_past, 0);
  EXPECT_EQ(take_snapshot(engine).n_past, 0);
  const Outcome gen = wait_for(engine, engine.generate(greedy(ref.prompt, 4)));
  ASSERT_NE(gen.done(), nullptr);
  EXPECT_EQ(gen.done()->reused_prompt_tokens, 0);
  EXPECT_EQ(gen.ids, std::vector<int32_t>(ref.generated.begin(), ref.generated.begin() + 4));
}

TEST(EngineSnapshot, BadSnapshotsAreRefusedAndLeaveTheSequenceAsItWas) {
  const auto ref = test::tiny_greedy();
  std::vector<uint8_t> dense_bytes;
  uint64_t dense_fingerprint = 0;
  {
    Engine dense;
    EXPECT_NE(wait_for(dense, dense.snapshot()).error(), nullptr);  // no model loaded
    EXPECT_NE(wait_for(dense, dense.restore({1, 2, 3})).error(), nullptr);
    load(dense, test::tiny_model_path());
    wait_for(dense, dense.generate(greedy(ref.prompt, 6)));
    const event::SnapshotTaken snap = take_snapshot(dense);
    dense_bytes = snap.bytes;
    dense_fingerprint = snap.model_fingerprint;
  }

  // Another model (the MoE fixture: same vocabulary size, other weights and shapes).
  Engine engine;
  load(engine, tiny_moe_path());
  const Outcome before = wait_for(engine, engine.generate(greedy(ref.prompt, 5)));
  ASSERT_NE(before.done(), nullptr);
  const event::SnapshotTaken own = take_snapshot(engine);
  EXPECT_EQ(own.n_past, 16 + 4);
  EXPECT_NE(own.model_fingerprint, dense_fingerprint);

  const std::string other_model = restore_error(engine, dense_bytes);
  EXPECT_NE(other_model.find("another model"), std::string::npos) << other_model;

  // Corrupt bytes: a flipped token id (envelope checksum), a flipped state byte (model
  // checksum), truncation, garbage, and an engine snapshot whose id count disagrees with its
  // state.
  std::vector<uint8_t> bad = own.bytes;
  bad[kEngineSnapshotHeaderBytes + 3] ^= 0x40;
  EXPECT_NE(restore_error(engine, bad).find("checksum"), std::string::npos);
  bad = own.bytes;
  bad[bad.size() - 5] ^= 0x01;
  EXPECT_NE(restore_error(engine, bad).find("restore"), std::string::npos);
  bad.assign(own.bytes.begin(), own.bytes.begin() + static_cast<std::ptrdiff_t>(own.bytes.size() / 2));
  EXPECT_FALSE(restore_error(engine, bad).empty());
  EXPECT_FALSE(restore_error(engine, std::vector<uint8_t>(200, 0xAB)).empty());
  EXPECT_FALSE(restore_error(engine, {}).empty());
  bad = own.bytes;  // drop the last id, fix the count and the envelope checksum
  bad.erase(bad.begin() + static_cast<std::ptrdiff_t>(kEngineSnapshotHeaderBytes + 19 * sizeof(int32_t)),
            bad.begin() + static_cast<std::ptrdiff_t>(kEngineSnapshotHeaderBytes + 20 * sizeof(int32_t)));
  const uint64_t n_ids = 19;
  std::memcpy(bad.data() + 16, &n_ids, sizeof n_ids);
  const uint32_t crc = crc32c(bad.data() + kEngineSnapshotHeaderBytes, 19 * sizeof(int32_t), crc32c(bad.data(), 24));
  std::memcpy(bad.data() + 24, &crc, sizeof crc);
  const std::string mismatch = restore_error(engine, bad);
  EXPECT_NE(mismatch.find("position 20"), std::string::npos) << mismatch;

  // The refused restores left the sequence where it was: the next prompt extends it and only
  // the new id is evaluated, giving the same ids as an uninterrupted run on this model.
  const std::vector<int32_t> prompt = concat(ref.prompt, before.ids);
  const Outcome after = wait_for(engine, engine.generate(greedy(prompt, 6)));
  ASSERT_NE(after.done(), nullptr);
  EXPECT_EQ(after.done()->reused_prompt_tokens, 20);
  const Outcome straight = wait_for(engine, engine.generate(greedy(ref.prompt, 11)));
  ASSERT_NE(straight.done(), nullptr);
  EXPECT_EQ(concat(before.ids, after.ids), straight.ids);

  // Positions beyond this load's context: refused as well.
  Engine small;
  load(small, tiny_moe_path(), 16);
  const std::string no_room = restore_error(small, own.bytes);
  EXPECT_NE(no_room.find("context"), std::string::npos) << no_room;
  EXPECT_NE(wait_for(small, small.generate(greedy({1, 2, 3}, 2))).done(), nullptr);
}

}  // namespace
}  // namespace peregrine
