// The CUDA backend's start-up log lines and the settings read from the environment. A plain C++ file because spdlog and fmt headers do not
// compile under nvcc in C++20 mode (fmt's consteval format strings); the .cu files build their
// messages with streams instead.
#include <cstdlib>
#include <string>
#include <string_view>

#include "backend/cuda/cuda_backend.h"
#include "peregrine/error.h"
#include "peregrine/log.h"

namespace peregrine::cuda {

// Declared where they are called (cuda_backend.cu).
void log_device_info(const DeviceInfo& info);
bool tf32_prefill_from_environment();

namespace {
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// CUDA encodes versions as 1000·major + 10·minor.
std::string version_text(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }
}  // namespace

void log_device_info(const DeviceInfo& info) {
  log::get("cuda")->info(
      "CUDA device {}: {} (compute capability {}.{}, {} SMs, {:.1f} GiB memory, {:.1f} GiB free, driver {}, "
      "runtime {})",
      info.device, info.name, info.cc_major, info.cc_minor, info.sm_count,
      static_cast<double>(info.total_memory) / kGiB, static_cast<double>(info.free_memory) / kGiB,
      version_text(info.driver_version), version_text(info.runtime_version));
}

// PEREGRINE_CUDA_PREFILL_MATH: "tf32" (default: tensor cores, ~1e-3 relative error per product)
// or "fp32" (exact float32 products, several times slower). Read at every backend construction,
// so a process can hold one backend of each kind (the fixture tests do).
bool tf32_prefill_from_environment() {
  const char* raw = std::getenv("PEREGRINE_CUDA_PREFILL_MATH");
  const std::string_view text = raw ? raw : "";
  bool tf32 = true;
  if (text == "fp32")
    tf32 = false;
  else if (!text.empty() && text != "tf32")
    throw Error("PEREGRINE_CUDA_PREFILL_MATH must be tf32 or fp32, not '" + std::string(text) + "'");
  log::get("cuda")->info("CUDA prefill matrix products: {}", tf32 ? "TF32 tensor cores (PEREGRINE_CUDA_PREFILL_MATH=fp32 for exact float32)"
                                                                   : "float32 (PEREGRINE_CUDA_PREFILL_MATH=fp32)");
  return tf32;
}

}  // namespace peregrine::cuda
