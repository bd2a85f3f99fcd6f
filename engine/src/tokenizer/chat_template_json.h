// The JSON the chat templates print: a small parser that keeps key order, and serializers that print
// exactly what the reference renderer (Python Jinja in transformers / vLLM) prints.
//
// transformers replaces Jinja's `tojson` with json.dumps(x, ensure_ascii=False): separators ", " and
// ": ", no sorting, non-ASCII kept as UTF-8, only `"` `\` and control characters escaped. Values reach it
// through json.loads, so numbers are Python ints (arbitrary precision) and floats (printed with repr).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace peregrine::chat_detail {

struct JsonMember;

struct JsonValue {
  enum class Kind { Null, Bool, Integer, Float, String, Array, Object };

  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0.0;  // Float
  std::string text;     // String: the decoded UTF-8; Integer: the digits as Python's int() prints them
  std::vector<JsonValue> items;                             // Array
  std::vector<JsonMember> members;  // Object, in first-seen key order

  bool is_container() const { return kind == Kind::Array || kind == Kind::Object; }
};

// One key of an object. (A struct rather than std::pair: clang with libstdc++ refuses a vector of
// pairs holding the still incomplete JsonValue.)
struct JsonMember {
  std::string key;
  JsonValue value;
};

// Parses strict JSON (RFC 8259). A repeated key keeps its first position and takes the last value, as a
// Python dict does. Throws peregrine::Error naming `what` and the byte offset on malformed input.
JsonValue parse_json(std::string_view text, std::string_view what);

// json.dumps(value, ensure_ascii=False) — what `x | tojson` prints in the reference renderer.
std::string to_python_json(const JsonValue& value);

// str(value) for a scalar (what `x | string` prints): None, True, False, int digits, float repr, or the
// raw string. Containers fall back to to_python_json (Python would print its repr; no Qwen template
// asks for that).
std::string to_python_str(const JsonValue& value);

// repr(float) (shortest round-trip digits; exponent form below 1e-4 and from 1e16).
std::string python_float_repr(double value);

}  // namespace peregrine::chat_detail
