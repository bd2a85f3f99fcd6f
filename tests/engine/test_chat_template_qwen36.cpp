// The Qwen3.6 (product default) and Qwen3.5 renderers on hand-written conversations. The expected texts
// follow the shipped chat_template.jinja of Qwen3.6 / Qwen3.5 and were cross-checked by rendering the same
// conversations with that Jinja source in Python jinja2 set up as transformers does (docs/chat-template.md).
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "peregrine/chat_template.h"
#include "peregrine/error.h"

namespace peregrine {
namespace {

ChatMessage msg(std::string role, std::string content) {
  ChatMessage m;
  m.role = std::move(role);
  m.content = std::move(content);
  return m;
}

ChatMessage assistant(std::string content, std::optional<std::string> reasoning = std::nullopt,
                      std::vector<ChatToolCall> calls = {}) {
  ChatMessage m = msg("assistant", std::move(content));
  m.reasoning_content = std::move(reasoning);
  m.tool_calls = std::move(calls);
  return m;
}

ChatToolCall call(std::string name, std::string arguments_json) {
  ChatToolCall c;
  c.name = std::move(name);
  c.arguments_json = std::move(arguments_json);
  return c;
}

ChatOptions generation(bool thinking = true) {
  ChatOptions o;
  o.add_generation_prompt = true;
  o.enable_thinking = thinking;
  return o;
}

const std::string kToolsPrompt36 =
    "<|im_start|>system\n# Tools\n\nYou have access to the following functions:\n\n<tools>\n"
    "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather.\", "
    "\"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}\n"
    "</tools>\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n"
    "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n"
    "<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n"
    "</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n"
    "- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested "
    "within <tool_call></tool_call> XML tags\n- Required parameters MUST be specified\n"
    "- You may provide optional reasoning for your function call in natural language BEFORE the function call, "
    "but NOT after\n- If there is no function call available, answer the question like normal with your current "
    "knowledge and do not tell the user about function calls\n</IMPORTANT>";

TEST(ChatTemplateQwen36, GenerationPromptOpensThinkBlockAndContentIsTrimmed) {
  std::vector<ChatMessage> msgs = {msg("system", "  Be brief.\n"), msg("user", "Hi \n")};
  EXPECT_EQ(render_chat(ChatFormat::Qwen36, msgs, generation()),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n");
}

TEST(ChatTemplateQwen36, ThinkingOffClosesAnEmptyThinkBlock) {
  std::vector<ChatMessage> msgs = {msg("user", "Hi")};
  auto t = ChatTemplate::create(ChatFormat::Qwen36);
  EXPECT_EQ(t->render(msgs, generation(false)),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_EQ(t->generation_prompt(generation(false)), "<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_EQ(t->generation_prompt(generation(true)), "<|im_start|>assistant\n<think>\n");
}

std::vector<ChatMessage> two_turns() {
  return {msg("user", "Name a color."), assistant("<think>\nPick one.\n</think>\n\nBlue."), msg("user", "Another?"),
          assistant("Red.", "\nAvoid blue.\n")};
}

TEST(ChatTemplateQwen36, ThinkingBeforeTheLastQueryIsDropped) {
  EXPECT_EQ(render_chat(ChatFormat::Qwen36, two_turns(), {}),
            "<|im_start|>user\nName a color.<|im_end|>\n<|im_start|>assistant\nBlue.<|im_end|>\n"
            "<|im_start|>user\nAnother?<|im_end|>\n<|im_start|>assistant\n<think>\nAvoid blue.\n</think>\n\nRed.<|im_end|>\n");
}

TEST(ChatTemplateQwen36, PreserveThinkingKeepsEveryTurnsThinkingButQwen35IgnoresIt) {
  ChatOptions preserve;
  preserve.preserve_thinking = true;
  const std::string tail =
      "<|im_start|>user\nAnother?<|im_end|>\n<|im_start|>assistant\n<think>\nAvoid blue.\n</think>\n\nRed.<|im_end|>\n";
  EXPECT_EQ(render_chat(ChatFormat::Qwen36, two_turns(), preserve),
            "<|im_start|>user\nName a color.<|im_end|>\n<|im_start|>assistant\n<think>\nPick one.\n</think>\n\nBlue.<|im_end|>\n" +
                tail);
  EXPECT_EQ(render_chat(ChatFormat::Qwen35, two_turns(), preserve),
            "<|im_start|>user\nName a color.<|im_end|>\n<|im_start|>assistant\nBlue.<|im_end|>\n" + tail);
}

TEST(ChatTemplateQwen36, PreservedHistoryIsAPrefixOfTheNextTurnsPrompt) {
  // With preserve_thinking the rendered history only grows, so a cached prefix stays valid.
  ChatOptions preserve = generation();
  preserve.preserve_thinking = true;
  std::vector<ChatMessage> msgs = {msg("user", "Q1")};
  const std::string first = render_chat(ChatFormat::Qwen36, msgs, preserve);
  msgs.push_back(assistant("A1", "R1"));
  msgs.push_back(msg("user", "Q2"));
  const std::string second = render_chat(ChatFormat::Qwen36, msgs, preserve);
  EXPECT_EQ(second.substr(0, first.size()), first);
  EXPECT_EQ(second.substr(first.size()), "R1\n</think>\n\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n<think>\n");
}

std::vector<ChatMessage> weather_conversation() {
  return {msg("system", "You are helpful."), msg("user", "Weather in Paris and Köln?"),
          assistant("Checking both.", "Two cities.",
                    {call("get_weather",
                          R"({"city":"Paris","days":3,"metric":true,"ratio":0.5,"extra":null,"tags":["a","\u00e9"],"opts":{"x":1}})"),
                     call("get_weather", R"({ "city" : "Köln" })")}),
          msg("tool", R"({"temp_c": 21})"), msg("tool", "{\"temp_c\": 18}\n")};
}

ChatOptions weather_options() {
  ChatOptions o = generation();
  o.tools = {R"({"type":"function","function":{"name":"get_weather","description":"Get the weather.","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}})"};
  return o;
}

std::string weather_expected(std::string_view metric, std::string_view extra) {
  return kToolsPrompt36 +
         "\n\nYou are helpful.<|im_end|>\n<|im_start|>user\nWeather in Paris and Köln?<|im_end|>\n"
         "<|im_start|>assistant\n<think>\nTwo cities.\n</think>\n\nChecking both.\n\n"
         "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n</parameter>\n"
         "<parameter=metric>\n" + std::string(metric) + "\n</parameter>\n<parameter=ratio>\n0.5\n</parameter>\n"
         "<parameter=extra>\n" + std::string(extra) + "\n</parameter>\n<parameter=tags>\n[\"a\", \"é\"]\n</parameter>\n"
         "<parameter=opts>\n{\"x\": 1}\n</parameter>\n</function>\n</tool_call>\n"
         "<tool_call>\n<function=get_weather>\n<parameter=city>\nKöln\n</parameter>\n</function>\n</tool_call><|im_end|>\n"
         "<|im_start|>user\n<tool_response>\n{\"temp_c\": 21}\n</tool_response>\n<tool_response>\n{\"temp_c\": 18}\n"
         "</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\n";
}

TEST(ChatTemplateQwen36, ToolsPromptXmlToolCallsAndGroupedToolResponses) {
  EXPECT_EQ(render_chat(ChatFormat::Qwen36, weather_conversation(), weather_options()), weather_expected("true", "null"));
}

TEST(ChatTemplateQwen35, ScalarArgumentsArePrintedWithPythonStr) {
  // The only tool-call difference from 3.6: booleans and null go through Python str().
  EXPECT_EQ(render_chat(ChatFormat::Qwen35, weather_conversation(), weather_options()), weather_expected("True", "None"));
}

TEST(ChatTemplateQwen36, CallWithoutContentAndAnswerAfterToolResponseBothGetThinkBlocks) {
  std::vector<ChatMessage> msgs = {msg("user", "Go"), assistant("", std::nullopt, {call("f", "{}")}), msg("tool", "ok"),
                                   assistant("Done.")};
  EXPECT_EQ(render_chat(ChatFormat::Qwen36, msgs, {}),
            "<|im_start|>user\nGo<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
            "<tool_call>\n<function=f>\n</function>\n</tool_call><|im_end|>\n"
            "<|im_start|>user\n<tool_response>\nok\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\nDone.<|im_end|>\n");
}

TEST(ChatTemplateQwen36, UserMessageWrappingAToolResponseIsNotTheLastQuery) {
  std::vector<ChatMessage> msgs = {msg("user", "Q"), assistant("A1", "R1"),
                                   msg("user", "<tool_response>\nx\n</tool_response>"), assistant("A2", "R2")};
  EXPECT_EQ(render_chat(ChatFormat::Qwen36, msgs, {}),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nR1\n</think>\n\nA1<|im_end|>\n"
            "<|im_start|>user\n<tool_response>\nx\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n<think>\nR2\n</think>\n\nA2<|im_end|>\n");
}

TEST(ChatTemplateQwen36Errors, SystemMessageAfterTheFirstIsRefused) {
  std::vector<ChatMessage> msgs = {msg("user", "x"), msg("system", "late")};
  try {
    render_chat(ChatFormat::Qwen36, msgs, {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("message 1 is a system message"), std::string::npos) << e.what();
  }
  // Qwen3's template renders a late system message as its own turn instead.
  EXPECT_EQ(render_chat(ChatFormat::Qwen3, msgs, {}),
            "<|im_start|>user\nx<|im_end|>\n<|im_start|>system\nlate<|im_end|>\n");
}

TEST(ChatTemplateQwen36Errors, ConversationWithoutAUserQueryIsRefused) {
  for (auto msgs : {std::vector<ChatMessage>{msg("system", "s")},
                    std::vector<ChatMessage>{msg("user", "<tool_response>r</tool_response>"), assistant("a")}}) {
    EXPECT_THROW(render_chat(ChatFormat::Qwen36, msgs, {}), Error);
    EXPECT_THROW(render_chat(ChatFormat::Qwen35, msgs, {}), Error);
    EXPECT_NO_THROW(render_chat(ChatFormat::Qwen3, msgs, {}));  // Qwen3's template has no such check
  }
}

TEST(ChatTemplateQwen36Errors, ToolCallArgumentsMustBeAJsonObject) {
  for (const char* bad : {"[1, 2]", "\"text\"", "{not json"}) {
    std::vector<ChatMessage> msgs = {msg("user", "x"), assistant("", std::nullopt, {call("f", bad)})};
    try {
      render_chat(ChatFormat::Qwen36, msgs, {});
      ADD_FAILURE() << "no error for arguments " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("tool call 'f'"), std::string::npos) << e.what();
    }
  }
}

TEST(ChatTemplateQwen36, ToolMessageWithoutPrecedingCallRendersAsTheTemplateDoes) {
  // Neither Qwen template raises here: a tool turn after a user turn still opens its own user turn.
  std::vector<ChatMessage> msgs = {msg("user", "x"), msg("tool", "r")};
  EXPECT_EQ(render_chat(ChatFormat::Qwen36, msgs, {}),
            "<|im_start|>user\nx<|im_end|>\n<|im_start|>user\n<tool_response>\nr\n</tool_response><|im_end|>\n");
}

}  // namespace
}  // namespace peregrine
