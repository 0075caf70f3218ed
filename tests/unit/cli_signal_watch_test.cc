// SignalWatch::Wake: a thread blocked in Wait() returns at once, and no stop signal is counted
// (after a wake, the first Ctrl+C is still the first: reported, not the "second, exit now" one).
#include "cli/signal_watch.h"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <future>
#include <thread>

namespace steno::cli {
namespace {

using namespace std::chrono_literals;

TEST(SignalWatch, WakeEndsAWaitWithoutCountingAStop) {
  SignalWatch& watch = SignalWatch::Install();
  std::promise<SignalKind> woke;
  auto got = woke.get_future();
  std::thread waiter([&] { woke.set_value(watch.Wait(std::chrono::hours(1))); });
  watch.Wake();
  ASSERT_EQ(got.wait_for(60s), std::future_status::ready) << "Wait() did not return on Wake()";
  EXPECT_EQ(got.get(), SignalKind::kNone);
  waiter.join();

  // Had the wake counted as a stop, this SIGINT would be the second and end the process (130).
  ASSERT_EQ(std::raise(SIGINT), 0);
  EXPECT_EQ(watch.Wait(60s), SignalKind::kStop);
}

}  // namespace
}  // namespace steno::cli
