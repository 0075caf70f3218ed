// ClampToDuration: no segment or word of a transcript lies after the audio.
#include <gtest/gtest.h>

#include "engine/transcript.h"

namespace steno::engine {
namespace {

TEST(ClampToDurationTest, TimesPastTheEndStopAtTheLastWholeStepOfTheAudio) {
  Segment s;
  s.start = 0.5;
  s.end = 22.04;
  s.words = {Word{" a", 0.5, 0.9, 1}, Word{" b", 0.9, 21.0, 1}, Word{" c", 23.0, 24.0, 1}};
  ClampToDuration(s, 1.0851);  // 1.0851 s of audio: whisper's last 10 ms step is 1.08
  EXPECT_DOUBLE_EQ(s.start, 0.5);
  EXPECT_DOUBLE_EQ(s.end, 1.08);
  EXPECT_DOUBLE_EQ(s.words[0].end, 0.9);  // inside: untouched
  EXPECT_DOUBLE_EQ(s.words[1].end, 1.08);
  EXPECT_DOUBLE_EQ(s.words[2].start, 1.08);  // wholly after: an empty span at the end
  EXPECT_DOUBLE_EQ(s.words[2].end, 1.08);
}

TEST(ClampToDurationTest, TimesInsideTheAudioAreUntouched) {
  Segment s;
  s.start = 1.2;
  s.end = 3.4;
  ClampToDuration(s, 8.0);
  EXPECT_DOUBLE_EQ(s.start, 1.2);
  EXPECT_DOUBLE_EQ(s.end, 3.4);
  ClampToDuration(s, 1.08);  // exactly representable steps stay exact
  EXPECT_DOUBLE_EQ(s.start, 1.08);
  EXPECT_DOUBLE_EQ(s.end, 1.08);
}

}  // namespace
}  // namespace steno::engine
