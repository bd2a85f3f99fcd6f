# peregrine-cli bench's GPU-benchmark pieces (issue 7): --depth, --verify-widths, --roofline-gbs and
# the decode-traffic byte count, run in-process on the CPU with the qwen35-tiny fixtures.
set(peregrine_bench_cli_dir ${CMAKE_SOURCE_DIR}/engine/tools)
set(peregrine_bench_cli_sources ${peregrine_bench_cli_dir}/cli_bench_measure.cpp
                                ${peregrine_bench_cli_dir}/cli_bench_traffic.cpp)
peregrine_test(test_bench_cli
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_bench_cli.cpp ${peregrine_bench_cli_dir}/cli_bench.cpp
          ${peregrine_bench_cli_sources}
          ${peregrine_bench_cli_dir}/cli_decode_common.cpp ${peregrine_bench_cli_dir}/cli_args.cpp
  LIBS peregrine_decode peregrine_format nlohmann_json::nlohmann_json)
target_include_directories(test_bench_cli PRIVATE ${peregrine_bench_cli_dir})
