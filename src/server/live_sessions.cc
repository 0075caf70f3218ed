#include "server/live_sessions.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/wall_clock.h"
#include "store/job_id.h"

namespace steno::server {
namespace {

Error ShuttingDown() {
  return Error(ErrorKind::kUnavailable, "shutting_down", "the server is shutting down");
}

// A Prometheus label value: backslash, quote and newline escaped.
std::string Label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

LiveSessions::LiveSessions(std::string node, RuntimeSlot& runtime, QueueStats& stats)
    : node_(std::move(node)), runtime_(runtime), stats_(stats) {}

Result<Job> LiveSessions::Start(const std::string& model, const live::Settings& settings,
                                LiveListener listener) {
  if (!admitting_) return ShuttingDown();
  // An unknown model is the client's error, told before anything is registered.
  auto spec =
      runtime_.With([&](Runtime& rt) -> Result<sched::ModelSpec> { return rt.ResolveModel(model); },
                    Result<sched::ModelSpec>(ShuttingDown()));
  if (!spec.ok()) return spec.error();
  Job job;
  job.created_ms = job.updated_ms = UnixMillis();
  job.id = store::NewJobId(job.created_ms);
  job.model = model;
  job.node = node_;
  job.params.task = "transcribe";
  job.params.language = settings.language.empty() ? "auto" : settings.language;
  job.params.prompt = settings.prompt;
  job.params.response_format = "json";
  job.params.filename = "live";
  job.params.timeout_s = 0;  // none: a session lasts as long as its client keeps it
  job.params.live = settings;
  {
    MutexLock lock(mu_);
    Entry& e = sessions_[job.id];
    e.job = job;
    e.listener = std::move(listener);
    e.info.id = job.id;
    e.info.model = model;
    e.info.created_ms = job.created_ms;
    ++started_total_;
  }
  stats_.Entered();
  sched::SubmitRequest r;
  r.job = job;
  r.input.name = "live";
  auto st = runtime_.With([&](Runtime& rt) { return rt.scheduler().Submit(std::move(r)); },
                          Status(ShuttingDown()));
  if (!st) {
    stats_.Left();
    LiveListener release;  // destroyed after the lock
    MutexLock lock(mu_);
    if (auto it = sessions_.find(job.id); it != sessions_.end()) {
      release = std::move(it->second.listener);
      sessions_.erase(it);
    }
    --started_total_;
    return st.error();
  }
  return job;
}

bool LiveSessions::OnJob(const sched::JobUpdate& u) {
  LiveListener listener;
  LiveUpdate out;
  bool tell = false;
  {
    MutexLock lock(mu_);
    auto it = sessions_.find(u.job.id);
    if (it == sessions_.end()) return false;
    Entry& e = it->second;
    if (u.kind == sched::JobUpdate::Kind::kSegment) {
      auto event = live::EventFromJson(u.payload);
      if (!event.ok()) {
        spdlog::warn("live session {}: a runner event is not understood: {}", u.job.id,
                     event.error().message);
        return true;
      }
      if (event->kind == live::Event::Kind::kCompleted) ++e.info.completed;
      out.kind = LiveUpdate::Kind::kEvent;
      out.event = std::move(event).value();
      tell = true;
    } else if (u.kind == sched::JobUpdate::Kind::kState) {
      const JobState before = e.job.state;
      e.job = u.job;
      e.job.node = node_;
      e.info.state = u.job.state;
      if (u.job.state == JobState::kProcessing && before != JobState::kProcessing) {
        e.info.runner_id = u.runner_id;
        e.info.device = u.device;
        e.info.admitted_ms = UnixMillis();
        out.kind = LiveUpdate::Kind::kAdmitted;
        out.runner_id = u.runner_id;
        out.device = u.device;
        tell = true;
      } else if (IsFinal(u.job.state)) {
        out.kind = LiveUpdate::Kind::kEnded;
        out.job = e.job;
        // Cancelled by StopAdmitting: the server is shutting down.
        if (!admitting_ && out.job.state == JobState::kCancelled) out.job.error = ShuttingDown();
        tell = true;
        stats_.Left();
        listener = std::move(e.listener);
        sessions_.erase(it);
      }
    }
    if (tell && !listener) listener = e.listener;
  }
  if (tell && listener) listener(out);
  return true;
}

void LiveSessions::Feed(const std::string& id, const live::Input& input) {
  {
    MutexLock lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end() || it->second.info.state != JobState::kProcessing) return;
    if (input.op == live::Input::Op::kAudio) {
      it->second.info.audio_ms += static_cast<int64_t>(input.pcm.size()) * 1000 / live::kSampleRate;
    }
  }
  runtime_.With(
      [&](Runtime& rt) {
        rt.scheduler().Feed(id, live::InputToJson(input));
        return 0;
      },
      0);
}

void LiveSessions::Cancel(const std::string& id) {
  {
    MutexLock lock(mu_);
    if (!sessions_.count(id)) return;
  }
  // The scheduler may have ended it meanwhile (kNotFound, kBadInput job_final): fine.
  (void)runtime_.With([&](Runtime& rt) { return rt.scheduler().Cancel(id); }, Status());
}

std::vector<LiveSessionInfo> LiveSessions::List() const {
  std::vector<LiveSessionInfo> out;
  {
    MutexLock lock(mu_);
    for (const auto& [id, e] : sessions_) out.push_back(e.info);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.created_ms < b.created_ms; });
  return out;
}

std::map<int64_t, int> LiveSessions::PerRunner() const {
  std::map<int64_t, int> out;
  MutexLock lock(mu_);
  for (const auto& [id, e] : sessions_) {
    if (e.info.state == JobState::kProcessing) ++out[e.info.runner_id];
  }
  return out;
}

void LiveSessions::NoteError(const std::string& code) {
  MutexLock lock(mu_);
  ++errors_[code];
}

std::string LiveSessions::RenderPrometheus() const {
  // (model, state, runner) → sessions
  std::map<std::tuple<std::string, std::string, std::string>, int> gauge;
  std::map<std::string, int64_t> errors;
  int64_t started = 0;
  {
    MutexLock lock(mu_);
    for (const auto& [id, e] : sessions_) {
      const bool running = e.info.state == JobState::kProcessing;
      ++gauge[{e.info.model, running ? "active" : "waiting",
               running ? std::to_string(e.info.runner_id) : ""}];
    }
    errors = errors_;
    started = started_total_;
  }
  std::string out =
      "# HELP steno_realtime_sessions Live transcription sessions (WebSocket /v1/realtime) now: "
      "active on a runner, or waiting for a stream.\n"
      "# TYPE steno_realtime_sessions gauge\n";
  if (gauge.empty()) out += "steno_realtime_sessions 0\n";
  for (const auto& [key, n] : gauge) {
    const auto& [model, state, runner] = key;
    out += fmt::format("steno_realtime_sessions{{model=\"{}\",state=\"{}\",runner=\"{}\"}} {}\n",
                       Label(model), state, runner, n);
  }
  out += fmt::format(
      "# HELP steno_realtime_sessions_started_total Live transcription sessions started.\n"
      "# TYPE steno_realtime_sessions_started_total counter\n"
      "steno_realtime_sessions_started_total {}\n"
      "# HELP steno_realtime_errors_total Error events sent to live sessions' clients, by code.\n"
      "# TYPE steno_realtime_errors_total counter\n",
      started);
  for (const auto& [code, n] : errors) {
    out += fmt::format("steno_realtime_errors_total{{code=\"{}\"}} {}\n", Label(code), n);
  }
  return out;
}

void LiveSessions::StopAdmitting() {
  admitting_ = false;
  std::vector<std::string> ids;
  {
    MutexLock lock(mu_);
    for (const auto& [id, e] : sessions_) ids.push_back(id);
  }
  for (const auto& id : ids) Cancel(id);
}

void LiveSessions::Abandon() {
  admitting_ = false;
  std::vector<std::pair<LiveListener, LiveUpdate>> ended;
  {
    MutexLock lock(mu_);
    for (auto& [id, e] : sessions_) {
      LiveUpdate u;
      u.kind = LiveUpdate::Kind::kEnded;
      u.job = e.job;
      u.job.state = JobState::kFailed;
      u.job.error = ShuttingDown();
      u.job.finished_ms = u.job.updated_ms = UnixMillis();
      stats_.Left();
      ended.emplace_back(std::move(e.listener), std::move(u));
    }
    sessions_.clear();
  }
  for (auto& [listener, u] : ended) {
    if (listener) listener(u);
  }
}

}  // namespace steno::server
