# MoE with the routing kept in backend memory (backend.h: moe_route_device, matmul_experts,
# moe_combine).
#
# test_moe_device: the CPU backend's ops and Backend's defaults against float64 references and
# bit for bit against the host-grouped path's arithmetic; whole MoE models decoding on the
# backend-routed path against the grouped path (same greedy ids, bit-identical logits); on the
# emulated device, the host round trips of one MoE decode step with each path.
peregrine_test(test_moe_device
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_moe_device.cpp ${CMAKE_CURRENT_LIST_DIR}/emulated_device_backend.cpp
  LIBS peregrine_engine nlohmann_json::nlohmann_json)

# test_cuda_moe: the CUDA ops against float64 references and against the CUDA backend's own
# grouped-path ops, and the tiny-moe fixture on CUDA with each path; skips without a device
# (label cuda: the emulation build runs it).
peregrine_test(test_cuda_moe
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cuda_moe.cpp
  LIBS peregrine_engine nlohmann_json::nlohmann_json
  LABELS cuda)
