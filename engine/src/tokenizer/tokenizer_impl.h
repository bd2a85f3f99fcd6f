// The built tables behind peregrine::Tokenizer (shared, immutable after from_data()).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "peregrine/tokenizer.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/string_index.h"

namespace peregrine {

struct Tokenizer::Impl {
  std::string source;
  std::vector<std::string> pieces;        // raw bytes of every token
  std::vector<TokenKind> kinds;
  std::vector<uint8_t> skip_on_decode;    // 1: dropped by DecodeOptions::skip_special
  tokenizer_detail::StringIndex id_of_piece{&pieces};  // raw bytes -> id, added tokens first
  std::string split_pattern;
  std::unique_ptr<tokenizer_detail::RegexSplitter> splitter;
  std::unique_ptr<tokenizer_detail::BpeModel> bpe;
  tokenizer_detail::AddedTokenMatcher added;
  bool nfc = true;
  bool add_bos = false;
  std::optional<int32_t> bos, eos, pad, im_start, im_end, end_of_text, think, end_think;

  // NFC (optional) + regex split + BPE of text that holds no added token.
  void encode_plain(std::string_view text, bool normalize, std::vector<int32_t>& out) const;
  // Throws peregrine::Error for an id outside the vocabulary.
  void check_id(int32_t id) const;
  bool skipped(int32_t id, const DecodeOptions& options) const {
    return options.skip_special && skip_on_decode[static_cast<size_t>(id)] != 0;
  }
};

}  // namespace peregrine
