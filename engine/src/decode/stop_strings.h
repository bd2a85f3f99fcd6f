// Stop strings matched on the decoded text, across token boundaries.
//
// Text arrives in pieces (whatever the streaming decoder completed). Any tail of the text seen so
// far that could still become a stop string is held back; once it can no longer match it is
// released, and when a stop string completes, the text before it is released and the rest
// (the stop string and anything after it) is dropped. So a stop string never reaches the client,
// not even in part.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace peregrine {

class StopStringMatcher {
 public:
  // Empty stop strings are ignored.
  explicit StopStringMatcher(std::vector<std::string> stop_strings = {});

  struct Result {
    std::string emit;      // text that is now safe to show
    bool stopped = false;  // a stop string completed; nothing after it will be emitted
  };

  // Adds a piece of text. After a stop, further pushes return nothing.
  Result push(std::string_view piece);
  // The end of the stream: the held-back text is released (it did not become a stop string).
  std::string flush();

  size_t held_bytes() const { return held_.size(); }
  bool stopped() const { return stopped_; }
  bool empty() const { return stops_.empty(); }

 private:
  // Length of the longest suffix of held_ that is a proper prefix of some stop string.
  size_t longest_partial_suffix() const;

  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace peregrine
