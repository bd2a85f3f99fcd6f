#include "tokenizer/added_tokens.h"

#include <algorithm>

namespace peregrine::tokenizer_detail {

void AddedTokenMatcher::add(int32_t id, std::string text, TokenKind kind) {
  if (text.empty()) return;  // an empty token can never be matched
  const auto first = static_cast<unsigned char>(text[0]);
  tokens_.push_back(Token{std::move(text), id, kind});
  auto& bucket = by_first_byte_[first];
  bucket.push_back(static_cast<uint32_t>(tokens_.size() - 1));
  std::stable_sort(bucket.begin(), bucket.end(),
                   [&](uint32_t a, uint32_t b) { return tokens_[a].text.size() > tokens_[b].text.size(); });
}

bool AddedTokenMatcher::participates(const Token& t, SpecialTokens which) const {
  switch (which) {
    case SpecialTokens::All: return true;
    case SpecialTokens::None: return false;
    case SpecialTokens::UserDefinedOnly: return t.kind == TokenKind::UserDefined;
  }
  return false;
}

void AddedTokenMatcher::split(std::string_view text, SpecialTokens which, std::vector<TextSegment>& out) const {
  if (which == SpecialTokens::None || tokens_.empty()) {
    if (!text.empty()) out.push_back(TextSegment{text, -1});
    return;
  }
  size_t plain_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const Token* hit = nullptr;
    for (uint32_t index : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      const Token& t = tokens_[index];
      if (participates(t, which) && text.compare(pos, t.text.size(), t.text) == 0) {
        hit = &t;  // buckets are longest first, so the first hit is the longest
        break;
      }
    }
    if (!hit) {
      ++pos;
      continue;
    }
    if (pos > plain_start) out.push_back(TextSegment{text.substr(plain_start, pos - plain_start), -1});
    out.push_back(TextSegment{text.substr(pos, hit->text.size()), hit->id});
    pos += hit->text.size();
    plain_start = pos;
  }
  if (plain_start < text.size()) out.push_back(TextSegment{text.substr(plain_start), -1});
}

}  // namespace peregrine::tokenizer_detail
