// Which GEMV version CudaBackend::matmul runs (cuda_gemv.h), and the log line saying so. A plain
// C++ file because spdlog and fmt headers do not compile under nvcc in C++20 mode.
//
// The default table is a starting point: v2 for the float-activation types it handles, v1 for the
// rest. v3 (8-bit activations) changes the numerics to the CPU backend's Quantized8 results, so
// it is opt-in until a benchmark on the target GPU (bench_cuda_matmul --versions v1,v2,v3) and an
// accuracy check justify making it a default.
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_gemv.h"
#include "peregrine/error.h"
#include "peregrine/log.h"

namespace peregrine::cuda {
namespace {

constexpr const char* kEnvVar = "PEREGRINE_CUDA_GEMV";

// The version asked for by PEREGRINE_CUDA_GEMV, read once; nullopt when unset or empty.
std::optional<GemvVersion> env_override() {
  static const std::optional<GemvVersion> value = [] () -> std::optional<GemvVersion> {
    const char* text = std::getenv(kEnvVar);
    if (!text || !*text) return std::nullopt;
    const auto v = parse_gemv_version(text);
    if (!v) throw Error(std::string(kEnvVar) + "='" + text + "' is not a GEMV version (v1, v2 or v3)");
    return v;
  }();
  return value;
}

// The default per (type, token count); see the file comment.
GemvVersion default_version(TensorType type, int64_t n_tokens) {
  (void)n_tokens;  // one answer for 1..9 tokens until measurements say otherwise
  switch (type) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q8_0:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::IQ4_XS: return GemvVersion::V2;
    default: return GemvVersion::V1;
  }
}

const char* describe(GemvVersion v) {
  switch (v) {
    case GemvVersion::V1: return "float activations, shared-memory staged rows";
    case GemvVersion::V2: return "float activations, direct register loads";
    case GemvVersion::V3: return "8-bit activations, dp4a integer dot products";
  }
  return "?";
}

void log_choice_once(const WeightView& w, GemvVersion requested, GemvVersion chosen) {
  static std::mutex mutex;
  static std::set<std::pair<TensorType, GemvVersion>> logged;
  {
    const std::lock_guard lock(mutex);
    if (!logged.insert({w.type, chosen}).second) return;
  }
  const std::string_view type = tensor_type_info(w.type).name;
  if (requested == chosen)
    log::get("cuda")->info("GEMV for {}: {} ({})", type, gemv_version_name(chosen), describe(chosen));
  else
    log::get("cuda")->info("GEMV for {}: {} ({}); {} has no kernel for tensor '{}'", type, gemv_version_name(chosen),
                           describe(chosen), gemv_version_name(requested), w.name);
}

}  // namespace

const char* gemv_version_name(GemvVersion v) {
  switch (v) {
    case GemvVersion::V1: return "v1";
    case GemvVersion::V2: return "v2";
    case GemvVersion::V3: return "v3";
  }
  return "?";
}

std::optional<GemvVersion> parse_gemv_version(std::string_view text) {
  if (text == "v1") return GemvVersion::V1;
  if (text == "v2") return GemvVersion::V2;
  if (text == "v3") return GemvVersion::V3;
  return std::nullopt;
}

bool gemv_supports(GemvVersion v, const WeightView& w) {
  switch (v) {
    case GemvVersion::V1: return gemv_v1_supports(w);
    case GemvVersion::V2: return gemv_v2_supports(w);
    case GemvVersion::V3: return gemv_v3_supports(w);
  }
  return false;
}

GemvVersion choose_gemv_version(const WeightView& w, int64_t n_tokens) {
  const GemvVersion requested = env_override().value_or(default_version(w.type, n_tokens));
  GemvVersion chosen = requested;
  if (chosen == GemvVersion::V3 && !gemv_supports(chosen, w)) chosen = GemvVersion::V2;
  if (chosen == GemvVersion::V2 && !gemv_supports(chosen, w)) chosen = GemvVersion::V1;
  log_choice_once(w, requested, chosen);
  return chosen;
}

void run_gemv(CudaBackend& be, GemvVersion v, const WeightView& w, const float* x, float* y, int64_t n_tokens) {
  if (n_tokens < 1 || n_tokens > kMaxGemvTokens)
    throw Error("cuda matmul: GEMV called with " + std::to_string(n_tokens) + " tokens (1.." +
                std::to_string(kMaxGemvTokens) + ")");
  switch (v) {
    case GemvVersion::V1: return gemv_v1(w, x, y, n_tokens, be.stream());
    case GemvVersion::V2: return gemv_v2(w, x, y, n_tokens, be.stream());
    case GemvVersion::V3: return gemv_v3(be, w, x, y, n_tokens);
  }
}

}  // namespace peregrine::cuda
