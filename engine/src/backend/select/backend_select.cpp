// The run-time choice between the backends: the one place that links both the CPU and the CUDA
// backend (or its stand-in), so code that needs only one of them links only that one.
#include "peregrine/backend.h"

namespace peregrine {

BackendKind resolve_backend_kind(BackendKind kind) {
  if (kind != BackendKind::Auto) return kind;
  return cuda_device_count() > 0 ? BackendKind::Cuda : BackendKind::Cpu;
}

std::unique_ptr<Backend> make_backend(const BackendChoice& choice) {
  if (resolve_backend_kind(choice.kind) == BackendKind::Cuda) return make_cuda_backend(choice.cuda_device);
  return make_cpu_backend(choice.n_threads, choice.activations);
}

}  // namespace peregrine
