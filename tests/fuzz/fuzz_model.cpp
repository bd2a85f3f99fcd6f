// libFuzzer target for what a model file's header drives before any weight is used: the GGUF
// container, ModelConfig::from_gguf, check_tensors, and the tokenizer built from the
// tokenizer.ggml.* keys (which then encodes and decodes a fixed text). The forward pass is not
// run. Every refusal must be a peregrine::Error; any other exception (std::bad_alloc,
// std::length_error, ...) escapes to libFuzzer and counts as a finding, as do sanitizer reports,
// the traps below and libFuzzer's own time and memory limits.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/log.h"
#include "peregrine/model_config.h"
#include "peregrine/tokenizer.h"

namespace {

volatile uint64_t g_sink;  // keeps the results below from being optimised away

constexpr std::string_view kText =
    "<|im_start|>user\nHello, world! 123 \xC3\xA9t\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD<|im_end|>\n<think>\n</think>";

void check_config(const peregrine::GgufFile& file) {
  const peregrine::ModelConfig config = peregrine::ModelConfig::from_gguf(file);
  // A config that loads describes one kind per trunk layer.
  if (config.layer_kinds.size() != static_cast<size_t>(config.n_layer)) __builtin_trap();
  const auto problems = peregrine::check_tensors(config, file);
  for (const auto& p : problems) g_sink = g_sink + p.tensor.size() + p.what.size();
}

void check_tokenizer(const peregrine::GgufFile& file) {
  const peregrine::Tokenizer tokenizer = peregrine::Tokenizer::from_gguf(file);
  const std::vector<int32_t> ids = tokenizer.encode(kText);
  for (int32_t id : ids)
    if (id < 0 || id >= tokenizer.vocab_size()) __builtin_trap();
  g_sink = g_sink + tokenizer.decode(ids).size();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  peregrine::log::set_level("off");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::optional<peregrine::GgufFile> file;
  try {
    file.emplace(peregrine::GgufFile::from_memory(std::span<const uint8_t>(data, size), "fuzz-input"));
  } catch (const peregrine::GgufError&) {
    return 0;  // the container fuzzer (fuzz_gguf) covers these
  }
  try {
    check_config(*file);
  } catch (const peregrine::Error&) {
  }
  try {
    check_tokenizer(*file);
  } catch (const peregrine::Error&) {
  }
  return 0;
}
