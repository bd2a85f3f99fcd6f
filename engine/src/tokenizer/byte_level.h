// The GPT-2 byte-to-unicode alphabet of byte-level BPE: every byte is shown as one printable
// code point (printable Latin-1 bytes as themselves, the rest as U+0100.. in byte order), so
// vocab files can hold arbitrary bytes as text. "Ġ" is the space byte, "Ċ" the newline.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace peregrine::tokenizer_detail {

// UTF-8 spelling of the code point that stands for `byte`.
const std::string& byte_level_char(unsigned char byte);

// Raw bytes -> byte-level text ("a b" -> "aĠb").
std::string bytes_to_byte_level(std::string_view raw);

// Byte-level text -> raw bytes; nullopt when a character is not in the alphabet.
std::optional<std::string> byte_level_to_bytes(std::string_view text);

}  // namespace peregrine::tokenizer_detail
