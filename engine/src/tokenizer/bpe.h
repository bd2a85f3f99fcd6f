// The BPE merge core: turns the bytes of one pre-token into token ids by repeatedly merging
// the adjacent pair of lowest merge rank (leftmost first on ties), exactly as HF's BPE model.
// Short words use a direct scan, long ones a heap over a linked list, so a 5000-byte word
// costs O(n log n), not O(n^2).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace peregrine::tokenizer_detail {

struct BpeMerge {
  int32_t left;
  int32_t right;
  int32_t merged;  // id of left+right
};

class BpeModel {
 public:
  // byte_ids[b]: id of the single-byte token b. merges: in rank order (rank = index).
  BpeModel(const std::array<int32_t, 256>& byte_ids, const std::vector<BpeMerge>& merges);

  // Appends the ids of `word` (raw bytes, non-empty) to `out`.
  void encode(std::string_view word, std::vector<int32_t>& out) const;

 private:
  struct Entry {
    uint64_t key;  // left << 32 | right; kEmpty marks a free slot
    int32_t rank;
    int32_t merged;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  // Rank and result of merging (left, right); rank < 0 when there is no such merge.
  const Entry* find(int32_t left, int32_t right) const;
  void encode_short(std::string_view word, std::vector<int32_t>& out) const;
  void encode_long(std::string_view word, std::vector<int32_t>& out) const;

  std::array<int32_t, 256> byte_ids_;
  std::vector<Entry> table_;  // open addressing, power-of-two size, linear probing
  uint64_t mask_ = 0;
};

}  // namespace peregrine::tokenizer_detail
