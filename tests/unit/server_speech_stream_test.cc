// SpeechStreams (runners/server/speech_stream.h): a watch is found by its job id while someone
// holds it and not after; two watchers of a job share one stream; a run's writes wake a waiting
// watcher, a new run starts from zero bytes, and the file stays readable through the watcher's
// own descriptor after the writer closed and removed it.
#include "runners/server/speech_stream.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <future>

#include "support/test_env.h"

namespace steno::runners {
namespace {

using namespace std::chrono_literals;

TEST(SpeechStreams, AWatchIsFoundWhileHeldAndSharedByTwoWatchers) {
  auto& streams = SpeechStreams::Process();
  EXPECT_EQ(streams.Find("job-a"), nullptr) << "nobody watches it";
  auto first = streams.Watch("job-a");
  auto second = streams.Watch("job-a");
  EXPECT_EQ(first, second) << "one stream per job";
  EXPECT_EQ(streams.Find("job-a"), first);
  EXPECT_EQ(streams.Find("job-b"), nullptr);
  first.reset();
  EXPECT_NE(streams.Find("job-a"), nullptr) << "the second watcher still holds it";
  second.reset();
  EXPECT_EQ(streams.Find("job-a"), nullptr) << "the last watcher is gone";
  EXPECT_NE(streams.Watch("job-a"), nullptr) << "and it may be watched again";
}

TEST(SpeechStreams, RunsReportTheirBytesAndTheFileOutlivesTheWriter) {
  test::ScopedTempDir dir;
  auto stream = SpeechStreams::Process().Watch("job-c");
  const SpeechStream::View none = stream->Current();
  EXPECT_EQ(none.run, 0u);
  EXPECT_EQ(stream->Wait(none.version, 10ms).version, none.version) << "nothing happened";

  const std::string path = dir.path + "/audio.part";
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  auto waited = std::async(std::launch::async, [&] {
    SpeechStream::View v = stream->Current();
    while (v.bytes < 5) v = stream->Wait(v.version, 60s);
    return v;
  });
  stream->Begin(fd, "audio/wav");
  ASSERT_EQ(write(fd, "hello", 5), 5);
  stream->Wrote(5);
  const SpeechStream::View v = waited.get();
  EXPECT_EQ(v.run, 1u);
  EXPECT_EQ(v.content_type, "audio/wav");
  EXPECT_FALSE(v.ended);
  close(fd);
  unlink(path.c_str());
  char buf[8] = {};
  ASSERT_EQ(pread(v.file->get(), buf, sizeof buf, 0), 5) << "the watcher's own descriptor";
  EXPECT_EQ(std::string(buf, 5), "hello");

  stream->End(false);
  EXPECT_TRUE(stream->Current().ended);
  EXPECT_FALSE(stream->Current().complete);
  stream->Wrote(9);  // after its end: ignored
  EXPECT_EQ(stream->Current().bytes, 5);
  const int again = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(again, 0);
  stream->Begin(again, "audio/wav");  // a retry
  close(again);
  const SpeechStream::View retry = stream->Current();
  EXPECT_EQ(retry.run, 2u);
  EXPECT_EQ(retry.bytes, 0);
  EXPECT_FALSE(retry.ended);
  stream->End(true);
  stream->JobEnded();
  EXPECT_TRUE(stream->Current().complete);
  EXPECT_TRUE(stream->Current().job_ended);
}

}  // namespace
}  // namespace steno::runners
