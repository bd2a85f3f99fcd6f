// Single-thread throughput of the dot-product kernels in a 4096x4096 matrix-vector product, in GB/s
// of weight bytes streamed, next to the machine's single-thread memory read bandwidth (measured
// first, by the MemoryRead benchmark's loop). The napkin math: a matrix-vector product reads each
// weight byte once, so the best possible time is matrix bytes / read bandwidth; `pct_bw`
// says how close a kernel gets. Matrices are rotated among copies totalling ≥ 128 MiB so the
// weights come from DRAM, not from the 32 MiB L3, as they do in a real model (run with
// --benchmark_filter=Hot to see cache-resident numbers too).
#include <benchmark/benchmark.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BENCH_X86 1
#else
#define BENCH_X86 0
#endif

#include <ctime>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/kernels/vec_dot.h"
#include "peregrine/quant.h"

namespace {

using peregrine::TensorType;
namespace k = peregrine::cpu::kernels;

constexpr int64_t kN = 4096;             // row length and row count
constexpr size_t kColdBytes = 128u << 20;  // rotate over this much weight data

std::vector<float> random_values(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = normal(rng);
  return v;
}

#if BENCH_X86
__attribute__((target("avx2"))) uint64_t read_sum_avx2(const uint8_t* p, size_t bytes) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= bytes; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}
#endif

uint64_t read_sum_scalar(const uint8_t* p, size_t bytes) {
  uint64_t s = 0;
  for (size_t i = 0; i + 8 <= bytes; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    s += v;
  }
  return s;
}

uint64_t read_sum(const uint8_t* p, size_t bytes) {
#if BENCH_X86
  if (k::best_isa() == k::Isa::Avx2) return read_sum_avx2(p, bytes);
#endif
  return read_sum_scalar(p, bytes);
}

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Single-thread DRAM read bandwidth: sum a 512 MiB buffer.
double g_read_bw = 0.0;  // bytes per second, set by MemoryRead

void BM_MemoryRead(benchmark::State& state) {
  const size_t bytes = 512u << 20;
  std::vector<uint8_t> buf(bytes, 1);
  uint64_t sink = 0;
  // CPU time, like the benchmark library's own rates: on a shared machine wall time also counts
  // other processes' turns.
  const double t0 = cpu_seconds();
  for (auto _ : state) {
    sink += read_sum(buf.data(), bytes);
    benchmark::DoNotOptimize(sink);
  }
  const double secs = cpu_seconds() - t0;
  g_read_bw = static_cast<double>(bytes) * static_cast<double>(state.iterations()) / secs;
  state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
}

// The weight matrix: 16 distinct quantized rows tiled to 4096 (quantizing 16M values per type
// would dominate the run), copied until the copies total kColdBytes (or 1 copy when `hot`).
struct Matrices {
  size_t row_bytes = 0;
  size_t matrix_bytes = 0;
  std::vector<std::vector<uint8_t>> copies;
  std::vector<uint8_t> act;
};

Matrices make_matrices(TensorType type, bool hot) {
  Matrices m;
  m.row_bytes = peregrine::quant::row_bytes(type, kN);
  m.matrix_bytes = m.row_bytes * kN;
  constexpr int kDistinct = 16;
  const auto src = random_values(kN * kDistinct, 1);
  std::vector<uint8_t> distinct(m.row_bytes * kDistinct);
  peregrine::quant::quantize(type, src.data(), distinct.data(), kDistinct, kN);
  const size_t n_copies = hot ? 1 : std::max<size_t>(1, (kColdBytes + m.matrix_bytes - 1) / m.matrix_bytes);
  m.copies.resize(n_copies);
  for (auto& c : m.copies) {
    c.resize(m.matrix_bytes);
    for (int64_t r = 0; r < kN; ++r) std::memcpy(c.data() + r * m.row_bytes, distinct.data() + (r % kDistinct) * m.row_bytes, m.row_bytes);
  }
  const auto x = random_values(kN, 2);
  m.act.resize(k::activation_row_bytes(type, kN));
  k::quantize_activations(type, x.data(), kN, m.act.data());
  return m;
}

void BM_MatVec(benchmark::State& state, TensorType type, k::Isa isa, bool hot) {
  if (!k::isa_available(isa)) {
    state.SkipWithError("ISA not available on this CPU");
    return;
  }
  const Matrices m = make_matrices(type, hot);
  const k::VecDotFn fn = k::vec_dot_kernel(type, isa);
  std::vector<float> y(kN);
  size_t copy = 0;
  for (auto _ : state) {
    const uint8_t* w = m.copies[copy].data();
    for (int64_t r = 0; r < kN; ++r) y[r] = fn(kN, w + r * m.row_bytes, m.act.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    copy = (copy + 1) % m.copies.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(m.matrix_bytes) * state.iterations());
  state.counters["MB"] = static_cast<double>(m.matrix_bytes) / 1e6;
  // Napkin math: the fastest possible product streams the matrix once at the read bandwidth.
  // GBps = weight bytes / CPU time (1e9 bytes), pct_bw = that as a share of MemoryRead's rate.
  state.counters["GBps"] = benchmark::Counter(static_cast<double>(m.matrix_bytes) * 1e-9 *
                                                  static_cast<double>(state.iterations()),
                                              benchmark::Counter::kIsRate);
  if (g_read_bw > 0) {
    state.counters["pct_bw"] = benchmark::Counter(
        100.0 * static_cast<double>(m.matrix_bytes) * static_cast<double>(state.iterations()) / g_read_bw,
        benchmark::Counter::kIsRate);
    state.counters["floor_ms"] = 1e3 * static_cast<double>(m.matrix_bytes) / g_read_bw;
  }
}

// Prompt processing: the same matrix against kTokens activation rows, either fused (each weight
// block expanded once per 4 tokens: vec_dot_multi) or one vec_dot per token. GBps counts the
// weight bytes once per pass over the matrix.
constexpr int kTokens = 4;

void BM_MatMat(benchmark::State& state, TensorType type, bool fused) {
  Matrices m = make_matrices(type, /*hot=*/false);
  const size_t act_bytes = m.act.size();
  std::vector<uint8_t> acts(act_bytes * kTokens);
  for (int j = 0; j < kTokens; ++j) {
    const auto x = random_values(kN, 10 + j);
    k::quantize_activations(type, x.data(), kN, acts.data() + j * act_bytes);
  }
  const k::VecDotFn fn = k::vec_dot_kernel(type);
  std::vector<float> y(kN * kTokens);
  size_t copy = 0;
  for (auto _ : state) {
    const uint8_t* w = m.copies[copy].data();
    for (int64_t r = 0; r < kN; ++r) {
      const uint8_t* row = w + r * m.row_bytes;
      if (fused) {
        k::vec_dot_multi(type, kN, row, acts.data(), act_bytes, kTokens, y.data() + r * kTokens);
      } else {
        for (int j = 0; j < kTokens; ++j) y[r * kTokens + j] = fn(kN, row, acts.data() + j * act_bytes);
      }
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    copy = (copy + 1) % m.copies.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(kTokens) * state.iterations());  // tokens
  state.counters["GBps"] = benchmark::Counter(static_cast<double>(m.matrix_bytes) * 1e-9 *
                                                  static_cast<double>(state.iterations()),
                                              benchmark::Counter::kIsRate);
}

void BM_QuantizeActivations(benchmark::State& state, TensorType type) {
  const auto x = random_values(kN, 3);
  std::vector<uint8_t> act(k::activation_row_bytes(type, kN));
  for (auto _ : state) {
    k::quantize_activations(type, x.data(), kN, act.data());
    benchmark::DoNotOptimize(act.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(kN * sizeof(float)) * state.iterations());
}

void register_all() {
  benchmark::RegisterBenchmark("MemoryRead/512MiB", BM_MemoryRead)->Unit(benchmark::kMillisecond)->MinTime(1.0);
  const TensorType types[] = {TensorType::Q4_K, TensorType::Q6_K, TensorType::Q8_0, TensorType::Q5_K,
                              TensorType::Q5_0, TensorType::F16,  TensorType::BF16, TensorType::F32,
                              TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_1, TensorType::Q3_K,
                              TensorType::Q2_K, TensorType::IQ4_NL, TensorType::IQ4_XS};
  for (TensorType t : types) {
    const std::string name(peregrine::tensor_type_info(t).name);
    for (k::Isa isa : {k::Isa::Avx2, k::Isa::Scalar}) {
      for (bool hot : {false, true}) {
        const std::string bench = "MatVec4096/" + name + "/" + k::isa_name(isa) + (hot ? "/Hot" : "/DRAM");
        benchmark::RegisterBenchmark(bench.c_str(), BM_MatVec, t, isa, hot)->Unit(benchmark::kMillisecond);
      }
    }
  }
  for (TensorType t : types) {
    if (t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16) continue;
    for (bool fused : {true, false}) {
      const std::string bench = "MatMat4096x" + std::to_string(kTokens) + "/" +
                                std::string(peregrine::tensor_type_info(t).name) + (fused ? "/multi" : "/single");
      benchmark::RegisterBenchmark(bench.c_str(), BM_MatMat, t, fused)->Unit(benchmark::kMillisecond);
    }
  }
  for (TensorType t : {TensorType::Q4_K, TensorType::Q8_0, TensorType::Q4_1}) {
    const std::string name = "QuantizeActivations4096/" + std::string(peregrine::tensor_type_info(k::activation_type(t)).name);
    benchmark::RegisterBenchmark(name.c_str(), BM_QuantizeActivations, t)->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
