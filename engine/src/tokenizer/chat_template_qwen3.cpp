// The Qwen3 hybrid-thinking chat template (tests/data/tokenizer-qwen3/tokenizer_config.json `chat_template`),
// rendered natively; the comments name the parts of the Jinja source being reproduced.
#include <string>
#include <string_view>

#include "peregrine/error.h"
#include "peregrine/log.h"
#include "tokenizer/chat_template_json.h"
#include "tokenizer/chat_template_renderers.h"
#include "tokenizer/chat_template_text.h"

namespace peregrine::chat_detail {
namespace {

constexpr std::string_view kToolsIntro =
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
constexpr std::string_view kToolsOutro =
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}\n</tool_call><|im_end|>\n";

class Qwen3ChatTemplate final : public ChatTemplate {
 public:
  ChatFormat format() const override { return ChatFormat::Qwen3; }

  std::string generation_prompt(const ChatOptions& options) const override {
    // Thinking on adds nothing: the model opens <think> itself.
    return options.enable_thinking ? "<|im_start|>assistant\n" : "<|im_start|>assistant\n<think>\n\n</think>\n\n";
  }

  std::string render(std::span<const ChatMessage> messages, const ChatOptions& options) const override {
    const std::vector<Role> roles = checked_roles(messages, format());
    const size_t n = messages.size();
    std::string out;

    // {%- if tools %} ... {%- else %} system message {%- endif %}
    if (!options.tools.empty()) {
      out += "<|im_start|>system\n";
      if (roles[0] == Role::System) {
        out += messages[0].content;
        out += "\n\n";
      }
      out += kToolsIntro;
      for (size_t t = 0; t < options.tools.size(); ++t) {
        out += '\n';
        out += tool_schema_to_json(options, t);
      }
      out += kToolsOutro;
    } else if (roles[0] == Role::System) {
      out += "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n";
    }

    // ns.last_query_index: the last user message that is not a wrapped tool response.
    size_t last_query_index = n - 1;
    for (size_t i = n; i-- > 0;) {
      const std::string_view c = messages[i].content;
      if (roles[i] == Role::User && !(c.starts_with("<tool_response>") && c.ends_with("</tool_response>"))) {
        last_query_index = i;
        break;
      }
    }

    for (size_t i = 0; i < n; ++i) {
      const ChatMessage& m = messages[i];
      switch (roles[i]) {
        case Role::System:
          if (i == 0) break;  // already rendered above; a later system turn renders like a user turn
          [[fallthrough]];
        case Role::User: out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n"; break;
        case Role::Assistant: render_assistant(out, m, i, n, last_query_index); break;
        case Role::Tool:
          if (i == 0 || roles[i - 1] != Role::Tool) out += "<|im_start|>user";
          out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
          if (i + 1 == n || roles[i + 1] != Role::Tool) out += "<|im_end|>\n";
          break;
      }
    }

    if (options.add_generation_prompt) out += generation_prompt(options);
    return out;
  }

 private:
  static void render_assistant(std::string& out, const ChatMessage& m, size_t index, size_t n,
                               size_t last_query_index) {
    // reasoning_content wins; otherwise a <think>…</think> inside content is split off.
    std::string_view content = m.content;
    std::string_view reasoning;
    if (m.reasoning_content) {
      reasoning = *m.reasoning_content;
    } else if (contains(m.content, "</think>")) {
      content = lstrip_char(after_last(m.content, "</think>"), '\n');
      reasoning = lstrip_char(after_last(rstrip_char(before_first(m.content, "</think>"), '\n'), "<think>"), '\n');
    }

    out += "<|im_start|>assistant\n";
    // Turns after the last query keep their thinking; the final turn always gets a (maybe empty) block.
    const bool after_query = index > last_query_index;
    if (after_query && (index + 1 == n || !reasoning.empty())) {
      out += "<think>\n";
      out += strip_char(reasoning, '\n');
      out += "\n</think>\n\n";
      out += lstrip_char(content, '\n');
    } else {
      out += content;
    }

    for (size_t k = 0; k < m.tool_calls.size(); ++k) {
      // The separator tests `content` as the template holds it, not the lstripped text printed above.
      if (k > 0 || !content.empty()) out += '\n';
      const ChatToolCall& call = m.tool_calls[k];
      out += "<tool_call>\n{\"name\": \"" + call.name + "\", \"arguments\": " + arguments_text(call) + "}\n</tool_call>";
    }
    out += "<|im_end|>\n";
  }

  // What the template prints for the arguments after a server has json.loads'ed them: a string as is,
  // anything else with tojson. Text that is not JSON stays the string it is, so it prints verbatim.
  static std::string arguments_text(const ChatToolCall& call) {
    if (call.arguments_json.empty()) return "{}";
    try {
      const JsonValue args = parse_json(call.arguments_json, "tool call arguments");
      return args.kind == JsonValue::Kind::String ? args.text : to_python_json(args);
    } catch (const Error& e) {
      log::get("chat_template")->debug("tool call '{}': arguments rendered verbatim: {}", call.name, e.what());
      return call.arguments_json;
    }
  }
};

}  // namespace

std::unique_ptr<ChatTemplate> make_qwen3_template() { return std::make_unique<Qwen3ChatTemplate>(); }

}  // namespace peregrine::chat_detail
