# Sequence state (engine/src/model/qwen35_state.*, sequence_snapshot*): KV-cache precision
# (F32 / F16 / Q8_0) against F32 on the qwen35-tiny fixtures, memory reporting, and snapshot /
# restore (exact round trips, sizes, every refusal).
peregrine_test(test_state
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_state.cpp ${CMAKE_CURRENT_LIST_DIR}/test_state_snapshot.cpp
  LIBS peregrine_model peregrine_backend_cpu peregrine_format nlohmann_json::nlohmann_json)
