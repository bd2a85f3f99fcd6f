# The profiling backend decorator (engine/src/backend/profile) and `peregrine-cli bench
# --op-profile`, called in-process on the CPU with the qwen35-tiny fixtures.
peregrine_test(test_op_profiler
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_op_profiler.cpp
  LIBS peregrine_cli)
