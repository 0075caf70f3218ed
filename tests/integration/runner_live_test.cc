// Live sessions on real runner processes (runner/live_steps.h): the steno binary as a child, the
// tiny generated model (its text is garbage, but deterministic), the real Silero model
// (../shared/models) and espeak-ng speech with silences inserted at known places, fed in 100 ms
// chunks as `feed` frames. Each completed text is compared with a normal transcription job of
// exactly that utterance's audio on the same runner.
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <iterator>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/live_items.h"
#include "runner/messages.h"
#include "runners/whisper/process_backend.h"
#include "support/gapped_speech.h"
#include "support/runner_events.h"
#include "support/test_env.h"

namespace steno::runner {
namespace {

using live::Event;
using live::Input;
constexpr int kChunk = 1600;     // 100 ms
constexpr double kMargin = 0.3;  // the bound on a detected boundary, in seconds
constexpr int64_t kPadMs = 300;  // OpenAI's server_vad defaults
constexpr int64_t kSilenceMs = 500;

std::vector<int16_t> ToPcm16(const std::vector<float>& pcm) {
  std::vector<int16_t> out(pcm.size());
  for (size_t i = 0; i < pcm.size(); ++i) {
    out[i] = static_cast<int16_t>(std::lround(std::clamp(pcm[i], -1.0f, 1.0f) * 32767.0f));
  }
  return out;
}

std::vector<int16_t> Silence(double seconds) {
  return std::vector<int16_t>(static_cast<size_t>(std::lround(seconds * 16000)), 0);
}

json Settings(bool vad) {
  live::Settings s;
  s.language = "en";
  if (!vad) s.turn_detection.reset();
  return live::SettingsToJson(s);
}

json StartLive(const std::string& id, const json& settings, int64_t max_buffer_ms = 0) {
  json m = {{"type", "transcribe"},
            {"job_id", id},
            {"params", Greedy()},
            {"live", settings},
            {"vad_model_path", test::SileroModel()}};
  if (max_buffer_ms > 0) m["live_max_buffer_ms"] = max_buffer_ms;
  return m;
}

void Send(RunnerHandle& h, const std::string& id, const Input& input) {
  ASSERT_TRUE(h.Send(FeedMessage(id, live::InputToJson(input))).ok());
}

void SendOp(RunnerHandle& h, const std::string& id, Input::Op op) {
  Input in;
  in.op = op;
  Send(h, id, in);
}

// `pcm` as audio inputs of 100 ms each.
void FeedAudio(RunnerHandle& h, const std::string& id, std::span<const int16_t> pcm) {
  for (size_t at = 0; at < pcm.size(); at += kChunk) {
    Input in;
    const auto n = std::min<size_t>(kChunk, pcm.size() - at);
    in.pcm.assign(pcm.begin() + at, pcm.begin() + at + n);
    Send(h, id, in);
  }
}

std::vector<Event> LiveEvents(Events& ev, const std::string& id) {
  std::vector<Event> out;
  for (const json& m : ev.All("segment", id)) {
    auto e = live::EventFromJson(m["segment"]);
    EXPECT_TRUE(e.ok()) << m.dump();
    if (e.ok()) out.push_back(*e);
  }
  return out;
}

std::optional<json> WaitEvent(Events& ev, const std::string& id, const std::string& event,
                              int64_t item = -1, std::chrono::milliseconds timeout = 120s) {
  return ev.WaitFor(
      [&](const json& m) {
        return m["type"] == "segment" && m.value("job_id", "") == id &&
               m["segment"].value("event", "") == event &&
               (item < 0 || m["segment"].value("item", int64_t{-1}) == item);
      },
      timeout);
}

std::vector<Event> OfKind(const std::vector<Event>& events, Event::Kind kind) {
  std::vector<Event> out;
  std::copy_if(events.begin(), events.end(), std::back_inserter(out),
               [kind](const Event& e) { return e.kind == kind; });
  return out;
}

class LiveRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::SileroModel().empty()) {
      GTEST_SKIP() << "the real VAD model is not at ../shared/models/ggml-silero-v6.2.0.bin";
    }
    auto h = RunnerHandle::Start(TinyRunner(2), ev.Sink());
    ASSERT_TRUE(h.ok()) << h.error().message;
    runner = std::move(h).value();
    ASSERT_TRUE(ev.WaitType("ready").has_value());
  }

  // The text a transcription job of `pcm[start_ms, end_ms)` alone gives on this runner.
  std::string TranscribeAlone(const std::vector<int16_t>& pcm, int64_t start_ms, int64_t end_ms) {
    std::vector<float> part;
    for (int64_t i = start_ms * 16; i < end_ms * 16 && i < static_cast<int64_t>(pcm.size()); ++i)
      part.push_back(static_cast<float>(pcm[i]) / 32767.0f);  // WriteWav16k gives pcm[i] back
    const std::string path =
        dir.path + "/utterance-" + std::to_string(start_ms) + "-" + std::to_string(end_ms) + ".wav";
    test::WriteWav16k(path, part);
    json m = Transcribe("alone-" + std::to_string(start_ms), "speech.wav");
    m["audio_path"] = path;
    EXPECT_TRUE(runner->Send(m).ok());
    json done = ev.WaitOutcome(m["job_id"]);
    EXPECT_EQ(done["type"], "done") << done.dump();
    return done["result"].value("text", "");
  }

  test::ScopedTempDir dir{"steno-live-runner"};
  Events ev;
  std::unique_ptr<RunnerHandle> runner;
};

TEST_F(LiveRunnerTest, ServerVadFindsEachUtteranceAndItsTextIsTheUtteranceTranscribedAlone) {
  const test::GappedSpeech g = test::MakeGappedSpeech(1.0, 3.0, 1.5);
  const std::vector<int16_t> pcm = ToPcm16(g.pcm);
  ASSERT_TRUE(runner->Send(StartLive("s1", Settings(true))).ok());
  FeedAudio(*runner, "s1", pcm);
  SendOp(*runner, "s1", Input::Op::kClose);
  json done = ev.WaitOutcome("s1");
  ASSERT_EQ(done["type"], "done") << done.dump();
  EXPECT_EQ(done["result"]["items"], 2);
  EXPECT_EQ(done["result"]["audio_ms"], static_cast<int64_t>(pcm.size() / 16));

  const std::vector<Event> events = LiveEvents(ev, "s1");
  const auto started = OfKind(events, Event::Kind::kSpeechStarted);
  const auto stopped = OfKind(events, Event::Kind::kSpeechStopped);
  const auto committed = OfKind(events, Event::Kind::kCommitted);
  const auto completed = OfKind(events, Event::Kind::kCompleted);
  ASSERT_EQ(started.size(), 2u);
  ASSERT_EQ(stopped.size(), 2u);
  ASSERT_EQ(committed.size(), 2u);
  ASSERT_EQ(completed.size(), 2u);
  EXPECT_TRUE(OfKind(events, Event::Kind::kFailed).empty());
  const double starts[] = {g.first_start, g.second_start};
  const double ends[] = {g.first_end, g.second_end};
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE("utterance " + std::to_string(i + 1));
    EXPECT_EQ(started[i].item, i + 1);
    EXPECT_EQ(completed[i].item, i + 1);
    // The start includes the prefix padding, the end the silence that ended the utterance.
    EXPECT_NEAR((started[i].audio_start_ms + kPadMs) / 1000.0, starts[i], kMargin);
    EXPECT_NEAR((stopped[i].audio_end_ms - kSilenceMs) / 1000.0, ends[i], kMargin);
    EXPECT_EQ(committed[i].audio_start_ms, started[i].audio_start_ms);
    EXPECT_EQ(committed[i].audio_end_ms, stopped[i].audio_end_ms);
    EXPECT_EQ(completed[i].audio_start_ms, committed[i].audio_start_ms);
    EXPECT_EQ(completed[i].audio_end_ms, committed[i].audio_end_ms);
    EXPECT_FALSE(completed[i].text.empty()) << "the comparison below would prove nothing";
    EXPECT_EQ(completed[i].text,
              TranscribeAlone(pcm, committed[i].audio_start_ms, committed[i].audio_end_ms));
  }
  EXPECT_LT(completed[0].audio_end_ms, completed[1].audio_start_ms);
  // In order: each utterance's events start, stop, commit, then complete.
  auto index = [&](Event::Kind kind, int64_t item) {
    return std::find_if(events.begin(), events.end(),
                        [&](const Event& e) { return e.kind == kind && e.item == item; }) -
           events.begin();
  };
  for (int64_t item : {1, 2}) {
    EXPECT_LT(index(Event::Kind::kSpeechStarted, item), index(Event::Kind::kSpeechStopped, item));
    EXPECT_LT(index(Event::Kind::kSpeechStopped, item), index(Event::Kind::kCommitted, item));
    EXPECT_LT(index(Event::Kind::kCommitted, item), index(Event::Kind::kCompleted, item));
  }
  EXPECT_LT(index(Event::Kind::kCompleted, 1), index(Event::Kind::kCompleted, 2));
}

TEST_F(LiveRunnerTest, ALongUtteranceGetsDeltasBeforeItEnds) {
  const test::GappedSpeech g = test::MakeGappedSpeech(0.5, 0.0, 0.0);  // two copies, no pause
  ASSERT_TRUE(runner->Send(StartLive("d1", Settings(true))).ok());
  FeedAudio(*runner, "d1", ToPcm16(g.pcm));
  // No silence has come yet: the utterance is still open while its partial decodes run.
  ASSERT_TRUE(WaitEvent(ev, "d1", "delta", 1).has_value()) << "no delta while it was open";
  EXPECT_TRUE(OfKind(LiveEvents(ev, "d1"), Event::Kind::kCommitted).empty());
  FeedAudio(*runner, "d1", Silence(1.0));
  auto completed = WaitEvent(ev, "d1", "completed", 1);
  ASSERT_TRUE(completed.has_value());
  SendOp(*runner, "d1", Input::Op::kClose);
  ASSERT_EQ(ev.WaitOutcome("d1")["type"], "done");
  const auto events = LiveEvents(ev, "d1");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().kind, Event::Kind::kSpeechStarted);
  EXPECT_EQ(events.back().kind, Event::Kind::kCompleted);
  for (const Event& e : events) EXPECT_EQ(e.item, 1);
}

TEST_F(LiveRunnerTest, ManualCommitAndClearWithoutTurnDetection) {
  const std::vector<int16_t> pcm = ToPcm16(test::MakeGappedSpeech(0.2, 0.0, 0.0).pcm);
  ASSERT_GE(pcm.size(), 16000u * 5);
  ASSERT_TRUE(runner->Send(StartLive("m1", Settings(false))).ok());
  SendOp(*runner, "m1", Input::Op::kCommit);  // nothing to commit yet
  ASSERT_TRUE(WaitEvent(ev, "m1", "failed", 0).has_value());
  // 0–2 s committed by hand; 2–3 s cleared; 3–4.5 s committed.
  FeedAudio(*runner, "m1", std::span(pcm).subspan(0, 32000));
  SendOp(*runner, "m1", Input::Op::kCommit);
  FeedAudio(*runner, "m1", std::span(pcm).subspan(32000, 16000));
  SendOp(*runner, "m1", Input::Op::kClear);
  FeedAudio(*runner, "m1", std::span(pcm).subspan(48000, 24000));
  SendOp(*runner, "m1", Input::Op::kCommit);
  SendOp(*runner, "m1", Input::Op::kClose);
  ASSERT_EQ(ev.WaitOutcome("m1")["type"], "done");

  const auto events = LiveEvents(ev, "m1");
  const auto failed = OfKind(events, Event::Kind::kFailed);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].code, "commit_empty");
  EXPECT_TRUE(OfKind(events, Event::Kind::kSpeechStarted).empty()) << "no server VAD";
  const auto committed = OfKind(events, Event::Kind::kCommitted);
  const auto completed = OfKind(events, Event::Kind::kCompleted);
  ASSERT_EQ(committed.size(), 2u);
  ASSERT_EQ(completed.size(), 2u);
  EXPECT_EQ(committed[0].item, 1);
  EXPECT_EQ(committed[0].audio_start_ms, 0);
  EXPECT_EQ(committed[0].audio_end_ms, 2000);
  EXPECT_EQ(committed[1].item, 3) << "the cleared utterance's number is not reused";
  EXPECT_EQ(committed[1].audio_start_ms, 3000);
  EXPECT_EQ(committed[1].audio_end_ms, 4500);
  // The timeline counts the cleared audio; each text is its own audio's alone.
  std::vector<int16_t> timeline(pcm.begin(), pcm.begin() + 72000);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(completed[i].item, committed[i].item);
    EXPECT_EQ(completed[i].text,
              TranscribeAlone(timeline, committed[i].audio_start_ms, committed[i].audio_end_ms));
  }
}

// Whisper's window: a buffer reaching 30 s is committed there, and the audio after it opens the
// next utterance.
TEST_F(LiveRunnerTest, AnUtteranceIsCommittedAtThirtySeconds) {
  const std::vector<int16_t> speech = ToPcm16(test::MakeGappedSpeech(0.0, 0.0, 0.0).pcm);
  std::vector<int16_t> pcm;
  while (pcm.size() < 35u * 16000) pcm.insert(pcm.end(), speech.begin(), speech.end());
  pcm.resize(35u * 16000);
  ASSERT_TRUE(runner->Send(StartLive("w1", Settings(false))).ok());
  FeedAudio(*runner, "w1", pcm);
  SendOp(*runner, "w1", Input::Op::kCommit);
  SendOp(*runner, "w1", Input::Op::kClose);
  ASSERT_EQ(ev.WaitOutcome("w1")["type"], "done");
  const auto events = LiveEvents(ev, "w1");
  const auto committed = OfKind(events, Event::Kind::kCommitted);
  ASSERT_EQ(committed.size(), 2u);
  EXPECT_EQ(committed[0].item, 1);
  EXPECT_EQ(committed[0].audio_start_ms, 0);
  EXPECT_EQ(committed[0].audio_end_ms, 30'000);
  EXPECT_EQ(committed[1].item, 2);
  EXPECT_EQ(committed[1].audio_start_ms, 30'000);
  EXPECT_EQ(committed[1].audio_end_ms, 35'000);
  EXPECT_EQ(OfKind(events, Event::Kind::kCompleted).size(), 2u);
  EXPECT_TRUE(OfKind(events, Event::Kind::kFailed).empty());
}

TEST_F(LiveRunnerTest, CloseCompletesTheCommittedUtteranceThenEndsTheJob) {
  const std::vector<int16_t> speech = ToPcm16(test::MakeGappedSpeech(0.5, 0.0, 0.0).pcm);
  ASSERT_TRUE(runner->Send(StartLive("c1", Settings(true))).ok());
  FeedAudio(*runner, "c1", speech);
  FeedAudio(*runner, "c1", Silence(1.0));                         // ends the utterance
  FeedAudio(*runner, "c1", std::span(speech).subspan(0, 48000));  // an open one
  SendOp(*runner, "c1", Input::Op::kClose);
  json done = ev.WaitOutcome("c1");
  ASSERT_EQ(done["type"], "done") << done.dump();
  const auto events = LiveEvents(ev, "c1");
  const auto completed = OfKind(events, Event::Kind::kCompleted);
  ASSERT_EQ(completed.size(), 1u) << "the committed utterance completed before the end";
  EXPECT_EQ(completed[0].item, 1);
  EXPECT_TRUE(OfKind(events, Event::Kind::kCommitted).size() == 1u) << "the open one is dropped";
  // Input after the end is dropped; the runner serves on.
  SendOp(*runner, "c1", Input::Op::kCommit);
  ASSERT_TRUE(runner->Send(Transcribe("after", "speech_short.wav")).ok());
  EXPECT_EQ(ev.WaitOutcome("after")["type"], "done");
  EXPECT_EQ(LiveEvents(ev, "c1").size(), events.size());
}

TEST_F(LiveRunnerTest, CancelMidUtteranceEndsTheJobPromptlyAndFreesItsStream) {
  const std::vector<int16_t> speech = ToPcm16(test::MakeGappedSpeech(0.5, 0.0, 0.0).pcm);
  for (const char* id : {"x1", "x2"}) ASSERT_TRUE(runner->Send(StartLive(id, Settings(true))).ok());
  FeedAudio(*runner, "x1", speech);
  FeedAudio(*runner, "x2", speech);
  ASSERT_TRUE(WaitEvent(ev, "x1", "speech_started", 1).has_value());
  const auto asked = Clock::now();
  ASSERT_TRUE(runner->Send({{"type", "cancel"}, {"job_id", "x1"}}).ok());
  json cancelled = ev.WaitOutcome("x1");
  EXPECT_EQ(cancelled["type"], "error");
  EXPECT_EQ(cancelled["kind"], "cancelled");
  EXPECT_LT(Clock::now() - asked, 30s) << "a partial decode under way is aborted";
  // Both streams were taken; the freed one serves a job while the other session goes on.
  ASSERT_TRUE(runner->Send(Transcribe("next", "speech_short.wav")).ok());
  EXPECT_EQ(ev.WaitOutcome("next")["type"], "done");
  FeedAudio(*runner, "x2", Silence(1.0));
  EXPECT_TRUE(WaitEvent(ev, "x2", "completed", 1).has_value());
  SendOp(*runner, "x2", Input::Op::kClose);
  EXPECT_EQ(ev.WaitOutcome("x2")["type"], "done");
}

TEST_F(LiveRunnerTest, AudioBeyondTheBufferIsDroppedWithOneBufferFullPerOverflow) {
  const std::vector<int16_t> pcm = ToPcm16(test::MakeGappedSpeech(0.2, 0.0, 0.0).pcm);
  // Manual mode: nothing is decoded until a commit, so the buffer fills deterministically.
  ASSERT_TRUE(runner->Send(StartLive("b1", Settings(false), 2000)).ok());
  FeedAudio(*runner, "b1", std::span(pcm).subspan(0, 80000));  // 5 s into a 2 s buffer
  SendOp(*runner, "b1", Input::Op::kCommit);
  ASSERT_TRUE(WaitEvent(ev, "b1", "completed", 1).has_value());
  FeedAudio(*runner, "b1", std::span(pcm).subspan(0, 16000));  // room again: kept
  FeedAudio(*runner, "b1", std::span(pcm).subspan(0, 48000));  // a second overflow
  SendOp(*runner, "b1", Input::Op::kCommit);
  SendOp(*runner, "b1", Input::Op::kClose);
  ASSERT_EQ(ev.WaitOutcome("b1")["type"], "done");
  const auto events = LiveEvents(ev, "b1");
  const auto failed = OfKind(events, Event::Kind::kFailed);
  ASSERT_EQ(failed.size(), 2u);
  for (const Event& f : failed) {
    EXPECT_EQ(f.code, "buffer_full");
    EXPECT_EQ(f.item, 0);
  }
  const auto committed = OfKind(events, Event::Kind::kCommitted);
  ASSERT_EQ(committed.size(), 2u);
  EXPECT_EQ(committed[0].audio_end_ms - committed[0].audio_start_ms, 2000) << "what fitted";
  EXPECT_EQ(committed[1].audio_end_ms - committed[1].audio_start_ms, 2000);
  EXPECT_EQ(committed[1].audio_start_ms, 2000) << "dropped audio is not in the timeline";
}

// The supervisor's side: the whisper kind sends a live job (no input file) and its input as
// frames, and the runner's events come back as the job's kSegment payloads, then kDone.
TEST(LiveProcessBackendTest, SendsALiveJobAndItsInputAndReportsItsEvents) {
  if (test::SileroModel().empty()) GTEST_SKIP() << "the real VAD model is not there";
  std::mutex mu;
  std::condition_variable cv;
  std::vector<sched::BackendEvent> got;
  runners::ProcessBackendOptions o;
  o.exe = test::StenoBin();
  o.decode_defaults.language = "en";
  o.decode_defaults.beam_size = 1;
  o.decode_defaults.temperature_inc = 0;
  o.decode_defaults.n_threads = 1;
  o.decode_defaults.vad_model_path = test::SileroModel();
  runners::ProcessBackend backend(o, [&](sched::BackendEvent e) {
    std::lock_guard<std::mutex> lock(mu);
    got.push_back(std::move(e));
    cv.notify_all();
  });
  auto wait_for = [&](sched::BackendEvent::Kind kind) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, 120s, [&] {
      return std::any_of(got.begin(), got.end(), [&](const auto& e) { return e.kind == kind; });
    });
  };
  sched::RunnerStartSpec spec;
  spec.runner_id = 7;
  spec.model = "tiny";
  spec.model_path = test::TinyModel();
  spec.device = "cpu";
  ASSERT_TRUE(backend.Start(spec).ok());
  ASSERT_TRUE(wait_for(sched::BackendEvent::Kind::kReady));

  sched::JobRunSpec job;
  job.job_id = "live-1";
  job.params = {{"language", "en"}, {"live", Settings(true)}};
  ASSERT_TRUE(backend.SendJob(7, job).ok()) << "a live job names no input file";
  std::vector<int16_t> pcm = ToPcm16(test::MakeGappedSpeech(0.5, 0.0, 0.0).pcm);
  const std::vector<int16_t> quiet = Silence(1.0);
  pcm.insert(pcm.end(), quiet.begin(), quiet.end());
  for (size_t at = 0; at < pcm.size(); at += kChunk) {
    Input in;
    in.pcm.assign(pcm.begin() + at, pcm.begin() + std::min(pcm.size(), at + kChunk));
    ASSERT_TRUE(backend.Feed(7, "live-1", live::InputToJson(in)).ok());
  }
  json huge = {{"op", "audio"}, {"pcm16", std::string(kMaxFrameBytes, 'A')}};
  auto refused = backend.Feed(7, "live-1", huge);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "input_too_large");
  Input close;
  close.op = Input::Op::kClose;
  ASSERT_TRUE(backend.Feed(7, "live-1", live::InputToJson(close)).ok());
  ASSERT_TRUE(wait_for(sched::BackendEvent::Kind::kDone));

  std::lock_guard<std::mutex> lock(mu);
  std::vector<Event> events;
  for (const auto& e : got) {
    if (e.kind != sched::BackendEvent::Kind::kSegment) continue;
    EXPECT_EQ(e.job_id, "live-1");
    auto ev = live::EventFromJson(e.payload);
    ASSERT_TRUE(ev.ok()) << e.payload.dump();
    events.push_back(*ev);
  }
  ASSERT_EQ(OfKind(events, Event::Kind::kCompleted).size(), 1u);
  EXPECT_EQ(OfKind(events, Event::Kind::kSpeechStarted).size(), 1u);
  // A job that is not live still needs its input file.
  sched::JobRunSpec plain;
  plain.job_id = "plain";
  EXPECT_EQ(backend.SendJob(7, plain).error().code, "no_local_input");
}

}  // namespace
}  // namespace steno::runner
