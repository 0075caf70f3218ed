#include "sched/clock.h"

#include <algorithm>

namespace steno::sched {

Clock::TimerId TimerSet::Add(int64_t when_ms, std::function<void()> fn) {
  const Clock::TimerId id = next_id_++;
  const Key key{when_ms, id};
  timers_.emplace(key, std::move(fn));
  by_id_.emplace(id, key);
  return id;
}

void TimerSet::Remove(Clock::TimerId id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  timers_.erase(it->second);
  by_id_.erase(it);
}

std::optional<int64_t> TimerSet::NextDeadline() const {
  if (timers_.empty()) return std::nullopt;
  return timers_.begin()->first.first;
}

std::optional<std::function<void()>> TimerSet::PopDue(int64_t now_ms) {
  if (timers_.empty() || timers_.begin()->first.first > now_ms) return std::nullopt;
  auto node = timers_.extract(timers_.begin());
  by_id_.erase(node.key().second);
  return std::move(node.mapped());
}

RealClock::RealClock(int64_t epoch_ms)
    : epoch_ms_(epoch_ms), start_(std::chrono::steady_clock::now()), thread_([this] { Loop(); }) {}

RealClock::~RealClock() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

int64_t RealClock::NowMs() const {
  return epoch_ms_ + std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - start_)
                         .count();
}

Clock::TimerId RealClock::Schedule(int64_t when_ms, std::function<void()> fn) {
  Clock::TimerId id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = timers_.Add(when_ms, std::move(fn));
  }
  cv_.notify_all();
  return id;
}

void RealClock::CancelTimer(TimerId id) {
  std::lock_guard<std::mutex> lock(mu_);
  timers_.Remove(id);
}

void RealClock::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (auto fn = timers_.PopDue(NowMs())) {
      lock.unlock();
      (*fn)();  // outside the lock: a callback may schedule another timer
      lock.lock();
      continue;
    }
    if (auto next = timers_.NextDeadline()) {
      cv_.wait_until(lock, start_ + std::chrono::milliseconds(*next - epoch_ms_));
    } else {
      cv_.wait(lock);
    }
  }
}

int64_t VirtualClock::NowMs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return now_ms_;
}

Clock::TimerId VirtualClock::Schedule(int64_t when_ms, std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  return timers_.Add(when_ms, std::move(fn));
}

void VirtualClock::CancelTimer(TimerId id) {
  std::lock_guard<std::mutex> lock(mu_);
  timers_.Remove(id);
}

std::optional<int64_t> VirtualClock::NextDeadline() const {
  std::lock_guard<std::mutex> lock(mu_);
  return timers_.NextDeadline();
}

bool VirtualClock::FireNext(int64_t limit_ms) {
  std::function<void()> fn;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto next = timers_.NextDeadline();
    if (!next || *next > limit_ms) return false;
    now_ms_ = std::max(now_ms_, *next);
    fn = std::move(*timers_.PopDue(now_ms_));
  }
  fn();
  return true;
}

void VirtualClock::SetNow(int64_t ms) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ms_ = std::max(now_ms_, ms);
}

}  // namespace steno::sched
