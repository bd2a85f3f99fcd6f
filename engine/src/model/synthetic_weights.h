// Random weight values for synthetic models: which distribution each tensor gets and a
// counter-based generator, so any row can be produced independently (and in parallel) and
// the result depends only on the seed.
#pragma once

#include <cstdint>
#include <string>

namespace peregrine::synthetic {

// How a tensor's values are drawn (tests/data/qwen35-tiny/README.md "How the weights were made").
struct WeightInit {
  enum class Kind { Normal, NormWeight, SsmA, DtBias } kind = Kind::Normal;
  float scale = 1.0f;  // Normal: standard deviation
  bool operator==(const WeightInit&) const = default;
};

// `fan_in` = ne[0]; `n_trunk` sets the smaller gain of the residual-branch output projections.
WeightInit weight_init_for(const std::string& name, int64_t fan_in, int64_t n_trunk);

uint64_t hash_combine(uint64_t a, uint64_t b);
uint64_t hash_string(const std::string& s);

// Fills out[0..n) with the values of row `row` of a tensor whose stream key is `key`.
void generate_row(const WeightInit& init, uint64_t key, int64_t row, int64_t n, float* out);

}  // namespace peregrine::synthetic
