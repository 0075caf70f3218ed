// Ctrl+C on `steno transcribe` (issue 8): the first SIGINT cancels the jobs, writes nothing for
// unfinished files, stops the runners and exits 130; a second SIGINT exits 130 at once. Either
// way no runner process is left.
#include <signal.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "support/child_process.h"
#include "support/process.h"
#include "support/test_env.h"

namespace steno {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct TranscribeRun {
  test::ScopedTempDir dir{"steno-ctrl-c"};
  std::string out_dir = dir.path + "/out";
  std::unique_ptr<test::ChildProcess> steno;
  std::vector<pid_t> runners;

  TranscribeRun() {
    fs::create_directories(out_dir);
    // Ten minutes of speech per input: still running when Ctrl+C comes, even on a fast machine.
    const std::string a = dir.path + "/a.wav", b = dir.path + "/b.wav";
    auto made = test::RunProcess({"ffmpeg", "-nostdin", "-loglevel", "error", "-stream_loop", "9",
                                  "-i", test::MediaPath("speech_60s.wav"), "-c", "copy", a});
    EXPECT_EQ(made.exit_code, 0) << made.err;
    fs::copy_file(a, b);
    steno = std::make_unique<test::ChildProcess>(
        std::vector<std::string>{test::StenoBin(), "transcribe", a, b, "--model", test::TinyModel(),
                                 "--output-dir", out_dir, "--threads", "1", "--device", "cpu"},
        dir.path + "/stdout", dir.path + "/stderr",
        std::vector<std::pair<std::string, std::string>>{{"STENO_DATA_DIR", dir.path + "/data"}});
  }

  // Waits until a runner is up and has had time to start decoding.
  void WaitForRunner() {
    ASSERT_TRUE(test::WaitUntil([&] { return !steno->Children().empty(); }, 60s))
        << test::ReadFileText(dir.path + "/stderr");
    runners = steno->Children();
    std::this_thread::sleep_for(500ms);
  }

  size_t Outputs() const {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(out_dir)) n += e.is_regular_file();
    return n;
  }
};

TEST(ShutdownCliTest, CtrlCStopsTheRunAndWritesNothingUnfinished) {
  TranscribeRun run;
  run.WaitForRunner();
  ASSERT_FALSE(run.runners.empty());
  ASSERT_TRUE(run.steno->Signal(SIGINT));
  auto code = run.steno->Wait(60s);
  ASSERT_TRUE(code.has_value()) << "still running 60 s after Ctrl+C";
  EXPECT_EQ(*code, 130);
  EXPECT_TRUE(test::AllExited(run.runners, 30s)) << "a runner outlived steno";
  EXPECT_EQ(run.Outputs(), 0u) << "an unfinished file was written";
  EXPECT_NE(test::ReadFileText(run.dir.path + "/stderr").find("interrupted"), std::string::npos);
}

TEST(ShutdownCliTest, SecondCtrlCExitsAtOnce) {
  TranscribeRun run;
  run.WaitForRunner();
  ASSERT_TRUE(run.steno->Signal(SIGINT));
  // Apart, as a person presses them (two signals sent back to back may reach the process as
  // one): the second once the first was handled.
  const std::string err = run.dir.path + "/stderr";
  ASSERT_TRUE(test::WaitUntil(
      [&] { return test::ReadFileText(err).find("interrupted; stopping") != std::string::npos; },
      60s))
      << test::ReadFileText(err);
  ASSERT_TRUE(run.steno->Signal(SIGINT));
  // The bound only catches a hang; what shows the exit did not wait for the runners is the
  // second signal's own message.
  auto code = run.steno->Wait(60s);
  ASSERT_TRUE(code.has_value()) << "still running 60 s after two Ctrl+C";
  EXPECT_EQ(*code, 130);
  EXPECT_NE(test::ReadFileText(err).find("second stop signal: exiting now"), std::string::npos)
      << test::ReadFileText(err);
  EXPECT_TRUE(test::AllExited(run.runners, 30s)) << "a runner outlived steno";
  EXPECT_EQ(run.Outputs(), 0u);
}

}  // namespace
}  // namespace steno
