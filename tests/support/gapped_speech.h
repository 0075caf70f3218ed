// Speech with silences inserted at known places, for the voice-activity tests: the generated
// speech.wav (espeak-ng), trimmed to its first and last loud sample, laid out as
//   [lead_s of silence][speech][gap_s of silence][speech][tail_s of silence]
// so the speech boundaries are known to the sample. 16 kHz mono floats.
#pragma once

#include <span>
#include <string>
#include <utility>
#include <vector>

namespace steno::test {

struct GappedSpeech {
  std::vector<float> pcm;
  double first_start = 0, first_end = 0;    // the first copy of the speech, in seconds
  double second_start = 0, second_end = 0;  // the second copy
  double duration() const { return static_cast<double>(pcm.size()) / 16000.0; }
};

// Fails the calling test (and returns an empty pcm) when speech.wav cannot be read.
GappedSpeech MakeGappedSpeech(double lead_s, double gap_s, double tail_s);

// `copies` copies of the same speech, the first at `lead_s`, one every `period_s` seconds, with
// silence everywhere else (and `tail_s` of it after the last). For long recordings.
struct SpacedSpeech {
  std::vector<float> pcm;
  std::vector<std::pair<double, double>> copies;  // each copy's [start, end], in seconds
  double duration() const { return static_cast<double>(pcm.size()) / 16000.0; }
};
SpacedSpeech MakeSpacedSpeech(int copies, double period_s, double lead_s = 1.0,
                              double tail_s = 1.0);

// A 16 kHz mono 16-bit PCM WAV file of `pcm` at `path`.
void WriteWav16k(const std::string& path, std::span<const float> pcm);

// The real Silero VAD model (../shared/models beside the project); "" when it is not there.
std::string SileroModel();

}  // namespace steno::test
