// Sequence snapshots: exact round trips (trunk, MTP head, F16 cache), sizes proportional to the
// position, and every refusal (other model, other KV type, small context, truncated, corrupt,
// wrong version, bad magic) leaving the target sequence untouched.
#include <gtest/gtest.h>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "model/sequence_snapshot.h"
#include "test_forward_util.h"

namespace peregrine {
namespace {

using namespace test;

TEST(SnapshotChecksum, Crc32cKnownValuesAndChaining) {
  const std::string s = "123456789";
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  EXPECT_EQ(crc32c(p, s.size()), 0xE3069283u);
  EXPECT_EQ(crc32c(p, 0), 0u);
  std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);  // RFC 3720 B.4
  // Chaining over any split, including splits inside the 8-byte steps.
  std::vector<uint8_t> data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 37 + 11);
  const uint32_t whole = crc32c(data.data(), data.size());
  for (size_t cut : {0, 1, 7, 8, 9, 500, 999, 1000})
    EXPECT_EQ(crc32c(data.data() + cut, data.size() - cut, crc32c(data.data(), cut)), whole) << cut;
}

// Logits and MTP logits of decoding `tokens[from, to)` one at a time; the MTP head runs at each
// position on (token, previous hidden row), so its KV cache is part of the state too.
struct Decoded {
  std::vector<std::vector<float>> logits, mtp;
};

class Decoder {
 public:
  Decoder(Model& model, Sequence& seq, const std::vector<int32_t>& tokens)
      : model_(model), seq_(seq), tokens_(tokens) {}
  void run(int64_t to, Decoded& out) {
    const int64_t n = model_.config().n_embd;
    const bool mtp = model_.config().has_mtp();
    for (int64_t t = seq_.n_past(); t < to; ++t) {
      // The previous hidden row: the last row of the last evaluate (restored by restore()).
      std::vector<float> prev(n, 0.0f);
      if (t > 0) std::copy(seq_.hidden().end() - n, seq_.hidden().end(), prev.begin());
      auto l = model_.evaluate(seq_, std::span(tokens_).subspan(t, 1), t, LogitsFor::LastToken);
      out.logits.emplace_back(l.begin(), l.end());
      if (mtp) {
        auto m = model_.evaluate_mtp(seq_, std::span(tokens_).subspan(t, 1), prev, t, LogitsFor::LastToken);
        out.mtp.emplace_back(m.begin(), m.end());
      }
    }
  }

 private:
  Model& model_;
  Sequence& seq_;
  const std::vector<int32_t>& tokens_;
};

bool bit_identical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct RoundTripCase {
  std::string model;
  TensorType kv;
};

class SnapshotRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

// The test: decode 40 tokens, snapshot at 20, continue, restore into a fresh sequence,
// decode 20..39 again → bit-identical logits.
TEST_P(SnapshotRoundTrip, RestoredSequenceDecodesBitIdentically) {
  TinyFixture fx(GetParam().model);
  ModelOptions o;
  o.kv_type = GetParam().kv;
  auto model = fx.load(o);
  Sequence seq = model->new_sequence();
  Decoder first(*model, seq, fx.tokens);
  Decoded a;
  first.run(20, a);
  const std::vector<uint8_t> snap = model->snapshot(seq);
  const std::vector<float> last_logits(seq.logits().begin(), seq.logits().end());
  first.run(40, a);

  Sequence fresh = model->new_sequence();
  model->restore(fresh, snap);
  EXPECT_EQ(fresh.n_past(), 20);
  EXPECT_EQ(fresh.mtp_n_past(), model->config().has_mtp() ? 20 : 0);
  EXPECT_TRUE(bit_identical({fresh.logits().begin(), fresh.logits().end()}, last_logits));
  Decoded b;
  Decoder again(*model, fresh, fx.tokens);
  again.run(40, b);
  ASSERT_EQ(b.logits.size(), 20u);
  for (size_t i = 0; i < 20; ++i) {
    EXPECT_TRUE(bit_identical(b.logits[i], a.logits[20 + i])) << "position " << 20 + i;
    if (!b.mtp.empty()) EXPECT_TRUE(bit_identical(b.mtp[i], a.mtp[20 + i])) << "MTP position " << 20 + i;
  }

  // Restoring over a sequence that went further (40) rolls it back just the same.
  model->restore(seq, snap);
  Decoded c;
  Decoder rolled(*model, seq, fx.tokens);
  rolled.run(40, c);
  for (size_t i = 0; i < 20; ++i) EXPECT_TRUE(bit_identical(c.logits[i], a.logits[20 + i])) << 20 + i;
}

INSTANTIATE_TEST_SUITE_P(Models, SnapshotRoundTrip,
                         ::testing::Values(RoundTripCase{"tiny-f32", TensorType::F32},
                                           RoundTripCase{"tiny-moe-f32", TensorType::F32},
                                           RoundTripCase{"tiny-quant", TensorType::F32},
                                           RoundTripCase{"tiny-f32", TensorType::F16},
                                           RoundTripCase{"tiny256-f32", TensorType::Q8_0}),
                         [](const auto& info) {
                           std::string s = info.param.model + "_" + std::string(tensor_type_info(info.param.kv).name);
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

TEST(Snapshot, SizeGrowsWithThePositionNotTheContext) {
  TinyFixture fx("tiny-f32");
  auto model = fx.load();
  const ModelConfig& c = model->config();
  Sequence seq = model->new_sequence();
  const uint64_t row = c.n_head_kv * c.head_dim * sizeof(float);
  // Per position: K and V rows of every attention layer and of the MTP block (it runs too).
  const uint64_t per_position = 2 * row * (c.n_full_attention_layers() + 1);
  Decoded d;
  Decoder dec(*model, seq, fx.tokens);
  uint64_t size_at_1 = 0;
  for (int64_t n : {0, 1, 10, 20, 40, 64}) {
    dec.run(n, d);
    const auto snap = model->snapshot(seq);
    std::cout << "[ snapshot ] tiny-f32 (context 256, F32 KV) at position " << n << ": " << snap.size()
              << " bytes (state memory " << seq.memory().total() << " bytes)\n";
    if (n == 1) size_at_1 = snap.size();
    if (n > 1) EXPECT_EQ(snap.size() - size_at_1, (n - 1) * per_position) << n;
    EXPECT_LT(snap.size(), seq.memory().total() + kSnapshotHeaderBytes + 4 * (c.n_vocab + c.n_embd));
  }

  // A snapshot of an empty sequence restores to an empty sequence.
  Sequence empty = model->new_sequence();
  const auto snap0 = model->snapshot(empty);
  model->restore(seq, snap0);
  EXPECT_EQ(seq.n_past(), 0);
  EXPECT_TRUE(seq.logits().empty());
  auto l = model->evaluate(seq, fx.tokens, 0, LogitsFor::EveryToken);
  EXPECT_LE(max_abs(l, fx.ref("logits")), kLogitTol);
}

// ---- refusals -----------------------------------------------------------------------------------

class SnapshotRefusal : public ::testing::Test {
 protected:
  void SetUp() override {
    fx = std::make_unique<TinyFixture>("tiny-f32");
    model = fx->load();
    Sequence seq = model->new_sequence();
    model->evaluate(seq, std::span(fx->tokens).subspan(0, 20), 0, LogitsFor::LastToken);
    snap = model->snapshot(seq);
  }
  // Restores `bytes` into a sequence at position 5 of another token run; expects `code` with
  // `phrase` in the message, and the sequence unchanged afterwards.
  void expect_refused(Model& m, std::span<const uint8_t> bytes, SnapshotErrorCode code, const std::string& phrase) {
    Sequence target = m.new_sequence();
    m.evaluate(target, std::span(fx->tokens).subspan(0, 5), 0, LogitsFor::LastToken);
    try {
      m.restore(target, bytes);
      ADD_FAILURE() << "restore accepted a snapshot that should fail with '" << phrase << "'";
      return;
    } catch (const SnapshotError& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("tiny"), std::string::npos) << "names the model: " << e.what();
    }
    // Untouched: it continues exactly like a sequence that never saw the restore.
    EXPECT_EQ(target.n_past(), 5);
    Sequence clean = m.new_sequence();
    m.evaluate(clean, std::span(fx->tokens).subspan(0, 5), 0, LogitsFor::LastToken);
    auto want = m.evaluate(clean, std::span(fx->tokens).subspan(5, 3), 5, LogitsFor::EveryToken);
    const std::vector<float> w(want.begin(), want.end());
    auto got = m.evaluate(target, std::span(fx->tokens).subspan(5, 3), 5, LogitsFor::EveryToken);
    EXPECT_TRUE(bit_identical({got.begin(), got.end()}, w));
  }
  std::vector<uint8_t> patched(size_t at, uint8_t xor_mask) const {
    auto b = snap;
    b[at] ^= xor_mask;
    return b;
  }
  std::unique_ptr<TinyFixture> fx;
  std::unique_ptr<Model> model;
  std::vector<uint8_t> snap;
};

TEST_F(SnapshotRefusal, AnotherModel) {
  // tiny-mtp-f32 has exactly the same shapes and tensor table; the sampled weights and the
  // name tell the two apart.
  TinyFixture other("tiny-mtp-f32");
  auto other_model = other.load();
  EXPECT_NE(other_model->fingerprint(), model->fingerprint());
  expect_refused(*other_model, snap, SnapshotErrorCode::OtherModel, "another model");
  // The same file loaded twice (other options) is the same model.
  ModelOptions o;
  o.context_length = 64;
  o.n_threads = 2;
  EXPECT_EQ(Model::load(fx->file, o)->fingerprint(), model->fingerprint());
}

TEST_F(SnapshotRefusal, CorruptByteAnywhere) {
  for (size_t at : {size_t(snapshot_offset::kFingerprint), size_t(snapshot_offset::kNPast),
                    size_t(kSnapshotHeaderBytes), snap.size() / 2, snap.size() - 1})
    expect_refused(*model, patched(at, 0x10), SnapshotErrorCode::Corrupt, "checksum");
  expect_refused(*model, patched(snapshot_offset::kCrc, 0x01), SnapshotErrorCode::Corrupt, "checksum");
}

TEST_F(SnapshotRefusal, TruncatedOrPadded) {
  for (size_t keep : {snap.size() - 1, snap.size() / 2, size_t(kSnapshotHeaderBytes), size_t(50), size_t(0)})
    expect_refused(*model, std::span(snap).subspan(0, keep), SnapshotErrorCode::Truncated,
                   keep < kSnapshotHeaderBytes ? "shorter than" : "payload bytes");
  auto padded = snap;
  padded.push_back(0);
  expect_refused(*model, padded, SnapshotErrorCode::Corrupt, "after the");
}

TEST_F(SnapshotRefusal, WrongVersionOrMagic) {
  auto v2 = snap;
  v2[snapshot_offset::kVersion] = 2;
  expect_refused(*model, v2, SnapshotErrorCode::Version, "format version 2");
  expect_refused(*model, patched(0, 0xFF), SnapshotErrorCode::NotASnapshot, "magic");
}

TEST_F(SnapshotRefusal, AnotherKvType) {
  ModelOptions o;
  o.kv_type = TensorType::F16;
  auto f16_model = fx->load(o);
  EXPECT_EQ(f16_model->fingerprint(), model->fingerprint());  // same model, other cache
  expect_refused(*f16_model, snap, SnapshotErrorCode::KvType, "KV cache type is f32");
}

TEST_F(SnapshotRefusal, ContextTooSmallButLargerIsFine) {
  ModelOptions small;
  small.context_length = 16;
  auto small_model = Model::load(fx->file, small);
  expect_refused(*small_model, snap, SnapshotErrorCode::Context, "context of 16");

  ModelOptions large;
  large.context_length = 1024;
  auto large_model = Model::load(fx->file, large);
  Sequence seq = large_model->new_sequence();
  large_model->restore(seq, snap);
  auto l = large_model->evaluate(seq, std::span(fx->tokens).subspan(20, 44), 20, LogitsFor::EveryToken);
  const auto ref = fx->ref("logits");
  EXPECT_LE(max_abs(l, std::span(ref).subspan(20 * 512)), kLogitTol);
}

}  // namespace
}  // namespace peregrine
