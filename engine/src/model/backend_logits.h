// Logits rows that a device backend keeps in its memory after Model::evaluate / evaluate_mtp,
// until the host asks for them: Sequence::logits() downloads them then (once), while sampling
// reads only a few candidates selected where they are (Model::top_logits).
#pragma once

#include <cstdint>
#include <vector>

#include "peregrine/backend.h"

namespace peregrine {

struct BackendLogits {
  BackendArray<float> rows;  // [capacity][n_vocab]; grows to the widest call, never shrinks
  int64_t n_vocab = 0;
  int64_t call_rows = 0;     // rows the last call wrote, from row 0 (rollback picks one of them)
  int64_t first = 0;         // the current rows: [first, first + count) of `rows`
  int64_t count = 0;         // 0: nothing here, the host vector is the only copy
  bool host_stale = false;   // the host vector does not hold the current rows yet

  // Makes `host` hold the current rows, downloading them the first time they are asked for.
  void to_host(std::vector<float>& host) {
    if (!host_stale) return;
    host.resize(static_cast<size_t>(count * n_vocab));
    rows.backend()->download(host.data(), rows.data() + first * n_vocab, host.size() * sizeof(float));
    host_stale = false;
  }
  // The host vector becomes the only copy (a host backend, a restore, a reset).
  void forget() {
    call_rows = first = count = 0;
    host_stale = false;
  }
};

}  // namespace peregrine
