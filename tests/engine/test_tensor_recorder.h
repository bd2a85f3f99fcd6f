// Records the named tensors the forward pass shows a sequence's observer (model/tensor_observer.h)
// for tests: per (name, layer) the values of every step since the last clear(), appended in order,
// so a call of N tokens gives [N][cols] per layer however many steps it took.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/tensor_observer.h"
#include "peregrine/model.h"

namespace peregrine::test {

class TensorRecorder {
 public:
  // Installs itself as `seq`'s observer until destroyed (declare it after the sequence).
  explicit TensorRecorder(Sequence& seq) : seq_(seq) {
    observe_tensors(seq_, [this](std::string_view name, int64_t layer, const ObservedTensor& t) { record(name, layer, t); });
  }
  ~TensorRecorder() { observe_tensors(seq_, {}); }
  TensorRecorder(const TensorRecorder&) = delete;
  TensorRecorder& operator=(const TensorRecorder&) = delete;

  // One observer call: what was shown, in the order it was shown.
  struct Shown {
    std::string name;
    int64_t layer = 0, rows = 0, cols = 0;
    bool ids = false;  // int32 values (else float)
    bool operator==(const Shown&) const = default;
  };

  void clear() {
    floats_.clear();
    ids_.clear();
    shown_.clear();
  }
  const std::vector<Shown>& shown() const { return shown_; }
  // Everything shown as `name` of `layer` since clear(); empty when nothing was.
  std::span<const float> floats(std::string_view name, int64_t layer) const { return find(floats_, name, layer); }
  std::span<const int32_t> ids(std::string_view name, int64_t layer) const { return find(ids_, name, layer); }
  // floats(name, l) of the layers 0..n_layers-1, one after another.
  std::vector<float> floats_of_layers(std::string_view name, int64_t n_layers) const {
    std::vector<float> all;
    for (int64_t l = 0; l < n_layers; ++l) {
      const auto part = floats(name, l);
      all.insert(all.end(), part.begin(), part.end());
    }
    return all;
  }
  // The shared expert's scales sigmoid(gate logit) of `layer`, computed as the forward pass does.
  std::vector<float> shared_expert_scales(int64_t layer) const {
    std::vector<float> out;
    for (float g : floats(tensor_name::kSharedExpertGate, layer)) out.push_back(1.0f / (1.0f + std::exp(-g)));
    return out;
  }

 private:
  using Key = std::pair<std::string, int64_t>;
  template <class T>
  static std::span<const T> find(const std::map<Key, std::vector<T>>& m, std::string_view name, int64_t layer) {
    const auto it = m.find(Key(std::string(name), layer));
    return it == m.end() ? std::span<const T>() : std::span<const T>(it->second);
  }
  void record(std::string_view name, int64_t layer, const ObservedTensor& t) {
    const bool ids = std::holds_alternative<std::span<const int32_t>>(t.values);
    shown_.push_back({std::string(name), layer, t.rows, t.cols, ids});
    if (ids) {
      const auto v = t.as<int32_t>();
      auto& dst = ids_[Key(std::string(name), layer)];
      dst.insert(dst.end(), v.begin(), v.end());
    } else {
      const auto v = t.as<float>();
      auto& dst = floats_[Key(std::string(name), layer)];
      dst.insert(dst.end(), v.begin(), v.end());
    }
  }

  Sequence& seq_;
  std::map<Key, std::vector<float>> floats_;
  std::map<Key, std::vector<int32_t>> ids_;
  std::vector<Shown> shown_;
};

}  // namespace peregrine::test
