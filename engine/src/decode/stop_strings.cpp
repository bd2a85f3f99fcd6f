#include "decode/stop_strings.h"

#include <algorithm>

namespace peregrine {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings) {
  for (auto& s : stop_strings)
    if (!s.empty()) stops_.push_back(std::move(s));
}

size_t StopStringMatcher::longest_partial_suffix() const {
  size_t best = 0;
  for (const std::string& stop : stops_) {
    const size_t max_len = std::min(stop.size() - 1, held_.size());
    for (size_t len = max_len; len > best; --len) {
      if (std::string_view(held_).substr(held_.size() - len) == std::string_view(stop).substr(0, len)) {
        best = len;
        break;
      }
    }
  }
  return best;
}

StopStringMatcher::Result StopStringMatcher::push(std::string_view piece) {
  Result result;
  if (stopped_) return result;
  if (stops_.empty()) {
    result.emit.assign(piece);
    return result;
  }
  held_.append(piece);
  // The earliest complete stop string wins (two could complete in the same piece).
  size_t first = std::string::npos;
  for (const std::string& stop : stops_) first = std::min(first, held_.find(stop));
  if (first != std::string::npos) {
    result.emit = held_.substr(0, first);
    result.stopped = true;
    stopped_ = true;
    held_.clear();
    return result;
  }
  // held_ contains no complete stop string, so only a tail can still grow into one.
  const size_t keep = longest_partial_suffix();
  result.emit = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return result;
}

std::string StopStringMatcher::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace peregrine
