// Everything the engine thread holds for one loaded model: the mapped file, the weights bound to
// it, the tokenizer, the chat format and the one sequence it generates in.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "decode/think_splitter.h"
#include "peregrine/engine.h"
#include "peregrine/gguf.h"
#include "peregrine/model.h"
#include "peregrine/tokenizer.h"

namespace peregrine {

class LoadedModel {
 public:
  // What a load runs on and who watches it.
  struct Hooks {
    // The backend the model runs on; empty: the one ModelOptions::backend names.
    std::function<std::unique_ptr<Backend>()> backend_factory;
    // Placement progress (Model::load); returning false cancels: load throws LoadCancelled.
    LoadProgressCallback progress;
  };

  // Opens and validates the file, binds the weights, reads the tokenizer. Throws peregrine::Error.
  // A trunk without an MTP block gets one from `mtp_path` when given, else from `mtp-<file name>`
  // in the same folder when that exists (docs/mtp.md "Separate MTP file").
  static std::unique_ptr<LoadedModel> load(const std::filesystem::path& path, const ModelOptions& options,
                                           const std::filesystem::path& mtp_path = {}, const Hooks& hooks = {});

  const ModelInfo& info() const { return info_; }
  Model& model() { return *model_; }
  Sequence& sequence() { return sequence_; }
  std::vector<int32_t>& history() { return history_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }

  // The prompt as ids: ids as given, text encoded with special tokens, a conversation rendered
  // with the chat template (generation prompt added) and encoded.
  std::vector<int32_t> prompt_ids(const Prompt& prompt) const;
  // Where the text generated after that prompt starts relative to the think block: only a
  // conversation, rendered with the chat template, has one.
  ThinkSplit think_split(const Prompt& prompt) const;

 private:
  LoadedModel(std::unique_ptr<GgufFile> file, std::unique_ptr<GgufFile> mtp_file, Tokenizer tokenizer,
              std::unique_ptr<Model> model);

  std::unique_ptr<GgufFile> file_;      // must outlive model_ (declared first, destroyed last)
  std::unique_ptr<GgufFile> mtp_file_;  // the separate MTP file, if one is attached; likewise
  Tokenizer tokenizer_;
  std::unique_ptr<Model> model_;
  Sequence sequence_;
  std::vector<int32_t> history_;  // ids evaluated into sequence_
  ModelInfo info_;
};

}  // namespace peregrine
