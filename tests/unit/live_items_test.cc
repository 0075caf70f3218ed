// The live session contract's JSON forms (core/live_items.h) and base64 (core/base64.h).
#include <gtest/gtest.h>

#include "core/base64.h"
#include "core/live_items.h"

namespace steno::live {
namespace {

TEST(Base64Test, RoundTripsEveryLengthAndRefusesMalformedText) {
  std::string bytes;
  for (int n = 0; n < 10; ++n) {
    auto back = Base64Decode(Base64Encode(bytes));
    ASSERT_TRUE(back.ok()) << n;
    EXPECT_EQ(back.value(), bytes);
    bytes.push_back(static_cast<char>(0xF0 + n));
  }
  EXPECT_EQ(Base64Encode("hi!"), "aGkh");
  EXPECT_EQ(Base64Decode("aGk=").value(), "hi");
  for (const char* bad : {"aGk", "aG!h", "a=kh", "aGkh\n", "====", "aGk=aGkh"}) {
    auto r = Base64Decode(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, "bad_base64") << bad;
  }
}

TEST(LiveItemsTest, InputRoundTripsAudioAndSettings) {
  Input audio{Input::Op::kAudio, {0, 1, -1, 32767, -32768}, {}};
  auto back = InputFromJson(InputToJson(audio));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back.value(), audio);

  Input update{Input::Op::kUpdate, {}, Settings{"en", "names", VadSettings{0.6f, 100, 800}}};
  back = InputFromJson(InputToJson(update));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back.value(), update);

  Input manual{Input::Op::kUpdate, {}, Settings{"", "", std::nullopt}};
  back = InputFromJson(InputToJson(manual));
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back.value().settings.turn_detection.has_value());
  for (auto op : {Input::Op::kCommit, Input::Op::kClear, Input::Op::kClose}) {
    back = InputFromJson(InputToJson(Input{op, {}, {}}));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back.value().op, op);
  }
}

TEST(LiveItemsTest, BadInputNamesTheField) {
  using nlohmann::json;
  auto code = [](const json& j) { return InputFromJson(j).error().code; };
  EXPECT_EQ(code(json{{"op", "shout"}}), "bad_live_op");
  EXPECT_EQ(code(json{{"op", "audio"}, {"pcm16", "@@@@"}}), "bad_live_pcm16");
  EXPECT_EQ(code(json{{"op", "audio"}, {"pcm16", "AA=="}}), "bad_live_pcm16");  // one byte
  EXPECT_EQ(code(json{{"op", "update"}}), "bad_live_settings");
  EXPECT_EQ(code(json{{"op", "update"}, {"settings", {{"turn_detection", {{"threshold", "x"}}}}}}),
            "bad_live_threshold");
}

TEST(LiveItemsTest, EventsRoundTrip) {
  for (auto kind :
       {Event::Kind::kSpeechStarted, Event::Kind::kSpeechStopped, Event::Kind::kCommitted,
        Event::Kind::kDelta, Event::Kind::kCompleted, Event::Kind::kFailed}) {
    Event e{kind, 3, "hello", "buffer_full", 1200, 4500};
    auto back = EventFromJson(EventToJson(e));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back.value(), e);
  }
  EXPECT_FALSE(EventFromJson(nlohmann::json{{"event", "nope"}}).ok());
}

}  // namespace
}  // namespace steno::live
