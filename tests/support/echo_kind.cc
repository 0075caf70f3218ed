#include "support/echo_kind.h"

#include <fstream>

#include "core/live_items.h"

namespace steno::test {

using sched::BackendEvent;
using Kind = sched::BackendEvent::Kind;

std::string EchoLiveText(int64_t samples, int first_sample) {
  return std::to_string(samples) + " samples, first " + std::to_string(first_sample);
}

int EchoPid(int64_t runner_id, int i) {
  return static_cast<int>(50'000 + 10 * runner_id + i);
}

Result<std::string> EchoText(const sched::BlobRef& input) {
  if (input.path.empty()) {
    if (input.digest.empty()) {
      return Error(ErrorKind::kBadInput, "no_input", "the job names no input");
    }
    return "echo " + input.name + ": blob " + input.digest;
  }
  std::ifstream in(input.path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return Error(ErrorKind::kBadInput, "unreadable_input", "cannot read " + input.path);
  }
  return "echo " + input.name + ": " + line;
}

namespace {

// How a job ends: done with its echo, or a bad-input error when its input cannot be read.
BackendEvent Outcome(int64_t runner_id, const sched::JobRunSpec& job) {
  BackendEvent e;
  e.runner_id = runner_id;
  e.job_id = job.job_id;
  auto text = EchoText(job.input);
  if (text.ok()) {
    e.kind = Kind::kDone;
    e.payload = {{"text", *text}};
  } else {
    e.kind = Kind::kError;
    e.error_kind = sched::RunnerErrorKind::kBadInput;
    e.message = text.error().message;
  }
  return e;
}

}  // namespace

int64_t EchoBackend::Runner::bytes() const {
  int64_t sum = weights_bytes + streams * stream_bytes;
  for (const auto& [pid, held] : workers) sum += held;
  return sum;
}

EchoBackend::EchoBackend(EchoKindOptions options, sched::BackendSink sink)
    : options_(options), sink_(std::move(sink)) {}

void EchoBackend::Emit(std::vector<BackendEvent> events) {
  for (auto& e : events) sink_(std::move(e));
}

Status EchoBackend::Start(const sched::RunnerStartSpec& spec) {
  BackendEvent ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++starts_;
    Runner& r = runners_[spec.runner_id];
    r.id = spec.runner_id;
    r.spec = spec;
    r.streams = spec.streams;
    r.weights_bytes = options_.weights_bytes;
    r.stream_bytes = options_.stream_bytes;
    for (int i = 0; i < options_.pids_per_runner; ++i) r.pids.push_back(EchoPid(r.id, i));
    ready.kind = Kind::kReady;
    ready.runner_id = r.id;
    ready.weights_bytes = r.weights_bytes;
    ready.stream_bytes = r.stream_bytes;
    ready.pids = r.pids;
  }
  Emit({ready});
  return Status();
}

Status EchoBackend::SendJob(int64_t runner_id, const sched::JobRunSpec& job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!runners_.count(runner_id)) {
      return Error(ErrorKind::kNotFound, "runner_not_found", "no such runner");
    }
    if (job.params.contains("live") && !job.params["live"].is_null()) {
      live_[job.job_id].runner_id = runner_id;
      return Status();
    }
    if (options_.hold_jobs) {
      held_[job.job_id] = {runner_id, job};
      return Status();
    }
  }
  Emit({Outcome(runner_id, job)});
  return Status();
}

void EchoBackend::FinishHeld() {
  std::map<std::string, std::pair<int64_t, sched::JobRunSpec>> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    held.swap(held_);
  }
  std::vector<BackendEvent> out;
  for (const auto& [id, run] : held) out.push_back(Outcome(run.first, run.second));
  Emit(std::move(out));
}

int EchoBackend::Fork(int64_t runner_id, int64_t bytes) {
  BackendEvent e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = runners_.find(runner_id);
    if (it == runners_.end()) return 0;
    Runner& r = it->second;
    const int pid = EchoPid(r.id, static_cast<int>(r.pids.size()));
    r.pids.push_back(pid);
    r.workers.emplace_back(pid, bytes);
    e.kind = Kind::kProcesses;
    e.runner_id = r.id;
    e.pids = r.pids;
  }
  Emit({e});
  return e.pids.back();
}

namespace {

BackendEvent LiveEvent(int64_t runner_id, const std::string& job_id, live::Event event) {
  BackendEvent e;
  e.kind = Kind::kSegment;
  e.runner_id = runner_id;
  e.job_id = job_id;
  e.payload = live::EventToJson(event);
  return e;
}

}  // namespace

Status EchoBackend::Feed(int64_t runner_id, const std::string& job_id,
                         const nlohmann::json& input) {
  auto in = live::InputFromJson(input);
  if (!in.ok()) return in.error();
  using Op = live::Input::Op;
  using EK = live::Event::Kind;
  std::vector<BackendEvent> out;
  auto event = [&](EK kind, int64_t item, std::string text, std::string code, int64_t start,
                   int64_t end) {
    live::Event e;
    e.kind = kind;
    e.item = item;
    e.text = std::move(text);
    e.code = std::move(code);
    e.audio_start_ms = start;
    e.audio_end_ms = end;
    out.push_back(LiveEvent(runner_id, job_id, std::move(e)));
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(job_id);
    if (it == live_.end()) return Error(ErrorKind::kNotFound, "job_not_found", "not live here");
    LiveJob& j = it->second;
    auto ms = [](int64_t samples) { return samples * 1000 / live::kSampleRate; };
    switch (in->op) {
      case Op::kAudio: {
        auto n = static_cast<int64_t>(in->pcm.size());
        if (options_.live_max_samples > 0 && j.utterance + n > options_.live_max_samples) {
          event(EK::kFailed, 0, "audio came faster than it is decoded", "buffer_full", 0, 0);
          break;
        }
        if (n > 0 && j.utterance == 0) {
          j.first = in->pcm[0];
          j.start = j.total;
          event(EK::kSpeechStarted, j.item + 1, "", "", ms(j.start), 0);
        }
        j.utterance += n;
        j.total += n;
        break;
      }
      case Op::kCommit: {
        if (j.utterance == 0) {
          event(EK::kFailed, 0, "the buffer holds no audio", "commit_empty", 0, 0);
          break;
        }
        const int64_t item = ++j.item;
        const std::string text = EchoLiveText(j.utterance, j.first);
        const int64_t start = ms(j.start), end = ms(j.start + j.utterance);
        event(EK::kCommitted, item, "", "", start, end);
        event(EK::kDelta, item, text.substr(0, text.find(' ')), "", start, end);
        event(EK::kCompleted, item, text, "", start, end);
        j.utterance = 0;
        break;
      }
      case Op::kClear: j.utterance = 0; break;
      case Op::kUpdate: break;
      case Op::kClose: {
        BackendEvent done;
        done.kind = Kind::kDone;
        done.runner_id = runner_id;
        done.job_id = job_id;
        done.payload = {{"text", "echo live: " + std::to_string(j.total) + " samples"}};
        out.push_back(std::move(done));
        live_.erase(it);
        break;
      }
    }
  }
  Emit(std::move(out));
  return Status();
}

void EchoBackend::Cancel(int64_t runner_id, const std::string& job_id) {
  BackendEvent e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!held_.erase(job_id) && !live_.erase(job_id)) return;
  }
  e.kind = Kind::kError;
  e.runner_id = runner_id;
  e.job_id = job_id;
  e.error_kind = sched::RunnerErrorKind::kCancelled;
  e.message = "cancelled";
  Emit({e});
}

Status EchoBackend::SetStreams(int64_t runner_id, int streams) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = runners_.find(runner_id);
  if (it == runners_.end()) return Error(ErrorKind::kNotFound, "runner_not_found", "gone");
  it->second.streams = streams;
  return Status();
}

void EchoBackend::Stop(int64_t runner_id) {
  std::vector<BackendEvent> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!runners_.erase(runner_id)) return;
    // Every job still on it, live or held, ends as a crash.
    auto fail_on_runner = [&](auto& jobs, auto runner_of) {
      for (auto it = jobs.begin(); it != jobs.end();) {
        if (runner_of(it->second) != runner_id) {
          ++it;
          continue;
        }
        BackendEvent e;
        e.kind = Kind::kError;
        e.runner_id = runner_id;
        e.job_id = it->first;
        e.error_kind = sched::RunnerErrorKind::kCrash;
        e.message = "stopped";
        out.push_back(std::move(e));
        it = jobs.erase(it);
      }
    };
    fail_on_runner(live_, [](const auto& job) { return job.runner_id; });
    fail_on_runner(held_, [](const auto& job) { return job.first; });
    BackendEvent exited;
    exited.kind = Kind::kExited;
    exited.runner_id = runner_id;
    exited.message = "stopped";
    out.push_back(exited);
    if (options_.exit_twice) out.push_back(exited);
    exits_ += options_.exit_twice ? 2 : 1;
  }
  Emit(std::move(out));
}

std::vector<EchoBackend::Runner> EchoBackend::live() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Runner> out;
  for (const auto& [id, r] : runners_) out.push_back(r);
  return out;
}

int EchoBackend::starts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return starts_;
}

int EchoBackend::exits_reported() const {
  std::lock_guard<std::mutex> lock(mu_);
  return exits_;
}

runners::KindFactory EchoKind(EchoKindOptions options, EchoBackend** made) {
  return [options, made](
             const runners::KindContext& context) -> Result<std::unique_ptr<sched::RunnerBackend>> {
    auto backend = std::make_unique<EchoBackend>(options, context.sink);
    if (made) *made = backend.get();
    return std::unique_ptr<sched::RunnerBackend>(std::move(backend));
  };
}

}  // namespace steno::test
