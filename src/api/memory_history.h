// The last 15 minutes of each GPU's memory, for the dashboard's chart: a sample of the
// scheduler's ledger every `interval_ms` (reserved, steno's runners, other tenants, available),
// kept in a ring of window_ms / interval_ms points per device. A page that opens gets the whole
// window at once (the events stream's `hello`), then follows live snapshots.
//
// Start() samples on a thread of its own until Stop() (or the destructor). Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "sched/scheduler_types.h"

namespace steno::api {

struct MemoryPoint {
  int64_t t_ms = 0;  // Unix ms
  int64_t total = 0, reserved = 0, steno = 0, other = 0, available = 0;
};

class MemoryHistory {
 public:
  using SampleFn = std::function<std::vector<sched::DeviceLedger>()>;

  explicit MemoryHistory(int64_t interval_ms = 5'000, int64_t window_ms = 900'000);
  ~MemoryHistory();  // Stop()

  // Records one point per GPU (CPU devices are skipped). A device absent from later samples
  // keeps its points until they age out of the window.
  void Record(int64_t t_ms, const std::vector<sched::DeviceLedger>& devices);

  // {"interval_ms", "window_s", "devices": {"cuda:0": [{"t","total","reserved","steno","other",
  // "available"}, ...]}}, oldest point first.
  nlohmann::ordered_json Json() const;

  // Calls `sample` now and then every interval on its own thread. Once.
  void Start(SampleFn sample, std::function<int64_t()> now_ms);
  void Stop();

  static MemoryPoint PointOf(int64_t t_ms, const sched::DeviceLedger& device);

 private:
  const int64_t interval_ms_;
  const int64_t window_ms_;
  mutable std::mutex mu_;
  std::map<std::string, std::deque<MemoryPoint>> points_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace steno::api
