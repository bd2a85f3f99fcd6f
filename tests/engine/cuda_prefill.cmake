# The CUDA backend's prefill kernels against the CPU backend (docs/cuda.md): the chunked WY/UT
# gated delta rule and the query-tiled flash attention. The tests skip themselves on machines
# without a CUDA device, and in builds without the CUDA backend; label `cuda`, so the emulation
# build runs them (about 2 s emulated).
peregrine_test(test_cuda_prefill
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cuda_delta_net_chunked.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_cuda_flash_attention.cpp
  LIBS peregrine_backend_cpu peregrine_backend_cuda
  LABELS cuda)
