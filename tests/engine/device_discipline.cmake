# Device memory discipline (backend.h "Memory:"): the model run on EmulatedDeviceBackend, whose
# memory the host cannot dereference, must give the CPU backend's results bit for bit — forward
# pass, MTP, rollback, snapshots, KV types, diagnostics, decoding with and without drafts — with
# bounded host <-> device traffic, and the load must refuse a model that does not fit the budget.
peregrine_test(test_device_discipline
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/emulated_device_backend.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_emulated_device_backend.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_device_discipline.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_device_discipline_decode.cpp
  LIBS peregrine_engine nlohmann_json::nlohmann_json)

# The same end-to-end checks on the real CUDA backend against the CPU backend; every test skips
# when the build has no CUDA backend or the machine no device.
peregrine_test(test_cuda_forward
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cuda_forward.cpp
  LIBS peregrine_engine nlohmann_json::nlohmann_json
  LABELS cuda)
