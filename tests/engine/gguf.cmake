# GGUF reader / validator / writer tests (engine/src/format/gguf_*.cpp).
peregrine_test(test_gguf
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_gguf_fixtures.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_gguf_values.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_gguf_writer.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_gguf_corrupt.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_gguf_corrupt_cases.cpp
  LIBS peregrine_format nlohmann_json::nlohmann_json)
