// The Qwen3 renderer against the 10 reference renders in tests/data/tokenizer-qwen3/chat_expected.jsonl
// (made with the shipped Jinja template by @huggingface/jinja), plus format selection and errors.
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "peregrine/chat_template.h"
#include "peregrine/error.h"

namespace peregrine {
namespace {

using Json = nlohmann::ordered_json;  // keeps key order, which tojson output depends on

const std::string kDataDir = std::string(PEREGRINE_TEST_DATA_DIR) + "/tokenizer-qwen3";

std::vector<Json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<Json> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(Json::parse(line));
  }
  return lines;
}

// OpenAI-style message JSON -> ChatMessage. Tool-call arguments arrive as objects; they are handed over
// as compact JSON text, so the renderer's own tojson formatting is what the comparison checks.
ChatMessage message_from_json(const Json& j) {
  ChatMessage m;
  m.role = j.at("role").get<std::string>();
  if (j.contains("content") && j["content"].is_string()) m.content = j["content"].get<std::string>();
  if (j.contains("reasoning_content") && j["reasoning_content"].is_string()) {
    m.reasoning_content = j["reasoning_content"].get<std::string>();
  }
  if (j.contains("tool_calls")) {
    for (const Json& call : j["tool_calls"]) {
      const Json& fn = call.contains("function") ? call["function"] : call;
      ChatToolCall tc;
      tc.name = fn.at("name").get<std::string>();
      const Json& args = fn.at("arguments");
      tc.arguments_json = args.is_string() ? args.get<std::string>() : args.dump();
      m.tool_calls.push_back(tc);
    }
  }
  return m;
}

struct ReferenceChat {
  int id = 0;
  std::string name;
  std::vector<ChatMessage> messages;
  ChatOptions options;
  std::string expected;
};

std::vector<ReferenceChat> load_reference_chats() {
  std::vector<ReferenceChat> chats;
  for (const Json& line : read_jsonl(kDataDir + "/chat_expected.jsonl")) {
    ReferenceChat c;
    c.id = line.at("id").get<int>();
    c.name = line.at("name").get<std::string>();
    for (const Json& m : line.at("messages")) c.messages.push_back(message_from_json(m));
    const Json& o = line.at("options");
    c.options.add_generation_prompt = o.value("add_generation_prompt", false);
    c.options.enable_thinking = o.value("enable_thinking", true);
    if (o.contains("tools")) {
      for (const Json& tool : o["tools"]) c.options.tools.push_back(tool.dump());
    }
    c.expected = line.at("text").get<std::string>();
    chats.push_back(std::move(c));
  }
  return chats;
}

ChatMessage msg(std::string role, std::string content) {
  ChatMessage m;
  m.role = std::move(role);
  m.content = std::move(content);
  return m;
}

ChatToolCall call(std::string name, std::string arguments_json) {
  ChatToolCall c;
  c.name = std::move(name);
  c.arguments_json = std::move(arguments_json);
  return c;
}

class Qwen3ReferenceRender : public ::testing::TestWithParam<int> {};

TEST_P(Qwen3ReferenceRender, MatchesJinjaByteForByte) {
  static const std::vector<ReferenceChat> chats = load_reference_chats();
  ASSERT_EQ(chats.size(), 10u) << "chat_expected.jsonl should hold 10 conversations";
  const ReferenceChat& c = chats.at(static_cast<size_t>(GetParam()));
  SCOPED_TRACE(c.name);
  EXPECT_EQ(render_chat(ChatFormat::Qwen3, c.messages, c.options), c.expected);
}

INSTANTIATE_TEST_SUITE_P(ChatExpected, Qwen3ReferenceRender, ::testing::Range(0, 10));

TEST(ChatTemplateQwen3, GenerationPromptThinkingOnAddsNothingOffClosesEmptyBlock) {
  auto t = ChatTemplate::create(ChatFormat::Qwen3);
  std::vector<ChatMessage> msgs = {msg("user", "Hi")};
  ChatOptions on;
  on.add_generation_prompt = true;
  ChatOptions off = on;
  off.enable_thinking = false;
  EXPECT_EQ(t->render(msgs, on), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t->render(msgs, off), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_EQ(t->generation_prompt(on), "<|im_start|>assistant\n");
  ChatOptions no_prompt;
  no_prompt.enable_thinking = false;
  EXPECT_EQ(t->render(msgs, no_prompt), "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplateQwen3, ThinkingOfEarlierTurnsIsDroppedAndLastTurnKeepsIt) {
  std::vector<ChatMessage> msgs = {msg("user", "A?"), msg("assistant", "one"), msg("user", "B?"),
                                   msg("assistant", "<think>\nr2\n</think>\n\ntwo")};
  msgs[1].reasoning_content = "r1";
  EXPECT_EQ(render_chat(ChatFormat::Qwen3, msgs, {}),
            "<|im_start|>user\nA?<|im_end|>\n<|im_start|>assistant\none<|im_end|>\n"
            "<|im_start|>user\nB?<|im_end|>\n<|im_start|>assistant\n<think>\nr2\n</think>\n\ntwo<|im_end|>\n");
}

TEST(ChatTemplateQwen3, ConsecutiveToolResponsesShareOneUserTurn) {
  std::vector<ChatMessage> msgs = {msg("user", "Go"), msg("assistant", "Calling."), msg("tool", "ra"), msg("tool", "rb")};
  msgs[1].tool_calls = {call("a", R"({"x":1})"), call("b", R"({})")};
  EXPECT_EQ(render_chat(ChatFormat::Qwen3, msgs, {}),
            "<|im_start|>user\nGo<|im_end|>\n<|im_start|>assistant\nCalling.\n"
            "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>\n"
            "<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call><|im_end|>\n"
            "<|im_start|>user\n<tool_response>\nra\n</tool_response>\n<tool_response>\nrb\n</tool_response><|im_end|>\n");
}

TEST(ChatTemplateQwen3, ArgumentsThatAreNotJsonAreRenderedVerbatimLikeAStringArgument) {
  std::vector<ChatMessage> msgs = {msg("user", "Go"), msg("assistant", "")};
  msgs[1].tool_calls = {call("f", "{broken")};
  EXPECT_NE(render_chat(ChatFormat::Qwen3, msgs, {}).find("\"arguments\": {broken}"), std::string::npos);
}

TEST(ChatTemplateErrors, EmptyConversationIsRefusedByEveryFormat) {
  for (ChatFormat f : {ChatFormat::Qwen3, ChatFormat::Qwen35, ChatFormat::Qwen36}) {
    SCOPED_TRACE(std::string(chat_format_name(f)));
    try {
      render_chat(f, {}, {});
      ADD_FAILURE() << "no error for an empty conversation";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("no messages"), std::string::npos) << e.what();
    }
  }
}

TEST(ChatTemplateErrors, UnknownRoleIsRefusedWithItsIndexAndName) {
  std::vector<ChatMessage> msgs = {msg("user", "x"), msg("developer", "y")};
  for (ChatFormat f : {ChatFormat::Qwen3, ChatFormat::Qwen35, ChatFormat::Qwen36}) {
    SCOPED_TRACE(std::string(chat_format_name(f)));
    try {
      render_chat(f, msgs, {});
      ADD_FAILURE() << "no error for role 'developer'";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("message 1"), std::string::npos) << what;
      EXPECT_NE(what.find("\"developer\""), std::string::npos) << what;
    }
  }
}

TEST(ChatTemplateErrors, ToolSchemaThatIsNotJsonNamesTheTool) {
  std::vector<ChatMessage> msgs = {msg("user", "x")};
  ChatOptions options;
  options.tools = {R"({"type": "function"})", R"({"type": )"};
  for (ChatFormat f : {ChatFormat::Qwen3, ChatFormat::Qwen36}) {
    try {
      render_chat(f, msgs, options);
      ADD_FAILURE() << "no error for a malformed tool schema";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("tool schema #1"), std::string::npos) << e.what();
    }
  }
}

TEST(ChatFormatSelection, DetectsTheShippedQwen3Template) {
  std::ifstream in(kDataDir + "/tokenizer_config.json");
  const Json config = Json::parse(in);
  const std::string jinja = config.at("chat_template").get<std::string>();
  EXPECT_EQ(detect_chat_format(jinja), ChatFormat::Qwen3);
  EXPECT_EQ(choose_chat_format(jinja), ChatFormat::Qwen3);
}

TEST(ChatFormatSelection, DetectsQwen35And36ByTheirDistinctiveText) {
  // Excerpts of the 3.5/3.6 templates' wording (see docs/chat-template.md).
  const std::string tools_prompt = "<tool_call>\\n<function=example_function_name>\\n<parameter=example_parameter_1>";
  const std::string args35 =
      "{%- set args_value = args_value | tojson | safe if args_value is mapping or (args_value is sequence and "
      "args_value is not string) else args_value | string %}";
  const std::string args36 = "{%- set args_value = args_value | string if args_value is string else args_value | tojson | safe %}";
  const std::string preserve = "{%- if (preserve_thinking is defined and preserve_thinking is true) or (loop.index0 > ns.last_query_index) %}";
  EXPECT_EQ(detect_chat_format(tools_prompt + args35), ChatFormat::Qwen35);
  EXPECT_EQ(detect_chat_format(tools_prompt + args36 + preserve), ChatFormat::Qwen36);
  EXPECT_EQ(detect_chat_format(tools_prompt + args36), ChatFormat::Qwen36);
  EXPECT_EQ(detect_chat_format(tools_prompt + args35 + preserve), ChatFormat::Qwen36);
}

TEST(ChatFormatSelection, UnknownTemplatesFallBackToTheDefaultAndOverridesWin) {
  const std::string qwen25_like = "{\"name\": <function-name>, \"arguments\": <args-json-object>} You are Qwen";
  EXPECT_EQ(detect_chat_format(qwen25_like), std::nullopt);
  EXPECT_EQ(detect_chat_format(""), std::nullopt);
  EXPECT_EQ(choose_chat_format(qwen25_like), kDefaultChatFormat);
  EXPECT_EQ(choose_chat_format(""), ChatFormat::Qwen36);
  EXPECT_EQ(choose_chat_format(qwen25_like + " enable_thinking", ChatFormat::Qwen35), ChatFormat::Qwen35);
}

TEST(ChatFormatSelection, NamesRoundTrip) {
  for (ChatFormat f : {ChatFormat::Qwen3, ChatFormat::Qwen35, ChatFormat::Qwen36}) {
    EXPECT_EQ(chat_format_from_name(chat_format_name(f)), f);
    EXPECT_EQ(ChatTemplate::create(f)->format(), f);
  }
  EXPECT_EQ(chat_format_from_name("qwen36"), ChatFormat::Qwen36);
  EXPECT_EQ(chat_format_from_name("chatml"), std::nullopt);
}

}  // namespace
}  // namespace peregrine
