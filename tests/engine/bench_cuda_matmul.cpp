// GEMV throughput of CudaBackend::matmul on Qwen 3.6 27B-shaped matrices (docs/cuda.md, "Matrix
// products"): for each weight type and matrix, the GPU result is checked once against the CPU
// backend's float path, then the product is timed with CUDA events for 1..9 activation rows.
// Prints one JSON line per measurement: the achieved weight-read rate (weight bytes / time) and
// its fraction of the device's measured read bandwidth (the roofline of a memory-bound GEMV).
//
// Usage: bench_cuda_matmul [type...]   e.g. bench_cuda_matmul q4_K q6_K   (default: all types)
// Without a CUDA device it prints one JSON line saying so and exits 0.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_bandwidth.h"
#include "peregrine/backend.h"
#include "peregrine/quant.h"

namespace {

using namespace peregrine;

struct Matrix {
  const char* name;
  int64_t n_out, n_in;
};

// The dense 27B layer's largest products (hidden 5120, MLP 17408, delta-net q|k|v 10240 and
// value dim 6144).
const Matrix kMatrices[] = {
    {"ffn_up", 17408, 5120},
    {"ffn_down", 5120, 17408},
    {"attn_qkv", 10240, 5120},
    {"ssm_out", 5120, 6144},
};

const TensorType kTypes[] = {TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::IQ4_XS,
                             TensorType::Q8_0, TensorType::F16,  TensorType::BF16, TensorType::F32};

constexpr uint64_t kRotationBytes = 512ull << 20;  // copies cycled so the weights never sit in L2
constexpr int kTimedCalls = 50;

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

// Largest |gpu − cpu| relative to Σ|w·x| over the outputs of one n_tokens product.
double max_relative_error(Backend& gpu, Backend& cpu, const WeightView& cpu_view, const WeightView& gpu_view,
                          const std::vector<float>& dequantized, int64_t n_tokens) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n_tokens * cpu_view.n_in));
  for (auto& v : x) v = dist(rng);
  std::vector<float> expected(static_cast<size_t>(n_tokens * cpu_view.n_out)), actual(expected.size());
  cpu.matmul(cpu_view, x.data(), expected.data(), n_tokens);
  BackendArray<float> xd(gpu, static_cast<int64_t>(x.size())), yd(gpu, static_cast<int64_t>(actual.size()));
  gpu.upload(xd.data(), x.data(), xd.bytes());
  gpu.matmul(gpu_view, xd.data(), yd.data(), n_tokens);
  gpu.download(actual.data(), yd.data(), yd.bytes());
  double worst = 0.0;
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t r = 0; r < cpu_view.n_out; ++r) {
      double magnitude = 0.0;
      for (int64_t j = 0; j < cpu_view.n_in; ++j)
        magnitude += std::abs(static_cast<double>(dequantized[r * cpu_view.n_in + j]) * x[t * cpu_view.n_in + j]);
      const double err = std::abs(static_cast<double>(actual[t * cpu_view.n_out + r]) - expected[t * cpu_view.n_out + r]);
      worst = std::max(worst, std::isnan(err) ? INFINITY : err / std::max(magnitude, 1e-30));
    }
  return worst;
}

void bench_matrix(cuda::CudaBackend& gpu, Backend& cpu, TensorType type, const Matrix& m, double read_gbs) {
  const std::string type_name(tensor_type_info(type).name);
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> values(static_cast<size_t>(m.n_out * m.n_in));
  for (auto& v : values) v = dist(rng);
  const uint64_t row_bytes = quant::row_bytes(type, m.n_in);
  const uint64_t weight_bytes = row_bytes * static_cast<uint64_t>(m.n_out);
  std::vector<uint8_t> bytes(weight_bytes);
  quant::quantize(type, values.data(), bytes.data(), m.n_out, m.n_in);
  quant::dequantize(type, bytes.data(), values.data(), static_cast<int64_t>(values.size()));

  const WeightView cpu_view{type, bytes.data(), m.n_in, m.n_out, row_bytes, m.name};
  const int copies = static_cast<int>(std::max<uint64_t>(2, (kRotationBytes + weight_bytes - 1) / weight_bytes));
  std::vector<WeightView> gpu_views(static_cast<size_t>(copies), cpu_view);
  for (auto& v : gpu_views) v.data = gpu.place_weights(bytes.data(), weight_bytes, m.name);

  const double err1 = max_relative_error(gpu, cpu, cpu_view, gpu_views[0], values, 1);
  const double err9 = max_relative_error(gpu, cpu, cpu_view, gpu_views[0], values, 9);
  std::printf("{\"bench\":\"cuda_matmul\",\"check\":true,\"type\":\"%s\",\"matrix\":\"%s\",\"max_rel_err_1\":%.3g,"
              "\"max_rel_err_9\":%.3g,\"ok\":%s}\n",
              type_name.c_str(), m.name, err1, err9, err1 <= 1e-4 && err9 <= 1e-4 ? "true" : "false");

  BackendArray<float> x(gpu, 9 * m.n_in), y(gpu, 9 * m.n_out);
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  for (int64_t n_tokens = 1; n_tokens <= 9; ++n_tokens) {
    for (int i = 0; i < copies; ++i) gpu.matmul(gpu_views[static_cast<size_t>(i)], x.data(), y.data(), n_tokens);  // warm-up
    check(cudaEventRecord(start, gpu.stream()), "cudaEventRecord");
    for (int i = 0; i < kTimedCalls; ++i)
      gpu.matmul(gpu_views[static_cast<size_t>(i % copies)], x.data(), y.data(), n_tokens);
    check(cudaEventRecord(stop, gpu.stream()), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0.0f;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    const double seconds = static_cast<double>(ms) * 1e-3 / kTimedCalls;
    const double gbs = static_cast<double>(weight_bytes) / seconds / 1e9;
    std::printf("{\"bench\":\"cuda_matmul\",\"type\":\"%s\",\"matrix\":\"%s\",\"n_out\":%lld,\"n_in\":%lld,"
                "\"tokens\":%lld,\"weight_bytes\":%llu,\"us\":%.2f,\"weight_gbs\":%.1f,\"read_bw_fraction\":%.3f}\n",
                type_name.c_str(), m.name, static_cast<long long>(m.n_out), static_cast<long long>(m.n_in),
                static_cast<long long>(n_tokens), static_cast<unsigned long long>(weight_bytes), seconds * 1e6, gbs,
                gbs / read_gbs);
    std::fflush(stdout);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

}  // namespace

int main(int argc, char** argv) {
  if (peregrine::cuda_device_count() == 0) {
    std::printf("{\"bench\":\"cuda_matmul\",\"skipped\":\"%s\"}\n",
                peregrine::cuda_backend_compiled() ? "no CUDA device" : "built without the CUDA backend");
    return 0;
  }
  try {
    std::vector<TensorType> types;
    for (int i = 1; i < argc; ++i) {
      const auto t = tensor_type_from_name(argv[i]);
      if (!t) {
        std::fprintf(stderr, "unknown type '%s'\n", argv[i]);
        return 2;
      }
      types.push_back(*t);
    }
    if (types.empty()) types.assign(std::begin(kTypes), std::end(kTypes));

    const double read_gbs = cuda::measure_read_bandwidth_gbs();
    std::printf("{\"bench\":\"cuda_matmul\",\"read_bandwidth_gbs\":%.1f}\n", read_gbs);
    for (const TensorType type : types) {
      // A fresh backend per type, so the weight copies of one type are freed before the next.
      auto backend = make_cuda_backend(0);
      auto* gpu = dynamic_cast<cuda::CudaBackend*>(backend.get());
      if (!gpu) throw std::runtime_error("make_cuda_backend did not return a CudaBackend");
      // The float path's result does not depend on the thread count; threads only make the check quicker.
      auto cpu = make_cpu_backend(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())), ActivationMode::Float);
      for (const Matrix& m : kMatrices) bench_matrix(*gpu, *cpu, type, m, read_gbs);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_matmul: %s\n", e.what());
    return 1;
  }
  return 0;
}
