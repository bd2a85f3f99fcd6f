# The CPU backend kernels (engine/src/backend/cpu) against float64 references, and the Qwen 3.5/3.6
# forward pass (engine/src/model/qwen35_*) against llama.cpp's fixtures in data/qwen35-tiny.
peregrine_test(test_cpu_ops
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cpu_ops.cpp ${CMAKE_CURRENT_LIST_DIR}/test_cpu_ops_matmul.cpp
  LIBS peregrine_backend_cpu)

peregrine_test(test_forward
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_forward.cpp ${CMAKE_CURRENT_LIST_DIR}/test_forward_mtp.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_forward_variants.cpp
  LIBS peregrine_model peregrine_format nlohmann_json::nlohmann_json)
