// Unicode NFC (canonical composition) via utf8proc, with a fast path for text that NFC cannot
// change.
#pragma once

#include <string>
#include <string_view>

namespace peregrine::tokenizer_detail {

// NFC of `text` (valid UTF-8). Returns `text` itself when no code point >= U+0300 occurs
// (all of those are NFC-stable and cannot combine), otherwise the normalized string written
// into `storage`.
std::string_view nfc(std::string_view text, std::string& storage);

}  // namespace peregrine::tokenizer_detail
