// audio::Decode against media generated at test time (tests/support/make_media.sh): exactness on
// 16 kHz PCM, every container, downmix/resample, each bad input's own error, thread safety, and
// damaged files that must give an error rather than a crash.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <latch>
#include <random>
#include <sstream>
#include <thread>

#include "audio/decoder.h"
#include "support/test_env.h"

namespace steno::audio {
namespace {

namespace fs = std::filesystem;

void WriteBytes(const std::string& path, const char* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data, static_cast<std::streamsize>(size));
}

uint32_t Le32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;  // x86/ARM hosts are little-endian, like RIFF
}

// The 16-bit samples of a PCM WAV, read by walking its RIFF chunks (independently of FFmpeg).
std::vector<int16_t> WavSamples(const std::string& path) {
  const std::vector<char> b = test::ReadFileBytes(path);
  EXPECT_GE(b.size(), 12u);
  EXPECT_EQ(std::string(b.data(), 4), "RIFF");
  size_t pos = 12;
  while (pos + 8 <= b.size()) {
    const uint32_t size = Le32(b.data() + pos + 4);
    if (std::string(b.data() + pos, 4) == "data") {
      std::vector<int16_t> s(std::min<size_t>(size, b.size() - pos - 8) / 2);
      std::memcpy(s.data(), b.data() + pos + 8, s.size() * 2);
      return s;
    }
    pos += 8 + size + (size & 1);
  }
  ADD_FAILURE() << "no data chunk in " << path;
  return {};
}

// A PCM WAV written by hand, so tests control every header field.
void WriteWav(const std::string& path, int channels, int rate, const std::vector<int16_t>& samples,
              uint16_t format_tag = 1) {
  const uint32_t data_bytes = static_cast<uint32_t>(samples.size() * 2);
  std::string h;
  auto u32 = [&](uint32_t v) { h.append(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { h.append(reinterpret_cast<const char*>(&v), 2); };
  h += "RIFF";
  u32(36 + data_bytes);
  h += "WAVEfmt ";
  u32(16);
  u16(format_tag);
  u16(static_cast<uint16_t>(channels));
  u32(static_cast<uint32_t>(rate));
  u32(static_cast<uint32_t>(rate * channels * 2));
  u16(static_cast<uint16_t>(channels * 2));
  u16(16);
  h += "data";
  u32(data_bytes);
  h.append(reinterpret_cast<const char*>(samples.data()), data_bytes);
  WriteBytes(path, h.data(), h.size());
}

double Rms(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += double(v) * v;
  return x.empty() ? 0 : std::sqrt(s / double(x.size()));
}

// Highest normalised correlation between `a` and `b` over a one-second window in the middle of
// the speech, at lags up to ±100 ms: near 1 when both carry the same waveform, whatever the codec's
// alignment; near 0 for noise, a wrong channel interleave or a wrong rate.
double BestCorrelation(const std::vector<float>& a, const std::vector<float>& b) {
  const int kWindow = kSampleRate, kMaxLag = kSampleRate / 10;
  const int start = 3 * kSampleRate;  // the speech is ~8.8 s long
  if (int(a.size()) < start + kWindow + kMaxLag || int(b.size()) < start + kWindow + kMaxLag) {
    return 0;
  }
  double best = 0;
  for (int lag = -kMaxLag; lag <= kMaxLag; ++lag) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = start; i < start + kWindow; ++i) {
      const double x = a[i], y = b[i + lag];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    if (aa > 0 && bb > 0) best = std::max(best, ab / std::sqrt(aa * bb));
  }
  return best;
}

const std::vector<float>& Reference() {
  static const std::vector<float> ref = [] {
    auto r = Decode(test::MediaPath("speech.wav"));
    if (!r) throw std::runtime_error(r.error().message);
    return std::move(r).value();
  }();
  return ref;
}

TEST(AudioDecoder, Pcm16kMonoWavIsExactlySampleOver32768) {
  const std::vector<int16_t> raw = WavSamples(test::MediaPath("speech.wav"));
  ASSERT_GT(raw.size(), 6u * kSampleRate);
  auto pcm = Decode(test::MediaPath("speech.wav"));
  ASSERT_TRUE(pcm.ok()) << pcm.error().message;
  ASSERT_EQ(pcm->size(), raw.size());
  size_t mismatches = 0, first = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    if ((*pcm)[i] != float(raw[i]) / 32768.0f) {
      if (mismatches++ == 0) first = i;
    }
  }
  EXPECT_EQ(mismatches, 0u) << "first at sample " << first;
}

TEST(AudioDecoder, FullScaleSamplesStayExact) {
  // The extremes of 16-bit PCM: -32768 must give exactly -1, 32767 just under 1 (no clamping or
  // rounding artefacts at the edges).
  const test::ScopedTempDir tmp;
  const std::string& dir = tmp.path;
  std::vector<int16_t> s(kSampleRate);
  for (size_t i = 0; i < s.size(); ++i) s[i] = i % 2 ? int16_t(32767) : int16_t(-32768);
  WriteWav(dir + "/edges.wav", 1, kSampleRate, s);
  auto pcm = Decode(dir + "/edges.wav");
  ASSERT_TRUE(pcm.ok()) << pcm.error().message;
  ASSERT_EQ(pcm->size(), s.size());
  EXPECT_EQ((*pcm)[0], -1.0f);
  EXPECT_EQ((*pcm)[1], 32767.0f / 32768.0f);
}

TEST(AudioDecoder, SixtySecondBenchmarkInputIsSixtySeconds) {
  auto pcm = Decode(test::MediaPath("speech_60s.wav"));
  ASSERT_TRUE(pcm.ok()) << pcm.error().message;
  EXPECT_EQ(pcm->size(), 60u * kSampleRate);
  EXPECT_GT(Rms(*pcm), 0.03);
}

class AudioDecoderContainer : public ::testing::TestWithParam<const char*> {};

TEST_P(AudioDecoderContainer, DecodesSpeechOfTheRightLength) {
  const std::vector<float>& ref = Reference();
  auto pcm = Decode(test::MediaPath(GetParam()));
  ASSERT_TRUE(pcm.ok()) << pcm.error().code << ": " << pcm.error().message;
  const double seconds = double(pcm->size()) / kSampleRate;
  const double ref_seconds = double(ref.size()) / kSampleRate;
  EXPECT_NEAR(seconds, ref_seconds, 0.1) << "priming/padding or resampling length is off";
  EXPECT_GT(Rms(*pcm), 0.5 * Rms(ref)) << "decoded audio is (nearly) silent";
  EXPECT_LT(Rms(*pcm), 1.2 * Rms(ref)) << "channels summed instead of averaged?";
  const auto [lo, hi] = std::minmax_element(pcm->begin(), pcm->end());
  EXPECT_GE(*lo, -1.0f);
  EXPECT_LE(*hi, 1.0f);
  EXPECT_TRUE(std::all_of(pcm->begin(), pcm->end(), [](float v) { return std::isfinite(v); }));
  // The same waveform as the source, not merely audio of the right length.
  EXPECT_GT(BestCorrelation(ref, *pcm), 0.8);
}

INSTANTIATE_TEST_SUITE_P(Media, AudioDecoderContainer,
                         ::testing::Values("speech_44k_stereo.wav", "speech.mp3", "speech.flac",
                                           "speech.ogg", "speech.opus", "speech.m4a", "speech.mp4",
                                           "speech.mkv", "speech.webm", "speech_streamed.webm"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace_if(
                               name.begin(), name.end(), [](char c) { return !std::isalnum(c); },
                               '_');
                           return name;
                         });

TEST(AudioDecoder, LosslessFlacDecodesToTheSameSamplesAsTheWav) {
  auto flac = Decode(test::MediaPath("speech.flac"));
  ASSERT_TRUE(flac.ok()) << flac.error().message;
  EXPECT_TRUE(*flac == Reference());
}

TEST(AudioDecoder, StereoIsTheMeanOfTheChannels) {
  // Left: a tone at half scale; right: silence. The mono mix is the tone at quarter scale; a sum
  // would give half scale and a left-only pick would give half scale too.
  const test::ScopedTempDir tmp;
  const std::string& dir = tmp.path;
  std::vector<int16_t> s;
  std::vector<float> left;
  for (int i = 0; i < kSampleRate; ++i) {
    const auto v = static_cast<int16_t>(std::lround(16384 * std::sin(i * 0.05)));
    left.push_back(v / 32768.0f);
    s.push_back(v);
    s.push_back(0);
  }
  WriteWav(dir + "/lr.wav", 2, kSampleRate, s);
  auto pcm = Decode(dir + "/lr.wav");
  ASSERT_TRUE(pcm.ok()) << pcm.error().message;
  ASSERT_EQ(pcm->size(), left.size());
  for (size_t i = 0; i < left.size(); ++i) {
    ASSERT_NEAR((*pcm)[i], left[i] / 2, 1e-6) << "sample " << i;
  }
}

TEST(AudioDecoder, ResamplesToSixteenKilohertz) {
  // A 440 Hz tone at 44.1 kHz stereo must come out as 440 Hz at 16 kHz: count zero crossings.
  const test::ScopedTempDir tmp;
  const std::string& dir = tmp.path;
  const int rate = 44100;
  std::vector<int16_t> s;
  for (int i = 0; i < 2 * rate; ++i) {
    const auto v = static_cast<int16_t>(std::lround(12000 * std::sin(2 * M_PI * 440 * i / rate)));
    s.push_back(v);
    s.push_back(v);
  }
  WriteWav(dir + "/tone.wav", 2, rate, s);
  auto pcm = Decode(dir + "/tone.wav");
  ASSERT_TRUE(pcm.ok()) << pcm.error().message;
  EXPECT_NEAR(double(pcm->size()), 2.0 * kSampleRate, 0.01 * kSampleRate);
  int crossings = 0;
  for (size_t i = kSampleRate / 10; i + 1 < pcm->size() - kSampleRate / 10; ++i) {
    if (((*pcm)[i] < 0) != ((*pcm)[i + 1] < 0)) ++crossings;
  }
  // 1.8 s of a 440 Hz tone: 2 crossings per period.
  EXPECT_NEAR(crossings, 2 * 440 * 1.8, 10);
  EXPECT_NEAR(Rms(*pcm), 12000 / 32768.0 / std::sqrt(2.0), 0.01);
}

struct BadInput {
  const char* file;
  ErrorKind kind;
  const char* code;
  double max_duration_s = 0;
};

void PrintTo(const BadInput& c, std::ostream* os) {
  *os << c.file;
}

class AudioDecoderBadInput : public ::testing::TestWithParam<BadInput> {};

TEST_P(AudioDecoderBadInput, GivesItsOwnErrorNamingTheFile) {
  const BadInput& c = GetParam();
  auto pcm = Decode(test::MediaPath(c.file), Limits{c.max_duration_s});
  ASSERT_FALSE(pcm.ok()) << c.file << " decoded to " << pcm->size() << " samples";
  EXPECT_EQ(pcm.error().kind, c.kind) << pcm.error().message;
  EXPECT_EQ(pcm.error().code, c.code) << pcm.error().message;
  EXPECT_NE(pcm.error().message.find(c.file), std::string::npos) << pcm.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Media, AudioDecoderBadInput,
    ::testing::Values(BadInput{"not_media.txt", ErrorKind::kBadInput, "not_media"},
                      BadInput{"video_only.mp4", ErrorKind::kBadInput, "no_audio_stream"},
                      BadInput{"truncated.wav", ErrorKind::kBadInput, "truncated"},
                      BadInput{"empty.wav", ErrorKind::kBadInput, "empty_audio"},
                      BadInput{"long.wav", ErrorKind::kBadInput, "too_long", 10},
                      BadInput{"no_such_file.wav", ErrorKind::kNotFound, "file_not_found"}),
    [](const auto& info) {
      std::string name = info.param.file;
      std::replace_if(
          name.begin(), name.end(), [](char c) { return !std::isalnum(c); }, '_');
      return name;
    });

TEST(AudioDecoder, UnknownCodecIsUnsupported) {
  const test::ScopedTempDir tmp;
  const std::string& dir = tmp.path;
  WriteWav(dir + "/odd.wav", 1, kSampleRate, std::vector<int16_t>(kSampleRate, 100), 0x7777);
  auto pcm = Decode(dir + "/odd.wav");
  ASSERT_FALSE(pcm.ok());
  EXPECT_EQ(pcm.error().code, "unsupported_codec") << pcm.error().message;
}

TEST(AudioDecoder, LongFileWithinTheLimitDecodes) {
  auto at_limit = Decode(test::MediaPath("long.wav"), Limits{20});
  ASSERT_TRUE(at_limit.ok()) << at_limit.error().message;
  EXPECT_EQ(at_limit->size(), 20u * kSampleRate);
  auto over = Decode(test::MediaPath("long.wav"), Limits{19.9});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, "too_long");
}

TEST(AudioDecoder, ContainersWithoutADurationStillHonourTheLimit) {
  // The streamed WebM declares no duration, so the limit is enforced while reading/decoding.
  auto pcm = Decode(test::MediaPath("speech_streamed.webm"), Limits{3});
  ASSERT_FALSE(pcm.ok());
  EXPECT_EQ(pcm.error().code, "too_long");
}

// Cutting a file whose header declares its length must be reported, not transcribed in part.
class AudioDecoderCutInHalf : public ::testing::TestWithParam<const char*> {};

TEST_P(AudioDecoderCutInHalf, IsTruncated) {
  const test::ScopedTempDir tmp;
  const std::string& dir = tmp.path;
  const std::vector<char> whole = test::ReadFileBytes(test::MediaPath(GetParam()));
  const std::string cut = dir + "/" + GetParam();
  WriteBytes(cut, whole.data(), whole.size() / 2);
  auto pcm = Decode(cut);
  ASSERT_FALSE(pcm.ok()) << "decoded " << pcm->size() << " samples";
  EXPECT_EQ(pcm.error().code, "truncated") << pcm.error().message;
}

// FLAC (STREAMINFO), MP3 (LAME/Xing frame count), MP4 with its index first, WAV (data size).
INSTANTIATE_TEST_SUITE_P(Media, AudioDecoderCutInHalf,
                         ::testing::Values("speech.flac", "speech.mp3", "speech.mp4",
                                           "speech_44k_stereo.wav"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace_if(
                               name.begin(), name.end(), [](char c) { return !std::isalnum(c); },
                               '_');
                           return name;
                         });

// Rewrites the total-samples field of a FLAC file's STREAMINFO block.
void SetFlacTotalSamples(std::vector<char>& flac, uint64_t total) {
  ASSERT_EQ(std::string(flac.data(), 4), "fLaC");
  // "fLaC", a 4-byte block header, then STREAMINFO: 36 bits of total samples end at byte 18.
  char* p = flac.data() + 8 + 13;
  p[0] = static_cast<char>((p[0] & 0xF0) | ((total >> 32) & 0x0F));
  for (int i = 0; i < 4; ++i) p[1 + i] = static_cast<char>((total >> (24 - 8 * i)) & 0xFF);
}

TEST(AudioDecoder, TooLongIsDecidedFromTheHeaderBeforeDecoding) {
  // A FLAC file declaring one hour but holding 8.8 s: with a 10 s limit it must be refused as
  // too long, which only a check of the declared length (not of decoded audio) can conclude.
  const test::ScopedTempDir tmp;
  const std::string& dir = tmp.path;
  std::vector<char> flac = test::ReadFileBytes(test::MediaPath("speech.flac"));
  SetFlacTotalSamples(flac, 3600ull * kSampleRate);
  WriteBytes(dir + "/hour.flac", flac.data(), flac.size());
  auto limited = Decode(dir + "/hour.flac", Limits{10});
  ASSERT_FALSE(limited.ok());
  EXPECT_EQ(limited.error().code, "too_long") << limited.error().message;
  // Without a limit the same file decodes to far less than it declares.
  auto unlimited = Decode(dir + "/hour.flac");
  ASSERT_FALSE(unlimited.ok());
  EXPECT_EQ(unlimited.error().code, "truncated") << unlimited.error().message;
}

TEST(AudioDecoder, DirectoriesAndEmptyFilesAreNotMedia) {
  const test::ScopedTempDir tmp;
  const std::string& dir = tmp.path;
  WriteBytes(dir + "/zero.mp3", "", 0);
  for (const std::string& path : {dir, dir + "/zero.mp3"}) {
    auto pcm = Decode(path);
    ASSERT_FALSE(pcm.ok()) << path;
    EXPECT_EQ(pcm.error().code, "not_media") << pcm.error().message;
  }
}

TEST(AudioDecoder, FfmpegLogsGoToTheLoggerNotToStderr) {
  // A FLAC file cut mid-frame makes FFmpeg's decoder complain; those lines must reach spdlog (at
  // debug level) and never the terminal, where they would garble progress bars and CLI output.
  const test::ScopedTempDir tmp;
  const std::vector<char> flac = test::ReadFileBytes(test::MediaPath("speech.flac"));
  WriteBytes(tmp.path + "/cut.flac", flac.data(), 100000);
  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured));
  logger->set_level(spdlog::level::debug);
  spdlog::set_default_logger(logger);
  const auto previous_level = spdlog::get_level();
  spdlog::set_level(spdlog::level::debug);
  ::testing::internal::CaptureStderr();
  auto pcm = Decode(tmp.path + "/cut.flac");
  const std::string err = ::testing::internal::GetCapturedStderr();
  spdlog::set_default_logger(previous);
  spdlog::set_level(previous_level);
  ASSERT_FALSE(pcm.ok());
  EXPECT_EQ(pcm.error().code, "truncated");
  EXPECT_EQ(err, "");
  EXPECT_NE(captured.str().find("ffmpeg: [flac @"), std::string::npos) << captured.str();
}

TEST(AudioDecoder, FourThreadsAtOnceGetIdenticalResults) {
  const std::vector<std::string> files = {
      "speech.wav", "speech.mp3", "speech.m4a", "speech.webm", "speech_44k_stereo.wav",
      "speech.opus"};
  std::vector<std::vector<float>> expected;
  for (const auto& f : files) {
    auto pcm = Decode(test::MediaPath(f));
    ASSERT_TRUE(pcm.ok()) << f << ": " << pcm.error().message;
    expected.push_back(std::move(pcm).value());
  }
  constexpr int kThreads = 4, kRounds = 3;
  std::vector<int> mismatches(kThreads, 0);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();  // all decode at the same moment
      for (int r = 0; r < kRounds; ++r) {
        for (size_t k = 0; k < files.size(); ++k) {
          const size_t i = (k + size_t(t)) % files.size();  // each thread in a different order
          auto pcm = Decode(test::MediaPath(files[i]));
          if (!pcm.ok() || *pcm != expected[i]) ++mismatches[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

TEST(AudioDecoder, DamagedFilesGiveErrorsNotCrashes) {
  // Random bytes overwritten anywhere (headers included) and random cut points, in each
  // container: every outcome must be audio within [-1, 1] or a bad-input error.
  const test::ScopedTempDir tmp;
  const std::string& dir = tmp.path;
  std::mt19937 rng(1234);
  int decoded = 0, rejected = 0;
  for (const char* name : {"speech.wav", "speech.mp3", "speech.flac", "speech.ogg", "speech.opus",
                           "speech.m4a", "speech.mp4", "speech.mkv", "speech.webm"}) {
    const std::vector<char> original = test::ReadFileBytes(test::MediaPath(name));
    for (int variant = 0; variant < 6; ++variant) {
      std::vector<char> bytes = original;
      if (variant % 2 == 0) {
        std::uniform_int_distribution<size_t> at(0, bytes.size() - 1);
        const int n = variant == 0 ? 4 : 64;
        for (int i = 0; i < n; ++i) bytes[at(rng)] = static_cast<char>(rng());
      } else {
        bytes.resize(std::uniform_int_distribution<size_t>(1, bytes.size() - 1)(rng));
      }
      const std::string path = dir + "/" + std::to_string(variant) + "_" + name;
      WriteBytes(path, bytes.data(), bytes.size());
      auto pcm = Decode(path);
      if (pcm.ok()) {
        ++decoded;
        for (float v : *pcm) ASSERT_TRUE(v >= -1.0f && v <= 1.0f) << path;
      } else {
        ++rejected;
        EXPECT_EQ(pcm.error().kind, ErrorKind::kBadInput)
            << path << ": " << pcm.error().code << ": " << pcm.error().message;
      }
    }
  }
  EXPECT_GT(decoded + rejected, 0);
}

}  // namespace
}  // namespace steno::audio
