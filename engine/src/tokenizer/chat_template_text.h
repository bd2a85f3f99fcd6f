// The Python string operations the Qwen Jinja templates use (str.strip/lstrip/rstrip, split()[0]/[-1],
// the `trim` filter), on UTF-8 text. They are spelled out here because the reference renderer is Python
// Jinja, and its notion of whitespace (str.isspace) is not C's isspace.
#pragma once

#include <string_view>

namespace peregrine::chat_detail {

// Jinja's `x | trim` (Python str.strip()): drops leading and trailing Unicode whitespace as Python's
// str.isspace defines it (ASCII \t\n\v\f\r, \x1c-\x1f, space, U+0085, U+00A0, U+1680, U+2000-U+200A,
// U+2028, U+2029, U+202F, U+205F, U+3000). Invalid UTF-8 counts as non-space.
std::string_view python_trim(std::string_view s);

// str.strip(ch) / str.lstrip(ch) / str.rstrip(ch) for a single character.
std::string_view strip_char(std::string_view s, char ch);
std::string_view lstrip_char(std::string_view s, char ch);
std::string_view rstrip_char(std::string_view s, char ch);

// s.split(sep)[0] and s.split(sep)[-1]: the text before the first / after the last `sep` (all of `s`
// when `sep` does not occur).
std::string_view before_first(std::string_view s, std::string_view sep);
std::string_view after_last(std::string_view s, std::string_view sep);

inline bool contains(std::string_view s, std::string_view needle) {
  return s.find(needle) != std::string_view::npos;
}

}  // namespace peregrine::chat_detail
