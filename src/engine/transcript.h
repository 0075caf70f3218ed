// The result of transcribing one audio buffer, independent of how it is rendered (formats.h)
// or produced (whisper_stream.h). Times are in seconds from the start of the audio.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace steno::engine {

struct Word {
  std::string text;  // as decoded, usually with a leading space
  double start = 0;
  double end = 0;
  float probability = 0;
};

// One segment, with the fields OpenAI's verbose_json reports.
struct Segment {
  int id = 0;
  int seek = 0;  // offset of the 30 s window this segment was decoded in, in 10 ms frames
  double start = 0;
  double end = 0;
  std::string text;         // as decoded, usually with a leading space
  std::vector<int> tokens;  // text tokens only (no special or timestamp tokens)
  float temperature = 0;    // temperature of the decode that produced it
  float avg_logprob = 0;
  float compression_ratio = 0;
  float no_speech_prob = 0;
  std::vector<Word> words;  // filled only when word timestamps were requested
};

// Keeps a segment and its words inside the audio: whisper.cpp times a segment by the timestamp
// tokens it decodes, and a 30 s window over a shorter input can end "after" the audio (a 1.08 s
// file once got a segment ending at 22.04 s). Every start and end is clamped to
// [0, duration rounded down to whisper's 10 ms steps], so a clamped time is a whole number of
// steps like every other (it survives rounding to ms); the order start <= end is kept.
inline void ClampToDuration(Segment& s, double duration) {
  const double last = std::max(0.0, std::floor(duration * 100 + 1e-6) / 100);
  auto clamp = [last](double t) { return std::clamp(t, 0.0, last); };
  s.start = clamp(s.start);
  s.end = std::max(s.start, clamp(s.end));
  for (Word& w : s.words) {
    w.start = clamp(w.start);
    w.end = std::max(w.start, clamp(w.end));
  }
}

struct Transcript {
  std::string task = "transcribe";  // or "translate"
  std::string language;             // ISO 639-1 code, detected or requested
  double duration = 0;              // length of the input audio
  std::vector<Segment> segments;
  bool has_words = false;  // word timestamps were requested
  // With words: where their times come from, "dtw" (DTW over the model's alignment heads,
  // engine/alignment_heads.h) or "tokens" (whisper.cpp's token timestamps); empty otherwise.
  std::string word_timing;

  // Concatenation of segment texts, as OpenAI's "text" field.
  std::string Text() const {
    std::string out;
    for (const auto& s : segments) out += s.text;
    return out;
  }
};

}  // namespace steno::engine
