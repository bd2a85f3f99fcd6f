// Backend names and the Auto choice (the CUDA entry points live in the CUDA backend, or in its
// stand-in when the build has none).
#include "peregrine/backend.h"

namespace peregrine {

std::string_view backend_kind_name(BackendKind kind) {
  switch (kind) {
    case BackendKind::Auto: return "auto";
    case BackendKind::Cpu: return "cpu";
    case BackendKind::Cuda: return "cuda";
  }
  return "?";
}

std::optional<BackendKind> parse_backend_kind(std::string_view s) {
  for (BackendKind k : {BackendKind::Auto, BackendKind::Cpu, BackendKind::Cuda})
    if (s == backend_kind_name(k)) return k;
  return std::nullopt;
}

BackendKind resolve_backend_kind(BackendKind kind) {
  if (kind != BackendKind::Auto) return kind;
  return cuda_device_count() > 0 ? BackendKind::Cuda : BackendKind::Cpu;
}

}  // namespace peregrine
