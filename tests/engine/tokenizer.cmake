# Tokenizer tests: the HF tokenizer.json reference corpus, GGUF loading, streaming decode.
peregrine_test(test_tokenizer
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tokenizer.cpp ${CMAKE_CURRENT_LIST_DIR}/test_tokenizer_decode.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_tokenizer_errors.cpp
  LIBS peregrine_tokenizer nlohmann_json::nlohmann_json)

peregrine_test(test_tokenizer_gguf
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tokenizer_gguf.cpp
  LIBS peregrine_tokenizer peregrine_format nlohmann_json::nlohmann_json)

if(PEREGRINE_BUILD_BENCHMARKS)
  find_package(benchmark QUIET)
  if(benchmark_FOUND)
    add_executable(bench_tokenizer ${CMAKE_CURRENT_LIST_DIR}/bench_tokenizer.cpp)
    target_link_libraries(bench_tokenizer PRIVATE peregrine_tokenizer nlohmann_json::nlohmann_json benchmark::benchmark)
    target_include_directories(bench_tokenizer PRIVATE ${CMAKE_CURRENT_LIST_DIR})
    target_compile_definitions(bench_tokenizer PRIVATE PEREGRINE_TEST_DATA_DIR="${PEREGRINE_TEST_DATA_DIR}")
  endif()
endif()
