// libFuzzer target for the native chat-template renderers: a conversation (roles, contents,
// thinking, tool calls with their arguments JSON) and tool schemas, as the app and the CLI hand
// them over, rendered in every format. The input is text so that seeds can be written by hand:
//
//   byte 0: options — bit 0 add_generation_prompt, bit 1 enable_thinking, bit 2 preserve_thinking
//   then records separated by 0x1E, each made of fields separated by 0x1F:
//     schema <0x1F> TOOL-SCHEMA-JSON                             a tool schema (ChatOptions::tools)
//     ROLE <0x1F> CONTENT [<0x1F> THINKING [<0x1F> NAME <0x1F> ARGUMENTS-JSON]...]   a message
//   THINKING "-" leaves reasoning_content unset.
//
// A render must either succeed or throw peregrine::Error; when it succeeds with
// add_generation_prompt, the text must end with generation_prompt().
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "peregrine/chat_template.h"
#include "peregrine/error.h"
#include "peregrine/log.h"

namespace {

volatile uint64_t g_sink;

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    const size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

peregrine::ChatMessage message_from(const std::vector<std::string_view>& fields) {
  peregrine::ChatMessage m;
  m.role = std::string(fields[0]);
  if (fields.size() > 1) m.content = std::string(fields[1]);
  if (fields.size() > 2 && fields[2] != "-") m.reasoning_content = std::string(fields[2]);
  for (size_t i = 3; i + 1 < fields.size(); i += 2)
    m.tool_calls.push_back(peregrine::ChatToolCall{std::string(fields[i]), std::string(fields[i + 1]), ""});
  return m;
}

void render_all_formats(const std::vector<peregrine::ChatMessage>& messages, const peregrine::ChatOptions& options) {
  for (auto format : {peregrine::ChatFormat::Qwen3, peregrine::ChatFormat::Qwen35, peregrine::ChatFormat::Qwen36}) {
    const auto chat_template = peregrine::ChatTemplate::create(format);
    try {
      const std::string text = chat_template->render(messages, options);
      if (options.add_generation_prompt) {
        const std::string tail = chat_template->generation_prompt(options);
        if (text.size() < tail.size() || text.compare(text.size() - tail.size(), tail.size(), tail) != 0)
          __builtin_trap();
      }
      g_sink = g_sink + text.size();
    } catch (const peregrine::Error&) {
      // Unknown roles, bad arguments JSON, what the Jinja template raises: refused with a message.
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  peregrine::log::set_level("off");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  peregrine::ChatOptions options;
  options.add_generation_prompt = data[0] & 1;
  options.enable_thinking = data[0] & 2;
  options.preserve_thinking = data[0] & 4;
  std::vector<peregrine::ChatMessage> messages;
  for (std::string_view record : split(input.substr(1), '\x1e')) {
    const std::vector<std::string_view> fields = split(record, '\x1f');
    if (fields[0] == "schema") {
      if (fields.size() > 1) options.tools.emplace_back(fields[1]);
    } else {
      messages.push_back(message_from(fields));
    }
  }
  g_sink = g_sink + peregrine::detect_chat_format(input).has_value();
  render_all_formats(messages, options);
  return 0;
}
