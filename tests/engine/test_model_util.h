// Helpers for the model-config / synthetic / CLI tests: fixture paths, scratch dirs and a GGUF
// rewriter that makes mutated copies of a fixture.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "peregrine/gguf.h"
#include "peregrine/quant.h"

namespace peregrine::test {

inline std::filesystem::path fixture_dir() { return std::filesystem::path(PEREGRINE_TEST_DATA_DIR) / "qwen35-tiny"; }
inline std::filesystem::path fixture(const std::string& name) { return fixture_dir() / name; }

inline nlohmann::json fixture_json(const std::string& model) {
  std::ifstream in(fixture(model + ".json"));
  return nlohmann::json::parse(in);
}

inline std::vector<uint8_t> file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class ModelScratch {
 public:
  explicit ModelScratch(const std::string& tag)
      : path_(std::filesystem::temp_directory_path() / ("peregrine-model-" + tag + "-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ModelScratch() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// What to change when copying a GGUF file.
struct Mutation {
  std::set<std::string> drop_tensors;
  std::set<std::string> drop_keys;
  std::map<std::string, GgufValue> set_keys;
  // name -> (type, ne): the tensor is declared with this type/shape and filled with zero bytes.
  std::map<std::string, std::pair<TensorType, std::vector<int64_t>>> retype;
  // Extra tensors appended (zero-filled).
  std::vector<std::pair<std::string, std::pair<TensorType, std::vector<int64_t>>>> extra;
};

inline uint64_t zero_bytes_for(TensorType type, const std::vector<int64_t>& ne) {
  int64_t rows = 1;
  for (size_t i = 1; i < ne.size(); ++i) rows *= ne[i];
  return static_cast<uint64_t>(rows) * quant::row_bytes(type, ne[0]);
}

inline void rewrite_gguf(const std::filesystem::path& src, const std::filesystem::path& dst, const Mutation& m) {
  const GgufFile in = GgufFile::open(src);
  GgufWriter out(dst, in.alignment());
  for (const auto& [key, value] : in.metadata())
    if (!m.drop_keys.count(key)) out.set(key, m.set_keys.count(key) ? m.set_keys.at(key) : value);
  for (const auto& [key, value] : m.set_keys)
    if (!in.find(key)) out.set(key, value);
  struct Pending {
    const uint8_t* data;
    uint64_t n;
  };
  std::vector<Pending> data;
  for (const auto& t : in.tensors()) {
    if (m.drop_tensors.count(t.name)) continue;
    if (auto it = m.retype.find(t.name); it != m.retype.end()) {
      out.add_tensor(t.name, it->second.first, it->second.second);
      data.push_back({nullptr, zero_bytes_for(it->second.first, it->second.second)});
    } else {
      out.add_tensor(t.name, t.type, t.ne);
      data.push_back({t.data, t.n_bytes});
    }
  }
  for (const auto& [name, spec] : m.extra) {
    out.add_tensor(name, spec.first, spec.second);
    data.push_back({nullptr, zero_bytes_for(spec.first, spec.second)});
  }
  out.begin();
  for (const auto& d : data) {
    if (d.data) {
      out.write_tensor_data(d.data, d.n);
    } else {
      std::vector<uint8_t> zeros(d.n, 0);
      out.write_tensor_data(zeros.data(), zeros.size());
    }
  }
  out.finish();
}

}  // namespace peregrine::test
