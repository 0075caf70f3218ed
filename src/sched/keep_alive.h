// How long an idle runner stays loaded. Each job may ask for a keep-alive in seconds (unset: the
// server default, 600); 0 = unload as soon as its last job ends; −1 = keep loaded for good.
// While jobs overlap on a runner the longest request wins (−1 beats any number): a client that
// asked to keep its model warm is not overridden by a concurrent one that did not care.
// Once the runner is idle and a new job starts, that job's request starts a new period.
//
// The scheduler arms one exact timer for ExpiresAt(); there is no polling.
#pragma once

#include <cstdint>
#include <optional>

namespace steno::sched {

inline constexpr int kDefaultKeepAliveS = 600;
inline constexpr int kKeepForever = -1;

// The longer of two requests, −1 (forever) beating any number. Values below −1 count as −1.
int LongerKeepAlive(int a, int b);

// When a runner idle since `idle_since_ms` expires under `keep_alive_s`; nullopt = never.
std::optional<int64_t> ExpiryMs(int64_t idle_since_ms, int keep_alive_s);

class KeepAlive {
 public:
  // A runner loaded at `loaded_ms` with no job yet (a preload) expires per `initial_s`
  // (kKeepForever for --preload, the default for a runner whose first job was cancelled).
  explicit KeepAlive(int64_t loaded_ms, int initial_s = kDefaultKeepAliveS);

  // A job began on the runner; `keep_alive_s` unset means `default_s`.
  void JobStarted(std::optional<int> keep_alive_s, int default_s = kDefaultKeepAliveS);
  // A job ended (completed, failed or cancelled) at `now_ms`.
  void JobEnded(int64_t now_ms);

  // A load request for a model already loaded: an idle runner's period restarts at `now_ms`
  // under `keep_alive_s` (−1 pins it); a busy one keeps the longer of the two for after its jobs.
  void Renew(int64_t now_ms, int keep_alive_s);

  // Keeps the runner loaded for good, whatever its jobs ask (--preload: "resident, always").
  void Pin() {
    pinned_ = true;
    effective_s_ = kKeepForever;
  }
  bool pinned() const { return pinned_; }

  bool busy() const { return active_jobs_ > 0; }
  int effective_s() const { return effective_s_; }
  // nullopt while busy or when kept forever; otherwise the moment to unload.
  std::optional<int64_t> ExpiresAt() const;

 private:
  int active_jobs_ = 0;
  bool pinned_ = false;
  int effective_s_;
  int64_t idle_since_ms_;
};

}  // namespace steno::sched
