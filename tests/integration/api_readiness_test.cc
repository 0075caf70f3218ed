// A server is ready only once it can report its devices: a monitor that starts with it must never
// see a machine without its GPUs (the first device sample used to come a second after /readyz).
#include <gtest/gtest.h>

#include "api_test_server.h"

namespace steno::test {
namespace {

TEST(ApiReadinessTest, EveryDeviceIsReportedFromTheFirstAnswer) {
  // Returns once `steno: listening on ...` was printed; nothing is waited for after it.
  ApiTestServer s({"--device", "auto", "--simulate-gpus", "2x24GiB"});
  auto c = s.Client();
  auto ready = c.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  auto memory = JsonOf(c.Get("/api/memory_status"));
  ASSERT_EQ(memory["devices"].size(), 2u) << memory.dump();
  for (const auto& d : memory["devices"]) {
    EXPECT_GT(d["total"].get<int64_t>(), int64_t{20} << 30) << d;
    EXPECT_GT(d["available"].get<int64_t>(), 0) << d;
  }
  EXPECT_EQ(JsonOf(c.Get("/v1/gpus"))["data"].size(), 2u);
}

}  // namespace
}  // namespace steno::test
