// The logits rows of a sequence's last evaluate (or evaluate_mtp) as the Sampler reads them
// (LogitsSource): candidates are selected where the rows are (Model::top_logits), and the whole
// row is downloaded only when the sampling parameters need every logit.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "peregrine/model.h"
#include "peregrine/sampler.h"

namespace peregrine {

class SequenceLogits final : public LogitsSource {
 public:
  SequenceLogits(Model& model, Sequence& sequence, LogitRows which);

  // The model has just evaluated `n_rows` rows; row 0 becomes the current row.
  void refresh(int64_t n_rows);
  // Makes row `r` of them the current row.
  void select(int64_t r);

  std::span<const float> row() override;
  bool has_candidates() const override { return true; }
  // Without penalties the candidates of the current row and of every row after it are selected
  // in one call (a verify pass: one backend call for all its rows) and handed out row by row.
  void top_k(const LogitPenalties& penalties, int64_t n_valid, int64_t k, int32_t* ids, float* values) override;

 private:
  Model& model_;
  Sequence& seq_;
  LogitRows which_;
  int64_t n_vocab_ = 0;
  int64_t n_rows_ = 0, row_ = 0;
  // Candidates of rows [cached_first_, n_rows_) for (cached_k_, cached_valid_); cached_k_ 0: none.
  int64_t cached_first_ = 0, cached_k_ = 0, cached_valid_ = 0;
  std::vector<int32_t> cached_ids_;
  std::vector<float> cached_values_;
};

}  // namespace peregrine
