// AnswerText — the text side of one generation: sampled ids become UTF-8 text (StreamingDecoder),
// stop strings are cut off (StopStringMatcher), the model's think block is split from the answer
// (ThinkSplitter), and what is safe to show goes out as event::TokenText with the ids it came
// from. One per generation.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "decode/stop_strings.h"
#include "decode/think_splitter.h"
#include "peregrine/engine.h"
#include "peregrine/tokenizer.h"

namespace peregrine {

class AnswerText {
 public:
  using Sink = std::function<void(event::TokenText&&)>;

  AnswerText(const Tokenizer& tokenizer, std::vector<std::string> stop_strings, ThinkSplit split, Sink sink);

  // Adds a sampled id. Returns true when a stop string completed (nothing after it is emitted).
  bool push(int32_t id);
  // The end of the stream: releases what is still held back (incomplete characters, text that
  // could have become a stop string or a tag) unless a stop string cut the text. Returns true when
  // the released tail completed a stop string.
  bool finish();

 private:
  void split(const std::string& text);
  void emit(TextPart part, std::string_view text);

  StreamingDecoder decoder_;
  StopStringMatcher stops_;
  ThinkSplitter splitter_;
  Sink sink_;
  std::vector<int32_t> ids_;  // ids whose text has not been handed out yet
  bool stopped_ = false;
};

}  // namespace peregrine
