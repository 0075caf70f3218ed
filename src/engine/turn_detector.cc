#include "engine/turn_detector.h"

#include <algorithm>

namespace steno::engine {

TurnDetector::TurnDetector(VadSettings settings, int64_t max_turn_samples)
    : settings_(settings), max_turn_samples_(std::max<int64_t>(1, max_turn_samples)) {}

float TurnDetector::StopThreshold() const {
  return std::max(0.01f, settings_.threshold - 0.15f);
}

std::vector<TurnEvent> TurnDetector::Push(int64_t start, int64_t length, float probability) {
  std::vector<TurnEvent> out;
  const int64_t end = start + length;
  const bool speech = probability >= settings_.threshold;
  if (in_turn_ && end - turn_start_ > max_turn_samples_) {
    out.push_back({TurnEvent::Kind::kStopped, start, true});
    in_turn_ = false;
    floor_ = start;
    if (silence_start_ < 0) {  // still talking: the next turn goes on from here
      in_turn_ = true;
      turn_start_ = start;
      out.push_back({TurnEvent::Kind::kStarted, start, false});
    }
    silence_start_ = -1;
  }
  if (!in_turn_) {
    if (speech) {
      const int64_t pad = int64_t{settings_.prefix_padding_ms} * kSamplesPerMs;
      in_turn_ = true;
      turn_start_ = std::max(floor_, start - pad);
      silence_start_ = -1;
      out.push_back({TurnEvent::Kind::kStarted, turn_start_, false});
    }
    return out;
  }
  if (speech) {
    silence_start_ = -1;
  } else if (probability < StopThreshold() && silence_start_ < 0) {
    silence_start_ = start;
  }
  const int64_t silence = int64_t{settings_.silence_duration_ms} * kSamplesPerMs;
  if (silence_start_ >= 0 && end - silence_start_ >= silence) {
    out.push_back({TurnEvent::Kind::kStopped, end, false});
    in_turn_ = false;
    floor_ = end;
    silence_start_ = -1;
  }
  return out;
}

void TurnDetector::Reset(int64_t floor) {
  in_turn_ = false;
  silence_start_ = -1;
  floor_ = floor;
}

void TurnDetector::Open(int64_t start) {
  in_turn_ = true;
  turn_start_ = start;
  silence_start_ = -1;
}

}  // namespace steno::engine
