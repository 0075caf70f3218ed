#include "alerts/alert_engine.h"

#include <algorithm>

#include <fmt/format.h>

namespace steno::alerts {
namespace {

std::string Mib(double bytes) {
  return fmt::format("{:.1f} MiB", bytes / (1 << 20));
}

std::string Bytes(double bytes) {
  return bytes >= (1 << 30) ? fmt::format("{:.1f} GiB", bytes / (1 << 30)) : Mib(bytes);
}

// A disk_space_low rule with threshold 0 watches the server's upload margin: the rule as it
// applies to this observation (threshold in bytes; 0 when there is no margin either).
AlertRule Effective(const AlertRule& rule, const Observation& obs) {
  if (rule.kind != RuleKind::kDiskSpaceLow || rule.threshold > 0 || !obs.disk) return rule;
  AlertRule r = rule;
  r.threshold = static_cast<double>(std::max<int64_t>(obs.disk->min_free_bytes, 0));
  return r;
}

// " for at least 5m" when the rule waits, "" when it fires at once.
std::string ForPart(const AlertRule& r) {
  return r.for_ms > 0 ? fmt::format(" for at least {}", FormatDurationMs(r.for_ms)) : "";
}

std::string LabelOr(const Labels& labels, const char* key) {
  auto it = labels.find(key);
  return it == labels.end() ? std::string("?") : it->second;
}

}  // namespace

std::string DescribeAlert(const AlertRule& r, const Labels& labels, double v, AlertState state,
                          const std::string& detail) {
  const bool firing = state == AlertState::kFiring;
  const std::string quiet = FormatDurationMs(r.resolve_after_ms);
  std::string m;
  switch (r.kind) {
    case RuleKind::kMemoryUsagePercent: {
      const std::string dev = LabelOr(labels, "device");
      m = firing ? fmt::format("{} memory usage is {:.1f}% (above {:g}%{})", dev, v, r.threshold,
                               ForPart(r))
                 : fmt::format("{} memory usage is back to {:.1f}% (threshold {:g}%)", dev, v,
                               r.threshold);
      break;
    }
    case RuleKind::kQueueLength:
      m = firing ? fmt::format("{:g} jobs are waiting (above {:g}{})", v, r.threshold, ForPart(r))
                 : fmt::format("the queue is back to {:g} jobs waiting (threshold {:g})", v,
                               r.threshold);
      break;
    case RuleKind::kErrorRate: {
      const std::string w = FormatDurationMs(r.window_ms);
      m = firing ? fmt::format("{:.1f}% of the jobs finished in the last {} failed (above {:g}%{})",
                               v, w, r.threshold, ForPart(r))
                 : fmt::format(
                       "the job error rate over the last {} is back to {:.1f}% "
                       "(threshold {:g}%)",
                       w, v, r.threshold);
      break;
    }
    case RuleKind::kMemoryNotReleased: {
      const std::string dev = LabelOr(labels, "device");
      m = firing ? fmt::format("an unload left {} in use on {} (release not verified)", Mib(v), dev)
                 : fmt::format("no unreleased memory on {} for {}", dev, quiet);
      break;
    }
    case RuleKind::kRunnerCrashLoop: {
      const std::string model = LabelOr(labels, "model");
      m = firing ? fmt::format("runners of model {} crashed {:g} times within {}", model, v,
                               FormatDurationMs(r.window_ms))
                 : fmt::format("no runner of model {} crashed for {}", model, quiet);
      break;
    }
    case RuleKind::kDeviceMissing: {
      const std::string dev = LabelOr(labels, "device");
      m = firing ? fmt::format("device {} is missing (it was seen before){}", dev, ForPart(r))
                 : fmt::format("device {} is back", dev);
      break;
    }
    case RuleKind::kDiskSpaceLow:
      m = firing ? fmt::format("the data dir's disk has {} free (below {}{})", Bytes(v),
                               Bytes(r.threshold), ForPart(r))
                 : fmt::format("the data dir's disk is back to {} free (threshold {})", Bytes(v),
                               Bytes(r.threshold));
      break;
    case RuleKind::kDeviceOversubscribed: {
      const std::string dev = LabelOr(labels, "device");
      m = firing ? fmt::format("{} is oversubscribed by {}", dev, Bytes(v))
                 : fmt::format("{} is no longer oversubscribed", dev);
      break;
    }
  }
  if (firing && !detail.empty()) m += "; " + detail;
  return r.description.empty() ? m : r.description + ": " + m;
}

Result<std::vector<AlertTransition>> AlertEngine::SetRules(std::vector<AlertRule> rules,
                                                           int64_t now_ms) {
  if (Status s = ValidateRules(rules); !s) return s.error();
  std::vector<AlertTransition> out;
  for (const AlertRule& old : rules_) {
    auto same = std::find_if(rules.begin(), rules.end(), [&](const AlertRule& r) {
      return r.name == old.name && r.kind == old.kind;
    });
    if (same != rules.end()) continue;
    auto sit = series_.find(old.name);
    if (sit == series_.end()) continue;
    for (const auto& [labels, s] : sit->second) {
      if (!s.firing) continue;
      AlertTransition t = MakeTransition(old, labels, s, AlertState::kResolved, now_ms);
      t.message = fmt::format("rule {} was removed or changed on reload; {}", old.name,
                              DescribeAlert(old, labels, s.value, AlertState::kResolved));
      out.push_back(std::move(t));
    }
    series_.erase(sit);
  }
  rules_ = std::move(rules);
  return out;
}

int64_t AlertEngine::MaxWindowMs(RuleKind kind) const {
  int64_t w = 0;
  for (const auto& r : rules_) {
    if (r.kind == kind) w = std::max(w, r.window_ms);
  }
  return w;
}

void AlertEngine::Record(int64_t now_ms, const Observation& obs) {
  // Job counters: deltas against the previous observation; a counter that went down was reset.
  const int64_t fin = obs.jobs_finished_total, fail = obs.jobs_failed_total;
  if (have_job_baseline_ && fin >= last_finished_ && fail >= last_failed_) {
    if (fin > last_finished_ || fail > last_failed_) {
      jobs_.push_back({now_ms, fin - last_finished_, fail - last_failed_});
    }
  }
  have_job_baseline_ = true;
  last_finished_ = fin;
  last_failed_ = fail;
  const int64_t job_window = MaxWindowMs(RuleKind::kErrorRate);
  while (!jobs_.empty() && jobs_.front().at_ms <= now_ms - job_window) jobs_.pop_front();

  crashed_now_.clear();
  for (const auto& c : obs.runner_crashes) {
    crashes_[c.model].push_back(now_ms);
    crashed_now_.insert(c.model);
  }
  const int64_t crash_window = MaxWindowMs(RuleKind::kRunnerCrashLoop);
  for (auto it = crashes_.begin(); it != crashes_.end();) {
    auto& times = it->second;
    while (!times.empty() && times.front() <= now_ms - crash_window) times.pop_front();
    it = times.empty() ? crashes_.erase(it) : std::next(it);
  }

  for (const auto& d : obs.devices) {
    if (d.present) known_devices_.insert(d.name);
  }
}

std::map<Labels, AlertEngine::Reading> AlertEngine::Read(const AlertRule& r, int64_t now_ms,
                                                         const Observation& obs) const {
  std::map<Labels, Reading> out;
  switch (r.kind) {
    case RuleKind::kMemoryUsagePercent:
      for (const auto& d : obs.devices) {
        if (!d.present) continue;
        out[{{"device", d.name}}] = {d.usage_percent > r.threshold, false, d.usage_percent};
      }
      break;
    case RuleKind::kQueueLength: {
      const double q = static_cast<double>(obs.queue_length);
      out[{}] = {q > r.threshold, false, q};
      break;
    }
    case RuleKind::kErrorRate: {
      int64_t finished = 0, failed = 0;
      for (const auto& s : jobs_) {
        if (s.at_ms > now_ms - r.window_ms) {
          finished += s.finished;
          failed += s.failed;
        }
      }
      const double rate = finished > 0 ? 100.0 * static_cast<double>(failed) / finished : 0;
      out[{}] = {finished >= r.min_jobs && rate > r.threshold, false, rate};
      break;
    }
    case RuleKind::kMemoryNotReleased:
      for (const auto& u : obs.unreleased) {
        if (static_cast<double>(u.leftover_bytes) <= r.threshold) continue;
        Reading& rd = out[{{"device", u.device}}];
        rd.active = rd.recurred = true;
        rd.value = std::max(rd.value, static_cast<double>(u.leftover_bytes));
      }
      break;
    case RuleKind::kRunnerCrashLoop:
      for (const auto& model : crashed_now_) {
        auto times = crashes_.find(model);
        if (times == crashes_.end()) continue;  // only when no rule keeps crash history
        int64_t n = 0;
        for (int64_t t : times->second) n += t > now_ms - r.window_ms ? 1 : 0;
        out[{{"model", model}}] = {n >= r.threshold, true, static_cast<double>(n)};
      }
      break;
    case RuleKind::kDeviceMissing: {
      std::set<std::string> present;
      for (const auto& d : obs.devices) {
        if (d.present) present.insert(d.name);
      }
      for (const auto& name : known_devices_) {
        const bool missing = !present.count(name);
        out[{{"device", name}}] = {missing, false, missing ? 1.0 : 0.0};
      }
      break;
    }
    case RuleKind::kDiskSpaceLow:
      if (obs.disk) {
        const double free = static_cast<double>(obs.disk->free_bytes);
        out[{}] = {free < r.threshold, false, free};
      }
      break;
    case RuleKind::kDeviceOversubscribed:
      for (const auto& l : obs.ledgers) {
        const double over = static_cast<double>(l.charged_bytes - l.capacity_bytes);
        std::string detail = fmt::format(
            "its runners and other tenants are charged {}, its memory less the "
            "reserve is {}",
            Bytes(static_cast<double>(l.charged_bytes)),
            Bytes(static_cast<double>(l.capacity_bytes)));
        if (!l.grown_models.empty()) {
          std::string models;
          for (const auto& m : l.grown_models) models += (models.empty() ? "" : ", ") + m;
          detail += fmt::format("; grew past the footprint admitted: {}", models);
        }
        out[{{"device", l.device}}] = {over > r.threshold, false, over, std::move(detail)};
      }
      break;
  }
  return out;
}

AlertTransition AlertEngine::MakeTransition(const AlertRule& rule, const Labels& labels,
                                            const Series& s, AlertState state,
                                            int64_t now_ms) const {
  AlertTransition t;
  t.rule = rule.name;
  t.kind = rule.kind;
  t.severity = rule.severity;
  t.labels = labels;
  t.state = state;
  t.value = s.value;
  t.threshold = rule.threshold;
  t.started_ms = state == AlertState::kFiring ? now_ms : s.started_ms;
  t.at_ms = now_ms;
  t.message = DescribeAlert(rule, labels, s.value, state, s.detail);
  return t;
}

std::vector<AlertTransition> AlertEngine::Evaluate(int64_t now_ms, const Observation& obs) {
  Record(now_ms, obs);
  std::vector<AlertTransition> out;
  for (const AlertRule& configured : rules_) {
    const AlertRule rule = Effective(configured, obs);
    const std::map<Labels, Reading> readings = Read(rule, now_ms, obs);
    auto& series = series_[rule.name];
    std::set<Labels> keys;
    for (const auto& [labels, r] : readings) keys.insert(labels);
    for (const auto& [labels, s] : series) keys.insert(labels);

    for (const Labels& labels : keys) {
      auto rit = readings.find(labels);
      const bool has_reading = rit != readings.end();
      const Reading r = has_reading ? rit->second : Reading{};
      auto sit = series.find(labels);
      if (sit == series.end()) {
        if (!r.active) continue;
        Series fresh;
        fresh.pending_since_ms = now_ms;
        sit = series.emplace(labels, fresh).first;
      }
      Series& s = sit->second;
      if (has_reading) {
        s.value = r.value;
        s.detail = r.detail;
      }
      s.threshold = rule.threshold;

      if (s.firing) {
        // Event kinds: any recurrence (another crash of the model) keeps the alert alive even
        // when it alone would not start one.
        if (r.active || r.recurred) {
          s.last_true_ms = now_ms;
        } else if (now_ms - s.last_true_ms >= rule.resolve_after_ms) {
          out.push_back(MakeTransition(rule, labels, s, AlertState::kResolved, now_ms));
          series.erase(sit);
          continue;
        }
        if (has_reading && r.active) {
          s.message = DescribeAlert(rule, labels, s.value, AlertState::kFiring, s.detail);
        }
        continue;
      }

      if (!r.active) {  // pending needs the condition in every evaluation
        series.erase(sit);
        continue;
      }
      s.last_true_ms = now_ms;
      if (now_ms - s.pending_since_ms >= rule.for_ms) {
        s.firing = true;
        s.started_ms = now_ms;
        AlertTransition t = MakeTransition(rule, labels, s, AlertState::kFiring, now_ms);
        s.message = t.message;
        out.push_back(std::move(t));
      }
    }
  }
  return out;
}

std::vector<ActiveAlert> AlertEngine::Active() const {
  std::vector<ActiveAlert> out;
  for (const AlertRule& rule : rules_) {
    auto it = series_.find(rule.name);
    if (it == series_.end()) continue;
    for (const auto& [labels, s] : it->second) {
      if (!s.firing) continue;
      out.push_back({rule.name, rule.kind, rule.severity, labels, s.value, s.threshold,
                     s.started_ms, s.message});
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const ActiveAlert& a, const ActiveAlert& b) {
    if (a.since_ms != b.since_ms) return a.since_ms < b.since_ms;
    return AlertKey(a.rule, a.labels) < AlertKey(b.rule, b.labels);
  });
  return out;
}

size_t AlertEngine::PendingCount() const {
  size_t n = 0;
  for (const auto& [name, series] : series_) {
    for (const auto& [labels, s] : series) n += s.firing ? 0 : 1;
  }
  return n;
}

}  // namespace steno::alerts
