// The scheduler's time source and its exact timers, injected so simulations run on virtual time.
//
// A timer runs its callback once, at (never before) its deadline; callbacks must be quick and
// thread-safe — the scheduler's only post an event to its own queue. Timers due at the same
// moment fire in the order they were scheduled. There is no polling: the real clock sleeps until
// the earliest deadline; the virtual clock fires timers only when a test advances it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>

namespace steno::sched {

class Clock {
 public:
  using TimerId = uint64_t;
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;
  // Runs `fn` at `when_ms` (immediately-due timers fire as soon as the clock gets to them).
  virtual TimerId Schedule(int64_t when_ms, std::function<void()> fn) = 0;
  // Drops a timer that has not fired yet; a no-op for one that has (or an unknown id).
  virtual void CancelTimer(TimerId id) = 0;
};

// The timers both clocks keep: ordered by (deadline, scheduling order). Not thread-safe itself.
class TimerSet {
 public:
  Clock::TimerId Add(int64_t when_ms, std::function<void()> fn);
  void Remove(Clock::TimerId id);
  std::optional<int64_t> NextDeadline() const;
  // Removes and returns the earliest timer's callback if it is due at `now_ms`.
  std::optional<std::function<void()>> PopDue(int64_t now_ms);

 private:
  using Key = std::pair<int64_t, Clock::TimerId>;
  Clock::TimerId next_id_ = 1;
  std::map<Key, std::function<void()>> timers_;
  std::unordered_map<Clock::TimerId, Key> by_id_;
};

// Wall time (steady clock, in ms since the clock was created plus `epoch_ms`), with one thread
// that sleeps until the next deadline.
class RealClock final : public Clock {
 public:
  explicit RealClock(int64_t epoch_ms = 0);
  ~RealClock() override;
  int64_t NowMs() const override;
  TimerId Schedule(int64_t when_ms, std::function<void()> fn) override;
  void CancelTimer(TimerId id) override;

 private:
  void Loop();
  const int64_t epoch_ms_;
  const std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  std::condition_variable cv_;
  TimerSet timers_;
  bool stop_ = false;
  std::thread thread_;
};

// Time that moves only when told. FireNext() moves to the earliest deadline and runs that one
// timer (on the caller's thread), so a driver can let the scheduler settle between timers and
// every run of a simulation is the same.
class VirtualClock final : public Clock {
 public:
  explicit VirtualClock(int64_t start_ms = 0) : now_ms_(start_ms) {}
  int64_t NowMs() const override;
  TimerId Schedule(int64_t when_ms, std::function<void()> fn) override;
  void CancelTimer(TimerId id) override;

  std::optional<int64_t> NextDeadline() const;
  // Fires the earliest timer if its deadline is ≤ `limit_ms`, first moving time to that deadline
  // (time never goes back). False when no timer is due by then.
  bool FireNext(int64_t limit_ms);
  // Moves time forward to `ms` without firing anything (callers fire what is due first).
  void SetNow(int64_t ms);

 private:
  mutable std::mutex mu_;
  int64_t now_ms_;
  TimerSet timers_;
};

}  // namespace steno::sched
