# Decoding: the sampler against a float64 reference, stop strings, the generation loop and the
# engine thread on the qwen35-tiny fixtures (data/qwen35-tiny).
peregrine_test(test_sampler
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sampler.cpp ${CMAKE_CURRENT_LIST_DIR}/test_sampler_stop.cpp
  LIBS peregrine_decode)

peregrine_test(test_engine
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_engine.cpp ${CMAKE_CURRENT_LIST_DIR}/test_engine_loop.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_engine_snapshot.cpp ${CMAKE_CURRENT_LIST_DIR}/test_engine_mtp.cpp
  LIBS peregrine_decode peregrine_format nlohmann_json::nlohmann_json)

# Loading through the engine: progress, cancel, the backend in ModelInfo, an injected backend,
# the memory budget checked before allocating (RAM on the CPU backend, free memory on a device),
# non-finite small float tensors refused.
peregrine_test(test_engine_load
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_engine_load.cpp ${CMAKE_CURRENT_LIST_DIR}/test_engine_memory.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_engine_weights_finite.cpp
          ${CMAKE_CURRENT_LIST_DIR}/emulated_device_backend.cpp
  LIBS peregrine_engine nlohmann_json::nlohmann_json)

# run / logits / bench called in-process (peregrine_cli: the commands without main()).
peregrine_test(test_engine_cli
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_engine_cli.cpp ${CMAKE_CURRENT_LIST_DIR}/test_engine_cli_mtp.cpp
  LIBS peregrine_cli)

# The text path of a generation: the think-block splitter and AnswerText (ids -> TokenText).
peregrine_test(test_think_splitter
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_think_splitter.cpp
  LIBS peregrine_decode)

# GenerationStats as JSON (stored with each message by the app).
peregrine_test(test_generation_stats
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_generation_stats.cpp
  LIBS peregrine_common nlohmann_json::nlohmann_json)
