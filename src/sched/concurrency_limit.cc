#include "sched/concurrency_limit.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>

namespace steno::sched {

namespace {
constexpr int kMaxConfigured = 1024;
}  // namespace

std::optional<ConcurrencyConfig> ParseConcurrencyLimit(std::string_view text) {
  ConcurrencyConfig c;
  if (text == "auto") {
    c.mode = ConcurrencyConfig::Mode::kAuto;
    return c;
  }
  int n = -1;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, n);
  if (text.empty() || ec != std::errc() || ptr != end || n < 0 || n > kMaxConfigured) {
    return std::nullopt;
  }
  c.mode = n == 0 ? ConcurrencyConfig::Mode::kOff : ConcurrencyConfig::Mode::kFixed;
  c.fixed = n;
  return c;
}

std::string ConcurrencyLimitText(const ConcurrencyConfig& config) {
  switch (config.mode) {
    case ConcurrencyConfig::Mode::kAuto: return "auto";
    case ConcurrencyConfig::Mode::kFixed: return std::to_string(config.fixed);
    case ConcurrencyConfig::Mode::kOff: break;
  }
  return "0";
}

ConcurrencyLimiter::ConcurrencyLimiter(ConcurrencyConfig config) : config_(config) {
  config_.max_limit = std::max(1, config_.max_limit);
  limit_ = std::clamp(config_.initial_limit, 1, config_.max_limit);
  hold_ = std::max(1, config_.probe_after_windows);
}

int ConcurrencyLimiter::limit() const {
  switch (config_.mode) {
    case ConcurrencyConfig::Mode::kOff: return 0;
    case ConcurrencyConfig::Mode::kFixed: return std::max(1, config_.fixed);
    case ConcurrencyConfig::Mode::kAuto: break;
  }
  return limit_;
}

void ConcurrencyLimiter::Advance(int64_t now_ms) {
  if (window_start_ms_ >= 0 && now_ms > last_ms_) {
    area_ += static_cast<double>(in_flight_) * static_cast<double>(now_ms - last_ms_);
  }
  last_ms_ = std::max(last_ms_, now_ms);
}

void ConcurrencyLimiter::OnStart(int64_t now_ms) {
  Advance(now_ms);
  if (window_start_ms_ < 0) {
    window_start_ms_ = now_ms;
    last_ms_ = now_ms;
    area_ = 0;
    ended_ = 0;
    audio_s_ = run_s_ = 0;
  }
  ++in_flight_;
}

void ConcurrencyLimiter::OnEnd(int64_t now_ms, int64_t started_ms, double audio_s) {
  Advance(now_ms);
  in_flight_ = std::max(0, in_flight_ - 1);
  if (window_start_ms_ < 0 || started_ms < window_start_ms_) return;  // not this window's job
  ++ended_;
  if (audio_s > 0) {
    audio_s_ += audio_s;
    run_s_ += static_cast<double>(std::max<int64_t>(0, now_ms - started_ms)) / 1000.0;
  }
  const int level = config_.mode == ConcurrencyConfig::Mode::kOff ? 1 : limit();
  if (ended_ >= std::max(config_.min_window_jobs, level)) CloseWindow(now_ms);
}

void ConcurrencyLimiter::CloseWindow(int64_t now_ms) {
  const int64_t span = now_ms - window_start_ms_;
  Reference w;
  w.level = limit();
  w.at_ms = now_ms;
  w.mean_in_flight = span > 0 ? area_ / static_cast<double>(span) : in_flight_ + 1.0;
  if (audio_s_ > 0 && run_s_ > 0) {
    w.throughput = w.mean_in_flight * audio_s_ / run_s_;
    w.rtf = run_s_ / audio_s_;
    shown_ = w;
  } else {
    w.throughput = -1;
  }
  window_start_ms_ = -1;  // the next start opens the next window
  ++windows_;
  if (config_.mode != ConcurrencyConfig::Mode::kAuto) return;
  if (std::exchange(settling_, false)) return;  // the first window after a change: a transient
  if (w.mean_in_flight < config_.saturation * limit_) return;  // demand, not the device, limited
  Decide(w);
}

// Whether the streams `upper` runs beyond `lower` each add at least min_marginal_gain × what an
// average stream of `lower` delivers.
bool ConcurrencyLimiter::Worth(const Reference& lower, const Reference& upper) const {
  const double gain = (upper.throughput - lower.throughput) / (upper.level - lower.level);
  return gain >= config_.min_marginal_gain * lower.throughput / lower.level;
}

void ConcurrencyLimiter::Decide(const Reference& w) {
  if (last_ && w.at_ms - last_->at_ms > config_.stale_after_ms) last_.reset();
  const int level = limit_;
  if (w.throughput >= 0) measured_[level] = w;
  if (!last_ || w.throughput < 0 || last_->throughput < 0) {
    // Nothing to compare with (the first window, or work without audio): probe upward.
    last_ = w;
    Grow();
    return;
  }
  if (last_->level < level) {  // after a raise: did the added streams add throughput?
    if (Worth(*last_, w)) {
      last_ = w;
      hold_ = config_.probe_after_windows;
      Grow();
    } else {  // it stopped growing: back to the last good limit (last_ measured it)
      slow_start_ = false;
      probe_down_next_ = true;
      ProbeFailed();
      SetLimit(last_->level);
    }
    return;
  }
  if (last_->level > level) {  // after a decrease
    const bool probed = probing_down_;
    probing_down_ = false;
    if (probed && Worth(w, *last_)) {
      ProbeFailed();
      SetLimit(last_->level);  // the streams were worth it: back up (last_ measured it)
      return;
    }
    if (probed) hold_ = config_.probe_after_windows;
    last_ = w;  // this limit is the reference now
    if (probed) {
      ProbeDown(w.at_ms);  // fewer streams delivered as much: try fewer still
    } else {
      held_ = 1;
    }
    return;
  }
  if (w.rtf > config_.latency_tolerance * last_->rtf) {
    // The same concurrency got slower: the device has less to give. Multiplicative decrease.
    slow_start_ = false;
    last_ = w;
    hold_ = config_.probe_after_windows;
    SetLimit(std::min(level - 1, static_cast<int>(std::floor(level * config_.backoff))));
    return;
  }
  last_ = w;
  if (++held_ < hold_) return;
  if (probe_down_next_ && level > 1) {
    ProbeDown(w.at_ms);
  } else {
    Grow();
  }
}

void ConcurrencyLimiter::ProbeFailed() {
  hold_ = std::min(2 * hold_, config_.probe_after_windows * config_.max_probe_backoff);
}

void ConcurrencyLimiter::Grow() {
  SetLimit(slow_start_ ? limit_ * 2 : limit_ + 1);
  held_ = 0;
}

bool ConcurrencyLimiter::KnownWorseBelow(int64_t now_ms) const {
  auto below = measured_.find(limit_ - 1);
  auto here = measured_.find(limit_);
  if (below == measured_.end() || here == measured_.end()) return false;
  if (now_ms - below->second.at_ms > config_.stale_after_ms) return false;
  return Worth(below->second, here->second);
}

void ConcurrencyLimiter::ProbeDown(int64_t now_ms) {
  probe_down_next_ = false;
  held_ = 1;
  if (limit_ <= 1) return;
  if (KnownWorseBelow(now_ms)) {
    ProbeFailed();
    return;
  }
  probing_down_ = true;
  SetLimit(limit_ - 1);
}

void ConcurrencyLimiter::SetLimit(int limit) {
  const int next = std::clamp(limit, 1, config_.max_limit);
  if (next != limit_) {
    held_ = 0;
    settling_ = true;
  }
  limit_ = next;
}

ConcurrencyView ConcurrencyLimiter::View() const {
  ConcurrencyView v;
  switch (config_.mode) {
    case ConcurrencyConfig::Mode::kOff: v.mode = "off"; break;
    case ConcurrencyConfig::Mode::kFixed: v.mode = "fixed"; break;
    case ConcurrencyConfig::Mode::kAuto: v.mode = "auto"; break;
  }
  v.limit = limit();
  v.windows = windows_;
  if (shown_) {
    v.throughput = shown_->throughput;
    v.real_time_factor = shown_->rtf;
    v.mean_running = shown_->mean_in_flight;
  }
  return v;
}

}  // namespace steno::sched
