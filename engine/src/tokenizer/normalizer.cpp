#include "tokenizer/normalizer.h"

#include <cstdlib>
#include <memory>

#include <utf8proc.h>

#include "peregrine/error.h"

namespace peregrine::tokenizer_detail {

std::string_view nfc(std::string_view text, std::string& storage) {
  // U+0300 is encoded CC 80; every byte of a code point below it (leads C2..CB, continuation
  // bytes 80..BF, ASCII) is < 0xCC. Code points below U+0300 are NFC_Quick_Check=Yes and
  // never compose with a following one (combining marks start at U+0300).
  bool may_change = false;
  for (unsigned char c : text) {
    if (c >= 0xCC) {
      may_change = true;
      break;
    }
  }
  if (!may_change) return text;

  utf8proc_uint8_t* result = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                          static_cast<utf8proc_ssize_t>(text.size()), &result,
                                          static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) {
    throw Error(std::string("tokenizer: NFC normalization failed: ") + utf8proc_errmsg(n));
  }
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(result, &std::free);
  storage.assign(reinterpret_cast<const char*>(result), static_cast<size_t>(n));
  return storage;
}

}  // namespace peregrine::tokenizer_detail
