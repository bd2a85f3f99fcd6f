// Internals shared by the native chat-template renderers (one .cpp per Jinja template family).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "peregrine/chat_template.h"

namespace peregrine::chat_detail {

enum class Role { System, User, Assistant, Tool };

// The role of every message, checked before anything is rendered. Throws peregrine::Error for an empty
// conversation or a role other than system/user/assistant/tool (naming the message index and role).
std::vector<Role> checked_roles(std::span<const ChatMessage> messages, ChatFormat format);

// `tool | tojson` for options.tools[index]; throws peregrine::Error naming the tool when it is not JSON.
std::string tool_schema_to_json(const ChatOptions& options, size_t index);

std::unique_ptr<ChatTemplate> make_qwen3_template();
// Qwen3.5 and Qwen3.6 share one renderer; `format` selects the two places where they differ.
std::unique_ptr<ChatTemplate> make_qwen35_family_template(ChatFormat format);

}  // namespace peregrine::chat_detail
