// The CUDA backend's start-up log line. A plain C++ file because spdlog and fmt headers do not
// compile under nvcc in C++20 mode (fmt's consteval format strings); the .cu files build their
// messages with streams instead.
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "peregrine/log.h"

namespace peregrine::cuda {

// Declared where it is called (cuda_backend.cu).
void log_device_info(const DeviceInfo& info);

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

}  // namespace peregrine::cuda
