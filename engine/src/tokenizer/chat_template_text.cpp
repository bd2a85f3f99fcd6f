#include "tokenizer/chat_template_text.h"

#include <cstdint>

namespace peregrine::chat_detail {
namespace {

bool is_python_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

// Decodes the code point starting at s[i]; returns its length in bytes, 0 when the bytes are not valid
// UTF-8 (then the caller treats them as ordinary text).
size_t decode_at(std::string_view s, size_t i, uint32_t& cp) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b0 = byte(i);
  size_t len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  if (len == 1) {
    cp = b0;
    return 1;
  }
  cp = b0 & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinForLength[len]) return 0;  // overlong forms are not UTF-8
  return len;
}

}  // namespace

std::string_view python_trim(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    uint32_t cp = 0;
    size_t len = decode_at(s, begin, cp);
    if (len == 0 || !is_python_space(cp)) break;
    begin += len;
  }
  size_t end = s.size();
  while (end > begin) {
    // Step back to the first byte of the last code point (at most 4 bytes back).
    size_t start = end - 1;
    while (start > begin && end - start < 4 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    uint32_t cp = 0;
    size_t len = decode_at(s, start, cp);
    if (len != end - start || !is_python_space(cp)) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

std::string_view lstrip_char(std::string_view s, char ch) {
  size_t i = s.find_first_not_of(ch);
  return i == std::string_view::npos ? std::string_view{} : s.substr(i);
}

std::string_view rstrip_char(std::string_view s, char ch) {
  size_t i = s.find_last_not_of(ch);
  return i == std::string_view::npos ? std::string_view{} : s.substr(0, i + 1);
}

std::string_view strip_char(std::string_view s, char ch) { return rstrip_char(lstrip_char(s, ch), ch); }

std::string_view before_first(std::string_view s, std::string_view sep) {
  size_t i = s.find(sep);
  return i == std::string_view::npos ? s : s.substr(0, i);
}

std::string_view after_last(std::string_view s, std::string_view sep) {
  size_t i = s.rfind(sep);
  return i == std::string_view::npos ? s : s.substr(i + sep.size());
}

}  // namespace peregrine::chat_detail
