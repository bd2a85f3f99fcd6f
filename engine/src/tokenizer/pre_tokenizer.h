// The regex pre-tokenizer: splits text into the pieces BPE works on, like HF's
// Split(pattern, behavior=Isolated): every match is a piece and so is every gap between
// matches. PCRE2 with UTF + UCP, JIT-compiled once; per-thread match data.
#pragma once

#include <string>
#include <string_view>
#include <vector>

struct pcre2_real_code_8;

namespace peregrine::tokenizer_detail {

// Replaces `\s` / `\S` by explicit classes of exactly the Unicode White_Space code points.
// PCRE2's UCP `\s` also matches U+180E (it keeps the pre-Unicode-6.3 horizontal-space list),
// which HF tokenizers and llama.cpp do not treat as a space. `\S` inside a character class has
// no explicit equivalent and is kept as is.
std::string with_unicode_white_space(std::string_view pattern);

class RegexSplitter {
 public:
  // Throws peregrine::Error naming `source` and the PCRE2 message when the pattern is invalid.
  RegexSplitter(std::string_view pattern, std::string_view source);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // Appends the pieces of `text` (valid UTF-8, not checked again) in order; they tile `text`.
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

 private:
  pcre2_real_code_8* code_ = nullptr;
  bool jit_ = false;
};

}  // namespace peregrine::tokenizer_detail
