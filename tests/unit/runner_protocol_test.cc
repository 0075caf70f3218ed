// Framing of the runner protocol over a real socketpair.
#include "runner/protocol.h"

#include <sys/mman.h>

#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "audio/shared_pcm.h"

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

TEST_F(ProtocolTest, DescriptorsTravelWithTheirFramesInOrder) {
  // Two frames with a descriptor each and one without, read in one go: each frame that says it
  // carries one takes its own, in order, and the descriptor works on the other side.
  auto pcm_a = audio::SharedPcm::Create({0.25f, -0.5f});
  auto pcm_b = audio::SharedPcm::Create({1.0f, 0.0f, -1.0f});
  ASSERT_TRUE(pcm_a.ok() && pcm_b.ok());
  FrameWriter w(fds_[0]);
  ASSERT_TRUE(w.Write({{"type", "transcribe"}, {"pcm_samples", 2}}, (*pcm_a)->fd()).ok());
  ASSERT_TRUE(w.Write({{"type", "cancel"}}).ok());
  ASSERT_TRUE(w.Write({{"type", "transcribe"}, {"pcm_samples", 3}}, (*pcm_b)->fd()).ok());
  FrameReader r(fds_[1]);
  std::vector<std::vector<float>> got;
  for (int i = 0; i < 3; ++i) {
    auto m = r.Read(5000);
    ASSERT_TRUE(m.ok()) << m.error().message;
    if (!m->contains("pcm_samples")) continue;
    const int fd = r.TakeFd();
    ASSERT_GE(fd, 0);
    EXPECT_NE(fd, (*pcm_a)->fd());  // a copy, the receiver's own
    auto samples = audio::ReadSharedPcm(fd, (*m)["pcm_samples"].get<size_t>());
    close(fd);
    ASSERT_TRUE(samples.ok()) << samples.error().message;
    got.push_back(*samples);
  }
  EXPECT_EQ(r.TakeFd(), -1);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], (std::vector<float>{0.25f, -0.5f}));
  EXPECT_EQ(got[1], (std::vector<float>{1.0f, 0.0f, -1.0f}));
}

TEST(SharedPcm, ReaderRefusesAWrongSizeOrAnUnsealedFile) {
  auto pcm = audio::SharedPcm::Create(std::vector<float>(100, 0.5f));
  ASSERT_TRUE(pcm.ok()) << pcm.error().message;
  EXPECT_EQ(audio::ReadSharedPcm((*pcm)->fd(), 99).error().code, "bad_pcm");
  EXPECT_EQ(audio::ReadSharedPcm((*pcm)->fd(), 101).error().code, "bad_pcm");
  // Sealed: nobody can change the samples the runner reads.
  const float one = 1.0f;
  EXPECT_LT(pwrite((*pcm)->fd(), &one, sizeof one, 0), 0);
  EXPECT_NE(ftruncate((*pcm)->fd(), 0), 0);
  auto read = audio::ReadSharedPcm((*pcm)->fd(), 100);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, std::vector<float>(100, 0.5f));
  // A memory file anyone could still write to is refused.
  const int plain = memfd_create("plain", MFD_CLOEXEC);
  ASSERT_GE(plain, 0);
  ASSERT_EQ(ftruncate(plain, 100 * sizeof(float)), 0);
  EXPECT_EQ(audio::ReadSharedPcm(plain, 100).error().code, "bad_pcm");
  close(plain);
}

}  // namespace
}  // namespace steno::runner
