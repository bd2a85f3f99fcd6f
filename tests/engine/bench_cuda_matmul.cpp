// GEMV throughput of CudaBackend::matmul on Qwen 3.6 27B-shaped matrices (docs/cuda.md, "Matrix
// products"): for each weight type, matrix and GEMV version, the GPU result is checked once
// against the CPU backend (v1, v2: float path, bound 1e-4; v3: Quantized8 path, bound 2e-5, both
// relative to Σ|w·x|), then the product is timed with CUDA events for 1..9 activation rows.
// Prints one JSON line per measurement: the achieved weight-read rate (weight bytes / time), its
// fraction of the device's measured read bandwidth (the roofline of a memory-bound GEMV) and the
// napkin math: the bytes a call must move (weights + activations read + outputs written) and the
// time that takes at the measured read bandwidth.
//
// Usage: bench_cuda_matmul [--versions v1,v2,v3] [type...]   e.g. bench_cuda_matmul --versions v1,v2 q4_K
// Without --versions each product runs the version CudaBackend::matmul chooses ("version" names
// it); a version without a kernel for a type is skipped with a JSON line saying so.
// Without a CUDA device it prints one JSON line saying so and exits 0.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <memory>
#include <random>
#include <stdexcept>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_bandwidth.h"
#include "backend/cuda/cuda_gemv.h"
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
// The version a measurement runs: one of cuda_gemv.h's, or nullopt for the backend's own choice.
using VersionChoice = std::optional<cuda::GemvVersion>;

void run_product(cuda::CudaBackend& gpu, VersionChoice version, const WeightView& w, const float* x, float* y,
                 int64_t n_tokens) {
  if (version)
    cuda::run_gemv(gpu, *version, w, x, y, n_tokens);
  else
    gpu.matmul(w, x, y, n_tokens);
}

double max_relative_error(cuda::CudaBackend& gpu, VersionChoice version, Backend& cpu, const WeightView& cpu_view,
                          const WeightView& gpu_view, const std::vector<float>& dequantized, int64_t n_tokens) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n_tokens * cpu_view.n_in));
  for (auto& v : x) v = dist(rng);
  std::vector<float> expected(static_cast<size_t>(n_tokens * cpu_view.n_out)), actual(expected.size());
  cpu.matmul(cpu_view, x.data(), expected.data(), n_tokens);
  BackendArray<float> xd(gpu, static_cast<int64_t>(x.size())), yd(gpu, static_cast<int64_t>(actual.size()));
  gpu.upload(xd.data(), x.data(), xd.bytes());
  run_product(gpu, version, gpu_view, xd.data(), yd.data(), n_tokens);
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

struct Cpus {
  Backend& float_path;
  Backend& quantized8;
};

void bench_version(cuda::CudaBackend& gpu, const Cpus& cpus, VersionChoice requested, TensorType type, const Matrix& m,
                   const WeightView& cpu_view, const std::vector<WeightView>& gpu_views,
                   const std::vector<float>& dequantized, double read_gbs) {
  const std::string type_name(tensor_type_info(type).name);
  if (requested && !cuda::gemv_supports(*requested, gpu_views[0])) {
    std::printf("{\"bench\":\"cuda_matmul\",\"type\":\"%s\",\"matrix\":\"%s\",\"version\":\"%s\",\"skipped\":"
                "\"no kernel for this type\"}\n",
                type_name.c_str(), m.name, cuda::gemv_version_name(*requested));
    return;
  }
  // The version name in the output: the requested one, or what matmul chooses (1 token stands for
  // all: the default table does not depend on the token count yet; the log says otherwise).
  const cuda::GemvVersion shown = requested ? *requested : cuda::choose_gemv_version(gpu_views[0], 1);
  const char* version_name = cuda::gemv_version_name(shown);
  const bool q8 = shown == cuda::GemvVersion::V3;
  Backend& reference = q8 ? cpus.quantized8 : cpus.float_path;
  const double bound = q8 ? 2e-5 : 1e-4;
  const double err1 = max_relative_error(gpu, requested, reference, cpu_view, gpu_views[0], dequantized, 1);
  const double err9 = max_relative_error(gpu, requested, reference, cpu_view, gpu_views[0], dequantized, 9);
  std::printf("{\"bench\":\"cuda_matmul\",\"check\":true,\"type\":\"%s\",\"matrix\":\"%s\",\"version\":\"%s\","
              "\"reference\":\"%s\",\"max_rel_err_1\":%.3g,\"max_rel_err_9\":%.3g,\"ok\":%s}\n",
              type_name.c_str(), m.name, version_name, q8 ? "cpu_quantized8" : "cpu_float", err1, err9,
              err1 <= bound && err9 <= bound ? "true" : "false");

  const uint64_t weight_bytes = cpu_view.row_bytes * static_cast<uint64_t>(m.n_out);
  const int copies = static_cast<int>(gpu_views.size());
  BackendArray<float> x(gpu, 9 * m.n_in), y(gpu, 9 * m.n_out);
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  for (int64_t n_tokens = 1; n_tokens <= 9; ++n_tokens) {
    for (int i = 0; i < copies; ++i)  // warm-up
      run_product(gpu, requested, gpu_views[static_cast<size_t>(i)], x.data(), y.data(), n_tokens);
    check(cudaEventRecord(start, gpu.stream()), "cudaEventRecord");
    for (int i = 0; i < kTimedCalls; ++i)
      run_product(gpu, requested, gpu_views[static_cast<size_t>(i % copies)], x.data(), y.data(), n_tokens);
    check(cudaEventRecord(stop, gpu.stream()), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0.0f;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    const double seconds = static_cast<double>(ms) * 1e-3 / kTimedCalls;
    const double gbs = static_cast<double>(weight_bytes) / seconds / 1e9;
    // Napkin math: a memory-bound call moves its weights once, reads the float activations and
    // writes the outputs; at the measured read bandwidth that takes napkin_us.
    const uint64_t napkin_bytes = weight_bytes + static_cast<uint64_t>(n_tokens * (m.n_in + m.n_out)) * sizeof(float);
    const double napkin_us = static_cast<double>(napkin_bytes) / (read_gbs * 1e9) * 1e6;
    std::printf("{\"bench\":\"cuda_matmul\",\"type\":\"%s\",\"matrix\":\"%s\",\"version\":\"%s\",\"n_out\":%lld,"
                "\"n_in\":%lld,\"tokens\":%lld,\"weight_bytes\":%llu,\"us\":%.2f,\"weight_gbs\":%.1f,"
                "\"read_bw_fraction\":%.3f,\"napkin_bytes\":%llu,\"napkin_us\":%.2f,\"napkin_ratio\":%.3f}\n",
                type_name.c_str(), m.name, version_name, static_cast<long long>(m.n_out), static_cast<long long>(m.n_in),
                static_cast<long long>(n_tokens), static_cast<unsigned long long>(weight_bytes), seconds * 1e6, gbs,
                gbs / read_gbs, static_cast<unsigned long long>(napkin_bytes), napkin_us, napkin_us / (seconds * 1e6));
    std::fflush(stdout);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

void bench_matrix(cuda::CudaBackend& gpu, const Cpus& cpus, const std::vector<VersionChoice>& versions, TensorType type,
                  const Matrix& m, double read_gbs) {
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
  for (const VersionChoice& version : versions)
    bench_version(gpu, cpus, version, type, m, cpu_view, gpu_views, values, read_gbs);
}

// "v1,v3" → {V1, V3}; nullopt for a bad list.
std::optional<std::vector<VersionChoice>> parse_versions(std::string_view list) {
  std::vector<VersionChoice> out;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const auto v = cuda::parse_gemv_version(list.substr(0, comma));
    if (!v) return std::nullopt;
    out.emplace_back(*v);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  if (out.empty()) return std::nullopt;
  return out;
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
    std::vector<VersionChoice> versions = {std::nullopt};  // the backend's own choice
    for (int i = 1; i < argc; ++i) {
      if (std::string_view(argv[i]) == "--versions") {
        const auto parsed = i + 1 < argc ? parse_versions(argv[i + 1]) : std::nullopt;
        if (!parsed) {
          std::fprintf(stderr, "--versions needs a comma-separated list of v1, v2, v3\n");
          return 2;
        }
        versions = *parsed;
        ++i;
        continue;
      }
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
      const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      auto cpu_float = make_cpu_backend(threads, ActivationMode::Float);
      auto cpu_q8 = make_cpu_backend(threads, ActivationMode::Quantized8);
      const Cpus cpus{*cpu_float, *cpu_q8};
      for (const Matrix& m : kMatrices) bench_matrix(*gpu, cpus, versions, type, m, read_gbs);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_matmul: %s\n", e.what());
    return 1;
  }
  return 0;
}
