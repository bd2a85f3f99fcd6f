// Storage variants real qwen35moe files use (fused ffn_gate_up_exps, 1-D ffn_gate_inp_shexp),
// F16 matrices, and load errors, on copies of the tiny fixtures written with GgufWriter.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <functional>
#include <map>
#include <vector>

#include "peregrine/error.h"
#include "peregrine/quant.h"
#include "test_forward_util.h"

namespace peregrine {
namespace {

using namespace test;

// A tensor of the rewritten file: name, type, shape and bytes.
struct NewTensor {
  std::string name;
  TensorType type;
  std::vector<int64_t> ne;
  std::vector<uint8_t> bytes;
};

// Copies `src` to `path`, passing every tensor through `edit` (which may drop it by returning an
// empty list, or replace it with others).
void rewrite(const GgufFile& src, const std::filesystem::path& path,
             const std::function<std::vector<NewTensor>(const GgufTensorInfo&)>& edit) {
  std::vector<NewTensor> out;
  for (const auto& t : src.tensors())
    for (auto& nt : edit(t)) out.push_back(std::move(nt));
  GgufWriter w(path);
  for (const auto& [key, value] : src.metadata())
    if (key != "general.alignment") w.set(key, value);
  for (const auto& t : out) w.add_tensor(t.name, t.type, t.ne);
  w.begin();
  for (const auto& t : out) w.write_tensor_data(t.bytes.data(), t.bytes.size());
  w.finish();
}

NewTensor keep(const GgufTensorInfo& t) { return {t.name, t.type, t.ne, {t.data, t.data + t.n_bytes}}; }

std::filesystem::path temp_path(const std::string& stem) {
  return std::filesystem::temp_directory_path() / (stem + "-" + std::to_string(::getpid()) + ".gguf");
}

std::vector<float> batch_logits(const GgufFile& file, const std::vector<int32_t>& tokens) {
  ModelOptions o;
  o.context_length = 128;
  auto model = Model::load(file, o);
  Sequence seq = model->new_sequence();
  auto l = model->evaluate(seq, tokens, 0, LogitsFor::EveryToken);
  std::vector<float> out(l.begin(), l.end());
  std::vector<float> h(seq.hidden().size());
  std::copy(seq.hidden().begin(), seq.hidden().end(), h.begin());
  // MTP logits too, so the MTP block's MoE is covered.
  std::vector<float> h_in(h.size(), 0.0f);
  const int64_t n = model->config().n_embd;
  std::copy(h.begin(), h.end() - n, h_in.begin() + n);
  auto m = model->evaluate_mtp(seq, tokens, h_in, 0, LogitsFor::EveryToken);
  out.insert(out.end(), m.begin(), m.end());
  return out;
}

TEST(ForwardVariants, FusedGateUpExpertsAndOneDimSharedGateGiveIdenticalLogits) {
  TinyFixture fx("tiny-moe-f32");
  const auto path = temp_path("tiny-moe-fused");
  std::map<std::string, const GgufTensorInfo*> by_name;
  for (const auto& t : fx.file.tensors()) by_name[t.name] = &t;
  int fused = 0;
  rewrite(fx.file, path, [&](const GgufTensorInfo& t) -> std::vector<NewTensor> {
    const std::string& name = t.name;
    if (name.ends_with("ffn_up_exps.weight")) return {};
    if (name.ends_with("ffn_gate_exps.weight")) {
      // Per expert: its n_ff gate rows, then its n_ff up rows.
      const auto* up = by_name.at(name.substr(0, name.size() - 20) + "ffn_up_exps.weight");
      const int64_t n_in = t.ne[0], ff = t.ne[1], E = t.ne[2];
      const size_t block = size_t(n_in * ff) * 4;
      NewTensor nt{name.substr(0, name.size() - 20) + "ffn_gate_up_exps.weight", t.type, {n_in, 2 * ff, E}, {}};
      for (int64_t e = 0; e < E; ++e) {
        nt.bytes.insert(nt.bytes.end(), t.data + e * block, t.data + (e + 1) * block);
        nt.bytes.insert(nt.bytes.end(), up->data + e * block, up->data + (e + 1) * block);
      }
      ++fused;
      return {nt};
    }
    if (name.ends_with("ffn_gate_inp_shexp.weight")) {
      NewTensor nt = keep(t);
      nt.ne = {t.ne[0]};
      return {nt};
    }
    return {keep(t)};
  });
  EXPECT_EQ(fused, 5);  // 4 trunk blocks and the MTP block
  const GgufFile variant = GgufFile::open(path);
  const auto tokens = std::vector<int32_t>(fx.tokens.begin(), fx.tokens.begin() + 24);
  EXPECT_EQ(batch_logits(variant, tokens), batch_logits(fx.file, tokens));
  std::filesystem::remove(path);
}

TEST(ForwardVariants, F16MatricesAreDequantizedRowByRow) {
  // Every 2-D F32 matrix stored as F16: the forward must equal a float forward over the
  // F16-rounded weights, i.e. stay close to the F32 model (random unit-scale weights lose
  // ~3 decimal digits) and pick the same top token nearly everywhere.
  TinyFixture fx("tiny-f32");
  const auto path = temp_path("tiny-f16");
  rewrite(fx.file, path, [&](const GgufTensorInfo& t) -> std::vector<NewTensor> {
    if (t.ne.size() != 2 || t.ne[1] == 1 || t.name.find("conv1d") != std::string::npos) return {keep(t)};
    NewTensor nt{t.name, TensorType::F16, t.ne, std::vector<uint8_t>(size_t(t.n_elements) * 2)};
    const float* src = reinterpret_cast<const float*>(t.data);
    auto* dst = reinterpret_cast<uint16_t*>(nt.bytes.data());
    for (int64_t i = 0; i < t.n_elements; ++i) dst[i] = quant::fp32_to_fp16(src[i]);
    return {nt};
  });
  const GgufFile f16 = GgufFile::open(path);
  const auto a = batch_logits(f16, fx.tokens);
  const auto b = batch_logits(fx.file, fx.tokens);
  EXPECT_GT(max_abs(a, b), 0.0);  // really the F16 path
  EXPECT_LT(max_abs(a, b), 0.1);
  EXPECT_LE(count_argmax_mismatches(a, b, 512), 6);
  std::filesystem::remove(path);
}

TEST(ForwardVariants, MissingOrMisshapedTensorIsNamed) {
  TinyFixture fx("tiny-f32");
  const auto path = temp_path("tiny-broken");
  // Drop one tensor; then halve another (a norm of 8 values where the head dim is 16).
  for (const std::string victim : {"blk.1.ssm_a", "blk.2.ssm_norm.weight"}) {
    rewrite(fx.file, path, [&](const GgufTensorInfo& t) -> std::vector<NewTensor> {
      if (t.name != victim) return {keep(t)};
      if (victim == "blk.1.ssm_a") return {};
      NewTensor nt = keep(t);
      nt.ne = {t.ne[0] / 2};
      nt.bytes.resize(nt.bytes.size() / 2);
      return {nt};
    });
    const GgufFile broken = GgufFile::open(path);
    try {
      Model::load(broken);
      ADD_FAILURE() << "loading with a broken " << victim << " succeeded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(victim), std::string::npos) << e.what();
    }
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace peregrine
