#include "tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string>

#include "peregrine/error.h"
#include "peregrine/log.h"

namespace peregrine::tokenizer_detail {
namespace {

// Unicode White_Space (PropList.txt), as class members.
constexpr std::string_view kWhiteSpaceMembers =
    R"(\t-\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof buffer) < 0) return "PCRE2 error " + std::to_string(code);
  return reinterpret_cast<const char*>(buffer);
}

// Per-thread matching state: a match data block (only the whole-match pair is read, so one
// pair is enough for any pattern) and a JIT stack large enough for long runs of spaces.
struct ThreadMatchState {
  pcre2_match_data* match_data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);

  ThreadMatchState() {
    if (!match_data || !jit_stack || !context) throw Error("tokenizer: cannot allocate PCRE2 match state");
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~ThreadMatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_data_free(match_data);
  }
  ThreadMatchState(const ThreadMatchState&) = delete;
  ThreadMatchState& operator=(const ThreadMatchState&) = delete;
};

ThreadMatchState& thread_match_state() {
  thread_local ThreadMatchState state;
  return state;
}

size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  return 2;
}

}  // namespace

std::string with_unicode_white_space(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[++i];
      if (next == 's') {
        if (in_class) {
          out.append(kWhiteSpaceMembers);
        } else {
          out.append("[").append(kWhiteSpaceMembers).append("]");
        }
      } else if (next == 'S' && !in_class) {
        out.append("[^").append(kWhiteSpaceMembers).append("]");
      } else {
        out += c;
        out += next;
      }
      continue;
    }
    out += c;
    if (!in_class && c == '[') {
      in_class = true;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
    } else if (in_class && c == ']') {
      in_class = false;
    }
  }
  return out;
}

RegexSplitter::RegexSplitter(std::string_view pattern, std::string_view source) {
  const std::string rewritten = with_unicode_white_space(pattern);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                        PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (!code_) {
    throw Error(std::string(source) + ": pre-tokenizer regex does not compile (" + pcre2_message(error_code) +
                " at offset " + std::to_string(error_offset) + "): " + std::string(pattern));
  }
  if (const int rc = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE); rc == 0) {
    jit_ = true;
  } else {
    // Still correct without JIT, only slower.
    log::get("tokenizer")->warn("{}: PCRE2 JIT unavailable ({}); using the interpreter", source, pcre2_message(rc));
  }
}

RegexSplitter::~RegexSplitter() { pcre2_code_free(code_); }

void RegexSplitter::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  ThreadMatchState& state = thread_match_state();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.match_data);
  size_t piece_start = 0;  // where the next gap (unmatched text) begins
  size_t search_from = 0;
  while (search_from < text.size()) {
    // pcre2_jit_match skips pcre2_match's per-call option checks; it needs a JIT-compiled
    // pattern and valid UTF-8 (checked once by the caller).
    const int rc = jit_ ? pcre2_jit_match(code_, subject, text.size(), search_from, 0, state.match_data, state.context)
                        : pcre2_match(code_, subject, text.size(), search_from, PCRE2_NO_UTF_CHECK,
                                      state.match_data, state.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw Error("tokenizer: pre-tokenizer regex failed: " + pcre2_message(rc));
    const size_t begin = ovector[0];
    const size_t end = ovector[1];
    if (end == begin) {  // an empty match splits nothing; step over one character
      if (begin >= text.size()) break;
      search_from = begin + utf8_length(static_cast<unsigned char>(text[begin]));
      continue;
    }
    if (begin > piece_start) pieces.push_back(text.substr(piece_start, begin - piece_start));
    pieces.push_back(text.substr(begin, end - begin));
    piece_start = search_from = end;
  }
  if (piece_start < text.size()) pieces.push_back(text.substr(piece_start));
}

}  // namespace peregrine::tokenizer_detail
