#include "runner/runner_main.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <ggml-backend.h>
#include <spdlog/spdlog.h>

#include "audio/decoder.h"
#include "audio/shared_pcm.h"
#include "core/unique_fd.h"
#include "engine/formats.h"
#include "engine/transcript_json.h"
#include "engine/whisper_model.h"
#include "engine/whisper_stream.h"
#include "gpu/simulated_devices.h"
#include "runner/chunk_steps.h"
#include "runner/live_steps.h"
#include "runner/messages.h"
#include "runner/protocol.h"

namespace steno::runner {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// Free memory on the first GPU ggml sees (the runner's one card, after CUDA_VISIBLE_DEVICES
// narrowing); -1 without one. Before/after deltas are the footprint's truth on a real device.
int64_t GpuFreeBytes() {
  for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    if (ggml_backend_dev_type(dev) != GGML_BACKEND_DEVICE_TYPE_GPU) continue;
    size_t free = 0, total = 0;
    ggml_backend_dev_memory(dev, &free, &total);
    return static_cast<int64_t>(free);
  }
  return -1;
}

struct Slot {
  std::unique_ptr<engine::WhisperStream> stream;
  int64_t charged_bytes = 0;  // on the simulated device, if any
  bool busy = false;
};

struct Job {
  std::string id;
  std::atomic<bool> cancel{false};
  Clock::time_point deadline = Clock::time_point::max();
  std::shared_ptr<LiveItem> live;  // set for a live session (live_steps.h)

  void Cancel() {
    cancel = true;
    if (live) live->Cancel();
  }
};

class Runner {
 public:
  explicit Runner(int fd) : reader_(fd), writer_(fd) {}
  int Main();

 private:
  bool Load(const json& m);
  Status AddStreams(int n);
  void SetStreams(const json& m);
  // `pcm_fd`: the frame's decoded input (protocol.h), owned (closed here), or -1.
  void StartJob(const json& m, int pcm_fd);
  // A transcribe frame with "live": the job is a live session on a free stream.
  void StartLive(const json& m, const std::string& id, const engine::DecodeParams& params);
  void RunLive(Slot* slot, std::shared_ptr<Job> job);
  // A feed frame: the next input of a live job (dropped when the job is not running here).
  void Feed(const json& m);
  // Frees the job's stream, then reports its outcome.
  void Finish(Slot* slot, const Job& job, const json& outcome);
  Slot* FreeSlotLocked();
  // The free stream job `id` starts on; nullptr, with the error sent, when it already runs here
  // or no stream is free.
  Slot* SlotForLocked(const std::string& id);
  void RunJob(Slot* slot, std::shared_ptr<Job> job, audio::MediaFile input,
              engine::DecodeParams params, std::optional<ChunkWork> chunk,
              std::future<Result<std::vector<float>>> decoded);
  // The outcome frame of one job: its done (with the result) or its error. `decoded`: its
  // input's decode, when it was prefetched (not valid otherwise).
  json Outcome(Slot* slot, Job& job, const audio::MediaFile& input,
               const engine::DecodeParams& params, const std::optional<ChunkWork>& chunk,
               std::future<Result<std::vector<float>>> decoded);
  // Starts decoding the load frame's "prefetch" inputs, at most one per stream the load asks
  // for (`streams`): the inputs of the jobs it can run first, whose samples those jobs would
  // hold anyway once they run. One thread decodes them in the order given, the first first.
  void Prefetch(const json& m, int streams);
  void Send(const json& m) {
    if (auto st = writer_.Write(m); !st) spdlog::debug("runner: {}", st.error().message);
  }
  void HeartbeatLoop();
  int Shutdown(int code);

  FrameReader reader_;
  FrameWriter writer_;
  std::unique_ptr<engine::WhisperModel> model_;
  std::unique_ptr<gpu::SimulatedDevices> sim_;  // set when the device is simulated
  int sim_device_ = -1;
  int heartbeat_ms_ = 1000;
  int warmup_threads_ = 1;
  bool warmup_ = true;

  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
  // Inputs decoded ahead (Prefetch), by path and name; a job of that input takes its decode.
  std::map<std::pair<std::string, std::string>, std::future<Result<std::vector<float>>>>
      prefetched_;
  int active_ = 0;
  int64_t jobs_done_ = 0;
  bool stopping_ = false;
  std::thread heartbeat_;
  std::thread prefetch_;  // decodes the prefetched inputs (Prefetch); joined by Shutdown
};

bool Runner::Load(const json& m) {
  const std::string path = m.value("model", "");
  const std::string device = m.value("device", "cpu");
  engine::ModelOptions options;
  options.use_gpu = device.rfind("cuda", 0) == 0;
  options.gpu_device = 0;  // the supervisor narrows CUDA_VISIBLE_DEVICES to this runner's card
  options.flash_attn = m.value("flash_attn", true);
  options.dtw_words = m.value("dtw_words", false);
  heartbeat_ms_ = std::max(50, m.value("heartbeat_ms", 1000));
  warmup_threads_ = std::max(1, m.value("threads", 1));
  warmup_ = m.value("warmup", true);

  if (auto sim = m.find("simulated"); sim != m.end() && sim->is_object()) {
    // A simulated card holds what a real one would: the weights, charged before they load.
    auto opened = gpu::SimulatedDevices::Open(sim->value("data_dir", ""), "");
    auto info = engine::ReadModelFile(path);
    Status charged = !opened ? Status(opened.error())
                     : !info ? Status(info.error())
                             : (*opened)->Charge(sim->value("device", 0), info->tensor_bytes);
    if (!charged) {
      Send(ErrorMessage("", ErrorKindForProtocol(charged.error().kind), charged.error().message));
      return false;
    }
    sim_ = std::move(opened).value();
    sim_device_ = sim->value("device", 0);
  }
  const int streams = std::max(1, m.value("streams", 1));
  Prefetch(m, streams);  // decodes while the model loads
  const int64_t free_before_load = options.use_gpu ? GpuFreeBytes() : -1;
  auto model = engine::WhisperModel::Load(path, options);
  if (!model) {
    Send(ErrorMessage("", ErrorKindForProtocol(model.error().kind), model.error().message));
    return false;
  }
  model_ = std::move(model).value();
  const int64_t free_after_load = free_before_load >= 0 ? GpuFreeBytes() : -1;
  if (auto st = AddStreams(streams); !st) {
    Send(ErrorMessage("", ErrorKindForProtocol(st.error().kind), st.error().message));
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  json ready = {{"type", "ready"},
                {"weights_bytes", model_->footprint().weights_bytes},
                {"stream_bytes", slots_.front()->stream->footprint().StreamBytes()},
                {"streams", slots_.size()},
                {"load_ms", model_->load_ms()},
                {"rss_bytes", ResidentBytes()},
                {"pid", getpid()}};
  if (free_after_load >= 0) {
    // What the device itself lost: the truth the log-parsed figures above only estimate.
    ready["device_weights_bytes"] = free_before_load - free_after_load;
    ready["device_stream_bytes"] = (free_after_load - GpuFreeBytes()) / streams;
  }
  Send(ready);
  return true;
}

void Runner::Prefetch(const json& m, int streams) {
  auto list = m.find("prefetch");
  if (list == m.end() || !list->is_array()) return;
  std::vector<std::pair<audio::MediaFile, std::promise<Result<std::vector<float>>>>> work;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& item : *list) {
    if (static_cast<int>(work.size()) == streams) break;
    if (!item.is_object()) continue;
    audio::MediaFile file(item.value("path", ""), item.value("name", ""));
    if (file.path.empty()) continue;
    auto key = std::make_pair(file.path, file.name);
    if (prefetched_.count(key)) continue;
    std::promise<Result<std::vector<float>>> decoded;
    prefetched_.emplace(std::move(key), decoded.get_future());
    work.emplace_back(std::move(file), std::move(decoded));
  }
  if (work.empty()) return;
  prefetch_ = std::thread([work = std::move(work)]() mutable {
    for (auto& [file, decoded] : work) decoded.set_value(audio::Decode(file));
  });
}

// Creates n streams and warms each up with one second of silence, so its compute buffers are
// allocated now rather than under the first real job.
Status Runner::AddStreams(int n) {
  static const std::vector<float> kSilence(audio::kSampleRate, 0.0f);
  engine::DecodeParams warm;
  warm.language = "en";
  warm.beam_size = 1;
  warm.temperature_inc = 0;
  warm.n_threads = warmup_threads_;
  for (int i = 0; i < n; ++i) {
    auto stream = model_->NewStream();
    if (!stream) return stream.error();
    if (warmup_) {
      if (auto r = (*stream)->Run(kSilence, warm); !r) return r.error();
    }
    auto slot = std::make_unique<Slot>();
    slot->stream = std::move(stream).value();
    if (sim_) {
      slot->charged_bytes = slot->stream->footprint().StreamBytes();
      if (auto st = sim_->Charge(sim_device_, slot->charged_bytes); !st) return st.error();
    }
    std::lock_guard<std::mutex> lock(mu_);
    slots_.push_back(std::move(slot));
  }
  return {};
}

void Runner::SetStreams(const json& m) {
  const int want = m.value("streams", 0);
  if (want < 1 || want > 64) {
    Send(ErrorMessage("", RunnerErrorKind::kBadInput, "streams must be between 1 and 64"));
    return;
  }
  int have;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Drop idle streams beyond the target; busy ones stay until a later request.
    for (auto it = slots_.begin(); it != slots_.end() && static_cast<int>(slots_.size()) > want;) {
      if ((*it)->busy) {
        ++it;
        continue;
      }
      if (sim_) (void)sim_->Release(sim_device_, (*it)->charged_bytes);
      it = slots_.erase(it);
    }
    have = static_cast<int>(slots_.size());
  }
  if (have < want) {
    if (auto st = AddStreams(want - have); !st) {
      Send(ErrorMessage("", ErrorKindForProtocol(st.error().kind), st.error().message));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  Send({{"type", "streams"}, {"streams", slots_.size()}, {"rss_bytes", ResidentBytes()}});
}

void Runner::StartJob(const json& m, int pcm_fd) {
  const UniqueFd pcm_closer(pcm_fd);
  const std::string id = m.value("job_id", "");
  if (id.empty()) {
    Send(ErrorMessage("", RunnerErrorKind::kBadInput, "transcribe needs a job_id"));
    return;
  }
  auto params = engine::DecodeParamsFromJson(m.value("params", json::object()));
  if (!params) {
    Send(ErrorMessage(id, RunnerErrorKind::kBadInput, params.error().message));
    return;
  }
  if (auto live = m.find("live"); live != m.end() && !live->is_null()) {
    StartLive(m, id, *params);
    return;
  }
  std::optional<ChunkWork> chunk;  // one step of a chunked job (chunk_steps.h)
  if (auto c = m.find("chunk"); c != m.end() && !c->is_null()) {
    auto work = ChunkWorkFromJson(*c);
    if (!work.ok()) {
      Send(ErrorMessage(id, RunnerErrorKind::kBadInput, work.error().message));
      return;
    }
    chunk = std::move(work).value();
  }
  std::future<Result<std::vector<float>>> decoded;  // its samples, decoded ahead
  if (pcm_fd >= 0) {
    // Decoded by the server already: read here, before the job claims a stream.
    std::promise<Result<std::vector<float>>> samples;
    samples.set_value(audio::ReadSharedPcm(pcm_fd, m.value("pcm_samples", size_t{0})));
    decoded = samples.get_future();
  }
  auto job = std::make_shared<Job>();
  job->id = id;
  if (double timeout_s = m.value("timeout_s", 0.0); timeout_s > 0) {
    job->deadline = Clock::now() + std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6));
  }
  std::lock_guard<std::mutex> lock(mu_);
  Slot* free_slot = SlotForLocked(id);
  if (!free_slot) return;
  free_slot->busy = true;
  jobs_[id] = job;
  ++active_;
  audio::MediaFile input(m.value("audio_path", ""), m.value("audio_name", ""));
  if (auto it = prefetched_.find({input.path, input.name});
      !decoded.valid() && it != prefetched_.end()) {  // decoded while the model loaded
    decoded = std::move(it->second);
    prefetched_.erase(it);
  }
  std::thread(&Runner::RunJob, this, free_slot, job, std::move(input), *params, std::move(chunk),
              std::move(decoded))
      .detach();
}

Slot* Runner::SlotForLocked(const std::string& id) {
  if (jobs_.count(id)) {
    Send(ErrorMessage(id, RunnerErrorKind::kBadInput, "job " + id + " is already running here"));
    return nullptr;
  }
  Slot* slot = FreeSlotLocked();
  if (!slot) Send(ErrorMessage(id, RunnerErrorKind::kInternal, "no free stream on this runner"));
  return slot;
}

Slot* Runner::FreeSlotLocked() {
  for (auto& s : slots_) {
    if (!s->busy) return s.get();
  }
  return nullptr;
}

void Runner::StartLive(const json& m, const std::string& id, const engine::DecodeParams& params) {
  auto settings = live::SettingsFromJson(m["live"]);
  if (!settings) {
    Send(ErrorMessage(id, RunnerErrorKind::kBadInput, settings.error().message));
    return;
  }
  LiveOptions options;
  options.params = params;
  options.settings = std::move(settings).value();
  options.vad_model_path = m.value("vad_model_path", "");
  options.max_buffer_ms = std::max<int64_t>(1, m.value("live_max_buffer_ms", kLiveMaxBufferMs));
  std::lock_guard<std::mutex> lock(mu_);
  Slot* slot = SlotForLocked(id);
  if (!slot) return;
  auto job = std::make_shared<Job>();
  job->id = id;  // no deadline: a session lasts as long as its client keeps it
  job->live = std::make_shared<LiveItem>(
      *slot->stream, std::move(options), [this, id](const live::Event& e) {
        Send({{"type", "segment"}, {"job_id", id}, {"segment", live::EventToJson(e)}});
      });
  slot->busy = true;
  jobs_[id] = job;
  ++active_;
  std::thread(&Runner::RunLive, this, slot, job).detach();
}

void Runner::RunLive(Slot* slot, std::shared_ptr<Job> job) {
  const auto started = Clock::now();
  const Status st = job->live->Run();
  json outcome;
  if (st) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    outcome = DoneMessage(job->id, ms,
                          {{"items", job->live->items()}, {"audio_ms", job->live->audio_ms()}});
  } else {
    outcome = ErrorMessage(job->id, ErrorKindForProtocol(st.error().kind), st.error().message);
  }
  Finish(slot, *job, outcome);
}

void Runner::Feed(const json& m) {
  std::shared_ptr<LiveItem> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(m.value("job_id", ""));
    if (it != jobs_.end()) live = it->second->live;
  }
  if (!live) {
    spdlog::debug("runner: input for job {} dropped: no live job of that id runs here",
                  m.value("job_id", ""));
    return;
  }
  auto input = live::InputFromJson(m.value("input", json::object()));
  if (!input) {
    live->Refuse(input.error().code, input.error().message);
    return;
  }
  live->Push(std::move(input).value());
}

json Runner::Outcome(Slot* slot, Job& job, const audio::MediaFile& input,
                     const engine::DecodeParams& params, const std::optional<ChunkWork>& chunk,
                     std::future<Result<std::vector<float>>> decoded) {
  const auto started = Clock::now();
  auto done = [&](json result) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    return DoneMessage(job.id, ms, std::move(result));
  };
  auto should_abort = [&job] { return job.cancel.load() || Clock::now() >= job.deadline; };
  auto failed = [&job, &should_abort](const Error& e) {
    if (e.kind == ErrorKind::kCancelled && !job.cancel && should_abort()) {
      return ErrorMessage(job.id, RunnerErrorKind::kTimeout, "the job ran past its timeout");
    }
    return ErrorMessage(job.id, ErrorKindForProtocol(e.kind), e.message);
  };
  if (chunk && chunk->step == ChunkWork::Step::kPlan) {
    auto plan = RunPlan(*slot->stream, input, params, *chunk, should_abort);
    if (!plan) return failed(plan.error());
    return done(std::move(plan).value());
  }
  int last_percent = -1;
  engine::StreamCallbacks cb;
  cb.on_progress = [&](int percent) {
    if (percent == last_percent) return;
    last_percent = percent;
    Send({{"type", "progress"}, {"job_id", job.id}, {"percent", percent}});
  };
  cb.on_segment = [&](const engine::Segment& s) {
    Send({{"type", "segment"},
          {"job_id", job.id},
          {"segment", {{"id", s.id}, {"start", s.start}, {"end", s.end}, {"text", s.text}}}});
  };
  cb.should_abort = should_abort;
  Result<engine::Transcript> t = Error(ErrorKind::kInternal, "not_run", "not run");
  if (chunk) {
    t = RunChunk(*slot->stream, *chunk, params, cb);
  } else {
    auto pcm = decoded.valid() ? decoded.get() : audio::Decode(input);
    if (!pcm) {
      return ErrorMessage(job.id, ErrorKindForProtocol(pcm.error().kind), pcm.error().message);
    }
    t = slot->stream->Run(*pcm, params, cb);
  }
  if (t) return done(engine::ToVerboseJson(*t));
  return failed(t.error());
}

void Runner::RunJob(Slot* slot, std::shared_ptr<Job> job, audio::MediaFile input,
                    engine::DecodeParams params, std::optional<ChunkWork> chunk,
                    std::future<Result<std::vector<float>>> decoded) {
  Finish(slot, *job, Outcome(slot, *job, input, params, chunk, std::move(decoded)));
}

void Runner::Finish(Slot* slot, const Job& job, const json& outcome) {
  {
    // The stream is free before the supervisor hears the outcome, so a job it sends in reply
    // always finds a slot.
    std::lock_guard<std::mutex> lock(mu_);
    slot->busy = false;
    jobs_.erase(job.id);
    ++jobs_done_;
  }
  Send(outcome);
  std::lock_guard<std::mutex> lock(mu_);
  --active_;  // last: Shutdown() waits for this before the runner's state goes away
  cv_.notify_all();
}

void Runner::HeartbeatLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(heartbeat_ms_));
    if (stopping_) break;
    int busy = 0;
    for (const auto& s : slots_) busy += s->busy ? 1 : 0;
    json beat = {{"type", "heartbeat"},
                 {"busy", busy},
                 {"streams", slots_.size()},
                 {"jobs_done", jobs_done_}};
    lock.unlock();  // a slow reader must not stall jobs that finish meanwhile
    beat["rss_bytes"] = ResidentBytes();
    Send(beat);
    lock.lock();
  }
}

int Runner::Shutdown(int code) {
  std::unique_lock<std::mutex> lock(mu_);
  stopping_ = true;
  for (auto& [id, job] : jobs_) job->Cancel();
  cv_.notify_all();
  cv_.wait(lock, [this] { return active_ == 0; });
  lock.unlock();
  if (heartbeat_.joinable()) heartbeat_.join();
  if (prefetch_.joinable()) prefetch_.join();
  return code;
}

int Runner::Main() {
  bool loaded = false;
  for (;;) {
    auto m = reader_.Read(-1);
    if (!m) {
      if (m.error().code == "peer_closed") return Shutdown(0);  // the supervisor is gone
      spdlog::error("runner: closing the connection: {}", m.error().message);
      return Shutdown(2);
    }
    const std::string type = (*m)["type"].get<std::string>();
    // A frame that carries a descriptor takes it now, whatever becomes of the frame, so that
    // the next such frame takes its own.
    const int pcm_fd = m->contains("pcm_samples") ? reader_.TakeFd() : -1;
    const UniqueFd pcm_closer(type == "transcribe" && loaded ? -1 : pcm_fd);
    if (type == "exit") return Shutdown(0);
    if (type == "load") {
      if (loaded) {
        Send(ErrorMessage("", RunnerErrorKind::kBadInput, "this runner already has a model"));
        continue;
      }
      if (!Load(*m)) return Shutdown(3);
      loaded = true;
      heartbeat_ = std::thread(&Runner::HeartbeatLoop, this);
    } else if (!loaded) {
      Send(ErrorMessage((*m).value("job_id", ""), RunnerErrorKind::kBadInput,
                        "no model loaded yet"));
    } else if (type == "transcribe") {
      StartJob(*m, pcm_fd);
    } else if (type == "cancel") {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = jobs_.find((*m).value("job_id", "")); it != jobs_.end()) it->second->Cancel();
    } else if (type == "feed") {
      Feed(*m);
    } else if (type == "set_streams") {
      SetStreams(*m);
    } else {
      Send(ErrorMessage("", RunnerErrorKind::kBadInput, "unknown message type '" + type + "'"));
    }
  }
}

}  // namespace

int RunnerMain(int fd) {
  Runner runner(fd);
  return runner.Main();
}

}  // namespace steno::runner
