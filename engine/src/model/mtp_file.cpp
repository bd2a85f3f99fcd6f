#include "model/mtp_file.h"

#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/log.h"

namespace peregrine {
namespace {

// The dimensions the MTP block's forward pass and its KV cache share with the trunk.
void check_same_dims(const ModelConfig& t, const ModelConfig& m, const std::string& mtp_name,
                     const std::string& trunk_name) {
  auto differ = [&](std::string_view what, auto trunk_value, auto mtp_value) {
    if (trunk_value == mtp_value) return;
    throw Error(fmt::format("{}: MTP file does not fit the trunk {}: {} is {}, the trunk's is {}", mtp_name,
                            trunk_name, what, mtp_value, trunk_value));
  };
  differ("architecture", t.arch_name, m.arch_name);
  differ("n_embd", t.n_embd, m.n_embd);
  differ("vocabulary size", t.n_vocab, m.n_vocab);
  differ("trunk layer count (block_count - nextn_predict_layers)", t.n_layer, m.n_layer);
  differ("attention.head_count", t.n_head, m.n_head);
  differ("attention.head_count_kv", t.n_head_kv, m.n_head_kv);
  differ("attention.key_length", t.head_dim, m.head_dim);
  differ("rope.dimension_count", t.n_rot, m.n_rot);
  differ("rope.freq_base", t.rope_freq_base, m.rope_freq_base);
  differ("attention.layer_norm_rms_epsilon", t.rms_eps, m.rms_eps);
  differ("feed_forward_length", t.n_ff, m.n_ff);
  differ("expert_count", t.n_expert, m.n_expert);
  differ("expert_used_count", t.n_expert_used, m.n_expert_used);
  differ("expert_feed_forward_length", t.n_ff_expert, m.n_ff_expert);
  differ("expert_shared_feed_forward_length", t.n_ff_shared_expert, m.n_ff_shared_expert);
  if (t.rope_sections != m.rope_sections)
    throw Error(fmt::format("{}: MTP file does not fit the trunk {}: rope.dimension_sections differ", mtp_name,
                            trunk_name));
}

}  // namespace

ModelConfig attach_mtp_config(const ModelConfig& trunk_config, const GgufFile& trunk_file, const GgufFile& mtp_file) {
  const std::string& name = mtp_file.display_name();
  if (trunk_config.has_mtp())
    throw Error(fmt::format("{}: the trunk {} already has an MTP block; a separate MTP file is not used", name,
                            trunk_file.display_name()));
  const ModelConfig m = ModelConfig::from_gguf(mtp_file);
  if (!m.has_mtp())
    throw Error(fmt::format("{}: not an MTP file: nextn_predict_layers is 0 (expected 1)", name));
  check_same_dims(trunk_config, m, name, trunk_file.display_name());

  // Only the MTP block's tensors (and the optional embeddings / head) are checked: the trunk's
  // layers are absent from this file by design.
  std::vector<std::string> problems;
  for (const TensorProblem& p : check_tensors(m, mtp_file)) {
    const bool missing = p.what.rfind("missing", 0) == 0;
    const bool block_tensor = p.tensor.rfind(fmt::format("blk.{}.", m.n_layer), 0) == 0;
    if (missing && !block_tensor) continue;  // the trunk's layers are in the trunk file
    problems.push_back(fmt::format("'{}' {}", p.tensor, p.what));
  }
  if (!problems.empty()) {
    std::string list;
    for (size_t i = 0; i < problems.size() && i < 8; ++i) list += (i ? "; " : "") + problems[i];
    if (problems.size() > 8) list += fmt::format("; and {} more", problems.size() - 8);
    throw Error(fmt::format("{}: MTP block {} does not match the configuration: {}", name, m.n_layer, list));
  }
  ModelConfig attached = trunk_config;
  attached.n_nextn = 1;
  return attached;
}

std::filesystem::path mtp_companion_path(const std::filesystem::path& trunk_path) {
  return trunk_path.parent_path() / ("mtp-" + trunk_path.filename().string());
}

std::unique_ptr<GgufFile> open_mtp_file_for(const GgufFile& trunk, const std::filesystem::path& trunk_path,
                                            const std::filesystem::path& explicit_path) {
  if (ModelConfig::from_gguf(trunk).has_mtp()) {
    if (!explicit_path.empty())
      log::get("model")->info("{}: has its own MTP block; {} is not used", trunk.display_name(),
                              explicit_path.string());
    return nullptr;
  }
  std::filesystem::path path = explicit_path;
  if (path.empty()) {
    path = mtp_companion_path(trunk_path);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return nullptr;
  }
  log::get("model")->info("{}: no MTP block; attaching the MTP file {}", trunk.display_name(), path.string());
  return std::make_unique<GgufFile>(GgufFile::open(path));
}

}  // namespace peregrine
