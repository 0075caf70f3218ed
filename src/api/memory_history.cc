#include "api/memory_history.h"

namespace steno::api {

MemoryHistory::MemoryHistory(int64_t interval_ms, int64_t window_ms)
    : interval_ms_(interval_ms > 0 ? interval_ms : 5'000),
      window_ms_(window_ms > 0 ? window_ms : 900'000) {}

MemoryHistory::~MemoryHistory() {
  Stop();
}

MemoryPoint MemoryHistory::PointOf(int64_t t_ms, const sched::DeviceLedger& d) {
  const auto& m = d.memory;
  return {t_ms, m.total, m.reserved, m.allocated, m.external, m.available};
}

void MemoryHistory::Record(int64_t t_ms, const std::vector<sched::DeviceLedger>& devices) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& d : devices) {
    if (d.cpu) continue;
    points_[d.name].push_back(PointOf(t_ms, d));
  }
  for (auto it = points_.begin(); it != points_.end();) {
    auto& ring = it->second;
    while (!ring.empty() && ring.front().t_ms <= t_ms - window_ms_) ring.pop_front();
    it = ring.empty() ? points_.erase(it) : std::next(it);
  }
}

nlohmann::ordered_json MemoryHistory::Json() const {
  nlohmann::ordered_json devices = nlohmann::ordered_json::object();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, ring] : points_) {
      auto& arr = devices[name] = nlohmann::ordered_json::array();
      for (const auto& p : ring) {
        arr.push_back({{"t", p.t_ms},
                       {"total", p.total},
                       {"reserved", p.reserved},
                       {"steno", p.steno},
                       {"other", p.other},
                       {"available", p.available}});
      }
    }
  }
  return {{"interval_ms", interval_ms_},
          {"window_s", window_ms_ / 1000},
          {"devices", std::move(devices)}};
}

void MemoryHistory::Start(SampleFn sample, std::function<int64_t()> now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this, sample = std::move(sample), now_ms = std::move(now_ms)] {
    // Until the scheduler has sampled its devices (the first seconds of a start), look again
    // soon rather than after a whole interval, so a page opened early gets a first point.
    const auto patient_until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      lock.unlock();
      const auto devices = sample();
      Record(now_ms(), devices);
      lock.lock();
      const bool none_yet = points_.empty() && std::chrono::steady_clock::now() < patient_until;
      const auto wait =
          std::chrono::milliseconds(none_yet ? std::min<int64_t>(interval_ms_, 100) : interval_ms_);
      cv_.wait_for(lock, wait, [this] { return stop_; });
    }
  });
}

void MemoryHistory::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace steno::api
