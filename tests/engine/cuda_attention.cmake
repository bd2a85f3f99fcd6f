# CUDA attention and gated delta rule against the CPU backend (docs/cuda.md). The tests skip
# themselves on machines without a CUDA device, and in builds without the CUDA backend.
peregrine_test(test_cuda_attention
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cuda_attention.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_cuda_delta_net.cpp
  LIBS peregrine_backend_cpu peregrine_backend_cuda
  LABELS cuda)
