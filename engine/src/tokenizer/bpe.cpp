#include "tokenizer/bpe.h"

#include <algorithm>
#include <climits>
#include <queue>

namespace peregrine::tokenizer_detail {
namespace {

inline uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

inline uint64_t hash_key(uint64_t key) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdull;
  key ^= key >> 33;
  return key;
}

// Words up to this many bytes are merged by rescanning all pairs after each merge: for the
// short words of ordinary text that beats maintaining a heap.
constexpr size_t kShortWord = 24;

}  // namespace

BpeModel::BpeModel(const std::array<int32_t, 256>& byte_ids, const std::vector<BpeMerge>& merges)
    : byte_ids_(byte_ids) {
  size_t capacity = 16;
  while (capacity < merges.size() * 2) capacity *= 2;
  table_.assign(capacity, Entry{kEmpty, -1, -1});
  mask_ = capacity - 1;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const BpeMerge& m = merges[rank];
    const uint64_t key = pair_key(m.left, m.right);
    uint64_t slot = hash_key(key) & mask_;
    while (table_[slot].key != kEmpty && table_[slot].key != key) slot = (slot + 1) & mask_;
    if (table_[slot].key == key) continue;  // a repeated pair keeps its first (best) rank
    table_[slot] = Entry{key, static_cast<int32_t>(rank), m.merged};
  }
}

const BpeModel::Entry* BpeModel::find(int32_t left, int32_t right) const {
  const uint64_t key = pair_key(left, right);
  uint64_t slot = hash_key(key) & mask_;
  while (true) {
    const Entry& e = table_[slot];
    if (e.key == key) return &e;
    if (e.key == kEmpty) return nullptr;
    slot = (slot + 1) & mask_;
  }
}

void BpeModel::encode(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() == 1) {
    out.push_back(byte_ids_[static_cast<unsigned char>(word[0])]);
  } else if (word.size() <= kShortWord) {
    encode_short(word, out);
  } else {
    encode_long(word, out);
  }
}

void BpeModel::encode_short(std::string_view word, std::vector<int32_t>& out) const {
  // ids[i] and the rank of the pair (ids[i], ids[i+1]); a merge only changes the two ranks
  // next to it, so each merge costs two lookups plus a scan of plain integers.
  constexpr int32_t kNoMerge = INT32_MAX;
  int32_t ids[kShortWord];
  int32_t ranks[kShortWord];
  int32_t merged[kShortWord];
  size_t n = word.size();
  for (size_t i = 0; i < n; ++i) ids[i] = byte_ids_[static_cast<unsigned char>(word[i])];
  auto rank_pair = [&](size_t i) {
    const Entry* e = find(ids[i], ids[i + 1]);
    ranks[i] = e ? e->rank : kNoMerge;
    merged[i] = e ? e->merged : -1;
  };
  for (size_t i = 0; i + 1 < n; ++i) rank_pair(i);
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i) {
      if (ranks[i] < ranks[best]) best = i;  // strict: the leftmost of equal ranks wins
    }
    if (ranks[best] == kNoMerge) break;
    ids[best] = merged[best];
    std::copy(ids + best + 2, ids + n, ids + best + 1);
    if (best + 2 < n - 1) {
      std::copy(ranks + best + 2, ranks + n - 1, ranks + best + 1);
      std::copy(merged + best + 2, merged + n - 1, merged + best + 1);
    }
    --n;
    if (best + 1 < n) rank_pair(best);
    if (best > 0) rank_pair(best - 1);
  }
  out.insert(out.end(), ids, ids + n);
}

void BpeModel::encode_long(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev;  // -1: none
    int32_t next;  // -1: none
  };
  struct Candidate {
    int32_t rank;
    int32_t left;   // position of the left symbol (stable: merges keep the left position)
    int32_t right;  // position of the right symbol when the candidate was made
    int32_t left_id, right_id, merged;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };

  const auto n = static_cast<int32_t>(word.size());
  std::vector<Symbol> symbols(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = Symbol{byte_ids_[static_cast<unsigned char>(word[i])], i - 1, i + 1 < n ? i + 1 : -1};
  }
  std::vector<Candidate> heap_storage;
  heap_storage.reserve(static_cast<size_t>(n));
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap(std::greater<>{},
                                                                              std::move(heap_storage));
  auto consider = [&](int32_t left) {
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    if (const Entry* e = find(symbols[left].id, symbols[right].id)) {
      heap.push(Candidate{e->rank, left, right, symbols[left].id, symbols[right].id, e->merged});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);

  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Symbol& left = symbols[c.left];
    // Stale when either side has been merged since: ids only ever grow into longer tokens,
    // so equal ids and adjacency mean the pair is still there.
    if (left.id != c.left_id || left.next != c.right || symbols[c.right].id != c.right_id) continue;
    Symbol& right = symbols[c.right];
    left.id = c.merged;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    right.id = -1;  // dead
    if (left.prev >= 0) consider(left.prev);
    consider(c.left);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

}  // namespace peregrine::tokenizer_detail
