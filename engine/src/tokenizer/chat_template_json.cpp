#include "tokenizer/chat_template_json.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "peregrine/error.h"

namespace peregrine::chat_detail {
namespace {

// Deep enough for any real schema; stops a hostile input from exhausting the stack.
constexpr int kMaxDepth = 256;

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Parser {
 public:
  Parser(std::string_view text, std::string_view what) : s_(text), what_(what) {}

  JsonValue parse_document() {
    skip_ws();
    JsonValue v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(std::string_view why) const {
    throw Error(fmt::format("chat template: {} is not valid JSON: {} at byte {}", what_, why, pos_));
  }

  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool consume_literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  JsonValue parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 256 levels");
    if (pos_ >= s_.size()) fail("unexpected end of text");
    JsonValue v;
    switch (s_[pos_]) {
      case '{': parse_object(v, depth); break;
      case '[': parse_array(v, depth); break;
      case '"':
        v.kind = JsonValue::Kind::String;
        v.text = parse_string();
        break;
      case 't':
      case 'f':
        v.kind = JsonValue::Kind::Bool;
        if (consume_literal("true")) v.boolean = true;
        else if (!consume_literal("false")) fail("unknown literal");
        break;
      case 'n':
        if (!consume_literal("null")) fail("unknown literal");
        break;
      default: parse_number(v); break;
    }
    return v;
  }

  void parse_object(JsonValue& v, int depth) {
    v.kind = JsonValue::Kind::Object;
    ++pos_;  // '{'
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return;
    }
    for (;;) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a string key");
      std::string key = parse_string();
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') fail("expected ':'");
      ++pos_;
      skip_ws();
      JsonValue member = parse_value(depth + 1);
      bool replaced = false;
      for (auto& [existing_key, existing_value] : v.members) {
        if (existing_key == key) {
          existing_value = std::move(member);
          replaced = true;
          break;
        }
      }
      if (!replaced) v.members.push_back(JsonMember{std::move(key), std::move(member)});
      skip_ws();
      if (pos_ >= s_.size()) fail("unterminated object");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == '}') {
        ++pos_;
        return;
      }
      fail("expected ',' or '}'");
    }
  }

  void parse_array(JsonValue& v, int depth) {
    v.kind = JsonValue::Kind::Array;
    ++pos_;  // '['
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return;
    }
    for (;;) {
      skip_ws();
      v.items.push_back(parse_value(depth + 1));
      skip_ws();
      if (pos_ >= s_.size()) fail("unterminated array");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == ']') {
        ++pos_;
        return;
      }
      fail("expected ',' or ']'");
    }
  }

  uint32_t parse_hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      value <<= 4;
      if (c >= '0' && c <= '9') value |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') value |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') value |= static_cast<uint32_t>(c - 'A' + 10);
      else fail("bad hex digit in \\u escape");
    }
    return value;
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) fail("unterminated string");
      char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) fail("control character inside a string");
      if (c != '\\') {
        out += c;  // UTF-8 bytes pass through unchanged
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= s_.size()) fail("unterminated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': append_unicode_escape(out); break;
        default: fail("unknown escape");
      }
    }
  }

  void append_unicode_escape(std::string& out) {
    uint32_t cp = parse_hex4();
    if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(pos_, 2) == "\\u") {
      size_t save = pos_;
      pos_ += 2;
      uint32_t low = parse_hex4();
      if (low >= 0xDC00 && low < 0xE000) {
        append_utf8(out, 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00));
        return;
      }
      pos_ = save;  // not a pair: the high surrogate stands alone
    }
    if (cp >= 0xD800 && cp < 0xE000) {
      // A lone surrogate has no UTF-8 form (Python would carry a code point the tokenizer cannot
      // encode); U+FFFD keeps the prompt valid UTF-8.
      cp = 0xFFFD;
    }
    append_utf8(out, cp);
  }

  void parse_number(JsonValue& v) {
    size_t start = pos_;
    bool negative = false;
    if (s_[pos_] == '-') {
      negative = true;
      ++pos_;
    }
    auto digits = [&] {
      size_t begin = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - begin;
    };
    size_t int_begin = pos_;
    size_t n_int = digits();
    if (n_int == 0) fail("unexpected character");
    if (n_int > 1 && s_[int_begin] == '0') fail("leading zero in a number");
    bool is_float = false;
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) fail("no digits after the decimal point");
      is_float = true;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (digits() == 0) fail("no digits in the exponent");
      is_float = true;
    }
    std::string literal(s_.substr(start, pos_ - start));
    if (is_float) {
      v.kind = JsonValue::Kind::Float;
      v.number = std::strtod(literal.c_str(), nullptr);  // overflow gives ±inf, as float() does
    } else {
      v.kind = JsonValue::Kind::Integer;
      std::string_view magnitude = s_.substr(int_begin, n_int);
      v.text = (negative && magnitude != "0") ? "-" + std::string(magnitude) : std::string(magnitude);
    }
  }

  std::string_view s_;
  std::string_view what_;
  size_t pos_ = 0;
};

void append_python_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        else out += c;
    }
  }
  out += '"';
}

void append_python_json(std::string& out, const JsonValue& v) {
  switch (v.kind) {
    case JsonValue::Kind::Null: out += "null"; break;
    case JsonValue::Kind::Bool: out += v.boolean ? "true" : "false"; break;
    case JsonValue::Kind::Integer: out += v.text; break;
    case JsonValue::Kind::Float:
      // json.dumps prints non-finite floats as these JavaScript names.
      if (std::isnan(v.number)) out += "NaN";
      else if (std::isinf(v.number)) out += v.number > 0 ? "Infinity" : "-Infinity";
      else out += python_float_repr(v.number);
      break;
    case JsonValue::Kind::String: append_python_json_string(out, v.text); break;
    case JsonValue::Kind::Array:
      out += '[';
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i) out += ", ";
        append_python_json(out, v.items[i]);
      }
      out += ']';
      break;
    case JsonValue::Kind::Object:
      out += '{';
      for (size_t i = 0; i < v.members.size(); ++i) {
        if (i) out += ", ";
        append_python_json_string(out, v.members[i].key);
        out += ": ";
        append_python_json(out, v.members[i].value);
      }
      out += '}';
      break;
  }
}

}  // namespace

JsonValue parse_json(std::string_view text, std::string_view what) {
  return Parser(text, what).parse_document();
}

std::string to_python_json(const JsonValue& value) {
  std::string out;
  append_python_json(out, value);
  return out;
}

std::string to_python_str(const JsonValue& value) {
  switch (value.kind) {
    case JsonValue::Kind::Null: return "None";
    case JsonValue::Kind::Bool: return value.boolean ? "True" : "False";
    case JsonValue::Kind::Integer: return value.text;
    case JsonValue::Kind::Float:
      if (std::isnan(value.number)) return "nan";
      if (std::isinf(value.number)) return value.number > 0 ? "inf" : "-inf";
      return python_float_repr(value.number);
    case JsonValue::Kind::String: return value.text;
    case JsonValue::Kind::Array:
    case JsonValue::Kind::Object: return to_python_json(value);
  }
  return {};
}

std::string python_float_repr(double value) {
  // The shortest digits that round-trip, from the scientific form "d.ddde±x".
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  if (ec != std::errc()) throw Error("chat template: cannot format a float");
  std::string_view sci(buf, static_cast<size_t>(end - buf));
  bool negative = !sci.empty() && sci[0] == '-';
  if (negative) sci.remove_prefix(1);
  size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits += c;
  }
  int exponent = std::atoi(std::string(sci.substr(e_pos + 1)).c_str());
  // Python's float_repr_style 'short', mode 'r': value = 0.DIGITS * 10^decpt.
  const int decpt = exponent + 1;
  const int n_digits = static_cast<int>(digits.size());
  std::string out = negative ? "-" : "";
  if (decpt <= -4 || decpt > 16) {
    out += digits[0];
    if (n_digits > 1) {
      out += '.';
      out += digits.substr(1);
    }
    out += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
  } else if (decpt <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-decpt), '0');
    out += digits;
  } else if (decpt >= n_digits) {
    out += digits;
    out.append(static_cast<size_t>(decpt - n_digits), '0');
    out += ".0";
  } else {
    out += digits.substr(0, static_cast<size_t>(decpt));
    out += '.';
    out += digits.substr(static_cast<size_t>(decpt));
  }
  return out;
}

}  // namespace peregrine::chat_detail
