# The profiling backend decorator (engine/src/backend/profile) and `peregrine-cli bench
# --op-profile`, called in-process on the CPU with the qwen35-tiny fixtures.
set(peregrine_op_profile_cli_dir ${CMAKE_SOURCE_DIR}/engine/tools)
peregrine_test(test_op_profiler
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_op_profiler.cpp
          ${peregrine_op_profile_cli_dir}/cli_bench.cpp ${peregrine_op_profile_cli_dir}/cli_bench_measure.cpp
          ${peregrine_op_profile_cli_dir}/cli_bench_traffic.cpp ${peregrine_op_profile_cli_dir}/cli_decode_common.cpp
          ${peregrine_op_profile_cli_dir}/cli_args.cpp
  LIBS peregrine_decode peregrine_format nlohmann_json::nlohmann_json)
target_include_directories(test_op_profiler PRIVATE ${peregrine_op_profile_cli_dir})
