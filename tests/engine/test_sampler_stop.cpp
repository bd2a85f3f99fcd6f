// Stop strings across token boundaries: held back while they might still match, never emitted.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "decode/stop_strings.h"

namespace peregrine {
namespace {

// Feeds pieces, returns everything emitted (plus the flush when not stopped) and whether it stopped.
std::pair<std::string, bool> feed(StopStringMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) {
    auto r = m.push(p);
    out += r.emit;
    if (r.stopped) return {out, true};
  }
  return {out + m.flush(), false};
}

TEST(StopStrings, StopSpanningPiecesIsNeverEmitted) {
  StopStringMatcher m({"STOP"});
  auto r = m.push("Hel");
  EXPECT_EQ(r.emit, "Hel");
  r = m.push("lo S");
  EXPECT_EQ(r.emit, "lo ");  // "S" might start STOP
  EXPECT_EQ(m.held_bytes(), 1u);
  r = m.push("TO");
  EXPECT_EQ(r.emit, "");
  EXPECT_FALSE(r.stopped);
  r = m.push("P and more");
  EXPECT_EQ(r.emit, "");
  EXPECT_TRUE(r.stopped);
  EXPECT_TRUE(m.push("later").emit.empty());
}

TEST(StopStrings, FalseStartIsReleased) {
  StopStringMatcher m({"STOP"});
  EXPECT_EQ(feed(m, {"a ST", "ART b"}), std::make_pair(std::string("a START b"), false));
  StopStringMatcher tail({"</answer>"});
  EXPECT_EQ(feed(tail, {"x </ans"}), std::make_pair(std::string("x </ans"), false));  // flushed at the end
}

TEST(StopStrings, OverlappingPrefixesAndEarliestMatch) {
  StopStringMatcher m({"aab"});
  auto r = m.push("aa");
  EXPECT_EQ(r.emit, "");
  r = m.push("a");
  EXPECT_EQ(r.emit, "a");  // "aaa": only the last two can still start "aab"
  r = m.push("b!");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.emit, "");

  StopStringMatcher two({"world", "lo w"});
  EXPECT_EQ(feed(two, {"hello world"}), std::make_pair(std::string("hel"), true));
}

TEST(StopStrings, TextBeforeStopInSamePieceIsEmitted) {
  StopStringMatcher m({"\n\n"});
  EXPECT_EQ(feed(m, {"line one\n", "\nline two"}), std::make_pair(std::string("line one"), true));
}

TEST(StopStrings, MultiByteStop) {
  StopStringMatcher m({"Straße"});
  EXPECT_EQ(feed(m, {"die Stra", "ß", "e 5"}), std::make_pair(std::string("die "), true));
  StopStringMatcher none({"日本"});
  EXPECT_EQ(feed(none, {"日", "曜日"}), std::make_pair(std::string("日曜日"), false));
}

TEST(StopStrings, NoStopsPassesThroughAndEmptyStopsIgnored) {
  StopStringMatcher m({"", ""});
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.push("abc").emit, "abc");
  EXPECT_EQ(m.held_bytes(), 0u);
}

}  // namespace
}  // namespace peregrine
