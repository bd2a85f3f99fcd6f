// Splits a streamed answer into its thinking and its visible answer at Qwen's <think> / </think>
// tags, which may arrive cut across pieces. A tail that could still grow into a tag is held back
// until the next piece (or finish()) decides, so the GUI never shows half a tag.
#pragma once

#include <string>
#include <string_view>

#include <QString>

#include "peregrine/chat_template.h"

namespace peregrine::app {

struct SplitText {
  QString thinking;
  QString answer;
  bool isEmpty() const { return thinking.isEmpty() && answer.isEmpty(); }
};

class ThinkSplitter {
 public:
  // startsInThinking: the prompt already opened a think block (Qwen 3.5/3.6 with thinking on
  // end the generation prompt with "<think>\n"), so the first tokens are thinking.
  explicit ThinkSplitter(bool startsInThinking = false);

  SplitText feed(std::string_view utf8);
  // Releases what was held back (the answer ended inside something that looked like a tag).
  SplitText finish();
  bool inThinking() const { return inThinking_; }
  // True once a </think> was seen (the UI collapses the thinking block then).
  bool thinkingClosed() const { return thinkingClosed_; }

 private:
  void append(std::string_view text, SplitText& out);

  bool inThinking_;
  bool thinkingClosed_ = false;
  bool skipNewlines_;  // the newlines right after a tag are layout, not content
  std::string held_;
};

// Whether the rendered prompt for `options` leaves generation inside an open think block.
bool generationStartsInThinking(peregrine::ChatFormat format, const peregrine::ChatOptions& options);

}  // namespace peregrine::app
