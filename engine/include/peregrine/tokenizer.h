// Byte-level BPE tokenizer for Qwen models (Qwen2/2.5/3 and Qwen3.5/3.6 vocabularies).
//
// Pipeline of encode(), the same as Hugging Face `tokenizers` for Qwen's tokenizer.json:
//   1. added tokens (<|im_start|>, <think>, ...) are cut out of the raw text, longest match
//      first, left to right; which of them count is chosen per call (SpecialTokens);
//   2. the text between them is NFC-normalized (utf8proc);
//   3. split into pre-tokens by the model's regex (PCRE2, UTF + UCP, JIT; `\s` means Unicode
//      White_Space exactly);
//   4. each pre-token's bytes are merged by BPE rank into token ids.
// decode() concatenates the raw bytes of the tokens; invalid UTF-8 becomes U+FFFD (HF's
// errors="replace"). StreamingDecoder does the same incrementally without ever emitting half
// of a character.
//
// Loading is separate from the core: both loaders (GGUF metadata, HF tokenizer.json) fill a
// TokenizerData, and Tokenizer::from_data() validates it and builds the lookup tables.
// A Tokenizer is immutable after construction; all const methods are thread-safe. Copies share
// the tables (cheap).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "peregrine/error.h"

namespace peregrine {

class GgufFile;

// How a vocabulary entry behaves (llama.cpp's token types, which GGUF stores).
enum class TokenKind : uint8_t {
  Normal,       // a BPE token, stored in the GPT-2 byte-to-unicode alphabet
  Control,      // added token with a control role (<|im_start|>, <|endoftext|>, <|fim_prefix|>...)
  UserDefined,  // added token that is ordinary text to the model (<think>, <tool_call>...)
  Unused,       // padding entry; never produced by encode()
};

// Which added tokens encode() recognizes in the text.
enum class SpecialTokens {
  All,              // every added token (HF `encode`, llama.cpp parse_special=true)
  None,             // none: the whole text goes through NFC + regex + BPE
  UserDefinedOnly,  // llama.cpp parse_special=false: control tokens are spelled out as text,
                    // user-defined ones (<think>, <tool_call>, ...) are still matched
};

// Split patterns of the Qwen families (as written in tokenizer.json / llama.cpp).
inline constexpr std::string_view kQwen2SplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen3.5 / 3.6: combining marks (\p{M}) count as letters.
inline constexpr std::string_view kQwen35SplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Everything a tokenizer is made of, as the file describes it (no derived tables).
struct TokenizerData {
  std::string source;                   // file name, for error messages
  std::vector<std::string> tokens;      // index = id; Normal tokens in the byte-level alphabet
                                        // ("Ġhello"), added tokens as raw text ("<think>")
  std::vector<TokenKind> kinds;         // same size as tokens
  std::vector<std::pair<std::string, std::string>> merges;  // rank order, byte-level alphabet
  std::vector<int32_t> skip_on_decode;  // ids that DecodeOptions::skip_special drops
  std::string split_pattern;            // pre-tokenizer regex (PCRE2 syntax)
  bool nfc = true;                      // NFC-normalize text between added tokens
  bool add_bos = false;                 // the model wants BOS prepended
  std::optional<int32_t> bos_id, eos_id, pad_id;
};

struct EncodeOptions {
  SpecialTokens special = SpecialTokens::All;
  std::optional<bool> nfc;      // nullopt: the model's setting (TokenizerData::nfc)
  std::optional<bool> add_bos;  // nullopt: the model's setting (false for Qwen)

  // Chainable setters (g++ 12 warns about designated initializers that leave fields out).
  EncodeOptions& with_special(SpecialTokens which) { special = which; return *this; }
  EncodeOptions& with_nfc(bool on) { nfc = on; return *this; }
  EncodeOptions& with_bos(bool on) { add_bos = on; return *this; }
};

struct DecodeOptions {
  bool skip_special = false;  // drop the ids in TokenizerData::skip_on_decode (HF skip_special_tokens)

  static DecodeOptions skipping_special() { DecodeOptions o; o.skip_special = true; return o; }
};

class Tokenizer {
 public:
  // Reads tokenizer.ggml.* from GGUF metadata (model must be "gpt2"; pre "qwen2" or "qwen35").
  // Throws peregrine::Error naming the file and the key.
  static Tokenizer from_gguf(const GgufFile& file);
  static TokenizerData load_gguf(const GgufFile& file);

  // Reads a Hugging Face tokenizer.json (BPE model; merges as [["a","b"],...] or ["a b",...]).
  // A tokenizer_config.json next to it, if present, supplies bos/eos/pad and add_bos_token.
  static Tokenizer from_hf_json(const std::filesystem::path& path);
  static TokenizerData load_hf_json(const std::filesystem::path& path);
  // The same for a tokenizer.json document already in memory (no tokenizer_config.json);
  // `source` names it in errors. The fuzzer (tests/fuzz) feeds it directly.
  static TokenizerData load_hf_json_text(const std::string& text, const std::string& source);

  // Validates the data (sizes, merge tokens, ids) and builds the tables. Throws peregrine::Error.
  static Tokenizer from_data(TokenizerData data);

  // `text` must be valid UTF-8 (throws peregrine::Error otherwise).
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Throws peregrine::Error for an id outside [0, vocab_size()).
  std::string decode(std::span<const int32_t> ids, const DecodeOptions& options = {}) const;

  // The raw bytes of one token (may be part of a UTF-8 character). Throws for a bad id.
  const std::string& token_piece(int32_t id) const;
  int32_t vocab_size() const;
  TokenKind token_kind(int32_t id) const;
  // Id of the token whose raw bytes are exactly `piece` (added tokens win over BPE tokens).
  std::optional<int32_t> token_id(std::string_view piece) const;

  std::optional<int32_t> bos() const;
  std::optional<int32_t> eos() const;
  std::optional<int32_t> pad() const;
  std::optional<int32_t> im_start() const;
  std::optional<int32_t> im_end() const;
  std::optional<int32_t> end_of_text() const;
  std::optional<int32_t> think() const;
  std::optional<int32_t> end_think() const;
  bool adds_bos() const;
  bool uses_nfc() const;
  const std::string& split_pattern() const;
  const std::string& source() const;
  // Ends a generation: <|im_end|>, <|endoftext|> and the model's eos.
  bool is_end_of_generation(int32_t id) const;

 private:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
  friend class StreamingDecoder;
};

// Turns a stream of ids into text, holding back an incomplete UTF-8 sequence until the token
// that completes it arrives. Bytes that can never become valid UTF-8 are replaced by U+FFFD as
// soon as that is certain. Not thread-safe (one per generation); keeps the Tokenizer alive.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, DecodeOptions options = {});

  // Appends one token; returns the text that became complete (possibly empty).
  std::string push(int32_t id);
  // Ends the stream: a held incomplete sequence becomes U+FFFD. The decoder is then empty.
  std::string flush();
  // Bytes held back, waiting for the rest of a character.
  size_t pending_bytes() const { return pending_.size(); }

 private:
  std::shared_ptr<const Tokenizer::Impl> impl_;
  DecodeOptions options_;
  std::string pending_;
};

}  // namespace peregrine
