// A non-finite value (NaN, ±Inf) in a small float tensor (norms, conv kernels, the delta-net A and
// dt bias) is refused at load, naming the tensor: with 8-bit activations it gave finite but wrong
// logits (the NaN was rounded away), with float activations all-NaN ones.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <unistd.h>

#include "peregrine/backend.h"
#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/model.h"
#include "test_engine_util.h"

namespace peregrine {
namespace {

struct Poison {
  const char* tensor;
  int64_t index;
  float value;
};

// A copy of tiny-f32 with one f32 value of one tensor replaced.
std::filesystem::path poisoned_copy(const Poison& p) {
  const GgufFile source = GgufFile::open(test::tiny_model_path());
  const GgufTensorInfo* t = source.find_tensor(p.tensor);
  EXPECT_NE(t, nullptr) << p.tensor;
  EXPECT_EQ(t->type, TensorType::F32) << p.tensor;
  std::vector<uint8_t> bytes(source.bytes().begin(), source.bytes().end());
  std::memcpy(bytes.data() + (t->data - source.bytes().data()) + p.index * sizeof(float), &p.value, sizeof(float));
  const auto path = std::filesystem::temp_directory_path() /
                    ("peregrine-poisoned-" + std::to_string(::getpid()) + ".gguf");
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return path;
}

std::string spelled(float v) { return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

class NonFiniteWeights : public ::testing::TestWithParam<Poison> {};

TEST_P(NonFiniteWeights, AreRefusedAtLoadNamingTheTensor) {
  const Poison& p = GetParam();
  const auto path = poisoned_copy(p);
  std::string error = "no error";
  {
    const GgufFile file = GgufFile::open(path);
    ModelOptions o;
    o.context_length = 64;
    try {
      Model::load(file, o, nullptr, make_cpu_backend(1, ActivationMode::Quantized8));
    } catch (const Error& e) {
      error = e.what();
    }
  }
  std::filesystem::remove(path);
  EXPECT_NE(error.find(std::string("tensor '") + p.tensor + "'"), std::string::npos) << error;
  EXPECT_NE(error.find(spelled(p.value) + " at index " + std::to_string(p.index)), std::string::npos) << error;
}

INSTANTIATE_TEST_SUITE_P(
    Tensors, NonFiniteWeights,
    ::testing::Values(Poison{"blk.0.attn_norm.weight", 3, std::numeric_limits<float>::quiet_NaN()},
                      Poison{"output_norm.weight", 0, std::numeric_limits<float>::infinity()},
                      Poison{"blk.1.ssm_a", 2, -std::numeric_limits<float>::infinity()},
                      Poison{"blk.2.ssm_conv1d.weight", 17, std::numeric_limits<float>::quiet_NaN()},
                      Poison{"blk.3.attn_k_norm.weight", 5, std::numeric_limits<float>::quiet_NaN()}),
    [](const auto& info) { return "case" + std::to_string(info.index); });

}  // namespace
}  // namespace peregrine
