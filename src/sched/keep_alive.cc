#include "sched/keep_alive.h"

#include <algorithm>

namespace steno::sched {

int LongerKeepAlive(int a, int b) {
  if (a < 0 || b < 0) return kKeepForever;
  return std::max(a, b);
}

std::optional<int64_t> ExpiryMs(int64_t idle_since_ms, int keep_alive_s) {
  if (keep_alive_s < 0) return std::nullopt;
  return idle_since_ms + int64_t{keep_alive_s} * 1000;
}

KeepAlive::KeepAlive(int64_t loaded_ms, int initial_s)
    : effective_s_(initial_s < 0 ? kKeepForever : initial_s), idle_since_ms_(loaded_ms) {}

void KeepAlive::JobStarted(std::optional<int> keep_alive_s, int default_s) {
  int requested = keep_alive_s.value_or(default_s);
  if (requested < 0 || pinned_) requested = kKeepForever;
  // A new busy period starts from this job's wish; overlapping jobs can only lengthen it.
  effective_s_ = active_jobs_ == 0 ? requested : LongerKeepAlive(effective_s_, requested);
  ++active_jobs_;
}

void KeepAlive::JobEnded(int64_t now_ms) {
  if (active_jobs_ > 0) --active_jobs_;
  if (active_jobs_ == 0) idle_since_ms_ = now_ms;
}

void KeepAlive::Renew(int64_t now_ms, int keep_alive_s) {
  if (keep_alive_s < 0) {
    Pin();
    return;
  }
  if (pinned_) return;
  if (busy()) {
    effective_s_ = LongerKeepAlive(effective_s_, keep_alive_s);
  } else {
    effective_s_ = keep_alive_s;
    idle_since_ms_ = now_ms;
  }
}

std::optional<int64_t> KeepAlive::ExpiresAt() const {
  if (busy()) return std::nullopt;
  return ExpiryMs(idle_since_ms_, effective_s_);
}

}  // namespace steno::sched
