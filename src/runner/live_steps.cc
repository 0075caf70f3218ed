#include "runner/live_steps.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include "core/error.h"
#include "core/strings.h"

namespace steno::runner {
namespace {

using live::Event;
using live::Input;
constexpr int64_t kPerMs = engine::TurnDetector::kSamplesPerMs;

int64_t Ceil16(int64_t sample) {
  return (sample + kPerMs - 1) / kPerMs * kPerMs;
}
int64_t Floor16(int64_t sample) {
  return sample / kPerMs * kPerMs;
}

Event Failed(int64_t item, const std::string& code, const std::string& text) {
  Event e;
  e.kind = Event::Kind::kFailed;
  e.item = item;
  e.code = code;
  e.text = text;
  return e;
}

Event At(Event::Kind kind, int64_t item, int64_t start, int64_t end) {
  Event e;
  e.kind = kind;
  e.item = item;
  e.audio_start_ms = start / kPerMs;
  e.audio_end_ms = end / kPerMs;
  return e;
}

// The session's language and prompt on top of the job's decode parameters.
engine::DecodeParams WithSettings(engine::DecodeParams params, const live::Settings& settings) {
  params.language = settings.language.empty() ? "auto" : settings.language;
  params.initial_prompt = settings.prompt;
  params.vad.reset();  // the utterance is decoded whole: its speech is already found
  params.speech.reset();
  return params;
}

// `text` minus `sent` when it extends it; nullopt otherwise (or when it adds nothing).
std::optional<std::string> Extension(const std::string& text, const std::string& sent) {
  if (text.size() <= sent.size() || text.compare(0, sent.size(), sent) != 0) return std::nullopt;
  return text.substr(sent.size());
}

}  // namespace

LiveItem::LiveItem(engine::WhisperStream& stream, LiveOptions options, Emit emit)
    : stream_(stream),
      options_(std::move(options)),
      emit_(std::move(emit)),
      max_buffer_samples_(std::max<int64_t>(1, options_.max_buffer_ms * kPerMs)),
      turns_(options_.settings.turn_detection.value_or(live::kRealtimeVadDefaults),
             kMaxUtteranceMs * kPerMs),
      settings_(options_.settings),
      params_(WithSettings(options_.params, options_.settings)) {}

LiveItem::~LiveItem() = default;

void LiveItem::Push(Input input) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_) return;
    if (input.op == Input::Op::kAudio) {
      const auto n = static_cast<int64_t>(input.pcm.size());
      const int64_t held =
          queued_samples_ + static_cast<int64_t>(buffer_.size()) + committed_samples_;
      if (held + n > max_buffer_samples_) {
        if (!overflow_) {
          overflow_ = true;
          Queue(Failed(0, "buffer_full",
                       "audio came faster than it is transcribed: " + std::to_string(n / kPerMs) +
                           " ms dropped (the session holds at most " +
                           std::to_string(options_.max_buffer_ms) + " ms)"));
        }
      } else {
        overflow_ = false;
        queued_samples_ += n;
        inputs_.push_back(std::move(input));
      }
    } else {
      inputs_.push_back(std::move(input));
    }
    cv_.notify_all();
  }
  Flush();
}

void LiveItem::Refuse(const std::string& code, const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Queue(Failed(0, code, message));
  }
  Flush();
}

void LiveItem::Cancel() {
  cancelled_ = true;
  abandon_partial_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  cv_.notify_all();
}

void LiveItem::Queue(Event event) {
  outbox_.push_back(std::move(event));
}

void LiveItem::Flush() {
  std::lock_guard<std::mutex> order(emit_mu_);
  std::deque<Event> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(outbox_);
  }
  if (cancelled_) return;
  for (const Event& e : batch) emit_(e);
}

Status LiveItem::Run() {
  if (options_.settings.turn_detection) {
    if (Status st = EnsureVad(); !st) return st;
  }
  std::thread decoder(&LiveItem::DecodeLoop, this);
  Status result = Control();
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    if (!result) cancelled_ = true;  // the loop failed: stop the decoder too
    cv_.notify_all();
  }
  decoder.join();
  Flush();
  if (!result) return result;
  if (cancelled_) return Error(ErrorKind::kCancelled, "aborted", "the live session was stopped");
  return {};
}

Status LiveItem::Control() {
  for (;;) {
    Input in;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return cancelled_ || !inputs_.empty(); });
      if (cancelled_) return {};
      in = std::move(inputs_.front());
      inputs_.pop_front();
    }
    Status st;
    switch (in.op) {
      case Input::Op::kAudio: st = Append(std::move(in.pcm)); break;
      case Input::Op::kCommit: {
        std::lock_guard<std::mutex> lock(mu_);
        CommitOpen(EndLocked(), false);
        break;
      }
      case Input::Op::kClear: Clear(); break;
      case Input::Op::kUpdate: Update(in.settings); break;
      case Input::Op::kClose: {
        std::lock_guard<std::mutex> lock(mu_);
        abandon_partial_ = open_.item != 0;
        open_ = Open{};
        buffer_.clear();
        return {};
      }
    }
    Flush();
    if (!st) return st;
  }
}

Status LiveItem::Append(std::vector<int16_t> pcm) {
  bool manual;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued_samples_ -= static_cast<int64_t>(pcm.size());
    buffer_.reserve(buffer_.size() + pcm.size());
    for (int16_t s : pcm) buffer_.push_back(static_cast<float>(s) / 32768.0f);
    audio_samples_ += static_cast<int64_t>(pcm.size());
    manual = !settings_.turn_detection;
    if (manual) {
      const int64_t from = std::max(Ceil16(origin_), committed_end_);
      if (open_.item == 0 && EndLocked() > from) open_ = Open{next_item_++, from, from, ""};
      // Whisper's window: a buffer reaching 30 s is committed there.
      while (open_.item != 0 && EndLocked() - open_.start >= kMaxUtteranceMs * kPerMs) {
        CommitOpen(open_.start + kMaxUtteranceMs * kPerMs, false);
        if (EndLocked() > origin_) open_ = Open{next_item_++, origin_, origin_, ""};
      }
    }
    cv_.notify_all();  // a partial decode may be due
  }
  return manual ? Status() : RunVad();
}

// Reads every whole frame not read yet and acts on the turns they make.
Status LiveItem::RunVad() {
  std::vector<float> frames;
  int64_t from;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t n = (EndLocked() - vad_pos_) / engine::VadDetector::kFrameSamples *
                      engine::VadDetector::kFrameSamples;
    if (n <= 0) return {};
    from = vad_pos_;
    const auto at = buffer_.begin() + (vad_pos_ - origin_);
    frames.assign(at, at + n);
  }
  auto probs = vad_->FrameProbabilities(frames);
  if (!probs.ok()) return probs.error();
  for (size_t i = 0; i < probs->size(); ++i) {
    const int64_t start = from + static_cast<int64_t>(i) * engine::VadDetector::kFrameSamples;
    for (const engine::TurnEvent& t :
         turns_.Push(start, engine::VadDetector::kFrameSamples, (*probs)[i])) {
      OnTurn(t);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  vad_pos_ = from + static_cast<int64_t>(frames.size());
  TrimIdleLocked();
  return {};
}

void LiveItem::OnTurn(const engine::TurnEvent& turn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (turn.kind == engine::TurnEvent::Kind::kStarted) {
    const int64_t start = std::max(Ceil16(turn.sample), Ceil16(origin_));
    open_ = Open{next_item_++, start, start, ""};
    Queue(At(Event::Kind::kSpeechStarted, open_.item, start, start));
  } else {
    CommitOpen(turn.sample, true);
  }
}

// Without a turn under way, the buffer keeps only what a turn starting at the next frame could
// take as its padding.
void LiveItem::TrimIdleLocked() {
  if (open_.item != 0) return;
  const int64_t pad =
      settings_.turn_detection ? int64_t{settings_.turn_detection->prefix_padding_ms} * kPerMs : 0;
  const int64_t keep_from = std::max(origin_, std::min(vad_pos_, EndLocked()) - pad);
  buffer_.erase(buffer_.begin(), buffer_.begin() + (keep_from - origin_));
  origin_ = keep_from;
}

// Commits the open utterance up to `end` (the timeline's end at most).
void LiveItem::CommitOpen(int64_t end, bool speech_stopped) {
  if (open_.item == 0) {
    Queue(Failed(0, "commit_empty", "there is no uncommitted audio to commit"));
    return;
  }
  end = Floor16(std::min(end, EndLocked()));
  if (end <= open_.start) {
    Queue(Failed(0, "commit_empty", "there is no uncommitted audio to commit"));
    return;
  }
  Utterance u;
  u.item = open_.item;
  u.start = open_.start;
  u.end = end;
  u.pcm.assign(buffer_.begin() + (u.start - origin_), buffer_.begin() + (end - origin_));
  u.sent = std::move(open_.sent);
  u.params = params_;
  // The VAD's frames not read yet stay: the next frame may begin before `end`.
  const int64_t keep = settings_.turn_detection ? std::min(end, vad_pos_) : end;
  buffer_.erase(buffer_.begin(), buffer_.begin() + (keep - origin_));
  origin_ = keep;
  // A commit the detector did not make (kCommit) ends its turn too.
  if (settings_.turn_detection && !speech_stopped) turns_.Reset(end);
  if (speech_stopped) Queue(At(Event::Kind::kSpeechStopped, u.item, end, end));
  Queue(At(Event::Kind::kCommitted, u.item, u.start, u.end));
  abandon_partial_ = true;  // a partial of this utterance is of no use now
  open_ = Open{};
  committed_end_ = end;
  items_ = u.item;
  committed_samples_ += static_cast<int64_t>(u.pcm.size());
  commits_.push_back(std::move(u));
  cv_.notify_all();
}

void LiveItem::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  abandon_partial_ = open_.item != 0;
  open_ = Open{};
  origin_ = EndLocked();
  buffer_.clear();
  vad_pos_ = origin_;
  turns_.Reset(origin_);
  if (vad_) vad_->ResetState();
}

Status LiveItem::EnsureVad() {
  if (vad_) return {};
  auto loaded = engine::VadDetector::Load(options_.vad_model_path);
  if (!loaded.ok()) return loaded.error();
  vad_ = std::move(loaded).value();
  return {};
}

void LiveItem::Update(const live::Settings& settings) {
  live::Settings next = settings;
  if (next.turn_detection) {
    if (Status st = EnsureVad(); !st) {
      std::lock_guard<std::mutex> lock(mu_);
      Queue(Failed(0, st.error().code, st.error().message));
      next.turn_detection.reset();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  ApplySettingsLocked(next);
}

void LiveItem::ApplySettingsLocked(const live::Settings& next) {
  const bool was_on = settings_.turn_detection.has_value();
  settings_ = next;
  params_ = WithSettings(options_.params, next);
  if (!next.turn_detection) return;
  turns_.set_settings(*next.turn_detection);
  if (was_on) return;
  // Turned on: the VAD reads on from here, and an open buffer stays open as a turn under way.
  vad_pos_ = EndLocked();
  vad_->ResetState();
  if (open_.item != 0) {
    turns_.Open(open_.start);
  } else {
    turns_.Reset(vad_pos_);
  }
}

bool LiveItem::PartialDueLocked() const {
  if (open_.item == 0 || closing_) return false;
  const int64_t fresh = EndLocked() - open_.partial_end;
  return fresh >= std::max(options_.partial_every_ms * kPerMs, partial_cost_samples_);
}

void LiveItem::DecodeLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock,
             [this] { return cancelled_ || closing_ || !commits_.empty() || PartialDueLocked(); });
    if (cancelled_) return;
    if (!commits_.empty()) {
      DecodeCommitted(lock);
    } else if (PartialDueLocked()) {
      DecodePartial(lock);
    } else if (closing_) {
      return;
    }
  }
}

void LiveItem::DecodeCommitted(std::unique_lock<std::mutex>& lock) {
  Utterance u = std::move(commits_.front());
  commits_.pop_front();
  committed_samples_ -= static_cast<int64_t>(u.pcm.size());
  lock.unlock();
  engine::StreamCallbacks cb;
  cb.should_abort = [this] { return cancelled_.load(); };
  auto t = stream_.Run(u.pcm, u.params, cb);
  lock.lock();
  if (cancelled_) return;
  if (!t.ok()) {
    Queue(Failed(u.item, "decode_failed", t.error().message));
  } else {
    Event done = At(Event::Kind::kCompleted, u.item, u.start, u.end);
    done.text = std::string(TrimLeft(t->Text()));
    if (auto rest = Extension(done.text, u.sent)) {
      Event delta = At(Event::Kind::kDelta, u.item, u.start, u.end);
      delta.text = *rest;
      Queue(std::move(delta));
    }
    Queue(std::move(done));
  }
  lock.unlock();
  Flush();
  lock.lock();
}

void LiveItem::DecodePartial(std::unique_lock<std::mutex>& lock) {
  const int64_t item = open_.item, start = open_.start, end = EndLocked();
  std::vector<float> pcm(buffer_.begin() + (start - origin_), buffer_.end());
  const engine::DecodeParams params = params_;
  open_.partial_end = end;
  abandon_partial_ = false;
  lock.unlock();
  engine::StreamCallbacks cb;
  cb.should_abort = [this] { return cancelled_.load() || abandon_partial_.load(); };
  const auto began = std::chrono::steady_clock::now();
  auto t = stream_.Run(pcm, params, cb);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - began)
                        .count();
  lock.lock();
  partial_cost_samples_ = took * kPerMs;
  if (!t.ok() || open_.item != item) return;  // failed, abandoned, or its utterance moved on
  const std::string text(TrimLeft(t->Text()));
  if (auto rest = Extension(text, open_.sent)) {
    Event delta = At(Event::Kind::kDelta, item, start, end);
    delta.text = *rest;
    open_.sent = text;
    Queue(std::move(delta));
    lock.unlock();
    Flush();
    lock.lock();
  }
}

}  // namespace steno::runner
