// A live session as a runner runs it (core/live_items.h): one work item on one stream that takes
// the session's input in order, finds its utterances, and answers with live::Events.
//
// Two threads: Run()'s (the control loop: input, voice activity detection, turn detection,
// commits) and a decoder of its own (the only user of the stream). The decoder takes, in this
// order:
//   - committed utterances, oldest first, each decoded once for its kCompleted (a kDelta first
//     when the final text extends what the deltas sent; kFailed "decode_failed" if it fails);
//   - otherwise a partial decode of the open utterance, when at least `partial_every_ms` of new
//     audio (and at least as much audio as the last partial decode took to run, so a slow decoder
//     spends at most about half its time on partials) came since the last one. Its text minus
//     what was sent is a kDelta when it extends what was sent; otherwise nothing is sent until a
//     later partial extends it again. A partial under way when its utterance is committed or
//     cleared is abandoned.
// So at most one decode is in flight, and every decode, partial or final, uses the decode
// parameters a transcription job of the same params uses (the session's language and prompt in
// place of the job's), on exactly the utterance's audio: the completed text is what transcribing
// that audio alone gives.
//
// Utterances: with turn detection (Settings::turn_detection), the Silero model (its own context,
// on the CPU, one thread) reads the audio frame by frame and engine::TurnDetector cuts it:
// kSpeechStarted, then kSpeechStopped and kCommitted. Without, the buffer since the last commit
// or clear is the open utterance and only kCommit commits it. Either way an utterance reaching
// kMaxUtteranceMs (whisper's 30 s window) is committed there, and the audio after it opens the
// next. Utterance bounds are whole milliseconds of the session's timeline; the committed range
// is exactly the audio decoded. kCommit with nothing open, or kClear, numbers the next
// utterance afresh: an item number is never reused. A kCommit with nothing to commit is kFailed
// (item 0) "commit_empty".
//
// Backpressure: the audio the item holds and has not started decoding (input not read yet, the
// open utterance, committed utterances waiting for the decoder) is at most max_buffer_ms. Audio
// beyond it is dropped as it arrives, with one kFailed (item 0) "buffer_full" per run of drops;
// the timeline counts only the audio kept. Memory is that bound plus the one utterance being
// decoded.
//
// kUpdate replaces the settings: language and prompt for decodes that start after it, turn
// detection from the next audio on (an open utterance stays open across a switch; turning turn
// detection on without the VAD model is kFailed (item 0) "vad_model_missing", and it stays off).
// kClose drops the open utterance, waits for committed ones to complete, and Run returns. Cancel
// aborts at once, a decode under way included.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/live_items.h"
#include "core/result.h"
#include "engine/decode_params.h"
#include "engine/turn_detector.h"
#include "engine/vad.h"
#include "engine/whisper_stream.h"

namespace steno::runner {

inline constexpr int64_t kMaxUtteranceMs = 30'000;
// 30 s of open utterance or waiting commits, and 10 s more for the input on its way.
inline constexpr int64_t kLiveMaxBufferMs = 40'000;

struct LiveOptions {
  engine::DecodeParams params;  // the job's; the settings' language and prompt replace its own
  live::Settings settings;
  std::string vad_model_path;  // the Silero model, needed while turn detection is on
  int64_t max_buffer_ms = kLiveMaxBufferMs;
  int64_t partial_every_ms = 500;
};

class LiveItem {
 public:
  using Emit = std::function<void(const live::Event&)>;  // called in order, one at a time

  LiveItem(engine::WhisperStream& stream, LiveOptions options, Emit emit);
  ~LiveItem();
  LiveItem(const LiveItem&) = delete;
  LiveItem& operator=(const LiveItem&) = delete;

  // The session's next input, from any thread, in order. Audio beyond the bound is dropped here.
  void Push(live::Input input);
  // Reports input the caller could not read (kFailed, item 0, with `code`).
  void Refuse(const std::string& code, const std::string& message);
  // Stops Run at once: a decode under way is aborted and nothing more is reported.
  void Cancel();

  // Runs the item until kClose (then after its committed utterances completed: OK) or Cancel
  // (kCancelled "aborted"). Errors: the VAD model's when turn detection is on from the start
  // (kBadInput "vad_model_missing", "bad_vad_model"), kInternal "vad_failed".
  Status Run();

  int64_t audio_ms() const { return audio_samples_.load() / engine::TurnDetector::kSamplesPerMs; }
  int64_t items() const { return items_.load(); }

 private:
  struct Utterance {
    int64_t item = 0;
    int64_t start = 0, end = 0;  // samples of the timeline
    std::vector<float> pcm;
    std::string sent;  // what deltas sent of it
    engine::DecodeParams params;
  };
  struct Open {
    int64_t item = 0;  // 0: none
    int64_t start = 0;
    int64_t partial_end = 0;  // the timeline's end when the last partial decode began
    std::string sent;
  };

  // The control loop (Run's thread).
  Status Control();
  Status Append(std::vector<int16_t> pcm);
  Status RunVad();
  void OnTurn(const engine::TurnEvent& turn);
  void CommitOpen(int64_t end, bool speech_stopped);
  void Clear();
  void Update(const live::Settings& settings);
  void ApplySettingsLocked(const live::Settings& settings);
  Status EnsureVad();
  void TrimIdleLocked();
  int64_t EndLocked() const { return origin_ + static_cast<int64_t>(buffer_.size()); }

  // The decoder's thread.
  void DecodeLoop();
  void DecodeCommitted(std::unique_lock<std::mutex>& lock);
  void DecodePartial(std::unique_lock<std::mutex>& lock);
  bool PartialDueLocked() const;

  void Queue(live::Event event);  // under mu_: in the order of the state changes
  void Flush();                   // emits what was queued, in order (never under mu_)

  engine::WhisperStream& stream_;
  const LiveOptions options_;
  const Emit emit_;
  const int64_t max_buffer_samples_;
  std::unique_ptr<engine::VadDetector> vad_;  // the control loop's
  engine::TurnDetector turns_;                // the control loop's
  int64_t vad_pos_ = 0;                       // the control loop's: where the next frame starts
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> abandon_partial_{false};
  std::atomic<int64_t> audio_samples_{0};
  std::atomic<int64_t> items_{0};

  std::mutex emit_mu_;  // held while emitting, so events leave in the order they were queued
  std::mutex mu_;       // guards everything below
  std::condition_variable cv_;
  std::deque<live::Event> outbox_;
  std::deque<live::Input> inputs_;
  int64_t queued_samples_ = 0;  // audio in inputs_
  live::Settings settings_;
  engine::DecodeParams params_;
  std::vector<float> buffer_;  // the timeline from origin_ on, as far as it is kept
  int64_t origin_ = 0;
  Open open_;
  std::deque<Utterance> commits_;
  int64_t committed_samples_ = 0;  // in commits_
  int64_t next_item_ = 1;
  int64_t committed_end_ = 0;         // where the last committed utterance ended
  int64_t partial_cost_samples_ = 0;  // how long the last partial decode ran, as audio
  bool overflow_ = false;             // dropping audio since the last kFailed "buffer_full"
  bool closing_ = false;
};

}  // namespace steno::runner
