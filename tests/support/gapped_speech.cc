#include "support/gapped_speech.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "audio/decoder.h"
#include "support/test_env.h"

namespace steno::test {
namespace {

constexpr int kRate = 16000;
constexpr float kLoud = 0.01f;  // espeak-ng's speech peaks near 0.5; its silences are exact zeros

void Put32(std::ofstream& out, uint32_t v) {
  char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
               static_cast<char>(v >> 24)};
  out.write(b, 4);
}

void Put16(std::ofstream& out, uint16_t v) {
  char b[2] = {static_cast<char>(v), static_cast<char>(v >> 8)};
  out.write(b, 2);
}

// speech.wav from its first loud sample to its last (empty, and the test failed, if unreadable).
std::vector<float> TrimmedSpeech() {
  auto pcm = audio::Decode(audio::MediaFile(MediaPath("speech.wav")));
  if (!pcm.ok()) {
    ADD_FAILURE() << "cannot decode speech.wav: " << pcm.error().message;
    return {};
  }
  auto loud = [](float x) { return std::fabs(x) > kLoud; };
  auto first = std::find_if(pcm->begin(), pcm->end(), loud);
  auto last = std::find_if(pcm->rbegin(), pcm->rend(), loud).base();
  return std::vector<float>(first, last);
}

}  // namespace

GappedSpeech MakeGappedSpeech(double lead_s, double gap_s, double tail_s) {
  GappedSpeech g;
  const std::vector<float> speech = TrimmedSpeech();
  if (speech.empty()) return g;
  const double speech_s = static_cast<double>(speech.size()) / kRate;
  auto silence = [&g](double s) {
    g.pcm.insert(g.pcm.end(), static_cast<size_t>(std::lround(s * kRate)), 0.0f);
  };
  auto now = [&g] { return static_cast<double>(g.pcm.size()) / kRate; };
  silence(lead_s);
  g.first_start = now();
  g.pcm.insert(g.pcm.end(), speech.begin(), speech.end());
  g.first_end = g.first_start + speech_s;
  silence(gap_s);
  g.second_start = now();
  g.pcm.insert(g.pcm.end(), speech.begin(), speech.end());
  g.second_end = g.second_start + speech_s;
  silence(tail_s);
  return g;
}

SpacedSpeech MakeSpacedSpeech(int copies, double period_s, double lead_s, double tail_s) {
  SpacedSpeech s;
  const std::vector<float> speech = TrimmedSpeech();
  if (speech.empty()) return s;
  const double speech_s = static_cast<double>(speech.size()) / kRate;
  for (int i = 0; i < copies; ++i) {
    const double at = lead_s + i * period_s;
    s.pcm.resize(static_cast<size_t>(std::lround(at * kRate)), 0.0f);
    const double start = static_cast<double>(s.pcm.size()) / kRate;
    s.pcm.insert(s.pcm.end(), speech.begin(), speech.end());
    s.copies.emplace_back(start, start + speech_s);
  }
  s.pcm.insert(s.pcm.end(), static_cast<size_t>(std::lround(tail_s * kRate)), 0.0f);
  return s;
}

void WriteWav16k(const std::string& path, std::span<const float> pcm) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const auto data_bytes = static_cast<uint32_t>(pcm.size() * 2);
  out.write("RIFF", 4);
  Put32(out, 36 + data_bytes);
  out.write("WAVEfmt ", 8);
  Put32(out, 16);
  Put16(out, 1);  // PCM
  Put16(out, 1);  // mono
  Put32(out, kRate);
  Put32(out, kRate * 2);
  Put16(out, 2);
  Put16(out, 16);
  out.write("data", 4);
  Put32(out, data_bytes);
  for (float x : pcm) {
    const auto v = static_cast<int16_t>(std::lround(std::clamp(x, -1.0f, 1.0f) * 32767.0f));
    Put16(out, static_cast<uint16_t>(v));
  }
}

std::string SileroModel() {
  const auto path = std::filesystem::path(SourceDir()).parent_path() / "shared" / "models" /
                    "ggml-silero-v6.2.0.bin";
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec) ? path.string() : std::string();
}

}  // namespace steno::test
