# CPU dot-product kernels (engine/src/backend/cpu/kernels/): scalar kernels against a float64
# reference, AVX2 kernels against the scalar ones, activation quantizers, dispatch.
peregrine_test(test_cpu_kernels
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cpu_kernels.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_cpu_kernels_api.cpp
  LIBS peregrine_backend_cpu)

# Single-thread GB/s of each kernel in a 4096x4096 matrix-vector product next to the measured
# memory read bandwidth (not part of ctest).
if(PEREGRINE_BUILD_BENCHMARKS)
  find_package(benchmark QUIET)
  if(benchmark_FOUND)
    add_executable(bench_cpu_kernels ${CMAKE_CURRENT_LIST_DIR}/bench_cpu_kernels.cpp)
    target_link_libraries(bench_cpu_kernels PRIVATE peregrine_backend_cpu benchmark::benchmark)
    target_include_directories(bench_cpu_kernels PRIVATE ${CMAKE_SOURCE_DIR}/engine/src)
  endif()
endif()
