// How many jobs one device runs at once: compute, the soft limit beside memory's hard one.
//
// Memory (the ledger, vram_ledger.h) says how many streams a device can hold; it says nothing
// about how many it can compute at full speed. Past the point where the device's throughput stops
// growing, one more stream only stretches every running job's latency, and a job that has
// started cannot be overtaken by a more urgent one. The limiter learns that point from what the
// device delivers, in the spirit of TCP congestion control (slow start, additive increase,
// multiplicative decrease) and Netflix's concurrency-limits:
//
//   observations  OnStart / OnEnd of each job computing on the device, with explicit times (the
//                 scheduler's clock; tests use a virtual one) and the audio seconds it decoded.
//   window        from the first start after the limit last changed, until max(min_window_jobs,
//                 limit) jobs that started inside it have ended. Its throughput, in audio seconds
//                 per wall second, is the mean number of jobs in flight × Σ audio / Σ run time of
//                 those jobs (Little's law: steadier than counting completions), and its
//                 real-time factor is Σ run time / Σ audio (a job's latency per audio second).
//   saturated     a window where on average at least `saturation` × limit jobs ran. Only those
//                 teach anything: with less demand than the limit, the device was not the limit.
//                 Nor does the first window after the limit changed (jobs started under the old
//                 limit still share the device): each change is judged on the window after it.
//   decision      (mode kAuto, saturated windows only)
//     - a window after a raise: the stream(s) added must each add at least min_marginal_gain ×
//       what an average stream delivered at the lower limit. Then grow again (doubling while in
//       slow start, else +1); otherwise throughput stopped growing: back to the lower limit, and
//       slow start ends.
//     - a window at the same limit as the previous one: a real-time factor above
//       latency_tolerance × the previous one means the device got slower (another tenant,
//       throttling): multiplicative decrease to ⌊limit × backoff⌋ (at least one less). Otherwise,
//       after probe_after_windows quiet windows, probe: one stream more (recovery), or, after
//       a probe upward failed, one stream less (slow start may have overshot the knee). Each
//       failed probe doubles the wait before the next (up to max_probe_backoff times); a probe
//       that moves the limit, or a decrease, resets it.
//     - a window after a probe downward: if the stream taken away was worth it (the same
//       marginal-gain test), back up; else stay, and probe one less again.
//     - a probe downward is skipped (counted as a failed probe: the next one goes up) when the
//       level below was measured within stale_after_ms and the stream above it was worth it by
//       that measurement: running below the knee again would only re-learn what is known, at
//       the cost of the throughput of a stream for two windows.
//     - the first window, or one after a decrease: the reference for the next step (the first
//       one probes upward at once).
//   A window whose jobs reported no audio (failed, cancelled, work that is not transcription)
//   cannot be measured; a saturated one counts as growth, so such devices end where memory
//   bounds them, as without a limiter. A reference older than stale_after_ms is forgotten.
// The limit stays within [1, max_limit]. kFixed is the operator's override (the limit is
// `fixed`); kOff is no compute limit (memory alone). Both still measure, for display.
//
// A pure policy: no clock, no threads, no I/O. The scheduler's thread owns one per device and
// asks limit() before it places a job there.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace steno::sched {

struct ConcurrencyConfig {
  enum class Mode { kOff, kFixed, kAuto };
  Mode mode = Mode::kOff;
  int fixed = 0;          // kFixed: the limit (≥ 1)
  int max_limit = 1024;   // kAuto: never above
  int initial_limit = 1;  // kAuto: where learning starts (slow start doubles from here)
  int min_window_jobs = 2;
  double saturation = 0.8;
  double min_marginal_gain = 0.5;
  double latency_tolerance = 1.5;
  double backoff = 0.75;
  int probe_after_windows = 3;
  int max_probe_backoff = 8;  // failed probes double the wait, up to this × probe_after_windows
  int64_t stale_after_ms = 300'000;

  bool operator==(const ConcurrencyConfig&) const = default;
};

// "auto" → kAuto, "0" → kOff, "N" (1 to 1024) → kFixed at N; anything else: nullopt.
std::optional<ConcurrencyConfig> ParseConcurrencyLimit(std::string_view text);
// "auto", "0" or "N", as ParseConcurrencyLimit reads it.
std::string ConcurrencyLimitText(const ConcurrencyConfig& config);

// What a device's limiter shows (snapshots, /v1/gpus, /metrics, the dashboard).
struct ConcurrencyView {
  std::string mode = "off";     // "off" | "fixed" | "auto"
  int limit = 0;                // 0: none (mode off)
  int running = 0;              // jobs holding a stream on the device now (the scheduler's count)
  double throughput = 0;        // audio s per s over the last measured window (0: none yet)
  double real_time_factor = 0;  // run s per audio s over that window (0: none yet)
  double mean_running = 0;      // jobs in flight on average over that window
  int64_t windows = 0;          // windows measured so far
};

class ConcurrencyLimiter {
 public:
  explicit ConcurrencyLimiter(ConcurrencyConfig config);

  // The most jobs the device should run at once now; 0: no limit (kOff).
  int limit() const;
  // A job started computing on the device at `now_ms`.
  void OnStart(int64_t now_ms);
  // A job counted by OnStart ended at `now_ms`, having started at `started_ms`. `audio_s`: the
  // audio seconds it decoded (≤ 0: unknown — it failed, was cancelled, or was not transcription).
  void OnEnd(int64_t now_ms, int64_t started_ms, double audio_s);
  int in_flight() const { return in_flight_; }
  // The view, with `running` left 0 for the scheduler to fill.
  ConcurrencyView View() const;

 private:
  struct Reference {
    int level = 0;
    double throughput = 0;  // < 0: not measurable
    double rtf = 0;
    double mean_in_flight = 0;
    int64_t at_ms = 0;
  };
  void Advance(int64_t now_ms);  // integrates in-flight up to now
  void CloseWindow(int64_t now_ms);
  void Decide(const Reference& window);
  bool Worth(const Reference& lower, const Reference& upper) const;
  void SetLimit(int limit);
  void Grow();
  void ProbeDown(int64_t now_ms);
  // Whether the level below the limit is known, freshly, to deliver less than it is worth.
  bool KnownWorseBelow(int64_t now_ms) const;
  void ProbeFailed();  // the limit probed was no better: wait twice as long before the next

  ConcurrencyConfig config_;
  int limit_ = 1;
  bool slow_start_ = true;
  int held_ = 0;                  // quiet windows at this limit since it was reached
  int hold_ = 3;                  // quiet windows before the next probe
  bool probe_down_next_ = false;  // the last probe upward failed: the next probe goes down
  bool probing_down_ = false;     // the limit was just lowered by one to test that stream
  bool settling_ = false;         // the limit just changed: the next window is not judged
  std::optional<Reference> last_;
  std::map<int, Reference> measured_;  // the last judged window at each level
  std::optional<Reference> shown_;     // the last measured window, for View()
  int64_t windows_ = 0;

  int in_flight_ = 0;
  int64_t last_ms_ = 0;
  // The current window: open from window_start_ms_ (−1: not yet, until the next start).
  int64_t window_start_ms_ = -1;
  double area_ = 0;  // ∫ in-flight dt (ms) since the window opened
  int ended_ = 0;    // jobs that started inside the window and ended
  double audio_s_ = 0;
  double run_s_ = 0;
};

}  // namespace steno::sched
