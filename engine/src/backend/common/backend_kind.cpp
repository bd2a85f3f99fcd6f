// Backend names (what --backend and the app's settings spell). Resolving Auto needs the CUDA
// backend's device count, so it lives with the backend choice (src/backend/select).
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

}  // namespace peregrine
