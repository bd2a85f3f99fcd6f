# The host-run CUDA emulator itself (PEREGRINE_CUDA_EMULATION=ON builds only; docs/cuda.md,
# "Running the CUDA code without a GPU"): warp exchange, barriers and deadlock reports, lazy
# streams with CUDA's pinned / pageable copy rules, poisoned allocations, graph capture + replay.
if(PEREGRINE_CUDA_EMULATION)
  peregrine_test(test_cuda_emulator
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cuda_emulator.cpp
    LIBS peregrine_backend_cuda
    LABELS cuda)
  target_include_directories(test_cuda_emulator BEFORE PRIVATE
                             ${CMAKE_SOURCE_DIR}/engine/src/backend/cuda/emulation/include)
  target_compile_definitions(test_cuda_emulator PRIVATE PEREGRINE_CUDA_EMULATION=1)
endif()
