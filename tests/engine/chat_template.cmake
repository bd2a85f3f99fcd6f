# Native chat-template renderers (engine/src/tokenizer/chat_template*): reference renders, Qwen3.5/3.6
# hand-written cases, the tojson serializer and the errors.
peregrine_test(test_chat_template
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/test_chat_template.cpp
    ${CMAKE_CURRENT_LIST_DIR}/test_chat_template_qwen36.cpp
    ${CMAKE_CURRENT_LIST_DIR}/test_chat_template_json.cpp
  LIBS peregrine_tokenizer nlohmann_json::nlohmann_json)
