#include "runners/whisper/process_backend.h"

#include <spdlog/spdlog.h>

#include "audio/shared_pcm.h"
#include "core/job.h"
#include "engine/transcript_json.h"
#include "runner/messages.h"
#include "runner/protocol.h"
#include "runner/release_check.h"
#include "runner/runner_handle.h"

namespace steno::runners {
namespace {

using nlohmann::json;

BackendEvent Translate(int64_t runner_id, const runner::RunnerEvent& ev) {
  BackendEvent out;
  out.runner_id = runner_id;
  if (ev.kind == runner::RunnerEvent::Kind::kExited) {
    out.kind = BackendEvent::Kind::kExited;
    out.message = !ev.reason.empty() ? ev.reason
                  : ev.signal        ? "killed by signal " + std::to_string(ev.signal)
                                     : "exited with code " + std::to_string(ev.exit_code);
    return out;
  }
  const json& m = ev.message;
  const std::string type = m.value("type", "");
  out.job_id = m.value("job_id", "");
  if (type == "ready") {
    out.kind = BackendEvent::Kind::kReady;
    out.weights_bytes = m.value("device_weights_bytes", m.value("weights_bytes", int64_t{0}));
    out.stream_bytes = m.value("device_stream_bytes", m.value("stream_bytes", int64_t{0}));
    if (const int pid = m.value("pid", 0); pid > 0) out.pids = {pid};
  } else if (type == "progress") {
    out.kind = BackendEvent::Kind::kProgress;
    out.percent = m.value("percent", 0);
  } else if (type == "segment") {
    out.kind = BackendEvent::Kind::kSegment;
    out.payload = m.value("segment", json::object());
  } else if (type == "done") {
    out.kind = BackendEvent::Kind::kDone;
    out.payload = m.value("result", json::object());
  } else if (type == "error") {
    out.kind = BackendEvent::Kind::kError;
    out.error_kind = runner::ParseErrorKind(m.value("kind", ""));
    out.message = m.value("message", "");
  } else {
    out.kind = BackendEvent::Kind::kProgress;  // heartbeat, streams: nothing for the scheduler
    out.runner_id = -1;
  }
  return out;
}

}  // namespace

engine::DecodeParams DecodeParamsForJob(const engine::DecodeParams& defaults,
                                        const json& job_params) {
  engine::DecodeParams p = defaults;
  if (!job_params.is_object()) return p;
  p.language = job_params.value("language", p.language);
  p.translate = job_params.value("task", std::string("transcribe")) == "translate";
  p.initial_prompt = job_params.value("prompt", p.initial_prompt);
  p.temperature = job_params.value("temperature", p.temperature);
  p.word_timestamps = job_params.value("word_timestamps", p.word_timestamps);
  // The VAD decision made when the job was accepted (JobParams::vad); the model file is this
  // server's (defaults.vad_model_path).
  if (auto params = JobParamsFromJson(job_params.dump()); params.ok()) p.vad = params->vad;
  return p;
}

ProcessBackend::ProcessBackend(ProcessBackendOptions options, BackendSink sink)
    : options_(std::move(options)), sink_(std::move(sink)) {}

ProcessBackend::~ProcessBackend() {
  std::map<int64_t, std::thread> stoppers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, h] : runners_) {
      if (!h->exited()) h->Kill("backend shutting down");
    }
    stoppers.swap(stoppers_);
  }
  for (auto& [id, t] : stoppers) t.join();
  std::lock_guard<std::mutex> lock(mu_);
  runners_.clear();  // joins each reader thread after its exit event
}

runner::RunnerHandle* ProcessBackend::Find(int64_t runner_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = runners_.find(runner_id);
  return it == runners_.end() ? nullptr : it->second.get();
}

void ProcessBackend::ReapFinished() {
  std::vector<std::thread> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = runners_.begin(); it != runners_.end();) {
      const bool in_use = stopping_.count(it->first) > 0;
      if (it->second->exited() && !in_use) {
        device_of_.erase(it->first);
        model_of_.erase(it->first);
        it = runners_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = stoppers_.begin(); it != stoppers_.end();) {
      if (stopping_.count(it->first)) {
        ++it;
        continue;
      }
      done.push_back(std::move(it->second));
      it = stoppers_.erase(it);
    }
  }
  for (auto& t : done) t.join();  // finished already: returns at once
}

Status ProcessBackend::Start(const RunnerStartSpec& spec) {
  ReapFinished();
  runner::RunnerOptions o;
  o.exe = options_.exe;
  o.model_path = spec.model_path;
  o.streams = spec.streams;
  o.threads = options_.decode_defaults.n_threads;
  o.heartbeat_ms = options_.heartbeat_ms;
  o.warmup = options_.warmup;
  o.dtw_words = spec.load.dtw_words;
  o.prefetch = options_.prefetch;
  o.lower_priority = options_.runners_lower_priority;
  if (spec.device.rfind("cuda:", 0) == 0) {
    if (!options_.sim_data_dir.empty()) {
      o.sim_data_dir = options_.sim_data_dir;
      o.sim_device = std::stoi(spec.device.substr(5));
    } else {
      o.device = "cuda:0";  // the environment narrows the runner to its one card
      if (options_.env_for_device) o.env = options_.env_for_device(spec.device);
    }
  }
  const int64_t id = spec.runner_id;
  auto h = runner::RunnerHandle::Start(o, [this, id](const runner::RunnerEvent& ev) {
    BackendEvent out = Translate(id, ev);
    if (out.runner_id >= 0) sink_(std::move(out));
  });
  if (!h) return h.error();
  std::lock_guard<std::mutex> lock(mu_);
  runners_[id] = std::move(h).value();
  device_of_[id] = spec.device;
  model_of_[id] = spec.model;
  return {};
}

Status ProcessBackend::SendJob(int64_t runner_id, const JobRunSpec& job) {
  auto* h = Find(runner_id);
  if (!h) return Error(ErrorKind::kNotFound, "runner_not_found", "no such runner");
  engine::DecodeParams p = DecodeParamsForJob(options_.decode_defaults, job.params);
  if (job.threads > 0) p.n_threads = job.threads;  // on the CPU: what the scheduler gave it
  if (job.params.is_object() && job.params.contains("live") && !job.params.at("live").is_null()) {
    p.vad.reset();
    return h->Send({{"type", "transcribe"},
                    {"job_id", job.job_id},
                    {"params", engine::DecodeParamsToJson(p)},
                    {"live", job.params.at("live")},
                    {"vad_model_path", options_.decode_defaults.vad_model_path}});
  }
  if (job.input.path.empty()) {
    return Error(
        ErrorKind::kBadInput, "no_local_input",
        "the whisper runner reads its input from a local file; job " + job.job_id + " names none");
  }
  json m = {{"type", "transcribe"},
            {"job_id", job.job_id},
            {"audio_path", job.input.path},
            {"audio_name", job.input.name},
            {"params", engine::DecodeParamsToJson(p)}};
  if (job.timeout_s > 0) m["timeout_s"] = job.timeout_s;
  // A step of a chunked job (core/chunk_work.h): the runner plans or runs one chunk.
  if (job.params.is_object()) {
    if (auto c = job.params.find("chunk"); c != job.params.end()) m["chunk"] = *c;
  }
  if (job.input.pcm && !m.contains("chunk")) {
    // Decoded already (a synchronous request's upload): the runner reads these samples instead
    // of opening the file again.
    m["pcm_samples"] = job.input.pcm->samples();
    return h->Send(m, job.input.pcm->fd());
  }
  return h->Send(m);
}

void ProcessBackend::Cancel(int64_t runner_id, const std::string& job_id) {
  if (auto* h = Find(runner_id)) (void)h->Send({{"type", "cancel"}, {"job_id", job_id}});
}

Status ProcessBackend::Feed(int64_t runner_id, const std::string& job_id, const json& input) {
  auto* h = Find(runner_id);
  if (!h) return Error(ErrorKind::kNotFound, "runner_not_found", "no such runner");
  // The base64 audio is nearly all of the frame; the rest is far below this margin.
  constexpr size_t kMargin = 4096;
  if (auto pcm = input.find("pcm16");
      pcm != input.end() && pcm->is_string() &&
      pcm->get_ref<const std::string&>().size() + kMargin > runner::kMaxFrameBytes) {
    return Error(ErrorKind::kBadInput, "input_too_large",
                 "one audio append is limited to " +
                     std::to_string((runner::kMaxFrameBytes - kMargin) / 1024 / 1024) +
                     " MiB of base64");
  }
  return h->Send(runner::FeedMessage(job_id, input));
}

Status ProcessBackend::SetStreams(int64_t runner_id, int streams) {
  auto* h = Find(runner_id);
  if (!h) return Error(ErrorKind::kNotFound, "runner_not_found", "no such runner");
  return h->Send({{"type", "set_streams"}, {"streams", streams}});
}

void ProcessBackend::Stop(int64_t runner_id) {
  auto* h = Find(runner_id);
  if (!h) return;
  // The unload waits for the process and the device: never on the scheduler's thread.
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_.count(runner_id) || stoppers_.count(runner_id)) return;  // already unloading
  stopping_.insert(runner_id);
  const std::string device = device_of_[runner_id];
  const std::string model = model_of_[runner_id];
  stoppers_[runner_id] = std::thread([this, h, runner_id, device, model] {
    if (options_.devices && device.rfind("cuda:", 0) == 0) {
      runner::ReleaseCheck check;
      check.device_index = std::stoi(device.substr(5));
      check.baseline_used = -1;  // other runners share the card: only this one's bytes must go
      runner::UnloadRunner(*h, options_.devices, check, options_.grace,
                           [this, &device, &model](const runner::ReleaseReport& report) {
                             if (options_.on_unreleased)
                               options_.on_unreleased(model, device, report);
                           });
    } else {
      h->Stop(options_.grace);
    }
    std::lock_guard<std::mutex> lock(mu_);
    stopping_.erase(runner_id);
  });
}

}  // namespace steno::runners
