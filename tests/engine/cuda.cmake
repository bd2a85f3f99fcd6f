# The CUDA backend's core (engine/src/backend/cuda/cuda_backend.cu, cuda_elementwise.cu;
# docs/cuda.md).
#
# test_cuda_memory: the entry points (device discovery, bad device indices, backend kinds) run
# everywhere, also in builds without the CUDA backend; the memory tests need a device.
# test_cuda_ops: every norm, rope, copy, gate, conv1d, KV store and MoE helper against the CPU
# backend under the bounds docs/cuda.md lists. Tests that need a device skip without one.
peregrine_test(test_cuda_memory
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cuda_memory.cpp
  LIBS peregrine_backend_select peregrine_backend_cpu peregrine_backend_cuda
  LABELS cuda)

peregrine_test(test_cuda_ops
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cuda_ops.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_cuda_ops_rows.cpp
  LIBS peregrine_backend_cpu peregrine_backend_cuda
  LABELS cuda)
