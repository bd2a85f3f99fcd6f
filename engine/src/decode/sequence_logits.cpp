#include "peregrine/sequence_logits.h"

#include <algorithm>

#include <fmt/format.h>

#include "peregrine/error.h"

namespace peregrine {

SequenceLogits::SequenceLogits(Model& model, Sequence& sequence, LogitRows which)
    : model_(model), seq_(sequence), which_(which), n_vocab_(model.config().n_vocab) {}

void SequenceLogits::refresh(int64_t n_rows) {
  n_rows_ = n_rows;
  row_ = 0;
  cached_k_ = 0;
}

void SequenceLogits::select(int64_t r) {
  if (r < 0 || r >= n_rows_)
    throw Error(fmt::format("sequence logits: row {} of a call with {} rows", r, n_rows_));
  row_ = r;
}

std::span<const float> SequenceLogits::row() {
  const std::span<const float> all = which_ == LogitRows::Mtp ? seq_.mtp_logits() : seq_.logits();
  return all.subspan(static_cast<size_t>(row_ * n_vocab_), static_cast<size_t>(n_vocab_));
}

void SequenceLogits::top_k(const LogitPenalties& penalties, int64_t n_valid, int64_t k, int32_t* ids, float* values) {
  if (!penalties.empty()) {
    // Penalties follow the tokens recorded so far, so each row needs its own call.
    model_.top_logits(seq_, which_, row_, 1, k, n_valid, penalties, ids, values);
    return;
  }
  if (cached_k_ != k || cached_valid_ != n_valid || row_ < cached_first_) {
    const int64_t rows = n_rows_ - row_;
    cached_ids_.resize(static_cast<size_t>(rows * k));
    cached_values_.resize(static_cast<size_t>(rows * k));
    model_.top_logits(seq_, which_, row_, rows, k, n_valid, penalties, cached_ids_.data(), cached_values_.data());
    cached_first_ = row_;
    cached_k_ = k;
    cached_valid_ = n_valid;
  }
  const size_t at = static_cast<size_t>((row_ - cached_first_) * k);
  std::copy_n(cached_ids_.begin() + at, k, ids);
  std::copy_n(cached_values_.begin() + at, k, values);
}

}  // namespace peregrine
