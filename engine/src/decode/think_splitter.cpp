#include "decode/think_splitter.h"

#include <algorithm>

namespace peregrine {
namespace {

constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

// Length of the longest tail of `text` that is a proper prefix of `tag`.
size_t partial_tag_tail(std::string_view text, std::string_view tag) {
  for (size_t k = std::min(text.size(), tag.size() - 1); k > 0; --k) {
    if (text.substr(text.size() - k) == tag.substr(0, k)) return k;
  }
  return 0;
}

}  // namespace

ThinkSplitter::ThinkSplitter(ThinkSplit split)
    : enabled_(split != ThinkSplit::Off),
      in_thinking_(split == ThinkSplit::StartsInThinking),
      skip_newlines_(split == ThinkSplit::StartsInThinking) {}

void ThinkSplitter::pass(std::string_view text, const Sink& sink) {
  if (skip_newlines_) {
    const size_t first = text.find_first_not_of('\n');
    if (first == std::string_view::npos) return;
    text.remove_prefix(first);
    skip_newlines_ = false;
  }
  if (!text.empty()) sink(in_thinking_ ? TextPart::Thinking : TextPart::Answer, text);
}

void ThinkSplitter::feed(std::string_view piece, const Sink& sink) {
  if (!enabled_) {
    if (!piece.empty()) sink(TextPart::Answer, piece);
    return;
  }
  std::string buffer = std::move(held_);
  held_.clear();
  buffer.append(piece);
  std::string_view rest = buffer;
  while (!rest.empty()) {
    const std::string_view tag = in_thinking_ ? kClose : kOpen;
    const size_t pos = rest.find(tag);
    if (pos == std::string_view::npos) {
      const size_t keep = partial_tag_tail(rest, tag);
      pass(rest.substr(0, rest.size() - keep), sink);
      held_.assign(rest.substr(rest.size() - keep));
      break;
    }
    pass(rest.substr(0, pos), sink);
    rest.remove_prefix(pos + tag.size());
    in_thinking_ = !in_thinking_;
    skip_newlines_ = true;
  }
}

void ThinkSplitter::finish(const Sink& sink) {
  const std::string held = std::move(held_);
  held_.clear();
  pass(held, sink);
}

}  // namespace peregrine
