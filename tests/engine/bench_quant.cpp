// Single-thread throughput of quant::quantize and quant::dequantize per format.
// Bytes processed = the float32 side (4 bytes per value) in both directions, so MB/s figures of
// the two are comparable and translate directly into "seconds per GB of f32 weights".
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "peregrine/quant.h"

namespace {

using peregrine::TensorType;

constexpr int64_t kRowLen = 4096;
constexpr int64_t kRows = 64;  // 256 Ki values = 1 MiB of f32

const std::vector<float>& source() {
  static const std::vector<float> data = [] {
    std::mt19937 rng(7);
    std::normal_distribution<float> dist(0.f, 0.02f);
    std::vector<float> v(static_cast<size_t>(kRowLen * kRows));
    for (auto& x : v) x = dist(rng);
    return v;
  }();
  return data;
}

void BM_Quantize(benchmark::State& state, TensorType type, bool with_importance) {
  const auto& x = source();
  std::vector<uint8_t> out(peregrine::quant::row_bytes(type, kRowLen) * kRows);
  std::vector<float> importance(kRowLen, 1.f);
  for (auto _ : state) {
    peregrine::quant::quantize(type, x.data(), out.data(), kRows, kRowLen, with_importance ? importance.data() : nullptr);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(x.size() * sizeof(float)));
}

void BM_Dequantize(benchmark::State& state, TensorType type) {
  const auto& x = source();
  std::vector<uint8_t> bytes(peregrine::quant::row_bytes(type, kRowLen) * kRows);
  peregrine::quant::quantize(type, x.data(), bytes.data(), kRows, kRowLen);
  std::vector<float> out(x.size());
  for (auto _ : state) {
    peregrine::quant::dequantize(type, bytes.data(), out.data(), static_cast<int64_t>(out.size()));
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size() * sizeof(float)));
}

struct Named {
  const char* name;
  TensorType type;
};

constexpr Named kTypes[] = {
    {"f16", TensorType::F16},   {"bf16", TensorType::BF16}, {"q4_0", TensorType::Q4_0},
    {"q4_1", TensorType::Q4_1}, {"q5_0", TensorType::Q5_0}, {"q5_1", TensorType::Q5_1},
    {"q8_0", TensorType::Q8_0}, {"q2_K", TensorType::Q2_K}, {"q3_K", TensorType::Q3_K},
    {"q4_K", TensorType::Q4_K}, {"q5_K", TensorType::Q5_K}, {"q6_K", TensorType::Q6_K},
    {"q8_K", TensorType::Q8_K}, {"iq4_nl", TensorType::IQ4_NL}, {"iq4_xs", TensorType::IQ4_XS},
};

const int kRegistered = [] {
  for (const auto& t : kTypes) {
    benchmark::RegisterBenchmark((std::string("BM_Quantize/") + t.name).c_str(), BM_Quantize, t.type, false)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("BM_QuantizeImportance/") + t.name).c_str(), BM_Quantize, t.type, true)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("BM_Dequantize/") + t.name).c_str(), BM_Dequantize, t.type)
        ->Unit(benchmark::kMicrosecond);
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
