// Splits a streamed answer into the model's thinking and its visible answer at Qwen's <think> /
// </think> tags, which may arrive cut across pieces. A tail that could still grow into a tag is
// held back until the next piece (or finish()) decides, so no client ever sees half a tag.
// The engine runs it because it renders the chat template and so knows where generation starts.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace peregrine {

// Where generated text starts relative to the model's think block.
enum class ThinkSplit {
  Off,               // no chat template (text or token-id prompts): everything is answer
  StartsInAnswer,    // a later <think> opens the block
  StartsInThinking,  // the generation prompt ended inside an open <think> (Qwen 3.5/3.6, thinking on)
};

enum class TextPart { Thinking, Answer };

class ThinkSplitter {
 public:
  using Sink = std::function<void(TextPart part, std::string_view text)>;

  explicit ThinkSplitter(ThinkSplit split);

  // Passes the text of `piece` to `sink` in order, tags removed, at most one call per part run.
  void feed(std::string_view piece, const Sink& sink);
  // Releases what was held back (the answer ended inside something that looked like a tag).
  void finish(const Sink& sink);
  bool in_thinking() const { return in_thinking_; }

 private:
  void pass(std::string_view text, const Sink& sink);

  bool enabled_;
  bool in_thinking_;
  bool skip_newlines_;  // the newlines right after a tag are layout, not content
  std::string held_;
};

}  // namespace peregrine
