// Sample answers shared by the widget tests and the screenshot program.
#pragma once

#include <QString>

namespace peregrine::ui::testing {

// The thinking that goes with sampleAnswer() (the engine hands it over apart from the answer).
inline QString sampleThinking() {
  return QStringLiteral(
      "The user wants a ring buffer. A fixed-size array with head and tail indices "
      "works; I should show C++ and a Python check.\n");
}

// An answer with every kind of segment: Markdown (list, table, inline code, link), a C++ block, a
// Python block, and text between and after them.
inline QString sampleAnswer() {
  return QStringLiteral(
      "Here is a **fixed-size ring buffer** with `push` and `pop`:\n\n"
      "```cpp\n"
      "#include <array>\n"
      "#include <optional>\n"
      "\n"
      "template <typename T, std::size_t N>\n"
      "class RingBuffer {\n"
      " public:\n"
      "  bool push(const T& value) {\n"
      "    if (size_ == N) return false;  // full\n"
      "    items_[(head_ + size_++) % N] = value;\n"
      "    return true;\n"
      "  }\n"
      "  std::optional<T> pop() {\n"
      "    if (size_ == 0) return std::nullopt;\n"
      "    T value = items_[head_];\n"
      "    head_ = (head_ + 1) % N;\n"
      "    --size_;\n"
      "    return value;\n"
      "  }\n"
      "\n"
      " private:\n"
      "  std::array<T, N> items_{};\n"
      "  std::size_t head_ = 0, size_ = 0;\n"
      "};\n"
      "```\n\n"
      "| Operation | Cost | Notes |\n"
      "|---|---|---|\n"
      "| `push` | O(1) | fails when full |\n"
      "| `pop` | O(1) | empty → `nullopt` |\n\n"
      "A quick check in Python:\n\n"
      "```python\n"
      "def check(capacity: int = 4) -> None:\n"
      "    buf = []\n"
      "    for i in range(capacity + 1):\n"
      "        ok = len(buf) < capacity\n"
      "        if ok:\n"
      "            buf.append(i)\n"
      "        print(f\"push {i}: {'ok' if ok else 'full'}\")\n"
      "```\n\n"
      "- keeps no heap allocations\n"
      "- [x] single producer\n"
      "- [ ] thread-safe (needs atomics)\n\n"
      "See [std::array](https://en.cppreference.com/w/cpp/container/array).\n");
}

}  // namespace peregrine::ui::testing
