# A separate MTP-only GGUF (`mtp-<name>.gguf`) next to a trunk without an MTP block: the pair
# split in-test from tiny-mtp-f32 equals the combined file bit for bit, speculative greedy equals
# plain, mismatched MTP files are refused, and the engine attaches the companion file.
peregrine_test(test_mtp_file
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_mtp_file.cpp
  LIBS peregrine_decode peregrine_format nlohmann_json::nlohmann_json)
