// Framing of the runner protocol over a real socketpair.
#include "runner/protocol.h"

#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <thread>

#include <gtest/gtest.h>

namespace steno::runner {
namespace {

using nlohmann::json;

class ProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0); }
  void TearDown() override {
    if (fds_[0] >= 0) close(fds_[0]);
    if (fds_[1] >= 0) close(fds_[1]);
  }
  void WriteRaw(const std::string& bytes) {
    ASSERT_EQ(write(fds_[0], bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  int fds_[2] = {-1, -1};
};

TEST_F(ProtocolTest, FramesRoundTripInOrder) {
  FrameWriter w(fds_[0]);
  FrameReader r(fds_[1]);
  ASSERT_TRUE(w.Write({{"type", "load"}, {"model", "/m.bin"}}).ok());
  ASSERT_TRUE(w.Write({{"type", "exit"}}).ok());
  auto a = r.Read(1000);
  auto b = r.Read(1000);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)["type"], "load");
  EXPECT_EQ((*a)["model"], "/m.bin");
  EXPECT_EQ((*b)["type"], "exit");
}

TEST_F(ProtocolTest, AFrameArrivingInPiecesIsReassembled) {
  const std::string frame = EncodeFrame({{"type", "progress"}, {"percent", 42}});
  FrameReader r(fds_[1]);
  WriteRaw(frame.substr(0, 3));
  auto none = r.Read(50);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "timeout");
  WriteRaw(frame.substr(3));
  auto m = r.Read(1000);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)["percent"], 42);
}

TEST_F(ProtocolTest, OversizedFrameIsAViolationNotAnAllocation) {
  FrameReader r(fds_[1], /*max_frame_bytes=*/1024);
  WriteRaw(std::string("\x7f\xff\xff\xff", 4));  // claims 2 GiB
  auto m = r.Read(1000);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, "frame_too_large");
}

TEST_F(ProtocolTest, MalformedPayloadsAreViolations) {
  for (const std::string payload : {"not json", "[1,2]", "{\"no_type\":1}", "{\"type\":7}"}) {
    SCOPED_TRACE(payload);
    FrameReader r(fds_[1]);
    const uint32_t n = static_cast<uint32_t>(payload.size());
    std::string frame = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                         static_cast<char>(n >> 8), static_cast<char>(n)};
    WriteRaw(frame + payload);
    auto m = r.Read(1000);
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.error().code, "bad_frame");
  }
}

TEST_F(ProtocolTest, ClosedPeerIsReportedAndWritesFailWithoutSigpipe) {
  FrameReader r(fds_[1]);
  close(fds_[0]);
  fds_[0] = -1;
  auto m = r.Read(1000);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, "peer_closed");

  FrameWriter w(fds_[1]);
  auto st = w.Write({{"type", "heartbeat"}});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "peer_closed");
}

TEST_F(ProtocolTest, InvalidUtf8IsReplacedNotFatal) {
  FrameWriter w(fds_[0]);
  FrameReader r(fds_[1]);
  ASSERT_TRUE(w.Write({{"type", "segment"}, {"text", std::string("ok \xff\xfe end")}}).ok());
  auto m = r.Read(1000);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)["text"], "ok \xEF\xBF\xBD\xEF\xBF\xBD end");
}

TEST_F(ProtocolTest, ConcurrentWritersNeverInterleaveFrames) {
  FrameWriter w(fds_[0]);
  constexpr int kThreads = 4, kEach = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        ASSERT_TRUE(
            w.Write({{"type", "segment"}, {"t", t}, {"i", i}, {"pad", std::string(3000, 'a' + t)}})
                .ok());
      }
    });
  }
  FrameReader r(fds_[1]);
  std::set<std::pair<int, int>> seen;
  for (int n = 0; n < kThreads * kEach; ++n) {
    auto m = r.Read(5000);
    ASSERT_TRUE(m.ok()) << m.error().message;
    const int t = (*m)["t"];
    EXPECT_EQ((*m)["pad"], std::string(3000, 'a' + t));
    seen.insert({t, (*m)["i"].get<int>()});
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(seen.size(), static_cast<size_t>(kThreads * kEach));
}

}  // namespace
}  // namespace steno::runner
