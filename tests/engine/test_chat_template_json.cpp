// The pieces under the renderers: tojson as Python's json.dumps(ensure_ascii=False) prints it, Python's
// str() and float repr, the strict JSON parser, and Python's notion of whitespace for `trim`.
// Expected values are what CPython 3.11 prints for the same input.
#include <string>

#include <gtest/gtest.h>

#include "peregrine/error.h"
#include "tokenizer/chat_template_json.h"
#include "tokenizer/chat_template_text.h"

namespace peregrine::chat_detail {
namespace {

std::string tojson(std::string_view text) { return to_python_json(parse_json(text, "test input")); }

TEST(ChatTemplateJson, SeparatorsAndKeyOrderFollowJsonDumps) {
  EXPECT_EQ(tojson(R"({"b":1,"a":[true,false,null],"c":{}})"), R"({"b": 1, "a": [true, false, null], "c": {}})");
  EXPECT_EQ(tojson(" [ ] "), "[]");
  EXPECT_EQ(tojson(R"([[1,[2]],{"k":{"j":[]}}])"), R"([[1, [2]], {"k": {"j": []}}])");
}

TEST(ChatTemplateJson, StringsKeepNonAsciiAndEscapeOnlyQuotesBackslashAndControls) {
  EXPECT_EQ(tojson(R"("caf\u00e9 \ud83d\ude00 \/ é")"), "\"café 😀 / é\"");
  EXPECT_EQ(tojson(R"("q\" b\\ n\n r\r t\t b\b f\f u\u0001 d\u007f")"),
            "\"q\\\" b\\\\ n\\n r\\r t\\t b\\b f\\f u\\u0001 d\x7f\"");
  EXPECT_EQ(tojson("\"\u2028<tag>&'\""), "\"\u2028<tag>&'\"");  // no HTML-safe escaping
  EXPECT_EQ(tojson(R"("\ud800x\udc00")"), "\"\uFFFDx\uFFFD\"");  // lone surrogates become U+FFFD
}

TEST(ChatTemplateJson, IntegersAreArbitraryPrecisionAndMinusZeroIsZero) {
  EXPECT_EQ(tojson("12345678901234567890123"), "12345678901234567890123");
  EXPECT_EQ(tojson("-0"), "0");
  EXPECT_EQ(tojson("-7"), "-7");
}

TEST(ChatTemplateJson, FloatsPrintAsPythonRepr) {
  EXPECT_EQ(tojson("1.0"), "1.0");
  EXPECT_EQ(tojson("1E2"), "100.0");
  EXPECT_EQ(tojson("0.1"), "0.1");
  EXPECT_EQ(tojson("-0.0"), "-0.0");
  EXPECT_EQ(tojson("1e15"), "1000000000000000.0");
  EXPECT_EQ(tojson("1e16"), "1e+16");
  EXPECT_EQ(tojson("1.5e16"), "1.5e+16");
  EXPECT_EQ(tojson("0.0001"), "0.0001");
  EXPECT_EQ(tojson("0.00001"), "1e-05");
  EXPECT_EQ(tojson("123.456"), "123.456");
  EXPECT_EQ(tojson("2.5e-300"), "2.5e-300");
  EXPECT_EQ(tojson("1.7976931348623157e308"), "1.7976931348623157e+308");
  EXPECT_EQ(tojson("1e400"), "Infinity");
  EXPECT_EQ(tojson("-1e400"), "-Infinity");
}

TEST(ChatTemplateJson, PythonStrOfScalars) {
  EXPECT_EQ(to_python_str(parse_json("true", "t")), "True");
  EXPECT_EQ(to_python_str(parse_json("false", "t")), "False");
  EXPECT_EQ(to_python_str(parse_json("null", "t")), "None");
  EXPECT_EQ(to_python_str(parse_json("2.50", "t")), "2.5");
  EXPECT_EQ(to_python_str(parse_json("\"a\\nb\"", "t")), "a\nb");
  EXPECT_EQ(to_python_str(parse_json("[1,2]", "t")), "[1, 2]");
}

TEST(ChatTemplateJson, RepeatedKeyKeepsFirstPositionAndLastValue) {
  EXPECT_EQ(tojson(R"({"a":1,"b":2,"a":3})"), R"({"a": 3, "b": 2})");
}

TEST(ChatTemplateJson, MalformedInputIsRefusedWithWhatAndWhere) {
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "01", "1.", "1e", "tru", "\"a", "\"\t\"", "\"\\x\"",
                          "\"\\u12g4\"", "{} x", "{'a': 1}"}) {
    try {
      parse_json(bad, "sample");
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("sample is not valid JSON"), std::string::npos) << what;
      EXPECT_NE(what.find("at byte"), std::string::npos) << what;
    }
  }
  EXPECT_THROW(parse_json(std::string(300, '[') + std::string(300, ']'), "deep"), Error);
  EXPECT_NO_THROW(parse_json(std::string(200, '[') + std::string(200, ']'), "deep"));
}

TEST(ChatTemplateText, TrimUsesPythonWhitespace) {
  EXPECT_EQ(python_trim(" \t\n\v\f\r x y \r\n"), "x y");
  EXPECT_EQ(python_trim("\u3000\u00a0\u0085\u2028\u2029\u202f\u205f\u1680\u2000\u200a\x1c\x1fx\u3000"), "x");
  EXPECT_EQ(python_trim("\ufeffx\u200b"), "\ufeffx\u200b");  // BOM and zero-width space are not whitespace
  EXPECT_EQ(python_trim("  "), "");
  EXPECT_EQ(python_trim("\xa0x"), "\xa0x");  // a stray byte is not UTF-8 whitespace
  EXPECT_EQ(python_trim("\xc0\xa0x"), "\xc0\xa0x");  // nor is an overlong encoding
}

TEST(ChatTemplateText, SplitAndStripHelpersMatchPython) {
  EXPECT_EQ(before_first("a</think>b</think>c", "</think>"), "a");
  EXPECT_EQ(after_last("a</think>b</think>c", "</think>"), "c");
  EXPECT_EQ(after_last("abc", "</think>"), "abc");
  EXPECT_EQ(strip_char("\n\nx\n \n", '\n'), "x\n ");
  EXPECT_EQ(lstrip_char("\n\n", '\n'), "");
  EXPECT_EQ(rstrip_char("x\n\n", '\n'), "x");
}

}  // namespace
}  // namespace peregrine::chat_detail
