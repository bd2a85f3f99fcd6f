# Tests that cross component boundaries (text -> template -> ids, file -> model -> tokens).
peregrine_test(test_integration
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_chat_tokens.cpp
  LIBS peregrine_tokenizer nlohmann_json::nlohmann_json)
