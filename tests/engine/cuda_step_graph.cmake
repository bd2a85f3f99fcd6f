# Step graphs (engine/src/backend/cuda/cuda_step_graph.*, cuda_step_capture.cu; docs/cuda.md,
# "Step graphs"): captured decoding against uncaptured decoding on the tiny fixtures, exec-update
# reuse, and a waiting call inside a captured step. Skips without a device; runs under
# -DPEREGRINE_CUDA_EMULATION=ON.
peregrine_test(test_cuda_step_graph
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cuda_step_graph.cpp
  LIBS peregrine_engine nlohmann_json::nlohmann_json
  LABELS cuda)
