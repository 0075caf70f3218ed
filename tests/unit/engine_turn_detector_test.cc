// Turn detection for live sessions (engine/turn_detector.h) on synthetic probability sequences:
// 32 ms frames of 512 samples, threshold 0.5 (silence below 0.35), times in samples.
#include "engine/turn_detector.h"

#include <vector>

#include <gtest/gtest.h>

namespace steno::engine {
namespace {

constexpr int64_t kFrame = 512;
constexpr int64_t kMs = TurnDetector::kSamplesPerMs;
using Kind = TurnEvent::Kind;

struct Fed {
  std::vector<TurnEvent> events;
  int64_t at = 0;  // where the next frame starts
};

// Feeds `n` frames of probability `p` from `fed.at` on, collecting what they change.
void Frames(TurnDetector& d, Fed& fed, int n, float p) {
  for (int i = 0; i < n; ++i, fed.at += kFrame) {
    for (const TurnEvent& e : d.Push(fed.at, kFrame, p)) fed.events.push_back(e);
  }
}

TEST(TurnDetectorTest, StartsWithPaddingAndStopsAfterTheSilenceItIncludes) {
  TurnDetector d(VadSettings{0.5f, 300, 500}, 30'000 * kMs);
  Fed fed;
  Frames(d, fed, 50, 0.1f);  // 1.6 s of silence
  EXPECT_TRUE(fed.events.empty());
  const int64_t onset = fed.at;
  Frames(d, fed, 40, 0.9f);
  ASSERT_EQ(fed.events.size(), 1u);
  EXPECT_EQ(fed.events[0], (TurnEvent{Kind::kStarted, onset - 300 * kMs, false}));
  EXPECT_TRUE(d.in_turn());
  const int64_t quiet = fed.at;
  // 500 ms of silence is 15.6 frames: the turn stops at the end of the 16th.
  Frames(d, fed, 15, 0.1f);
  EXPECT_EQ(fed.events.size(), 1u);
  Frames(d, fed, 1, 0.1f);
  ASSERT_EQ(fed.events.size(), 2u);
  EXPECT_EQ(fed.events[1], (TurnEvent{Kind::kStopped, quiet + 16 * kFrame, false}));
  EXPECT_FALSE(d.in_turn());
}

TEST(TurnDetectorTest, PaddingNeverReachesBeforeTheFloor) {
  TurnDetector d(VadSettings{0.5f, 300, 100}, 30'000 * kMs);
  Fed fed;
  Frames(d, fed, 2, 0.9f);  // speech from the very start: no audio before sample 0
  ASSERT_EQ(fed.events.size(), 1u);
  EXPECT_EQ(fed.events[0].sample, 0);
  Frames(d, fed, 4, 0.0f);  // stops (100 ms = 3.1 frames: at the end of the 4th)
  ASSERT_EQ(fed.events.size(), 2u);
  const int64_t stop = fed.events[1].sample;
  Frames(d, fed, 1, 0.9f);  // speech right after: padding would reach into the last turn
  ASSERT_EQ(fed.events.size(), 3u);
  EXPECT_EQ(fed.events[2], (TurnEvent{Kind::kStarted, stop, false}));
  // A reset (a commit the detector did not make) ends the turn and moves the floor: the next
  // turn starts there even when the frame that starts it began before.
  const int64_t floor = fed.at + 100;
  d.Reset(floor);
  EXPECT_FALSE(d.in_turn());
  Frames(d, fed, 4, 0.9f);
  ASSERT_EQ(fed.events.size(), 4u);
  EXPECT_EQ(fed.events[3], (TurnEvent{Kind::kStarted, floor, false}));
}

TEST(TurnDetectorTest, HysteresisBetweenTheThresholdsNeitherStartsNorEndsASilence) {
  TurnDetector d(VadSettings{0.5f, 0, 200}, 30'000 * kMs);
  Fed fed;
  Frames(d, fed, 1, 0.4f);  // below the threshold: no start
  EXPECT_TRUE(fed.events.empty());
  Frames(d, fed, 3, 0.8f);
  ASSERT_EQ(fed.events.size(), 1u);
  Frames(d, fed, 50, 0.4f);  // above threshold − 0.15: still speech, however long
  EXPECT_EQ(fed.events.size(), 1u);
  Frames(d, fed, 3, 0.2f);  // a silence starts...
  Frames(d, fed, 2, 0.4f);  // ...and in-between frames do not end it
  ASSERT_EQ(fed.events.size(), 1u);
  Frames(d, fed, 2, 0.3f);  // 7 frames = 224 ms ≥ 200 ms
  ASSERT_EQ(fed.events.size(), 2u);
  EXPECT_EQ(fed.events[1].kind, Kind::kStopped);
  // A frame ≥ threshold ends a silence under way.
  Frames(d, fed, 1, 0.9f);
  Frames(d, fed, 4, 0.1f);
  Frames(d, fed, 1, 0.9f);
  Frames(d, fed, 4, 0.1f);
  EXPECT_EQ(fed.events.size(), 3u) << "two silences of 128 ms, never one of 200 ms";
}

TEST(TurnDetectorTest, ATurnIsCutAtTheMaximumAndSpeechGoesOnInTheNext) {
  const int64_t max = 100 * kFrame + 100;  // not a whole number of frames
  TurnDetector d(VadSettings{0.5f, 0, 500}, max);
  Fed fed;
  Frames(d, fed, 250, 0.9f);
  // Cut at the start of the frame that would pass the maximum: after 100 frames, then 200.
  ASSERT_EQ(fed.events.size(), 5u);
  EXPECT_EQ(fed.events[0], (TurnEvent{Kind::kStarted, 0, false}));
  EXPECT_EQ(fed.events[1], (TurnEvent{Kind::kStopped, 100 * kFrame, true}));
  EXPECT_EQ(fed.events[2], (TurnEvent{Kind::kStarted, 100 * kFrame, false}));
  EXPECT_EQ(fed.events[3], (TurnEvent{Kind::kStopped, 200 * kFrame, true}));
  EXPECT_EQ(fed.events[4], (TurnEvent{Kind::kStarted, 200 * kFrame, false}));
  // A cut during a silence leaves no turn open.
  Frames(d, fed, 45, 0.9f);
  Frames(d, fed, 10, 0.0f);  // the cut comes 5 frames into this silence
  ASSERT_EQ(fed.events.size(), 6u);
  EXPECT_TRUE(fed.events[5].forced);
  EXPECT_FALSE(d.in_turn());
}

TEST(TurnDetectorTest, OpenAndNewSettingsKeepATurnUnderWay) {
  TurnDetector d(VadSettings{0.5f, 0, 1000}, 30'000 * kMs);
  Fed fed{{}, 10 * kFrame};
  d.Open(3 * kFrame);  // a buffer kept open since sample 1536
  EXPECT_TRUE(d.in_turn());
  Frames(d, fed, 10, 0.1f);  // 320 ms: not enough for 1 s
  EXPECT_TRUE(fed.events.empty());
  d.set_settings(VadSettings{0.5f, 0, 300});
  Frames(d, fed, 1, 0.1f);  // 352 ms ≥ 300 ms
  ASSERT_EQ(fed.events.size(), 1u);
  EXPECT_EQ(fed.events[0], (TurnEvent{Kind::kStopped, 21 * kFrame, false}));
}

}  // namespace
}  // namespace steno::engine
