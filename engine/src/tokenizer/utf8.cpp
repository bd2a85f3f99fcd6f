#include "tokenizer/utf8.h"

#include <cstdint>

namespace peregrine::tokenizer_detail {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

enum class Scan { Complete, Incomplete, Invalid };

// Examines the character starting at text[pos]. `length` receives the bytes of a complete
// character, of the valid-but-truncated prefix, or of the maximal ill-formed subpart (>= 1).
Scan scan_character(std::string_view text, size_t pos, size_t& length) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  if (lead < 0x80) {
    length = 1;
    return Scan::Complete;
  }
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    length = 1;  // a continuation byte or C0, C1, F5..FF can never start a character
    return Scan::Invalid;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (pos + k >= text.size()) {
      length = k;
      return Scan::Incomplete;
    }
    const auto c = static_cast<unsigned char>(text[pos + k]);
    const bool ok = k == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) {
      length = k;
      return Scan::Invalid;
    }
  }
  length = need + 1;
  return Scan::Complete;
}

}  // namespace

size_t first_invalid_utf8(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    // ASCII fast path, 8 bytes at a time.
    while (pos + 8 <= text.size()) {
      uint64_t word;
      __builtin_memcpy(&word, text.data() + pos, 8);
      if (word & 0x8080808080808080ull) break;
      pos += 8;
    }
    if (pos >= text.size()) break;
    size_t length;
    if (scan_character(text, pos, length) != Scan::Complete) return pos;
    pos += length;
  }
  return text.size();
}

void drain_utf8(std::string& pending, std::string& out, bool final) {
  std::string_view text = pending;
  size_t pos = 0;
  size_t copied_from = 0;  // start of the run of good bytes not yet copied
  while (pos < text.size()) {
    size_t length;
    switch (scan_character(text, pos, length)) {
      case Scan::Complete:
        pos += length;
        break;
      case Scan::Incomplete:
        out.append(text.substr(copied_from, pos - copied_from));
        if (final) {
          out.append(kReplacement);
          pending.clear();
        } else {
          pending.erase(0, pos);
        }
        return;
      case Scan::Invalid:
        out.append(text.substr(copied_from, pos - copied_from));
        out.append(kReplacement);
        pos += length;
        copied_from = pos;
        break;
    }
  }
  out.append(text.substr(copied_from));
  pending.clear();
}

std::string replace_invalid_utf8(std::string_view bytes) {
  std::string pending(bytes);
  std::string out;
  out.reserve(bytes.size());
  drain_utf8(pending, out, /*final=*/true);
  return out;
}

}  // namespace peregrine::tokenizer_detail
