// The Qwen-like vocabulary of synthetic models: the 256 byte tokens in GPT-2 order, BPE merges
// learned deterministically on a small built-in text, "[PAD<id>]" filler (type unused, as
// convert_hf_to_gguf.py pads vocabularies) and the five Qwen special tokens.
#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include <fmt/format.h>

#include "peregrine/error.h"
#include "peregrine/synthetic.h"

namespace peregrine::synthetic {

const char* const kChatTemplate =
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif "
    "%}";

namespace {

constexpr int32_t kTypeNormal = 1, kTypeControl = 3, kTypeUserDefined = 4, kTypeUnused = 5;
constexpr int64_t kQwenVocab = 248320;
constexpr int64_t kMaxMerges = 4000;

// Text the merges are learned on: English, code and ChatML, like a chat model sees.
constexpr const char* kCorpus = R"(<|im_start|>system
You are a helpful assistant. Answer the question of the user as well as you can.<|im_end|>
<|im_start|>user
What is the capital of France? And what is the state of the hidden layer after the token?<|im_end|>
<|im_start|>assistant
<think>
The user asks about the capital of France. It is Paris. Then the user asks about the hidden state.
</think>

The capital of France is Paris. The hidden state of a layer is the vector that the layer passes on
to the next layer for each token; the recurrent state is carried from one token to the next.<|im_end|>
The quick brown fox jumps over the lazy dog. A model predicts the next token from the tokens before it.
Numbers such as 12, 345 and 6789 are split into single digits; the year 2026 is four tokens.
def forward(self, tokens, state):
    hidden = self.embed(tokens)
    for layer in self.layers:
        hidden, state = layer(hidden, state)
    return self.output(self.norm(hidden)), state

int main(int argc, char** argv) {
    std::vector<int> values = {1, 2, 3};
    for (int value : values) std::printf("%d\n", value);
    return 0;
}
Speculative decoding drafts several tokens with a small head and verifies them in one batch.
When the draft is accepted the state moves forward; when it is rejected the state is rolled back.
Attention layers keep a cache of keys and values; delta-net layers keep a matrix state per head.
The weights are quantized in blocks: each block stores a scale and small integers for its values.
Please write a function that returns the sum of the numbers in a list, and explain how it works.
Sure! Here is a short function, followed by an explanation of every line and of the edge cases.
)";

// GPT-2's byte -> printable character table, as UTF-8 strings.
std::vector<std::string> byte_to_unicode() {
  auto printable = [](int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); };
  std::vector<std::string> out(256);
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const int cp = printable(b) ? b : 256 + extra++;
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    out[b] = s;
  }
  return out;
}

// Code point of a 1- or 2-byte UTF-8 string (the byte alphabet only uses those).
int code_point(const std::string& s) {
  if (s.size() == 1) return static_cast<unsigned char>(s[0]);
  return ((static_cast<unsigned char>(s[0]) & 0x1F) << 6) | (static_cast<unsigned char>(s[1]) & 0x3F);
}

// A rough GPT-2-style split (leading space joins the word); exact splitting does not matter
// here, every learned merge is a valid BPE merge whatever the pre-tokenizer.
std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> words;
  size_t i = 0;
  auto cls = [](unsigned char ch) {
    if (std::isalpha(ch) || ch >= 0x80) return 0;
    if (std::isdigit(ch)) return 1;
    if (ch == '\n') return 2;
    if (ch == ' ') return 3;
    return 4;
  };
  while (i < text.size()) {
    size_t start = i;
    if (text[i] == ' ' && i + 1 < text.size() && cls(text[i + 1]) != 3 && cls(text[i + 1]) != 2) ++i;
    const int c = cls(static_cast<unsigned char>(text[i]));
    ++i;
    if (c != 1)
      while (i < text.size() && cls(static_cast<unsigned char>(text[i])) == c) ++i;
    words.emplace_back(text.substr(start, i - start));
  }
  return words;
}

// Learns up to `max_new_tokens` merges: most frequent pair first, ties by the pair's text.
void learn_merges(const std::vector<std::string>& alphabet, int64_t max_new_tokens, std::vector<std::string>& tokens,
                  std::vector<std::string>& merges) {
  std::map<std::vector<std::string>, int64_t> words;
  for (const std::string& w : split_words(kCorpus)) {
    if (w.find("<|") != std::string::npos) continue;
    std::vector<std::string> symbols;
    for (unsigned char ch : w) symbols.push_back(alphabet[ch]);
    ++words[symbols];
  }
  std::set<std::string> known(tokens.begin(), tokens.end());
  int64_t added = 0;
  while (added < max_new_tokens && static_cast<int64_t>(merges.size()) < kMaxMerges) {
    std::map<std::pair<std::string, std::string>, int64_t> pairs;
    for (const auto& [symbols, count] : words)
      for (size_t k = 0; k + 1 < symbols.size(); ++k) pairs[{symbols[k], symbols[k + 1]}] += count;
    if (pairs.empty()) break;
    auto best = pairs.begin();
    for (auto it = pairs.begin(); it != pairs.end(); ++it)
      if (it->second > best->second) best = it;  // map order breaks ties by text
    const auto [left, right] = best->first;
    const std::string joined = left + right;
    merges.push_back(left + " " + right);
    if (known.insert(joined).second) {
      tokens.push_back(joined);
      ++added;
    }
    std::map<std::vector<std::string>, int64_t> next;
    for (const auto& [symbols, count] : words) {
      std::vector<std::string> out;
      for (size_t k = 0; k < symbols.size(); ++k) {
        if (k + 1 < symbols.size() && symbols[k] == left && symbols[k + 1] == right) {
          out.push_back(joined);
          ++k;
        } else {
          out.push_back(symbols[k]);
        }
      }
      next[out] += count;
    }
    words = std::move(next);
  }
}

}  // namespace

Vocabulary make_vocabulary(int64_t n_vocab) {
  if (n_vocab < 300)
    throw Error(fmt::format("synthetic vocabulary: n_vocab must be at least 300, found {}", n_vocab));
  Vocabulary v;
  const std::vector<std::string> alphabet = byte_to_unicode();
  std::vector<std::string> bytes_sorted = alphabet;
  std::sort(bytes_sorted.begin(), bytes_sorted.end(),
            [](const std::string& a, const std::string& b) { return code_point(a) < code_point(b); });

  // Qwen's real ids for its 248320-entry vocabulary; otherwise the last five ids (as in the fixtures).
  if (n_vocab >= kQwenVocab) {
    v.endoftext = 248044;
    v.im_start = 248045;
    v.im_end = 248046;
    v.think = 248068;
    v.end_think = 248069;
  } else {
    const auto base = static_cast<int32_t>(n_vocab - 5);
    v.endoftext = base;
    v.im_start = base + 1;
    v.im_end = base + 2;
    v.think = base + 3;
    v.end_think = base + 4;
  }
  const int64_t first_special = std::min<int64_t>({v.endoftext, v.im_start, v.im_end, v.think, v.end_think});

  v.tokens = bytes_sorted;
  learn_merges(alphabet, first_special - 256, v.tokens, v.merges);
  v.token_types.assign(v.tokens.size(), kTypeNormal);
  v.tokens.reserve(static_cast<size_t>(n_vocab));
  while (static_cast<int64_t>(v.tokens.size()) < n_vocab) {
    v.tokens.push_back(fmt::format("[PAD{}]", v.tokens.size()));
    v.token_types.push_back(kTypeUnused);
  }
  auto set_special = [&](int32_t id, const char* text, int32_t type) {
    v.tokens[id] = text;
    v.token_types[id] = type;
  };
  set_special(v.endoftext, "<|endoftext|>", kTypeControl);
  set_special(v.im_start, "<|im_start|>", kTypeControl);
  set_special(v.im_end, "<|im_end|>", kTypeControl);
  set_special(v.think, "<think>", kTypeUserDefined);
  set_special(v.end_think, "</think>", kTypeUserDefined);
  return v;
}

}  // namespace peregrine::synthetic
