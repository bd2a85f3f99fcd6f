# CUDA matrix products (engine/src/backend/cuda/cuda_matmul.cu, cuda_quant_blocks.cuh).
#
# test_cuda_quant_blocks_host: the block decoding every GPU kernel runs, compiled by the host
# compiler and checked bit for bit against the reference dequantizers — runs everywhere, no GPU.
peregrine_test(test_cuda_quant_blocks_host
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cuda_quant_blocks_host.cpp
  LIBS peregrine_format
  LABELS cuda)
# Same rule as the quantizers: no a*b+c contraction, so "bit for bit" means the same expressions.
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/test_cuda_quant_blocks_host.cpp
                              PROPERTIES COMPILE_OPTIONS -ffp-contract=off)
endif()

# test_cuda_vec_dot_host: the 8-bit activation math of the GEMV v3 kernels (cuda_vec_dot_q8.cuh)
# with dp4a emulated, against the CPU backend's Quantized8 quantizers and scalar dot products —
# bit for bit per block and per row, and within a stated bound in the GPU's summation order.
peregrine_test(test_cuda_vec_dot_host
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cuda_vec_dot_host.cpp
  LIBS peregrine_backend_cpu peregrine_format
  LABELS cuda)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/test_cuda_vec_dot_host.cpp
                              PROPERTIES COMPILE_OPTIONS -ffp-contract=off)
endif()

# test_cuda_matmul: every supported weight type × 1..33 tokens against the CPU backend's float
# path, and every GEMV version (v1, v2, v3) × type × 1..9 tokens (v3 also against the CPU's
# Quantized8 path); skips without a device.
peregrine_test(test_cuda_matmul
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cuda_matmul.cpp
  LIBS peregrine_backend_cpu peregrine_backend_cuda
  LABELS cuda)

# GEMV throughput on 27B-shaped matrices against a measured read bandwidth (not part of ctest;
# not built against the emulator, whose timings mean nothing).
if(PEREGRINE_HAVE_CUDA AND NOT PEREGRINE_CUDA_EMULATION)
  add_executable(bench_cuda_matmul ${CMAKE_CURRENT_LIST_DIR}/bench_cuda_matmul.cpp)
  target_link_libraries(bench_cuda_matmul PRIVATE peregrine_backend_cpu peregrine_backend_cuda CUDA::cudart)
  target_include_directories(bench_cuda_matmul PRIVATE ${CMAKE_SOURCE_DIR}/engine/src)
endif()
