// libFuzzer target for the Hugging Face tokenizer.json loader: the streaming reader, the checks of
// Tokenizer::load_hf_json_text, and Tokenizer::from_data, which then encodes and decodes a fixed
// text. Every refusal must be a peregrine::Error; anything else reaching libFuzzer is a finding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "peregrine/error.h"
#include "peregrine/log.h"
#include "peregrine/tokenizer.h"

namespace {

volatile uint64_t g_sink;

constexpr std::string_view kText = "hello well wow<think>hell</think><|im_end|> \xC3\xA9\xE4\xBD\xA0!";

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  peregrine::log::set_level("off");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const peregrine::Tokenizer tokenizer =
        peregrine::Tokenizer::from_data(peregrine::Tokenizer::load_hf_json_text(text, "fuzz-input"));
    const std::vector<int32_t> ids = tokenizer.encode(kText);
    for (int32_t id : ids)
      if (id < 0 || id >= tokenizer.vocab_size()) __builtin_trap();
    g_sink = g_sink + tokenizer.decode(ids).size();
  } catch (const peregrine::Error&) {
    // Refusing the input is the expected outcome for almost every mutation.
  }
  return 0;
}
