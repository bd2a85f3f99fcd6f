// The Qwen3.5 and Qwen3.6 chat templates (the `chat_template.jinja` shipped with the models), rendered
// natively for text content. The two differ in exactly two places, both marked below: Qwen3.6 honours
// preserve_thinking, and prints scalar tool-call arguments with tojson where Qwen3.5 uses Python str().
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "peregrine/error.h"
#include "tokenizer/chat_template_json.h"
#include "tokenizer/chat_template_renderers.h"
#include "tokenizer/chat_template_text.h"

namespace peregrine::chat_detail {
namespace {

constexpr std::string_view kToolsIntro = "# Tools\n\nYou have access to the following functions:\n\n<tools>";
constexpr std::string_view kToolsInstructions =
    "\n</tools>"
    "\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n"
    "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n"
    "<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n"
    "</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n"
    "- Function calls MUST follow the specified format: an inner <function=...></function> block must be "
    "nested within <tool_call></tool_call> XML tags\n"
    "- Required parameters MUST be specified\n"
    "- You may provide optional reasoning for your function call in natural language BEFORE the function "
    "call, but NOT after\n"
    "- If there is no function call available, answer the question like normal with your current knowledge "
    "and do not tell the user about function calls\n</IMPORTANT>";

class Qwen35FamilyChatTemplate final : public ChatTemplate {
 public:
  explicit Qwen35FamilyChatTemplate(ChatFormat format) : format_(format) {}

  ChatFormat format() const override { return format_; }

  std::string generation_prompt(const ChatOptions& options) const override {
    return options.enable_thinking ? "<|im_start|>assistant\n<think>\n"
                                   : "<|im_start|>assistant\n<think>\n\n</think>\n\n";
  }

  std::string render(std::span<const ChatMessage> messages, const ChatOptions& options) const override {
    const std::vector<Role> roles = checked_roles(messages, format_);
    const size_t n = messages.size();
    // `render_content(message.content) | trim`: every message's text is trimmed (Python whitespace).
    std::vector<std::string_view> contents;
    contents.reserve(n);
    for (const ChatMessage& m : messages) contents.push_back(python_trim(m.content));

    std::string out;
    if (!options.tools.empty()) {
      out += "<|im_start|>system\n";
      out += kToolsIntro;
      for (size_t t = 0; t < options.tools.size(); ++t) {
        out += '\n';
        out += tool_schema_to_json(options, t);
      }
      out += kToolsInstructions;
      if (roles[0] == Role::System && !contents[0].empty()) {
        out += "\n\n";
        out += contents[0];
      }
      out += "<|im_end|>\n";
    } else if (roles[0] == Role::System) {
      out += "<|im_start|>system\n";
      out += contents[0];
      out += "<|im_end|>\n";
    }

    const size_t last_query_index = find_last_query(roles, contents);

    for (size_t i = 0; i < n; ++i) {
      switch (roles[i]) {
        case Role::System:
          if (i != 0) {
            throw Error(fmt::format("chat template {}: message {} is a system message; it must be the first "
                                    "message (the template raises 'System message must be at the beginning.')",
                                    chat_format_name(format_), i));
          }
          break;
        case Role::User:
          out += "<|im_start|>user\n";
          out += contents[i];
          out += "<|im_end|>\n";
          break;
        case Role::Assistant:
          render_assistant(out, messages[i], contents[i], i > last_query_index, options);
          break;
        case Role::Tool:
          // loop.previtem is undefined for the first message, so a leading tool turn opens no user turn.
          if (i > 0 && roles[i - 1] != Role::Tool) out += "<|im_start|>user";
          out += "\n<tool_response>\n";
          out += contents[i];
          out += "\n</tool_response>";
          if (i + 1 == n || roles[i + 1] != Role::Tool) out += "<|im_end|>\n";
          break;
      }
    }

    if (options.add_generation_prompt) out += generation_prompt(options);
    return out;
  }

 private:
  // ns.last_query_index: the last user message that is not a wrapped tool response. The template raises
  // when there is none.
  size_t find_last_query(const std::vector<Role>& roles, const std::vector<std::string_view>& contents) const {
    for (size_t i = roles.size(); i-- > 0;) {
      const std::string_view c = contents[i];
      if (roles[i] == Role::User && !(c.starts_with("<tool_response>") && c.ends_with("</tool_response>"))) {
        return i;
      }
    }
    throw Error(fmt::format("chat template {}: no user query in the messages (every user message is a "
                            "<tool_response> or there is none; the template raises 'No user query found in messages.')",
                            chat_format_name(format_)));
  }

  void render_assistant(std::string& out, const ChatMessage& m, std::string_view content, bool after_last_query,
                        const ChatOptions& options) const {
    std::string_view reasoning;
    if (m.reasoning_content) {
      reasoning = *m.reasoning_content;
    } else if (contains(content, "</think>")) {
      reasoning = lstrip_char(after_last(rstrip_char(before_first(content, "</think>"), '\n'), "<think>"), '\n');
      content = lstrip_char(after_last(content, "</think>"), '\n');
    }
    reasoning = python_trim(reasoning);

    // Difference 1: Qwen3.6 keeps every turn's thinking when preserve_thinking is set.
    const bool preserve = format_ == ChatFormat::Qwen36 && options.preserve_thinking;
    out += "<|im_start|>assistant\n";
    if (preserve || after_last_query) {
      out += "<think>\n";
      out += reasoning;
      out += "\n</think>\n\n";
    }
    out += content;

    for (size_t k = 0; k < m.tool_calls.size(); ++k) {
      const ChatToolCall& call = m.tool_calls[k];
      if (k == 0) out += python_trim(content).empty() ? "<tool_call>\n<function=" : "\n\n<tool_call>\n<function=";
      else out += "\n<tool_call>\n<function=";
      out += call.name;
      out += ">\n";
      render_parameters(out, call);
      out += "</function>\n</tool_call>";
    }
    out += "<|im_end|>\n";
  }

  // `for args_name, args_value in tool_call.arguments|items`: one <parameter=…> block per argument.
  void render_parameters(std::string& out, const ChatToolCall& call) const {
    if (call.arguments_json.empty()) return;
    const JsonValue args = parse_json(call.arguments_json, fmt::format("the arguments of tool call '{}'", call.name));
    if (args.kind != JsonValue::Kind::Object) {
      throw Error(fmt::format("chat template {}: the arguments of tool call '{}' must be a JSON object (the "
                              "template iterates arguments|items), got: {}",
                              chat_format_name(format_), call.name, call.arguments_json));
    }
    for (const auto& [name, value] : args.members) {
      out += "<parameter=";
      out += name;
      out += ">\n";
      if (value.kind == JsonValue::Kind::String) out += value.text;
      // Difference 2: Qwen3.6 prints any non-string with tojson; Qwen3.5 only containers, scalars via str().
      else if (format_ == ChatFormat::Qwen36 || value.is_container()) out += to_python_json(value);
      else out += to_python_str(value);
      out += "\n</parameter>\n";
    }
  }

  ChatFormat format_;
};

}  // namespace

std::unique_ptr<ChatTemplate> make_qwen35_family_template(ChatFormat format) {
  return std::make_unique<Qwen35FamilyChatTemplate>(format);
}

}  // namespace peregrine::chat_detail
