#include "decode/loaded_model.h"

#include <chrono>

#include <fmt/format.h>

#include "model/mtp_file.h"
#include "peregrine/error.h"
#include "peregrine/log.h"

namespace peregrine {

LoadedModel::LoadedModel(std::unique_ptr<GgufFile> file, std::unique_ptr<GgufFile> mtp_file, Tokenizer tokenizer,
                         std::unique_ptr<Model> model)
    : file_(std::move(file)),
      mtp_file_(std::move(mtp_file)),
      tokenizer_(std::move(tokenizer)),
      model_(std::move(model)),
      sequence_(model_->new_sequence()) {}

std::unique_ptr<LoadedModel> LoadedModel::load(const std::filesystem::path& path, const ModelOptions& options,
                                               const std::filesystem::path& mtp_path, const Hooks& hooks) {
  const auto t0 = std::chrono::steady_clock::now();
  auto file = std::make_unique<GgufFile>(GgufFile::open(path));
  Tokenizer tokenizer = Tokenizer::from_gguf(*file);
  auto mtp_file = open_mtp_file_for(*file, path, mtp_path);
  std::unique_ptr<Backend> backend = hooks.backend_factory ? hooks.backend_factory() : nullptr;
  auto model = Model::load(*file, options, mtp_file.get(), std::move(backend), hooks.progress);
  const ModelConfig& c = model->config();
  if (tokenizer.vocab_size() > c.n_vocab)
    throw Error(fmt::format("{}: the tokenizer has {} tokens but the LM head only {} rows", file->display_name(),
                            tokenizer.vocab_size(), c.n_vocab));

  std::string template_text;
  if (const GgufValue* v = file->find("tokenizer.chat_template"); v && v->as_string()) template_text = *v->as_string();

  ModelInfo info;
  info.path = path;
  info.name = c.name;
  info.architecture = c.arch_name;
  info.n_vocab = c.n_vocab;
  info.vocab_size = tokenizer.vocab_size();
  info.n_embd = c.n_embd;
  info.n_layer = c.n_layer;
  info.trained_context_length = c.context_length;
  info.context_length = options.context_length;
  info.n_threads = options.n_threads;
  info.has_mtp = c.has_mtp();
  info.is_moe = c.is_moe();
  info.file_bytes = file->file_size();
  info.chat_format = choose_chat_format(template_text);
  info.backend = std::string(model->backend().name());
  info.backend_device = model->backend().device_name();

  std::unique_ptr<LoadedModel> loaded(new LoadedModel(std::move(file), std::move(mtp_file), std::move(tokenizer), std::move(model)));
  info.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  loaded->info_ = std::move(info);
  return loaded;
}

std::vector<int32_t> LoadedModel::prompt_ids(const Prompt& prompt) const {
  if (const auto* ids = std::get_if<std::vector<int32_t>>(&prompt)) return *ids;
  if (const auto* text = std::get_if<std::string>(&prompt)) return tokenizer_.encode(*text);
  const ChatPrompt& chat = std::get<ChatPrompt>(prompt);
  ChatOptions options = chat.options;
  options.add_generation_prompt = true;
  const std::string rendered = render_chat(chat.format.value_or(info_.chat_format), chat.messages, options);
  return tokenizer_.encode(rendered);
}

ThinkSplit LoadedModel::think_split(const Prompt& prompt) const {
  const ChatPrompt* chat = std::get_if<ChatPrompt>(&prompt);
  if (!chat) return ThinkSplit::Off;
  ChatOptions options = chat->options;
  options.add_generation_prompt = true;
  const auto chat_template = ChatTemplate::create(chat->format.value_or(info_.chat_format));
  return chat_template->generation_opens_thinking(options) ? ThinkSplit::StartsInThinking : ThinkSplit::StartsInAnswer;
}

}  // namespace peregrine
