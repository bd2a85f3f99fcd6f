#include "bridge/think_splitter.h"

#include <algorithm>

namespace peregrine::app {
namespace {

constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

// Length of the longest tail of `text` that is a proper prefix of `tag`.
size_t partialTagTail(std::string_view text, std::string_view tag) {
  for (size_t k = std::min(text.size(), tag.size() - 1); k > 0; --k) {
    if (text.substr(text.size() - k) == tag.substr(0, k)) return k;
  }
  return 0;
}

}  // namespace

ThinkSplitter::ThinkSplitter(bool startsInThinking)
    : inThinking_(startsInThinking), skipNewlines_(startsInThinking) {}

void ThinkSplitter::append(std::string_view text, SplitText& out) {
  if (skipNewlines_) {
    const size_t first = text.find_first_not_of('\n');
    if (first == std::string_view::npos) return;
    text.remove_prefix(first);
    skipNewlines_ = false;
  }
  if (text.empty()) return;
  QString& target = inThinking_ ? out.thinking : out.answer;
  target += QString::fromUtf8(text.data(), int(text.size()));
}

SplitText ThinkSplitter::feed(std::string_view utf8) {
  SplitText out;
  std::string buffer = std::move(held_);
  held_.clear();
  buffer.append(utf8);
  std::string_view rest = buffer;
  while (!rest.empty()) {
    const std::string_view tag = inThinking_ ? kClose : kOpen;
    const size_t pos = rest.find(tag);
    if (pos == std::string_view::npos) {
      const size_t keep = partialTagTail(rest, tag);
      append(rest.substr(0, rest.size() - keep), out);
      held_.assign(rest.substr(rest.size() - keep));
      break;
    }
    append(rest.substr(0, pos), out);
    rest.remove_prefix(pos + tag.size());
    if (inThinking_) thinkingClosed_ = true;
    inThinking_ = !inThinking_;
    skipNewlines_ = true;
  }
  return out;
}

SplitText ThinkSplitter::finish() {
  SplitText out;
  const std::string held = std::move(held_);
  held_.clear();
  append(held, out);
  return out;
}

bool generationStartsInThinking(peregrine::ChatFormat format, const peregrine::ChatOptions& options) {
  const std::string prompt = peregrine::ChatTemplate::create(format)->generation_prompt(options);
  const size_t open = prompt.rfind(kOpen);
  return open != std::string::npos && prompt.find(kClose, open) == std::string::npos;
}

}  // namespace peregrine::app
