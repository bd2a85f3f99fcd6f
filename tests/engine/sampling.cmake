# Sampling from candidates selected next to the logits (logit_select.h, Backend::top_k_rows /
# penalize_logits, the Sampler's candidate path, Model::top_logits).
#
# test_sampling_candidates: the host selection, the CPU backend, the Backend defaults and the
# emulated device against a plain reference on tied rows; penalties against the sampler's rule;
# candidate-path sampling against whole-row sampling (ids, probabilities, draws).
# test_sampling_decode: decoding on the fixtures with the logits left on an emulated device gives
# the whole-row ids, and a decode step moves candidates instead of the logits row.
peregrine_test(test_sampling_candidates
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sampling_candidates.cpp ${CMAKE_CURRENT_LIST_DIR}/emulated_device_backend.cpp
  LIBS peregrine_decode peregrine_backend_cpu)

peregrine_test(test_sampling_decode
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sampling_decode.cpp ${CMAKE_CURRENT_LIST_DIR}/emulated_device_backend.cpp
  LIBS peregrine_engine nlohmann_json::nlohmann_json)

# The CUDA kernels against the same reference (skips without a device; runs under
# -DPEREGRINE_CUDA_EMULATION=ON).
peregrine_test(test_cuda_sampling
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cuda_sampling.cpp
  LIBS peregrine_backend_cpu peregrine_backend_cuda
  LABELS cuda)
