// audio::Probe against media generated at test time (tests/support/make_media.sh): what it reports
// for each container, that the duration comes from metadata rather than decoding, the fallback for
// containers without a duration, and each bad input's own error.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ostream>

#include "audio/decoder.h"
#include "audio/probe.h"
#include "support/test_env.h"

namespace steno::audio {
namespace {

namespace fs = std::filesystem;

// speech.wav's length: 141522 samples at 16 kHz (make_media.sh's three sentences).
constexpr double kSpeechSeconds = 8.845;

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A 16-bit WAV header declaring `declared_samples` mono samples at 16 kHz, followed by
// `present_samples` of a quiet tone: lets a test make the header say anything.
std::string Wav(uint32_t declared_samples, uint32_t present_samples, uint16_t format_tag = 1) {
  std::string h;
  auto u32 = [&](uint32_t v) { h.append(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { h.append(reinterpret_cast<const char*>(&v), 2); };
  h += "RIFF";
  u32(36 + declared_samples * 2);
  h += "WAVEfmt ";
  u32(16);
  u16(format_tag);
  u16(1);
  u32(kSampleRate);
  u32(kSampleRate * 2);
  u16(2);
  u16(16);
  h += "data";
  u32(declared_samples * 2);
  for (uint32_t i = 0; i < present_samples; ++i) u16(static_cast<uint16_t>(i % 64 * 100));
  return h;
}

struct Expected {
  const char* file;
  const char* container;
  const char* codec;
  int sample_rate;
  int channels;
  int stream_index;
  double duration_s;
  double tolerance_s;
};

void PrintTo(const Expected& e, std::ostream* os) {
  *os << e.file;
}

class AudioProbeContainer : public ::testing::TestWithParam<Expected> {};

TEST_P(AudioProbeContainer, DescribesTheAudioStream) {
  const Expected& e = GetParam();
  auto info = Probe(test::MediaPath(e.file));
  ASSERT_TRUE(info.ok()) << info.error().code << ": " << info.error().message;
  EXPECT_EQ(info->container, e.container);
  EXPECT_EQ(info->codec, e.codec);
  EXPECT_EQ(info->sample_rate, e.sample_rate);
  EXPECT_EQ(info->channels, e.channels);
  EXPECT_EQ(info->stream_index, e.stream_index);
  EXPECT_NEAR(info->duration_s, e.duration_s, e.tolerance_s);
}

// Audio-only files declare the audio's length; Matroska/WebM with video only declare the
// container's, which here includes a few frames of video past the audio.
INSTANTIATE_TEST_SUITE_P(
    Media, AudioProbeContainer,
    ::testing::Values(
        Expected{"speech.wav", "wav", "pcm_s16le", 16000, 1, 0, kSpeechSeconds, 0.001},
        Expected{"speech_60s.wav", "wav", "pcm_s16le", 16000, 1, 0, 60.0, 0.001},
        Expected{"speech_44k_stereo.wav", "wav", "pcm_s16le", 44100, 2, 0, kSpeechSeconds, 0.001},
        Expected{"speech.mp3", "mp3", "mp3", 44100, 2, 0, kSpeechSeconds, 0.1},
        Expected{"speech.flac", "flac", "flac", 16000, 1, 0, kSpeechSeconds, 0.001},
        Expected{"speech.ogg", "ogg", "vorbis", 22050, 1, 0, kSpeechSeconds, 0.05},
        Expected{"speech.opus", "ogg", "opus", 48000, 1, 0, kSpeechSeconds, 0.05},
        Expected{"speech.m4a", "m4a", "aac", 44100, 2, 0, kSpeechSeconds, 0.05},
        Expected{"speech.mp4", "mp4", "aac", 16000, 1, 1, kSpeechSeconds, 0.1},
        Expected{"speech.mkv", "matroska", "vorbis", 16000, 1, 1, kSpeechSeconds, 0.5},
        Expected{"speech.webm", "webm", "opus", 48000, 1, 1, kSpeechSeconds, 0.5},
        // No duration in the header: measured from the packets' timestamps.
        Expected{"speech_streamed.webm", "webm", "opus", 48000, 1, 0, kSpeechSeconds, 0.05}),
    [](const auto& info) {
      std::string name = info.param.file;
      std::replace_if(
          name.begin(), name.end(), [](char c) { return !std::isalnum(c); }, '_');
      return name;
    });

TEST(AudioProbe, AgreesWithTheDecodedLength) {
  for (const char* name :
       {"speech.wav", "speech.flac", "speech.mp3", "speech.opus", "speech.m4a"}) {
    auto info = Probe(test::MediaPath(name));
    auto pcm = Decode(test::MediaPath(name));
    ASSERT_TRUE(info.ok() && pcm.ok()) << name;
    EXPECT_NEAR(info->duration_s, double(pcm->size()) / kSampleRate, 0.1) << name;
  }
}

// Bytes this process has read through read() and its kin so far (/proc/self/io's rchar).
int64_t BytesReadSoFar() {
  std::ifstream io("/proc/self/io");
  std::string key;
  int64_t value = 0;
  while (io >> key >> value) {
    if (key == "rchar:") return value;
  }
  return -1;
}

TEST(AudioProbe, WavIsDescribedFromItsHeaderWithoutReadingItsAudio) {
  // A WAV header declares everything Probe reports: it must not read the audio (FFmpeg's stream
  // analysis used to read and content-probe it: 8 ms of CPU for 9 s of 16 kHz audio).
  const std::string path = test::MediaPath("speech_60s.wav");
  const auto size = static_cast<int64_t>(fs::file_size(path));
  ASSERT_GT(size, 1'000'000);
  // FFmpeg is loaded on first use (audio/ffmpeg_api.h): its libraries are not the probe's reads.
  ASSERT_TRUE(Probe(test::MediaPath("speech.wav")).ok());
  const int64_t before = BytesReadSoFar();
  if (before < 0) GTEST_SKIP() << "no /proc/self/io here";
  auto info = Probe(path);
  const int64_t read = BytesReadSoFar() - before;
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_NEAR(info->duration_s, 60.0, 0.1);
  EXPECT_EQ(info->codec, "pcm_s16le");
  // The header, FFmpeg's format probe and its buffer: about 130 kB. FFmpeg's stream analysis
  // alone read 5 s of the audio (160 kB), and 330 kB in all.
  constexpr int64_t kSixSecondsOfAudio = 6 * kSampleRate * 2;
  EXPECT_LT(read, kSixSecondsOfAudio)
      << "Probe read " << read << " of the file's " << size << " bytes";
  // Decoding reads it once.
  const int64_t before_decode = BytesReadSoFar();
  auto pcm = Decode(path);
  ASSERT_TRUE(pcm.ok()) << pcm.error().message;
  EXPECT_LT(BytesReadSoFar() - before_decode, size + size / 4);
  EXPECT_NEAR(double(pcm->size()) / kSampleRate, 60.0, 0.1);
}

// Rewrites the total-samples field of a FLAC file's STREAMINFO block.
void SetFlacTotalSamples(std::vector<char>& flac, uint64_t total) {
  ASSERT_EQ(std::string(flac.data(), 4), "fLaC");
  char* p = flac.data() + 8 + 13;  // "fLaC", block header, then 13 bytes into STREAMINFO
  p[0] = static_cast<char>((p[0] & 0xF0) | ((total >> 32) & 0x0F));
  for (int i = 0; i < 4; ++i) p[1 + i] = static_cast<char>((total >> (24 - 8 * i)) & 0xFF);
}

TEST(AudioProbe, DurationComesFromMetadataNotFromDecoding) {
  // The file holds 8.8 s of audio but its header declares an hour: Probe must report the hour
  // (it read the header, not the audio), and refuse it against a limit without decoding it.
  const test::ScopedTempDir tmp;
  const std::string& dir = tmp.path;
  std::vector<char> flac = test::ReadFileBytes(test::MediaPath("speech.flac"));
  SetFlacTotalSamples(flac, 3600ull * kSampleRate);
  const std::string path = dir + "/hour.flac";
  WriteBytes(path, std::string(flac.begin(), flac.end()));
  auto info = Probe(path);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_DOUBLE_EQ(info->duration_s, 3600.0);
  auto limited = Probe(path, Limits{10});
  ASSERT_FALSE(limited.ok());
  EXPECT_EQ(limited.error().code, "too_long");
  EXPECT_NE(limited.error().message.find("hour.flac"), std::string::npos);
}

TEST(AudioProbe, WavHeaderLongerThanTheFile) {
  const test::ScopedTempDir tmp;
  const std::string& dir = tmp.path;
  const std::string path = dir + "/cut.wav";
  WriteBytes(path, Wav(3600 * kSampleRate, kSampleRate));  // declares 1 h, holds 1 s
  auto info = Probe(path);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, "truncated") << info.error().message;
  // Against a limit, the declared hour is what counts (the cheaper, decisive answer).
  auto limited = Probe(path, Limits{60});
  ASSERT_FALSE(limited.ok());
  EXPECT_EQ(limited.error().code, "too_long");
}

TEST(AudioProbe, WavFromAStreamingWriterHasItsRealLength) {
  // Writers that cannot seek back leave 0 or 0xFFFFFFFF as the data size: that declares nothing,
  // so such a file is neither truncated nor unbounded.
  const test::ScopedTempDir tmp;
  const std::string& dir = tmp.path;
  for (const bool all_ones : {false, true}) {
    const std::string path = dir + "/stream.wav";
    std::string bytes = Wav(0, 2 * kSampleRate);
    if (all_ones) std::fill(bytes.begin() + 40, bytes.begin() + 44, '\xff');  // the data size
    WriteBytes(path, bytes);
    auto info = Probe(path);
    ASSERT_TRUE(info.ok()) << all_ones << ": " << info.error().message;
    EXPECT_NEAR(info->duration_s, 2.0, 0.01);
    auto pcm = Decode(path);
    ASSERT_TRUE(pcm.ok()) << pcm.error().message;
    EXPECT_EQ(pcm->size(), 2u * kSampleRate);
  }
}

TEST(AudioProbe, ScanWithoutDeclaredDurationStopsAtTheLimit) {
  auto info = Probe(test::MediaPath("speech_streamed.webm"), Limits{2});
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, "too_long");
}

TEST(AudioProbe, LimitIsInclusive) {
  EXPECT_TRUE(Probe(test::MediaPath("long.wav"), Limits{20}).ok());
  EXPECT_TRUE(Probe(test::MediaPath("long.wav"), Limits{0}).ok());  // 0 = unlimited
  auto over = Probe(test::MediaPath("long.wav"), Limits{10});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().kind, ErrorKind::kBadInput);
  EXPECT_EQ(over.error().code, "too_long");
  EXPECT_NE(over.error().message.find("20.0 s"), std::string::npos) << over.error().message;
}

struct BadInput {
  const char* file;
  ErrorKind kind;
  const char* code;
};

void PrintTo(const BadInput& c, std::ostream* os) {
  *os << c.file;
}

class AudioProbeBadInput : public ::testing::TestWithParam<BadInput> {};

TEST_P(AudioProbeBadInput, GivesItsOwnErrorNamingTheFile) {
  const BadInput& c = GetParam();
  auto info = Probe(test::MediaPath(c.file));
  ASSERT_FALSE(info.ok()) << c.file << " probed as " << info->container;
  EXPECT_EQ(info.error().kind, c.kind);
  EXPECT_EQ(info.error().code, c.code) << info.error().message;
  EXPECT_NE(info.error().message.find(c.file), std::string::npos) << info.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Media, AudioProbeBadInput,
    ::testing::Values(BadInput{"not_media.txt", ErrorKind::kBadInput, "not_media"},
                      BadInput{"video_only.mp4", ErrorKind::kBadInput, "no_audio_stream"},
                      BadInput{"truncated.wav", ErrorKind::kBadInput, "truncated"},
                      BadInput{"empty.wav", ErrorKind::kBadInput, "empty_audio"},
                      BadInput{"missing.mp3", ErrorKind::kNotFound, "file_not_found"}),
    [](const auto& info) {
      std::string name = info.param.file;
      std::replace_if(
          name.begin(), name.end(), [](char c) { return !std::isalnum(c); }, '_');
      return name;
    });

TEST(AudioProbe, NotMediaMessageIsPlain) {
  auto info = Probe(test::MediaPath("not_media.txt"));
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().message, "not_media.txt is not an audio or video file FFmpeg can read");
}

TEST(AudioProbe, UnknownAudioCodecIsUnsupported) {
  const test::ScopedTempDir tmp;
  const std::string& dir = tmp.path;
  WriteBytes(dir + "/odd.wav", Wav(kSampleRate, kSampleRate, 0x7777));
  auto info = Probe(dir + "/odd.wav");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().kind, ErrorKind::kBadInput);
  EXPECT_EQ(info.error().code, "unsupported_codec") << info.error().message;
}

TEST(AudioProbe, Mp4CutBeforeItsIndexIsReportedAsDamaged) {
  // speech.m4a keeps its index (moov) at the end: cut in half, nothing can be read, but the user
  // is told the file is a damaged m4a rather than "not media".
  const test::ScopedTempDir tmp;
  const std::string& dir = tmp.path;
  const std::vector<char> whole = test::ReadFileBytes(test::MediaPath("speech.m4a"));
  WriteBytes(dir + "/cut.m4a", std::string(whole.begin(), whole.begin() + whole.size() / 2));
  auto info = Probe(dir + "/cut.m4a");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, "not_media");
  EXPECT_NE(info.error().message.find("damaged or incomplete m4a"), std::string::npos)
      << info.error().message;
}

TEST(AudioProbe, PathsAreLocalFileNamesNotUrls) {
  // FFmpeg would read "a:b.wav" as protocol "a"; steno reads the file of that name.
  const test::ScopedTempDir tmp;
  const std::string& dir = tmp.path;
  WriteBytes(dir + "/take:1.wav", Wav(kSampleRate, kSampleRate));
  auto info = Probe(dir + "/take:1.wav");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_NEAR(info->duration_s, 1.0, 0.001);
}

TEST(AudioProbe, PlaylistsCannotMakeItReadOtherFiles) {
  // An uploaded HLS playlist naming a local file must not be followed.
  const test::ScopedTempDir tmp;
  const std::string& dir = tmp.path;
  WriteBytes(dir + "/list.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:8.8,\n" +
                                     test::MediaPath("speech.mp3") + "\n#EXT-X-ENDLIST\n");
  auto info = Probe(dir + "/list.m3u8");
  ASSERT_FALSE(info.ok()) << "followed the playlist to " << info->codec;
  EXPECT_EQ(info.error().code, "not_media") << info.error().message;
}

TEST(AudioProbe, UnreadableFileIsAnIoError) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads any file";
  const test::ScopedTempDir tmp;
  const std::string& dir = tmp.path;
  const std::string path = dir + "/locked.wav";
  WriteBytes(path, Wav(kSampleRate, kSampleRate));
  fs::permissions(path, fs::perms::none);
  auto info = Probe(path);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().kind, ErrorKind::kIo) << info.error().message;
}

}  // namespace
}  // namespace steno::audio
