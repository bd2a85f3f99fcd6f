#include "decode/answer_text.h"

#include <utility>

namespace peregrine {

AnswerText::AnswerText(const Tokenizer& tokenizer, std::vector<std::string> stop_strings, ThinkSplit split,
                       Sink sink)
    : decoder_(tokenizer), stops_(std::move(stop_strings)), splitter_(split), sink_(std::move(sink)) {
  ids_.reserve(64);
}

bool AnswerText::push(int32_t id) {
  ids_.push_back(id);
  const StopStringMatcher::Result piece = stops_.push(decoder_.push(id));
  split(piece.emit);
  stopped_ = piece.stopped;
  return stopped_;
}

bool AnswerText::finish() {
  bool stopped_now = false;
  if (!stopped_) {
    std::string tail = stops_.push(decoder_.flush()).emit;
    stopped_now = stops_.stopped();
    if (!stopped_now) tail += stops_.flush();
    split(tail);
    splitter_.finish([this](TextPart part, std::string_view text) { emit(part, text); });
  }
  // Ids whose text was held back and then dropped (a stop string) or was empty still go out.
  if (!ids_.empty()) emit(TextPart::Answer, {});
  return stopped_now;
}

void AnswerText::split(const std::string& text) {
  // Held-back text waits for the ids that decide it; ids alone are not worth an event yet.
  if (!text.empty()) splitter_.feed(text, [this](TextPart part, std::string_view run) { emit(part, run); });
}

void AnswerText::emit(TextPart part, std::string_view text) {
  event::TokenText out;
  (part == TextPart::Thinking ? out.thinking : out.text).assign(text);
  out.ids = std::move(ids_);
  ids_.clear();
  if (sink_) sink_(std::move(out));
}

}  // namespace peregrine
