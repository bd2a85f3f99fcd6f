# Model description (engine/src/model/model_config.cpp, tensor_spec.cpp), synthetic models
# (engine/src/model/synthetic_*.cpp) and the peregrine-cli commands inspect / tokenize /
# detokenize / make-synthetic (engine/tools/).
peregrine_test(test_model_config
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_model_config.cpp ${CMAKE_CURRENT_LIST_DIR}/test_model_config_mutations.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_model_config_bounds.cpp
  LIBS peregrine_model peregrine_format nlohmann_json::nlohmann_json)

peregrine_test(test_synthetic
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_synthetic.cpp ${CMAKE_CURRENT_LIST_DIR}/test_synthetic_plan.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_synthetic_forward.cpp
  LIBS peregrine_model peregrine_format peregrine_tokenizer nlohmann_json::nlohmann_json)

peregrine_test(test_cli
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cli.cpp
  LIBS peregrine_format nlohmann_json::nlohmann_json)
add_dependencies(test_cli peregrine-cli)
