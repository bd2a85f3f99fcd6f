# MTP speculative decoding (engine/src/decode/speculative_*, rollback in engine/src/model): greedy
# equality with plain decoding on every qwen35-tiny fixture and a synthetic model, acceptance
# counts against llama.cpp, state equality after rollback, and the sampling rule's distribution.
# The decoder's sources (and the sampler it adapts) are compiled in directly, so this test does
# not depend on the rest of peregrine_decode (the engine thread, the generation loop).
peregrine_test(test_mtp
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_mtp.cpp ${CMAKE_CURRENT_LIST_DIR}/test_mtp_state.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_mtp_sampling.cpp
          ${CMAKE_SOURCE_DIR}/engine/src/decode/speculative_decoder.cpp
          ${CMAKE_SOURCE_DIR}/engine/src/decode/speculative_policy.cpp
          ${CMAKE_SOURCE_DIR}/engine/src/decode/speculative_accept.cpp
          ${CMAKE_SOURCE_DIR}/engine/src/decode/sampler.cpp
          ${CMAKE_SOURCE_DIR}/engine/src/decode/sequence_logits.cpp
  LIBS peregrine_model peregrine_format nlohmann_json::nlohmann_json)

# Not a test: draft / verify costs on a given model (docs/mtp.md "CPU costs").
add_executable(bench_mtp ${CMAKE_CURRENT_LIST_DIR}/bench_mtp.cpp)
target_link_libraries(bench_mtp PRIVATE peregrine_model)
