# peregrine-cli bench's GPU-benchmark pieces (issue 7): --depth, --verify-widths, --roofline-gbs and
# the decode-traffic byte count, run in-process on the CPU with the qwen35-tiny fixtures.
peregrine_test(test_bench_cli
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_bench_cli.cpp
  LIBS peregrine_cli)
