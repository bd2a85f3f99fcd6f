#include "tokenizer/byte_level.h"

#include <array>
#include <cstdint>

namespace peregrine::tokenizer_detail {
namespace {

bool maps_to_itself(unsigned b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {  // the alphabet stays below U+0144
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

struct Alphabet {
  std::array<uint32_t, 256> code_point{};
  std::array<std::string, 256> spelling;
  std::array<int16_t, 324> byte_of_code_point{};  // -1: not in the alphabet

  Alphabet() {
    byte_of_code_point.fill(-1);
    uint32_t next = 256;
    for (unsigned b = 0; b < 256; ++b) {
      code_point[b] = maps_to_itself(b) ? b : next++;
      append_utf8(code_point[b], spelling[b]);
      byte_of_code_point[code_point[b]] = static_cast<int16_t>(b);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet instance;
  return instance;
}

}  // namespace

const std::string& byte_level_char(unsigned char byte) { return alphabet().spelling[byte]; }

std::string bytes_to_byte_level(std::string_view raw) {
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) out += alphabet().spelling[c];
  return out;
}

std::optional<std::string> byte_level_to_bytes(std::string_view text) {
  const Alphabet& a = alphabet();
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    auto c0 = static_cast<unsigned char>(text[i]);
    uint32_t cp;
    if (c0 < 0x80) {
      cp = c0;
      i += 1;
    } else if ((c0 & 0xE0) == 0xC0 && i + 1 < text.size() &&
               (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80 && c0 >= 0xC2) {
      cp = ((c0 & 0x1Fu) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3Fu);
      i += 2;
    } else {
      return std::nullopt;  // 3+ byte characters are outside the alphabet (max U+0143)
    }
    if (cp >= a.byte_of_code_point.size() || a.byte_of_code_point[cp] < 0) return std::nullopt;
    out += static_cast<char>(a.byte_of_code_point[cp]);
  }
  return out;
}

}  // namespace peregrine::tokenizer_detail
