// Format names, detection from a model's Jinja template text, the factory, and checks every renderer shares.
#include "peregrine/chat_template.h"

#include <fmt/format.h>

#include "peregrine/error.h"
#include "peregrine/log.h"
#include "tokenizer/chat_template_json.h"
#include "tokenizer/chat_template_renderers.h"
#include "tokenizer/chat_template_text.h"

namespace peregrine {

std::string_view chat_format_name(ChatFormat format) {
  switch (format) {
    case ChatFormat::Qwen3: return "qwen3";
    case ChatFormat::Qwen35: return "qwen3.5";
    case ChatFormat::Qwen36: return "qwen3.6";
  }
  return "unknown";
}

std::optional<ChatFormat> chat_format_from_name(std::string_view name) {
  if (name == "qwen3") return ChatFormat::Qwen3;
  if (name == "qwen3.5" || name == "qwen35") return ChatFormat::Qwen35;
  if (name == "qwen3.6" || name == "qwen36") return ChatFormat::Qwen36;
  return std::nullopt;
}

std::optional<ChatFormat> detect_chat_format(std::string_view text) {
  using chat_detail::contains;
  // Qwen3.5/3.6 describe the XML tool-call dialect in their tools prompt; 3.6 adds preserve_thinking and
  // prints scalar arguments with tojson (both changes are checked, so either one identifies 3.6).
  if (contains(text, "<function=example_function_name>") || contains(text, "<parameter=example_parameter_1>")) {
    if (contains(text, "preserve_thinking") ||
        contains(text, "args_value | string if args_value is string else args_value | tojson")) {
      return ChatFormat::Qwen36;
    }
    return ChatFormat::Qwen35;
  }
  // Qwen3 (hybrid thinking): JSON tool calls plus the enable_thinking switch. Qwen2.5 and QwQ have the
  // JSON tool prompt too but no enable_thinking, so they are not taken for Qwen3.
  if (contains(text, "<args-json-object>") && contains(text, "enable_thinking")) return ChatFormat::Qwen3;
  return std::nullopt;
}

ChatFormat choose_chat_format(std::string_view template_text, std::optional<ChatFormat> override_format) {
  auto log = log::get("chat_template");
  if (override_format) {
    log->debug("chat format {} (explicit override)", chat_format_name(*override_format));
    return *override_format;
  }
  if (auto detected = detect_chat_format(template_text)) {
    log->debug("chat format {} (detected from the model's chat template)", chat_format_name(*detected));
    return *detected;
  }
  if (!template_text.empty()) {
    log->warn("the model's chat template ({} bytes) is not a known Qwen template; rendering with {}",
              template_text.size(), chat_format_name(kDefaultChatFormat));
  }
  return kDefaultChatFormat;
}

bool ChatTemplate::generation_opens_thinking(const ChatOptions& options) const {
  const std::string prompt = generation_prompt(options);
  const size_t open = prompt.rfind("<think>");
  return open != std::string::npos && prompt.find("</think>", open) == std::string::npos;
}

std::unique_ptr<ChatTemplate> ChatTemplate::create(ChatFormat format) {
  switch (format) {
    case ChatFormat::Qwen3: return chat_detail::make_qwen3_template();
    case ChatFormat::Qwen35:
    case ChatFormat::Qwen36: return chat_detail::make_qwen35_family_template(format);
  }
  throw Error(fmt::format("chat template: unknown ChatFormat value {}", static_cast<int>(format)));
}

std::string render_chat(ChatFormat format, std::span<const ChatMessage> messages, const ChatOptions& options) {
  return ChatTemplate::create(format)->render(messages, options);
}

namespace chat_detail {

std::vector<Role> checked_roles(std::span<const ChatMessage> messages, ChatFormat format) {
  if (messages.empty()) {
    throw Error(fmt::format("chat template {}: no messages to render (the conversation is empty)",
                            chat_format_name(format)));
  }
  std::vector<Role> roles;
  roles.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    if (role == "system") roles.push_back(Role::System);
    else if (role == "user") roles.push_back(Role::User);
    else if (role == "assistant") roles.push_back(Role::Assistant);
    else if (role == "tool") roles.push_back(Role::Tool);
    else {
      throw Error(fmt::format("chat template {}: message {} has role \"{}\"; expected system, user, assistant or tool",
                              chat_format_name(format), i, role));
    }
  }
  return roles;
}

std::string tool_schema_to_json(const ChatOptions& options, size_t index) {
  return to_python_json(parse_json(options.tools.at(index), fmt::format("tool schema #{} (ChatOptions::tools)", index)));
}

}  // namespace chat_detail
}  // namespace peregrine
