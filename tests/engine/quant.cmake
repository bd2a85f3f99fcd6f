# Quantization block formats (engine/src/format/quant_*.cpp): bit-exact dequantization and
# byte-exact quantization against llama.cpp's files, fp16/bf16 conversions, round trips.
peregrine_test(test_quant
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_quant_reference.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_quant_roundtrip.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_quant_fp.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_quant_search.cpp
  LIBS peregrine_format)
# test_quant_search instantiates the vectorized searches itself: same no-FMA rule as the engine.
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/test_quant_search.cpp PROPERTIES COMPILE_OPTIONS -ffp-contract=off)
endif()

# Throughput of quantize/dequantize per format (not part of ctest).
if(PEREGRINE_BUILD_BENCHMARKS)
  find_package(benchmark QUIET)
  if(benchmark_FOUND)
    add_executable(bench_quant ${CMAKE_CURRENT_LIST_DIR}/bench_quant.cpp)
    target_link_libraries(bench_quant PRIVATE peregrine_format benchmark::benchmark)
    target_include_directories(bench_quant PRIVATE ${CMAKE_SOURCE_DIR}/engine/src)
  endif()
endif()
