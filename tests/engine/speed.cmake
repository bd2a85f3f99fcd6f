# The CPU backend's fast matmul path (engine/src/backend/cpu/cpu_matmul.cpp, Quantized8 mode): exact
# agreement with the kernels, 8-bit error bound against the float path, thread-count independence,
# and tiny-quant against llama.cpp's own 8-bit-activation logits.
peregrine_test(test_cpu_matmul_speedpath
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cpu_matmul_speedpath.cpp
  LIBS peregrine_model peregrine_backend_cpu peregrine_format nlohmann_json::nlohmann_json)
