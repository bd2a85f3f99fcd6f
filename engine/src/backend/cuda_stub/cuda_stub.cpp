// The CUDA entry points of a build without the CUDA backend (no toolkit at configure time, or
// PEREGRINE_CUDA=OFF): no devices, and a clear error for anyone who asks for one.
#include "peregrine/backend.h"
#include "peregrine/error.h"

namespace peregrine {

int cuda_device_count() { return 0; }
bool cuda_backend_compiled() { return false; }

std::unique_ptr<Backend> make_cuda_backend(int) {
  throw Error("this build of Peregrine has no CUDA backend (configure with the CUDA toolkit installed, "
              "-DPEREGRINE_CUDA=ON)");
}

}  // namespace peregrine
