// ClientUploads: the per-client bound on requests sending their body (api/client_uploads.h).
#include "api/client_uploads.h"

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace steno::api {
namespace {

TEST(ClientUploadsTest, RefusesPastTheBoundPerClient) {
  ClientUploads uploads(2);
  auto a1 = uploads.TryAcquire("10.0.0.1");
  auto a2 = uploads.TryAcquire("10.0.0.1");
  ASSERT_TRUE(a1 && a2);
  EXPECT_FALSE(uploads.TryAcquire("10.0.0.1")) << "a third one from the same client";
  auto b = uploads.TryAcquire("10.0.0.2");
  EXPECT_TRUE(b) << "another client is not affected";
  EXPECT_EQ(uploads.Held("10.0.0.1"), 2);
  a1.reset();  // the body was read
  EXPECT_EQ(uploads.Held("10.0.0.1"), 1);
  EXPECT_TRUE(uploads.TryAcquire("10.0.0.1")) << "a slot handed back can be taken again";
  EXPECT_EQ(uploads.Held("10.0.0.1"), 1) << "the temporary slot was handed back";
}

TEST(ClientUploadsTest, MovedSlotsAreHandedBackOnce) {
  ClientUploads uploads(1);
  std::optional<ClientUploads::Slot> held;
  held = uploads.TryAcquire("c");
  ASSERT_TRUE(held);
  ClientUploads::Slot moved = std::move(*held);
  held.reset();
  EXPECT_EQ(uploads.Held("c"), 1);
  EXPECT_FALSE(uploads.TryAcquire("c"));
  moved = std::move(*uploads.TryAcquire("d"));  // gives back c's slot, takes d's
  EXPECT_EQ(uploads.Held("c"), 0);
  EXPECT_EQ(uploads.Held("d"), 1);
}

TEST(ClientUploadsTest, NoBoundBelowOne) {
  ClientUploads uploads(0);
  std::vector<ClientUploads::Slot> slots;
  for (int i = 0; i < 1000; ++i) slots.push_back(std::move(*uploads.TryAcquire("c")));
  EXPECT_EQ(uploads.Held("c"), 1000);
  slots.clear();
  EXPECT_EQ(uploads.Held("c"), 0);
}

TEST(ClientUploadsTest, ConcurrentClientsNeverExceedTheBound) {
  ClientUploads uploads(4);
  std::atomic<int> over{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        auto slot = uploads.TryAcquire("c");
        if (slot && uploads.Held("c") > 4) ++over;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(over.load(), 0);
  EXPECT_EQ(uploads.Held("c"), 0);
}

}  // namespace
}  // namespace steno::api
