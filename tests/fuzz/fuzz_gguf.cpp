// libFuzzer target for the GGUF reader: any input must either load or throw GgufError; whatever
// loads is walked completely (every value converted and rendered, every tensor's first and last
// byte read) so that AddressSanitizer sees any view that points outside the input.
#include <cstddef>
#include <cstdint>
#include <span>

#include "peregrine/gguf.h"
#include "peregrine/log.h"

namespace {

volatile uint64_t g_sink;  // keeps the reads below from being optimised away

void walk(const peregrine::GgufValue& value, int depth) {
  uint64_t acc = value.as_u64().value_or(0) + static_cast<uint64_t>(value.as_i64().value_or(0));
  acc += static_cast<uint64_t>(value.as_f64().value_or(0.0) != 0.0) + value.as_bool().value_or(false);
  acc += value.to_display_string(4).size();
  if (const auto* text = value.as_string()) acc += text->size();
  if (const auto* array = value.as_array()) {
    if (depth > peregrine::GgufFile::kMaxArrayNesting) __builtin_trap();  // the reader's bound
    for (const auto& element : array->elements) {
      if (element.type() != array->element_type) __builtin_trap();
      walk(element, depth + 1);
    }
  }
  g_sink = g_sink + acc;
}

template <typename Fn>
void tolerate_getter_errors(Fn&& fn) {
  try {
    fn();
  } catch (const peregrine::GgufError& e) {
    if (e.code() != peregrine::GgufErrorCode::WrongKeyType) __builtin_trap();  // the key exists
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  peregrine::log::set_level("off");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  try {
    const auto file = peregrine::GgufFile::from_memory(bytes, "fuzz-input");
    if (file.data_offset() % file.alignment() != 0) __builtin_trap();
    for (const auto& entry : file.metadata()) {
      const std::string& key = entry.first;  // (clang 14 cannot capture structured bindings)
      const peregrine::GgufValue& value = entry.second;
      if (file.find(key) != &value) __builtin_trap();  // keys are unique
      walk(value, 0);
      tolerate_getter_errors([&] { g_sink = g_sink + file.get_u64(key); });
      tolerate_getter_errors([&] { g_sink = g_sink + static_cast<uint64_t>(file.get_i64(key)); });
      tolerate_getter_errors([&] { g_sink = g_sink + static_cast<uint64_t>(file.get_f64(key) != 0); });
      tolerate_getter_errors([&] { g_sink = g_sink + file.get_string(key).size(); });
      tolerate_getter_errors([&] { g_sink = g_sink + file.get_int_array(key).size(); });
      tolerate_getter_errors([&] { g_sink = g_sink + file.get_string_array(key).size(); });
    }
    for (const auto& t : file.tensors()) {
      if (file.find_tensor(t.name) != &t) __builtin_trap();
      if (t.n_bytes == 0 || t.data < data || t.data + t.n_bytes > data + size) __builtin_trap();
      if (t.offset % file.alignment() != 0) __builtin_trap();
      g_sink = g_sink + t.data[0] + t.data[t.n_bytes - 1];
    }
  } catch (const peregrine::GgufError&) {
    // Refusing the input is the expected outcome for almost every mutation.
  }
  return 0;
}
