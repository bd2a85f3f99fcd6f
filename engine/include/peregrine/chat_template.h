// Chat templates rendered natively (no Jinja interpreter): a conversation in, the exact prompt text out.
//
// Each renderer reproduces one shipped Jinja `chat_template` byte for byte (see docs/chat-template.md for
// the rules and for where the Jinja source came from). The product default is Qwen 3.6; Qwen3 is kept
// because its template is the one with reference renders in tests/data/tokenizer-qwen3.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace peregrine {

// One call the assistant made. `arguments_json` is the JSON text of the arguments object, as a tool-call
// parser produces it; the renderer re-serializes it the way the template's `tojson` would (key order kept).
// An empty text means "no arguments" and renders like `{}`.
struct ChatToolCall {
  std::string name;
  std::string arguments_json;
  std::string id;  // the caller's id for the call; none of the Qwen templates render it
};

// One turn. `role` is "system", "user", "assistant" or "tool" (anything else is refused).
struct ChatMessage {
  std::string role;
  std::string content;
  // Assistant only. When set (even to ""), it is the turn's thinking and `content` is taken as is;
  // when unset, a `<think>…</think>` inside `content` is split off as the thinking (what the templates do).
  std::optional<std::string> reasoning_content;
  std::vector<ChatToolCall> tool_calls;  // assistant only
  std::string tool_call_id;              // tool only: the call this answers (not rendered by Qwen templates)
  std::string name;                      // tool only: the tool's name (not rendered by Qwen templates)
};

struct ChatOptions {
  bool add_generation_prompt = false;  // end with the opening of a new assistant turn
  bool enable_thinking = true;         // false: the generation prompt closes an empty think block
  // Qwen 3.6 only: keep the thinking of every assistant turn, not only those after the last user query.
  // This makes the rendered history append-only across turns (useful for prefix caching and agents).
  bool preserve_thinking = false;
  std::vector<std::string> tools;  // JSON text of each tool schema, e.g. {"type": "function", "function": {...}}
};

enum class ChatFormat {
  Qwen3,   // Qwen3 hybrid-thinking template: JSON tool calls, empty think block on the last answer
  Qwen35,  // Qwen3.5: XML tool calls (<function=…><parameter=…>), scalar arguments via Python str()
  Qwen36,  // Qwen3.6: as Qwen3.5 plus preserve_thinking, and scalar arguments via tojson
};

inline constexpr ChatFormat kDefaultChatFormat = ChatFormat::Qwen36;

// "qwen3", "qwen3.5", "qwen3.6".
std::string_view chat_format_name(ChatFormat format);
// Accepts the names above (also "qwen35"/"qwen36"); nullopt for anything else.
std::optional<ChatFormat> chat_format_from_name(std::string_view name);

// Recognizes a Jinja template text (e.g. GGUF `tokenizer.chat_template`) by substrings that only the
// matching Qwen template has; nullopt when it is none of them.
std::optional<ChatFormat> detect_chat_format(std::string_view template_text);

// The format to use: the override when given, else the detected one, else kDefaultChatFormat (logged
// as a warning when a template text was given but not recognized).
ChatFormat choose_chat_format(std::string_view template_text, std::optional<ChatFormat> override_format = {});

class ChatTemplate {
 public:
  virtual ~ChatTemplate() = default;

  virtual ChatFormat format() const = 0;

  // The prompt text for `messages`. Throws peregrine::Error where the Jinja template raises, and for
  // an empty list, an unknown role, or tool-call arguments that are not the JSON the format needs.
  virtual std::string render(std::span<const ChatMessage> messages, const ChatOptions& options) const = 0;

  // What add_generation_prompt appends.
  virtual std::string generation_prompt(const ChatOptions& options) const = 0;

  // Whether that generation prompt leaves an open <think> block, so the first generated tokens
  // are the model's thinking (Qwen 3.5/3.6 with thinking on).
  bool generation_opens_thinking(const ChatOptions& options) const;

  static std::unique_ptr<ChatTemplate> create(ChatFormat format);
};

// Shorthand for ChatTemplate::create(format)->render(messages, options).
std::string render_chat(ChatFormat format, std::span<const ChatMessage> messages, const ChatOptions& options);

}  // namespace peregrine
