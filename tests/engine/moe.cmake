# The qwen35moe FFN (routing, experts, shared expert) of the forward pass against a float64
# reference implementation, on a small F32 MoE model made in-test with the make-synthetic API.
peregrine_test(test_moe_reference
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_moe_reference.cpp
  LIBS peregrine_model peregrine_format nlohmann_json::nlohmann_json)
