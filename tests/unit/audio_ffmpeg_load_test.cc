// FFmpeg is loaded on first use (audio/ffmpeg_api.h), not at process start: a process that reads
// no audio (`steno --version`, a runner before its first decode) does not pay for the hundred-odd
// libraries libavformat pulls in. Its own process: the first check needs FFmpeg not loaded yet.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>

extern "C" {
#include <libavcodec/version_major.h>
#include <libavformat/version_major.h>
}

#include "audio/decoder.h"
#include "audio/probe.h"
#include "support/test_env.h"

namespace steno::audio {
namespace {

#define STENO_TEST_STR2(x) #x
#define STENO_TEST_STR(x) STENO_TEST_STR2(x)

bool Loaded(const char* soname) {
  void* h = dlopen(soname, RTLD_NOW | RTLD_NOLOAD);
  if (h) dlclose(h);  // drops only the reference RTLD_NOLOAD took
  return h != nullptr;
}

TEST(AudioFfmpegLoad, LoadedByTheFirstProbeNotAtStart) {
  const char* avformat = "libavformat.so." STENO_TEST_STR(LIBAVFORMAT_VERSION_MAJOR);
  const char* avcodec = "libavcodec.so." STENO_TEST_STR(LIBAVCODEC_VERSION_MAJOR);
  EXPECT_FALSE(Loaded(avformat)) << "linked, so loaded at start";
  EXPECT_FALSE(Loaded(avcodec)) << "linked, so loaded at start";

  // A missing file is refused before FFmpeg is needed.
  EXPECT_FALSE(Probe(test::TestData() + "/media/no-such-file.wav").ok());
  EXPECT_FALSE(Loaded(avformat));

  auto info = Probe(test::MediaPath("speech.wav"));
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_GT(info->duration_s, 8.0);
  EXPECT_TRUE(Loaded(avformat));
  EXPECT_TRUE(Loaded(avcodec));

  auto pcm = Decode(test::MediaPath("speech.flac"));
  ASSERT_TRUE(pcm.ok()) << pcm.error().message;
  EXPECT_NEAR(double(pcm->size()) / kSampleRate, info->duration_s, 0.1);
}

}  // namespace
}  // namespace steno::audio
