// A flat open-addressing index from strings to their position in a vector of strings. Used for
// the 150k-entry vocabularies, where node-based maps spend most of the load time on cache misses.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace peregrine::tokenizer_detail {

class StringIndex {
 public:
  // Indexes nothing yet; `strings` must outlive the index and not change.
  explicit StringIndex(const std::vector<std::string>* strings = nullptr) : strings_(strings) {}

  void reserve(size_t n) {
    size_t capacity = 16;
    while (capacity < n * 2) capacity *= 2;
    slots_.assign(capacity, -1);
    mask_ = capacity - 1;
  }

  // Adds (*strings)[id] unless an equal string is already indexed (the first one wins).
  void insert(int32_t id) {
    const std::string_view key = (*strings_)[static_cast<size_t>(id)];
    size_t slot = std::hash<std::string_view>{}(key) & mask_;
    while (slots_[slot] >= 0) {
      if ((*strings_)[static_cast<size_t>(slots_[slot])] == key) return;
      slot = (slot + 1) & mask_;
    }
    slots_[slot] = id;
  }

  // Position of `key`, or -1.
  int32_t find(std::string_view key) const {
    if (slots_.empty()) return -1;
    size_t slot = std::hash<std::string_view>{}(key) & mask_;
    while (slots_[slot] >= 0) {
      if ((*strings_)[static_cast<size_t>(slots_[slot])] == key) return slots_[slot];
      slot = (slot + 1) & mask_;
    }
    return -1;
  }

 private:
  const std::vector<std::string>* strings_;
  std::vector<int32_t> slots_;
  size_t mask_ = 0;
};

}  // namespace peregrine::tokenizer_detail
