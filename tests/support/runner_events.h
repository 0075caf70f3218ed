// Shared by the runner tests: collects a RunnerHandle's events so a test can wait for the one it
// expects, plus the options and messages those tests build.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/transcript_json.h"

#include "runner/runner_handle.h"
#include "support/test_env.h"

namespace steno::runner {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// True while `pid` is a live process (a zombie counts as gone).
inline bool Alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  std::string pid_s, comm, state;
  stat >> pid_s >> comm >> state;
  return state != "Z";
}

// Collects a runner's events and lets the test wait for the one it expects.
class Events {
 public:
  RunnerHandle::EventFn Sink() {
    return [this](const RunnerEvent& ev) {
      std::lock_guard<std::mutex> lock(mu_);
      if (ev.kind == RunnerEvent::Kind::kExited) {
        exited_ = ev;
        exited_at_ = Clock::now();
      } else {
        messages_.push_back(ev.message);
      }
      cv_.notify_all();
    };
  }
  // The first message matching `pred`, waiting up to `timeout`.
  std::optional<json> WaitFor(std::function<bool(const json&)> pred,
                              std::chrono::milliseconds timeout = 60s) {
    std::unique_lock<std::mutex> lock(mu_);
    std::optional<json> found;
    cv_.wait_for(lock, timeout, [&] {
      for (const auto& m : messages_) {
        if (pred(m)) {
          found = m;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  std::optional<json> WaitType(const std::string& type, const std::string& job_id = "",
                               std::chrono::milliseconds timeout = 60s) {
    return WaitFor(
        [&](const json& m) {
          return m["type"] == type && (job_id.empty() || m.value("job_id", "") == job_id);
        },
        timeout);
  }
  // done or error for one job.
  json WaitOutcome(const std::string& job_id) {
    auto m = WaitFor([&](const json& m) {
      return (m["type"] == "done" || m["type"] == "error") && m.value("job_id", "") == job_id;
    });
    return m ? *m : json();
  }
  std::vector<json> All(const std::string& type, const std::string& job_id) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<json> out;
    for (const auto& m : messages_) {
      if (m["type"] == type && m.value("job_id", "") == job_id) out.push_back(m);
    }
    return out;
  }
  std::optional<RunnerEvent> WaitExited(std::chrono::milliseconds timeout = 60s) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return exited_.has_value(); });
    return exited_;
  }
  Clock::time_point exited_at() {
    std::lock_guard<std::mutex> lock(mu_);
    return exited_at_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<json> messages_;
  std::optional<RunnerEvent> exited_;
  Clock::time_point exited_at_;
};

inline RunnerOptions TinyRunner(int streams) {
  RunnerOptions o;
  o.exe = test::StenoBin();
  o.model_path = test::TinyModel();
  o.streams = streams;
  o.heartbeat_ms = 200;
  return o;
}

inline json Greedy() {
  return {{"language", "en"}, {"beam_size", 1}, {"temperature_inc", 0.0}, {"n_threads", 1}};
}

inline json Transcribe(const std::string& id, const std::string& media, double timeout_s = 0) {
  json m = {{"type", "transcribe"},
            {"job_id", id},
            {"audio_path", test::MediaPath(media)},
            {"params", Greedy()}};
  if (timeout_s > 0) m["timeout_s"] = timeout_s;
  return m;
}

using SegmentTimes = std::vector<std::tuple<std::string, double, double>>;

// (text, start, end) of every segment: what "the same output" means when runs are compared.
inline SegmentTimes SegmentsOf(const engine::Transcript& t) {
  SegmentTimes out;
  for (const auto& s : t.segments) out.emplace_back(s.text, s.start, s.end);
  return out;
}

// The same for a transcript in verbose_json form (a `done` message's result, a job's result).
inline SegmentTimes SegmentsOf(const json& verbose_json) {
  auto t = engine::TranscriptFromVerboseJson(verbose_json);
  EXPECT_TRUE(t.ok());
  return t.ok() ? SegmentsOf(*t) : SegmentTimes{};
}

// ... of a `done` message.
inline SegmentTimes Segments(const json& done) {
  return SegmentsOf(done.at("result"));
}

}  // namespace steno::runner
