// Runner processes for real: the steno binary as a child, the generated model, real audio.
#include "runner/runner_handle.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <map>

#include <gtest/gtest.h>

#include "support/runner_events.h"
#include "support/test_env.h"

namespace steno::runner {
namespace {

TEST(RunnerTest, ReportsMeasuredFootprintThenUnloadsCleanly) {
  Events ev;
  auto h = RunnerHandle::Start(TinyRunner(2), ev.Sink());
  ASSERT_TRUE(h.ok()) << h.error().message;
  auto ready = ev.WaitType("ready");
  ASSERT_TRUE(ready.has_value());
  EXPECT_GT((*ready)["weights_bytes"].get<int64_t>(), 1'000'000);
  EXPECT_GT((*ready)["stream_bytes"].get<int64_t>(), 0);
  EXPECT_EQ((*ready)["streams"], 2);
  EXPECT_GT((*ready)["rss_bytes"].get<int64_t>(), 0);
  EXPECT_EQ((*ready)["pid"].get<int>(), (*h)->pid());

  // Heartbeats arrive on schedule once loaded.
  ASSERT_TRUE(ev.WaitType("heartbeat", "", 60s).has_value());

  const pid_t pid = (*h)->pid();
  (*h)->Stop(5s);
  auto exited = ev.WaitExited();
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code, 0);
  EXPECT_EQ(exited->signal, 0);
  EXPECT_TRUE(exited->reason.empty()) << exited->reason;
  EXPECT_FALSE(Alive(pid));
  EXPECT_EQ(kill(pid, 0), -1) << "reaped: not even a zombie is left";
}

TEST(RunnerTest, ConcurrentJobsGiveTheSameSegmentsAsSequentialOnes) {
  Events ev;
  auto h = RunnerHandle::Start(TinyRunner(3), ev.Sink());
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(ev.WaitType("ready").has_value());

  // Sequential reference, one job at a time.
  std::map<std::string, json> reference;
  for (const char* media : {"speech.wav", "speech.flac", "speech_44k_stereo.wav"}) {
    const std::string id = std::string("seq-") + media;
    ASSERT_TRUE((*h)->Send(Transcribe(id, media)).ok());
    reference[media] = ev.WaitOutcome(id);
    ASSERT_EQ(reference[media]["type"], "done") << reference[media].dump();
  }
  // The same three at once, one per stream.
  for (const auto& [media, _] : reference)
    ASSERT_TRUE((*h)->Send(Transcribe("par-" + media, media)).ok());
  for (const auto& [media, want] : reference) {
    json got = ev.WaitOutcome("par-" + media);
    ASSERT_EQ(got["type"], "done") << got.dump();
    EXPECT_EQ(Segments(got), Segments(want)) << media;
    // Each segment was also streamed as it was decoded.
    EXPECT_EQ(ev.All("segment", "par-" + media).size(), Segments(got).size());
  }
}

TEST(RunnerTest, PrefetchedInputServesItsOwnJobWithTheSameSegments) {
  Events ev;
  RunnerOptions o = TinyRunner(1);
  o.prefetch = {{test::MediaPath("speech.mp3"), ""}};  // decoded while the model loads
  auto h = RunnerHandle::Start(o, ev.Sink());
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(ev.WaitType("ready").has_value());
  // Another input first: decoded on its own, never given the prefetched audio.
  ASSERT_TRUE((*h)->Send(Transcribe("other", "speech_short.wav")).ok());
  json other = ev.WaitOutcome("other");
  ASSERT_EQ(other["type"], "done") << other.dump();
  ASSERT_TRUE((*h)->Send(Transcribe("prefetched", "speech.mp3")).ok());
  json prefetched = ev.WaitOutcome("prefetched");
  ASSERT_EQ(prefetched["type"], "done") << prefetched.dump();
  // The same input again: the prefetched decode was taken once; this one decodes afresh.
  ASSERT_TRUE((*h)->Send(Transcribe("again", "speech.mp3")).ok());
  json again = ev.WaitOutcome("again");
  ASSERT_EQ(again["type"], "done") << again.dump();
  EXPECT_EQ(Segments(prefetched), Segments(again));
  EXPECT_NE(Segments(other), Segments(prefetched));
  EXPECT_EQ(prefetched["result"]["duration"], again["result"]["duration"]);
}

TEST(RunnerTest, CancelTimeoutAndBadInputEndOneJobAndTheRunnerServesOn) {
  Events ev;
  auto h = RunnerHandle::Start(TinyRunner(1), ev.Sink());
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(ev.WaitType("ready").has_value());

  ASSERT_TRUE((*h)->Send(Transcribe("c1", "speech_60s.wav")).ok());
  ASSERT_TRUE((*h)->Send({{"type", "cancel"}, {"job_id", "c1"}}).ok());
  json cancelled = ev.WaitOutcome("c1");
  EXPECT_EQ(cancelled["type"], "error");
  EXPECT_EQ(cancelled["kind"], "cancelled");

  ASSERT_TRUE((*h)->Send(Transcribe("t1", "speech_60s.wav", 0.05)).ok());
  json timed_out = ev.WaitOutcome("t1");
  EXPECT_EQ(timed_out["type"], "error");
  EXPECT_EQ(timed_out["kind"], "timeout");

  ASSERT_TRUE((*h)->Send(Transcribe("b1", "not_media.txt")).ok());
  json bad = ev.WaitOutcome("b1");
  EXPECT_EQ(bad["type"], "error");
  EXPECT_EQ(bad["kind"], "bad_input");
  EXPECT_NE(bad["message"].get<std::string>().find("not_media.txt"), std::string::npos);

  ASSERT_TRUE((*h)->Send(Transcribe("ok1", "speech.wav")).ok());
  EXPECT_EQ(ev.WaitOutcome("ok1")["type"], "done");
}

TEST(RunnerTest, StreamsCanBeAddedAndDropped) {
  Events ev;
  auto h = RunnerHandle::Start(TinyRunner(1), ev.Sink());
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(ev.WaitType("ready").has_value());
  ASSERT_TRUE((*h)->Send({{"type", "set_streams"}, {"streams", 3}}).ok());
  auto grown =
      ev.WaitFor([](const json& m) { return m["type"] == "streams" && m["streams"] == 3; });
  ASSERT_TRUE(grown.has_value());
  ASSERT_TRUE((*h)->Send({{"type", "set_streams"}, {"streams", 1}}).ok());
  auto shrunk =
      ev.WaitFor([](const json& m) { return m["type"] == "streams" && m["streams"] == 1; });
  EXPECT_TRUE(shrunk.has_value());
}

// A runner is scheduled at nice 5, below its supervisor (so a server's API stays responsive),
// unless asked not to be (a one-shot `steno transcribe`: at the command's own priority).
TEST(RunnerTest, RunsBelowTheSupervisorUnlessAskedNotTo) {
  const int ours = getpriority(PRIO_PROCESS, 0);
  for (bool lower : {true, false}) {
    Events ev;
    RunnerOptions o = TinyRunner(1);
    o.lower_priority = lower;
    auto h = RunnerHandle::Start(o, ev.Sink());
    ASSERT_TRUE(h.ok());
    ASSERT_TRUE(ev.WaitType("ready").has_value());
    errno = 0;
    const int nice = getpriority(PRIO_PROCESS, (*h)->pid());
    ASSERT_EQ(errno, 0);
    // Lowering it below 5 again (when started above) is allowed to fail without privileges.
    if (lower) {
      EXPECT_GE(nice, 5);
    } else {
      EXPECT_EQ(nice, ours);
    }
    (*h)->Stop(5s);
  }
}

// The death is seen from the process itself (its socket closing, its exit), not from missing
// heartbeats: the watchdog is set far beyond the wait, so only the exit can report it.
TEST(RunnerTest, KilledRunnerMidJobIsReportedByItsExitAndReaped) {
  Events ev;
  auto o = TinyRunner(1);
  o.heartbeat_timeout_ms = 600'000;
  auto h = RunnerHandle::Start(o, ev.Sink());
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(ev.WaitType("ready").has_value());
  ASSERT_TRUE((*h)->Send(Transcribe("k1", "speech_60s.wav")).ok());
  ASSERT_TRUE(ev.WaitType("progress", "k1", 30s).has_value());

  const pid_t pid = (*h)->pid();
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  auto exited = ev.WaitExited(120s);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->signal, SIGKILL);
  EXPECT_EQ(exited->reason.find("no message"), std::string::npos) << exited->reason;
  EXPECT_FALSE(Alive(pid));
  EXPECT_EQ(kill(pid, 0), -1) << "no zombie left";
  EXPECT_TRUE(ev.All("done", "k1").empty());
  // The job in flight ends with an error of kind crash, before the exit event.
  auto lost = ev.All("error", "k1");
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0]["kind"], "crash");
  EXPECT_NE(lost[0]["message"].get<std::string>().find("signal 9"), std::string::npos);
}

TEST(RunnerTest, ModelThatCannotLoadIsAnErrorAndTheRunnerExits) {
  Events ev;
  auto o = TinyRunner(1);
  o.model_path = test::MediaPath("not_media.txt");
  auto h = RunnerHandle::Start(o, ev.Sink());
  ASSERT_TRUE(h.ok());
  auto err = ev.WaitType("error");
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ((*err)["kind"], "bad_input");
  auto exited = ev.WaitExited();
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code, 3);
}

TEST(RunnerTest, SilentRunnerIsKilledByTheHeartbeatWatchdog) {
  Events ev;
  auto o = TinyRunner(1);
  o.heartbeat_ms = 5000;         // the runner beats rarely...
  o.heartbeat_timeout_ms = 300;  // ...and the supervisor expects one often
  auto h = RunnerHandle::Start(o, ev.Sink());
  ASSERT_TRUE(h.ok());
  auto exited = ev.WaitExited(60s);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->signal, SIGKILL);
  EXPECT_NE(exited->reason.find("no message"), std::string::npos) << exited->reason;
}

// Starts `steno runner --fd 3` by hand so the test can write raw bytes to it.
TEST(RunnerTest, MalformedFrameEndsTheConnectionWithoutACrash) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  const std::string bin = test::StenoBin();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(sv[1], 3);
    execl(bin.c_str(), "steno", "runner", "--fd", "3", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(sv[1]);
  const char garbage[] = "\x00\x00\x00\x05hello";
  ASSERT_EQ(write(sv[0], garbage, 9), 9);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  close(sv[0]);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

// kill -9 of the supervisor: PR_SET_PDEATHSIG takes the runner down, loaded or still loading.
void ExpectRunnerDiesWithSupervisor(bool wait_until_ready) {
  // Orphaned runners are re-parented to this test process, so it can see them exit.
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const std::string helper = test::HelperBin("runner_supervisor");
  const std::string bin = test::StenoBin();
  const std::string model = test::TinyModel();
  pid_t sup = fork();
  ASSERT_GE(sup, 0);
  if (sup == 0) {
    dup2(out[1], 1);
    execl(helper.c_str(), "runner_supervisor", bin.c_str(), model.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  FILE* lines = fdopen(out[0], "r");
  char buf[128];
  pid_t runner = -1;
  while (fgets(buf, sizeof buf, lines)) {
    int p = 0;
    if (sscanf(buf, "runner %d", &p) == 1) runner = p;
    if (runner > 0 && (!wait_until_ready || std::string(buf) == "ready\n")) break;
  }
  ASSERT_GT(runner, 0);
  ASSERT_TRUE(Alive(runner));
  ASSERT_EQ(kill(sup, SIGKILL), 0);
  ASSERT_EQ(waitpid(sup, nullptr, 0), sup);

  const auto deadline = Clock::now() + 60s;
  bool reaped = false;
  while (Clock::now() < deadline && !reaped) {
    reaped = waitpid(runner, nullptr, WNOHANG) == runner;
    if (!reaped) usleep(10000);
  }
  fclose(lines);
  EXPECT_TRUE(reaped) << "runner " << runner << " survived its supervisor";
  EXPECT_FALSE(Alive(runner));
}

TEST(RunnerTest, NoRunnerSurvivesItsSupervisor) {
  ExpectRunnerDiesWithSupervisor(true);
}

TEST(RunnerTest, NoRunnerSurvivesItsSupervisorEvenMidLoad) {
  ExpectRunnerDiesWithSupervisor(false);
}

}  // namespace
}  // namespace steno::runner
