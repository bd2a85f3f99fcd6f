// GgufValue conversions and the display form `inspect` prints.
#include <gtest/gtest.h>

#include "peregrine/gguf.h"

namespace peregrine {
namespace {

TEST(GgufValue, UnsignedConversionAcceptsAnyNonNegativeInteger) {
  EXPECT_EQ(GgufValue::u8(200).as_u64(), 200u);
  EXPECT_EQ(GgufValue::i32(7).as_u64(), 7u);
  EXPECT_EQ(GgufValue::i64(-1).as_u64(), std::nullopt);
  EXPECT_EQ(GgufValue::u64(UINT64_MAX).as_u64(), UINT64_MAX);
  EXPECT_EQ(GgufValue::f32(1.0f).as_u64(), std::nullopt);
  EXPECT_EQ(GgufValue::boolean(true).as_u64(), std::nullopt);
  EXPECT_EQ(GgufValue::string("1").as_u64(), std::nullopt);
}

TEST(GgufValue, SignedConversionChecksRange) {
  EXPECT_EQ(GgufValue::i8(-128).as_i64(), -128);
  EXPECT_EQ(GgufValue::u32(UINT32_MAX).as_i64(), int64_t{UINT32_MAX});
  EXPECT_EQ(GgufValue::u64(UINT64_MAX).as_i64(), std::nullopt);
  EXPECT_EQ(GgufValue::u64(INT64_MAX).as_i64(), INT64_MAX);
}

TEST(GgufValue, FloatConversionAcceptsFloatsAndIntegers) {
  EXPECT_EQ(GgufValue::f32(0.25f).as_f64(), 0.25);
  EXPECT_EQ(GgufValue::f64(1e300).as_f64(), 1e300);
  EXPECT_EQ(GgufValue::i16(-3).as_f64(), -3.0);
  EXPECT_EQ(GgufValue::boolean(false).as_f64(), std::nullopt);
  EXPECT_TRUE(GgufValue::f32(1).is_float());
  EXPECT_FALSE(GgufValue::f32(1).is_integer());
  EXPECT_TRUE(GgufValue::u16(1).is_integer());
}

TEST(GgufValue, OtherKinds) {
  EXPECT_EQ(GgufValue::boolean(true).as_bool(), true);
  EXPECT_EQ(GgufValue::u8(1).as_bool(), std::nullopt);
  ASSERT_NE(GgufValue::string("x").as_string(), nullptr);
  EXPECT_EQ(*GgufValue::string("x").as_string(), "x");
  EXPECT_EQ(GgufValue::u8(1).as_string(), nullptr);
  EXPECT_EQ(GgufValue::u8(1).as_array(), nullptr);
  const GgufValue array = GgufValue::array(GgufValueType::INT8, {GgufValue::i8(1), GgufValue::i8(-1)});
  ASSERT_NE(array.as_array(), nullptr);
  EXPECT_EQ(array.as_array()->element_type, GgufValueType::INT8);
  EXPECT_EQ(array.as_array()->elements.size(), 2u);
  EXPECT_THROW(GgufValue::array(GgufValueType::INT8, {GgufValue::u8(1)}), GgufError);
  // A type paired with the wrong storage converts to nothing instead of crashing.
  const GgufValue odd(GgufValueType::UINT32, std::string("not a number"));
  EXPECT_EQ(odd.as_u64(), std::nullopt);
  EXPECT_EQ(odd.as_f64(), std::nullopt);
  EXPECT_EQ(odd.to_display_string(), "?");
}

TEST(GgufValue, DisplayString) {
  EXPECT_EQ(GgufValue::u32(4096).to_display_string(), "4096");
  EXPECT_EQ(GgufValue::i32(-2).to_display_string(), "-2");
  EXPECT_EQ(GgufValue::f32(1e-6f).to_display_string(), "1e-06");
  EXPECT_EQ(GgufValue::f32(10000000.0f).to_display_string(), "10000000");
  EXPECT_EQ(GgufValue::f64(0.1).to_display_string(), "0.1");
  EXPECT_EQ(GgufValue::boolean(false).to_display_string(), "false");
  EXPECT_EQ(GgufValue::string("a\"b\n").to_display_string(), "\"a\\\"b\\n\"");
  EXPECT_EQ(GgufValue::string(std::string("\x01", 1)).to_display_string(), "\"\\x01\"");
  std::vector<GgufValue> ints;
  for (int i = 0; i < 10; ++i) ints.push_back(GgufValue::i32(i));
  const GgufValue array = GgufValue::array(GgufValueType::INT32, ints);
  EXPECT_EQ(array.to_display_string(3), "[0, 1, 2, ... (10 INT32 total)]");
  EXPECT_EQ(array.to_display_string(10), "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]");
  EXPECT_EQ(GgufValue::array(GgufValueType::STRING, {}).to_display_string(), "[]");
  const GgufValue nested = GgufValue::array(
      GgufValueType::ARRAY, {GgufValue::array(GgufValueType::STRING, {GgufValue::string("x")}),
                             GgufValue::array(GgufValueType::STRING, {})});
  EXPECT_EQ(nested.to_display_string(), "[[\"x\"], []]");
  // Long strings are cut (never inside a UTF-8 sequence) and say how long they were.
  std::string long_text(158, 'a');
  long_text += "\xc3\xa9\xc3\xa9";  // "éé" straddling the 160-byte cut
  const std::string shown = GgufValue::string(long_text).to_display_string();
  EXPECT_EQ(shown, "\"" + std::string(158, 'a') + "\xc3\xa9\"... (162 bytes)");
}

TEST(GgufValue, TypeAndErrorNames) {
  EXPECT_EQ(gguf_value_type_name(GgufValueType::FLOAT64), "FLOAT64");
  EXPECT_EQ(gguf_value_type_name(GgufValueType::ARRAY), "ARRAY");
  EXPECT_EQ(gguf_error_code_name(GgufErrorCode::OverlappingTensors), "OverlappingTensors");
  EXPECT_EQ(gguf_error_code_name(GgufErrorCode::WrongKeyType), "WrongKeyType");
}

}  // namespace
}  // namespace peregrine
