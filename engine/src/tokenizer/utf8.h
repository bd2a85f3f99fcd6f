// UTF-8 validation and U+FFFD replacement following Unicode's "maximal subpart" rule (one
// U+FFFD per maximal ill-formed subsequence), which is what Python's errors="replace" and the
// Hugging Face decoders produce.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace peregrine::tokenizer_detail {

// Offset of the first byte that does not start a complete well-formed character, or
// text.size() when all of `text` is well-formed.
size_t first_invalid_utf8(std::string_view text);

inline bool is_valid_utf8(std::string_view text) { return first_invalid_utf8(text) == text.size(); }

// Moves the decodable part of `pending` to `out`, replacing ill-formed subsequences by U+FFFD.
// Unless `final`, a trailing sequence that is a valid but incomplete character stays in
// `pending` (the next bytes may complete it); with `final` it becomes U+FFFD too.
void drain_utf8(std::string& pending, std::string& out, bool final);

// Whole-buffer form: every ill-formed subsequence replaced.
std::string replace_invalid_utf8(std::string_view bytes);

}  // namespace peregrine::tokenizer_detail
