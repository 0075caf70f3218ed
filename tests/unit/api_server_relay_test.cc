// BytePipe, the bounded byte queue between the API's thread and a relay's thread
// (api/server_relay.h): bytes come out in order, a full pipe blocks its writer until the reader
// takes some, and either side closing ends the other's waits.
#include "api/server_relay.h"

#include <gtest/gtest.h>

#include <future>
#include <string>

namespace steno::api {
namespace {

TEST(ApiServerRelayTest, BytesComeOutInOrderAcrossThreads) {
  BytePipe pipe;
  std::string sent;
  for (int i = 0; i < 5000; ++i) sent += std::to_string(i) + ",";
  sent += std::string(3 * BytePipe::kPipeBytes, 'z');  // more than the pipe holds at once
  auto writer = std::async(std::launch::async, [&] {
    for (size_t i = 0; i < sent.size(); i += 1000) {
      if (!pipe.Write(sent.data() + i, std::min<size_t>(1000, sent.size() - i))) return false;
    }
    pipe.CloseWrite(true);
    return true;
  });
  std::string got;
  char buf[4096];
  for (size_t n; (n = pipe.Read(buf, sizeof buf)) > 0;) got.append(buf, n);
  EXPECT_TRUE(writer.get());
  EXPECT_TRUE(pipe.complete());
  EXPECT_TRUE(got == sent) << got.size() << " of " << sent.size() << " bytes";
}

TEST(ApiServerRelayTest, AReaderThatLeavesReleasesABlockedWriter) {
  BytePipe pipe;
  const std::string full(BytePipe::kPipeBytes, 'x');
  ASSERT_TRUE(pipe.Write(full.data(), full.size()));
  auto blocked = std::async(std::launch::async, [&] { return pipe.Write("more", 4); });
  pipe.CloseRead();
  EXPECT_FALSE(blocked.get()) << "a write after the reader left must fail, not block";
}

TEST(ApiServerRelayTest, AWriterThatFailsIsNotAComplete) {
  BytePipe pipe;
  ASSERT_TRUE(pipe.Write("abc", 3));
  pipe.CloseWrite(false);
  char buf[8];
  EXPECT_EQ(pipe.Read(buf, sizeof buf), 3u);
  EXPECT_EQ(pipe.Read(buf, sizeof buf), 0u);
  EXPECT_FALSE(pipe.complete());
}

TEST(ApiServerRelayTest, HopByHopHeadersAndTheApiKeyAreNotForwarded) {
  for (const char* h : {"Connection", "transfer-encoding", "Host", "Authorization",
                        "Content-Length", "REMOTE_ADDR", "Keep-Alive", "Upgrade"}) {
    EXPECT_TRUE(IsUnforwardedHeader(h)) << h;
  }
  for (const char* h : {"Content-Type", "Accept", "X-Request-Id", "OpenAI-Organization"}) {
    EXPECT_FALSE(IsUnforwardedHeader(h)) << h;
  }
}

}  // namespace
}  // namespace steno::api
