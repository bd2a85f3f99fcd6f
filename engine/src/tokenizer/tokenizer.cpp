// Tokenizer: validation of TokenizerData, table building, encode and decode.
#include <chrono>
#include <string>

#include "peregrine/error.h"
#include "peregrine/log.h"
#include "peregrine/tokenizer.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace peregrine {

using tokenizer_detail::BpeMerge;
using tokenizer_detail::BpeModel;
using tokenizer_detail::RegexSplitter;
using tokenizer_detail::TextSegment;

namespace {

std::string single_quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::optional<int32_t> checked_special(const TokenizerData& data, std::optional<int32_t> id, const char* what) {
  if (id && (*id < 0 || static_cast<size_t>(*id) >= data.tokens.size())) {
    throw Error(data.source + ": " + what + " token id " + std::to_string(*id) + " is outside the vocabulary of " +
                std::to_string(data.tokens.size()) + " tokens");
  }
  return id;
}

}  // namespace

void Tokenizer::Impl::encode_plain(std::string_view text, bool normalize, std::vector<int32_t>& out) const {
  std::string normalized_storage;
  const std::string_view normalized = normalize ? tokenizer_detail::nfc(text, normalized_storage) : text;
  std::vector<std::string_view> words;
  words.reserve(normalized.size() / 4 + 1);
  splitter->split(normalized, words);
  for (std::string_view word : words) bpe->encode(word, out);
}

void Tokenizer::Impl::check_id(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= pieces.size()) {
    throw Error(source + ": token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                std::to_string(pieces.size()) + ")");
  }
}

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::from_data(TokenizerData data) {
  const auto started = std::chrono::steady_clock::now();
  auto impl = std::make_shared<Impl>();
  impl->source = data.source;
  const size_t n = data.tokens.size();
  if (n == 0) throw Error(data.source + ": the vocabulary is empty");
  if (data.kinds.size() != n) {
    throw Error(data.source + ": " + std::to_string(data.kinds.size()) + " token types for " + std::to_string(n) +
                " tokens (expected one type per token)");
  }

  // Raw bytes of every token; lookup of the byte-level spelling for the merges.
  impl->pieces.resize(n);
  impl->kinds = data.kinds;
  tokenizer_detail::StringIndex id_of_spelling(&data.tokens);  // byte-level spelling -> id (BPE tokens)
  id_of_spelling.reserve(n);
  for (size_t id = 0; id < n; ++id) {
    const std::string& text = data.tokens[id];
    const TokenKind kind = data.kinds[id];
    if (kind == TokenKind::Control || kind == TokenKind::UserDefined) {
      impl->pieces[id] = text;  // added tokens are stored as the raw text they match
      impl->added.add(static_cast<int32_t>(id), text, kind);
      continue;
    }
    auto raw = tokenizer_detail::byte_level_to_bytes(text);
    if (!raw) {
      if (kind == TokenKind::Normal) {
        throw Error(data.source + ": token " + std::to_string(id) + " " + single_quoted(text) +
                    " is not in the byte-level BPE alphabet");
      }
      raw = text;  // an unused filler entry may be spelled any way
    }
    impl->pieces[id] = std::move(*raw);
    if (kind == TokenKind::Normal) id_of_spelling.insert(static_cast<int32_t>(id));
  }
  impl->id_of_piece = tokenizer_detail::StringIndex(&impl->pieces);
  impl->id_of_piece.reserve(n);
  for (size_t id = 0; id < n; ++id) {  // added tokens first: they win over a BPE token with the same bytes
    if (data.kinds[id] == TokenKind::Control || data.kinds[id] == TokenKind::UserDefined) {
      impl->id_of_piece.insert(static_cast<int32_t>(id));
    }
  }
  for (size_t id = 0; id < n; ++id) impl->id_of_piece.insert(static_cast<int32_t>(id));

  std::array<int32_t, 256> byte_ids{};
  for (int b = 0; b < 256; ++b) {
    const std::string& spelling = tokenizer_detail::byte_level_char(static_cast<unsigned char>(b));
    byte_ids[b] = id_of_spelling.find(spelling);
    if (byte_ids[b] < 0) {
      throw Error(data.source + ": no token for byte " + std::to_string(b) + " (" + single_quoted(spelling) +
                  "); a byte-level BPE vocabulary needs all 256");
    }
  }

  std::vector<BpeMerge> merges;
  merges.reserve(data.merges.size());
  std::string joined;
  for (size_t rank = 0; rank < data.merges.size(); ++rank) {
    const std::string& left = data.merges[rank].first;  // (clang 14 cannot capture structured bindings)
    const std::string& right = data.merges[rank].second;
    auto id_of = [&](std::string_view spelling) {
      const int32_t id = id_of_spelling.find(spelling);
      if (id < 0) {
        throw Error(data.source + ": merge " + std::to_string(rank) + " " + single_quoted(left + " " + right) +
                    " refers to unknown token " + single_quoted(spelling));
      }
      return id;
    };
    joined.assign(left).append(right);
    merges.push_back(BpeMerge{id_of(left), id_of(right), id_of(joined)});
  }
  impl->bpe = std::make_unique<BpeModel>(byte_ids, merges);

  if (data.split_pattern.empty()) throw Error(data.source + ": no pre-tokenizer split pattern");
  impl->split_pattern = data.split_pattern;
  impl->splitter = std::make_unique<RegexSplitter>(data.split_pattern, data.source);

  impl->skip_on_decode.assign(n, 0);
  for (int32_t id : data.skip_on_decode) {
    checked_special(data, id, "skip-on-decode");
    impl->skip_on_decode[static_cast<size_t>(id)] = 1;
  }
  impl->nfc = data.nfc;
  impl->add_bos = data.add_bos;
  impl->bos = checked_special(data, data.bos_id, "bos");
  impl->eos = checked_special(data, data.eos_id, "eos");
  impl->pad = checked_special(data, data.pad_id, "padding");
  if (impl->add_bos && !impl->bos) throw Error(data.source + ": add_bos_token is set but there is no bos token id");
  auto named = [&](std::string_view text) -> std::optional<int32_t> {
    const int32_t id = impl->id_of_piece.find(text);
    if (id < 0) return std::nullopt;
    return id;
  };
  impl->im_start = named("<|im_start|>");
  impl->im_end = named("<|im_end|>");
  impl->end_of_text = named("<|endoftext|>");
  impl->think = named("<think>");
  impl->end_think = named("</think>");

  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  log::get("tokenizer")->debug("{}: built tables for {} tokens, {} merges in {:.1f} ms", data.source, n,
                               merges.size(), ms);
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  const Impl& impl = *impl_;
  if (const size_t bad = tokenizer_detail::first_invalid_utf8(text); bad != text.size()) {
    throw Error(impl.source + ": encode() input is not valid UTF-8 (at byte " + std::to_string(bad) + ")");
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  if (options.add_bos.value_or(impl.add_bos) && impl.bos) ids.push_back(*impl.bos);
  const bool normalize = options.nfc.value_or(impl.nfc);
  std::vector<TextSegment> segments;
  impl.added.split(text, options.special, segments);
  for (const TextSegment& segment : segments) {
    if (segment.token >= 0) {
      ids.push_back(segment.token);
    } else {
      impl.encode_plain(segment.text, normalize, ids);
    }
  }
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, const DecodeOptions& options) const {
  const Impl& impl = *impl_;
  std::string bytes;
  for (int32_t id : ids) {
    impl.check_id(id);
    if (!impl.skipped(id, options)) bytes += impl.pieces[static_cast<size_t>(id)];
  }
  if (tokenizer_detail::is_valid_utf8(bytes)) return bytes;
  return tokenizer_detail::replace_invalid_utf8(bytes);
}

const std::string& Tokenizer::token_piece(int32_t id) const {
  impl_->check_id(id);
  return impl_->pieces[static_cast<size_t>(id)];
}

TokenKind Tokenizer::token_kind(int32_t id) const {
  impl_->check_id(id);
  return impl_->kinds[static_cast<size_t>(id)];
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->pieces.size()); }

std::optional<int32_t> Tokenizer::token_id(std::string_view piece) const {
  const int32_t id = impl_->id_of_piece.find(piece);
  if (id < 0) return std::nullopt;
  return id;
}

std::optional<int32_t> Tokenizer::bos() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::eos() const { return impl_->eos; }
std::optional<int32_t> Tokenizer::pad() const { return impl_->pad; }
std::optional<int32_t> Tokenizer::im_start() const { return impl_->im_start; }
std::optional<int32_t> Tokenizer::im_end() const { return impl_->im_end; }
std::optional<int32_t> Tokenizer::end_of_text() const { return impl_->end_of_text; }
std::optional<int32_t> Tokenizer::think() const { return impl_->think; }
std::optional<int32_t> Tokenizer::end_think() const { return impl_->end_think; }
bool Tokenizer::adds_bos() const { return impl_->add_bos; }
bool Tokenizer::uses_nfc() const { return impl_->nfc; }
const std::string& Tokenizer::split_pattern() const { return impl_->split_pattern; }
const std::string& Tokenizer::source() const { return impl_->source; }

bool Tokenizer::is_end_of_generation(int32_t id) const {
  return (impl_->im_end && id == *impl_->im_end) || (impl_->end_of_text && id == *impl_->end_of_text) ||
         (impl_->eos && id == *impl_->eos);
}

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, DecodeOptions options)
    : impl_(tokenizer.impl_), options_(options) {}

std::string StreamingDecoder::push(int32_t id) {
  impl_->check_id(id);
  std::string out;
  if (impl_->skipped(id, options_)) return out;
  pending_ += impl_->pieces[static_cast<size_t>(id)];
  tokenizer_detail::drain_utf8(pending_, out, /*final=*/false);
  return out;
}

std::string StreamingDecoder::flush() {
  std::string out;
  tokenizer_detail::drain_utf8(pending_, out, /*final=*/true);
  return out;
}

}  // namespace peregrine
