#include "api/realtime_service.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "api/realtime_protocol.h"

namespace steno::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using nlohmann::json;
using realtime::ClientEvent;
using realtime::ProtocolError;

namespace {

bool IsAlias(const std::string& model) {
  return model.empty() || model == "whisper-1" || model == "gpt-4o-transcribe" ||
         model == "gpt-4o-mini-transcribe";
}

std::string RandomId(const char* prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}{:016x}", prefix, rng());
}

}  // namespace

class Session;

// Posts from the scheduler's thread (a session's job updates) pass through the gate: none once
// the service stops, so none reaches a stopped pool.
struct Gate {
  std::mutex mu;
  bool open = true;
};

// What every session shares: the options, the supervisor's sessions, the set of open sessions
// (for Stop) and the Asio pool. The io_context is the last member: destroyed first, it destroys
// the handlers it still holds (and their sessions) while the rest is alive.
struct RealtimeService::Impl {
  RealtimeOptions options;
  server::LiveSessions& sessions;
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();

  std::mutex mu;
  std::condition_variable none_open;
  std::set<Session*> live;  // connected sessions
  std::vector<std::thread> threads;
  std::once_flag stop_once;

  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{io.get_executor()};

  Impl(RealtimeOptions o, server::LiveSessions& s) : options(std::move(o)), sessions(s) {}
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(RealtimeService::Impl* svc, UpgradeRequest request)
      : svc_(svc),
        strand_(asio::make_strand(svc_->io)),
        ws_(strand_),
        request_(std::move(request)),
        admit_timer_(strand_),
        idle_timer_(strand_),
        resampler_(std::make_unique<realtime::Resampler>(config_.input_rate)),
        id_(RandomId("sess_")) {
    config_.model = IsAlias(request_.model) ? "" : request_.model;
    std::lock_guard<std::mutex> lock(svc_->mu);
    svc_->live.insert(this);
  }

  // Takes connected socket `fd` of `protocol`.
  void Assign(const tcp& protocol, int fd, beast::error_code& ec) {
    ws_.next_layer().assign(protocol, fd, ec);
  }

  ~Session() {
    std::lock_guard<std::mutex> lock(svc_->mu);
    svc_->live.erase(this);
    if (svc_->live.empty()) svc_->none_open.notify_all();
  }

  void Start() {
    asio::dispatch(strand_, [self = shared_from_this()] { self->DoAccept(); });
  }

  // From any thread: close with `code` (e.g. at shutdown).
  void CloseSoon(websocket::close_code code, std::string reason) {
    asio::post(strand_, [self = shared_from_this(), code, reason = std::move(reason)] {
      self->CloseWith(code, reason);
    });
  }

 private:
  enum class JobState { kNone, kWaiting, kActive, kEnded };
  struct Out {
    std::string text;
    std::optional<websocket::close_reason> close;
  };

  void DoAccept() {
    http::request<http::string_body> req;
    req.method(http::verb::get);
    req.target(request_.target);
    req.version(11);
    std::string protocol;
    for (const auto& [name, value] : request_.headers) {
      req.insert(name, value);
      if (beast::iequals(name, "Sec-WebSocket-Protocol")) {
        // Browsers (the openai package) offer "realtime" beside the key's subprotocol.
        if (value.find("realtime") != std::string::npos) protocol = "realtime";
      }
    }
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator([protocol](websocket::response_type& res) {
      res.set(http::field::server, "steno");
      if (!protocol.empty()) res.set(http::field::sec_websocket_protocol, protocol);
    }));
    // Beast's own bound is a backstop (it resets the connection); the session's is checked as a
    // message arrives (ReadSome), so that one over it is drained and closed properly with 1009.
    ws_.read_message_max(static_cast<size_t>(svc_->options.max_frame_bytes) * kDrainFactor);
    ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) {
      if (ec) {
        spdlog::debug("realtime: the WebSocket handshake failed: {}", ec.message());
        return;
      }
      self->OnOpen();
    });
  }

  void OnOpen() {
    Send(realtime::SessionEvent("transcription_session.created", NextEventId(), config_, id_));
    ArmIdle();
    if (!config_.model.empty()) StartJob();
    Read();
  }

  // Reads the next message piece by piece (at most kReadChunk bytes a time): OnRead gets each
  // whole one; a message over max_frame_bytes is read to its end and dropped, then the session
  // closes with 1009 (its client reads the close frame instead of a reset connection).
  void Read() {
    ws_.async_read_some(
        buf_, kReadChunk, [self = shared_from_this()](beast::error_code ec, size_t) {
          if (ec) return self->OnRead(ec);
          if (self->buf_.size() > static_cast<size_t>(self->svc_->options.max_frame_bytes)) {
            self->oversized_ = true;
            self->buf_.consume(self->buf_.size());
          }
          if (!self->ws_.is_message_done()) return self->Read();
          if (!self->oversized_) return self->OnRead(ec);
          self->oversized_ = false;
          self->Fail(ProtocolError{
              "message_too_big",
              fmt::format("a message is larger than {} bytes", self->svc_->options.max_frame_bytes),
              "", ""});
          self->Cancel();
          self->CloseWith(websocket::close_code::too_big, "message too big");
          self->Read();  // until the close completes
        });
  }

  void OnRead(beast::error_code ec) {
    if (ec) {
      if (ec == websocket::error::message_too_big) {
        spdlog::info("realtime session {}: a message over {} bytes; closed (1009)", id_,
                     svc_->options.max_frame_bytes);
        svc_->sessions.NoteError("message_too_big");
      } else if (ec != websocket::error::closed) {
        spdlog::debug("realtime session {}: connection ended: {}", id_, ec.message());
      }
      Gone();
      return;
    }
    if (!ws_.got_text()) {
      buf_.consume(buf_.size());
      Fail(ProtocolError{"unsupported_frame", "binary frames are not supported: send JSON text", "",
                         ""});
      CloseWith(websocket::close_code::unknown_data, "binary frames are not supported");
      Read();  // until the close completes
      return;
    }
    const std::string text = beast::buffers_to_string(buf_.data());
    buf_.consume(buf_.size());
    if (!closing_) {
      auto parsed = realtime::ParseClientEvent(text);
      if (auto* e = std::get_if<ProtocolError>(&parsed)) {
        Fail(*e);
      } else {
        Handle(std::get<ClientEvent>(std::move(parsed)));
      }
    }
    Read();
  }

  void Handle(ClientEvent e) {
    switch (e.type) {
      case ClientEvent::Type::kUpdate: return OnUpdate(e);
      case ClientEvent::Type::kAppend: {
        ArmIdle();
        if (!EnsureJob(e.event_id)) return;
        Enqueue(AudioInput(resampler_->Convert(e.pcm)), e.event_id);
        return;
      }
      case ClientEvent::Type::kCommit: {
        if (!EnsureJob(e.event_id)) return;
        if (auto rest = resampler_->Flush(); !rest.empty()) {
          Enqueue(AudioInput(std::move(rest)), e.event_id);
        }
        Enqueue(live::Input{live::Input::Op::kCommit, {}, {}}, e.event_id);
        return;
      }
      case ClientEvent::Type::kClear: {
        (void)resampler_->Flush();
        if (job_ == JobState::kWaiting || job_ == JobState::kActive) {
          Enqueue(live::Input{live::Input::Op::kClear, {}, {}}, e.event_id);
        }
        Send(json{{"type", "input_audio_buffer.cleared"}, {"event_id", NextEventId()}});
        return;
      }
      case ClientEvent::Type::kClose: {
        if (job_ == JobState::kActive) {
          // The runner finishes a committed utterance, then ends the job: the close follows.
          Enqueue(live::Input{live::Input::Op::kClose, {}, {}}, e.event_id);
        } else {
          CloseWith(websocket::close_code::normal, "session closed");
          Cancel();
        }
        return;
      }
    }
  }

  void OnUpdate(const ClientEvent& e) {
    const bool started = job_ != JobState::kNone;
    realtime::SessionConfig next = config_;
    realtime::ApplyUpdate(e, next);
    if (IsAlias(next.model)) next.model = config_.model;  // an alias keeps what is chosen
    if (started && next.model != config_.model) {
      Fail(ProtocolError{"session_model_fixed",
                         "the session's model cannot change once its audio started; "
                         "open a new session for another model",
                         "session.input_audio_transcription.model", e.event_id});
      next.model = config_.model;
    }
    if (next.input_rate != config_.input_rate) {
      resampler_ = std::make_unique<realtime::Resampler>(next.input_rate);
    }
    const bool settings_changed = !(next.settings == config_.settings);
    config_ = next;
    // A model named now starts the job (an unknown one is refused, and the model left unset).
    if (!started && !config_.model.empty()) StartJob();
    Send(realtime::SessionEvent("transcription_session.updated", NextEventId(), config_, id_));
    if (started && settings_changed) {
      live::Input in{live::Input::Op::kUpdate, {}, config_.settings};
      Enqueue(std::move(in), e.event_id);
    }
  }

  static live::Input AudioInput(std::vector<int16_t> pcm) {
    return live::Input{live::Input::Op::kAudio, std::move(pcm), {}};
  }

  // The job exists (submitted now with the default model if it must be). False: an error was
  // sent.
  bool EnsureJob(const std::string& event_id) {
    if (job_ == JobState::kWaiting || job_ == JobState::kActive) return true;
    if (job_ == JobState::kEnded) return false;
    if (config_.model.empty()) config_.model = svc_->options.default_model;
    if (config_.model.empty()) {
      Fail(ProtocolError{"model_required",
                         "name a model first: transcription_session.update with "
                         "session.input_audio_transcription.model (this server has no default)",
                         "session.input_audio_transcription.model", event_id});
      return false;
    }
    StartJob();
    return job_ != JobState::kNone;
  }

  void StartJob() {
    std::weak_ptr<Session> weak = weak_from_this();
    auto listener = [weak, gate = svc_->gate](const server::LiveUpdate& u) {
      std::lock_guard<std::mutex> lock(gate->mu);
      if (!gate->open) return;
      if (auto self = weak.lock()) {
        asio::post(self->strand_, [self, u] { self->OnLive(u); });
      }  // `self` is let go under the gate's lock: Stop waits for it
    };
    auto job = svc_->sessions.Start(config_.model, config_.settings, std::move(listener));
    if (!job.ok()) {
      const Error& err = job.error();
      Fail(ProtocolError{
          err.code.empty() ? "session_failed" : err.code, err.message,
          err.code == "model_not_found" ? "session.input_audio_transcription.model" : "", ""});
      config_.model.clear();  // the client may name another
      if (err.kind == ErrorKind::kUnavailable) {
        CloseWith(websocket::close_code::going_away, "the server is shutting down");
      }
      return;
    }
    job_id_ = job->id;
    job_ = JobState::kWaiting;
    waiting_since_ = std::chrono::steady_clock::now();
    admit_timer_.expires_after(std::chrono::milliseconds(
        std::min(RealtimeService::kWaitingNoticeMs, svc_->options.admit_timeout_ms)));
    admit_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->OnAdmitTimer();
    });
  }

  void OnAdmitTimer() {
    if (job_ != JobState::kWaiting || closing_) return;
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - waiting_since_)
                            .count();
    if (waited >= svc_->options.admit_timeout_ms) {
      Fail(ProtocolError{"admission_timeout",
                         fmt::format("no stream of model {} was free within {} ms; try again later",
                                     config_.model, svc_->options.admit_timeout_ms),
                         "", ""});
      Cancel();
      CloseWith(websocket::close_code::try_again_later, "admission timeout");
      return;
    }
    if (!waiting_told_) {
      waiting_told_ = true;
      Send(json{{"type", "steno.session.waiting"},
                {"event_id", NextEventId()},
                {"model", config_.model},
                {"admit_timeout_ms", svc_->options.admit_timeout_ms}});
    }
    admit_timer_.expires_after(std::chrono::milliseconds(svc_->options.admit_timeout_ms - waited));
    admit_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->OnAdmitTimer();
    });
  }

  void OnLive(const server::LiveUpdate& u) {
    switch (u.kind) {
      case server::LiveUpdate::Kind::kAdmitted: {
        if (job_ != JobState::kWaiting) return;
        job_ = JobState::kActive;
        admit_timer_.cancel();
        if (waiting_told_) {
          Send(json{{"type", "steno.session.admitted"},
                    {"event_id", NextEventId()},
                    {"model", config_.model},
                    {"runner_id", u.runner_id},
                    {"device", u.device}});
        }
        for (auto& in : pending_) svc_->sessions.Feed(job_id_, in);
        pending_.clear();
        pending_samples_ = 0;
        return;
      }
      case server::LiveUpdate::Kind::kEvent: {
        if (closing_) return;
        if (u.event.kind == live::Event::Kind::kFailed) {
          svc_->sessions.NoteError(u.event.code.empty() ? "live_failed" : u.event.code);
        }
        if (auto j = realtime::RunnerEventJson(NextEventId(), u.event)) Send(*j);
        return;
      }
      case server::LiveUpdate::Kind::kEnded: return OnEnded(u.job);
    }
  }

  void OnEnded(const Job& job) {
    job_ = JobState::kEnded;
    admit_timer_.cancel();
    if (closing_) return;
    if (job.state == steno::JobState::kCompleted) {
      return CloseWith(websocket::close_code::normal, "session closed");
    }
    const Error err =
        job.error.value_or(Error(ErrorKind::kInternal, "session_ended", "the session's job ended"));
    Fail(ProtocolError{err.code.empty() ? "session_failed" : err.code, err.message, "", ""});
    if (err.kind == ErrorKind::kUnavailable || err.code == "shutting_down") {
      return CloseWith(websocket::close_code::going_away, "the server is shutting down");
    }
    if (job.state == steno::JobState::kCancelled) {
      return CloseWith(websocket::close_code::going_away, "the session was cancelled");
    }
    CloseWith(websocket::close_code::internal_error, "the session failed");
  }

  void Enqueue(live::Input in, const std::string& event_id) {
    if (job_ == JobState::kActive) {
      svc_->sessions.Feed(job_id_, in);
      return;
    }
    if (job_ != JobState::kWaiting) return;
    const int64_t max_samples = svc_->options.max_buffer_ms * live::kSampleRate / 1000;
    if (in.op == live::Input::Op::kAudio) {
      const auto n = static_cast<int64_t>(in.pcm.size());
      if (pending_samples_ + n > max_samples) {
        Fail(ProtocolError{"buffer_full",
                           fmt::format("the session waits for a stream and holds {} ms of audio "
                                       "already; audio dropped",
                                       svc_->options.max_buffer_ms),
                           "audio", event_id});
        return;
      }
      pending_samples_ += n;
    } else if (pending_.size() >= 10'000) {
      Fail(
          ProtocolError{"buffer_full", "too many events while waiting for a stream", "", event_id});
      return;
    }
    pending_.push_back(std::move(in));
  }

  void ArmIdle() {
    idle_timer_.expires_after(std::chrono::milliseconds(svc_->options.idle_timeout_ms));
    idle_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->closing_) return;
      self->Fail(ProtocolError{"idle_timeout",
                               fmt::format("no audio for {} ms: the session is closed",
                                           self->svc_->options.idle_timeout_ms),
                               "", ""});
      self->Cancel();
      self->CloseWith(websocket::close_code::normal, "idle timeout");
    });
  }

  void Cancel() {
    if (job_ == JobState::kWaiting || job_ == JobState::kActive) {
      svc_->sessions.Cancel(job_id_);
    }
  }

  // The client is gone: its job is cancelled at once (the stream is free), timers stop.
  void Gone() {
    gone_ = true;
    closing_ = true;
    Cancel();
    admit_timer_.cancel();
    idle_timer_.cancel();
    out_.clear();
  }

  static constexpr size_t kReadChunk = 64 * 1024;
  static constexpr size_t kDrainFactor = 16;

  void Fail(const ProtocolError& e) {
    svc_->sessions.NoteError(e.code);
    Send(realtime::ErrorEvent(NextEventId(), e));
  }

  void Send(const json& event) {
    if (closing_ || gone_) return;
    Push(Out{event.dump(), std::nullopt});
  }

  void CloseWith(websocket::close_code code, const std::string& reason) {
    if (closing_) return;
    closing_ = true;
    idle_timer_.cancel();
    admit_timer_.cancel();
    Push(Out{"", websocket::close_reason(code, reason)});
  }

  void Push(Out out) {
    queued_bytes_ += out.text.size();
    out_.push_back(std::move(out));
    if (queued_bytes_ > RealtimeService::kMaxQueuedBytes && !out_.back().close) {
      // The client reads too slowly: no more events are kept for it.
      out_.clear();
      queued_bytes_ = 0;
      svc_->sessions.NoteError("client_too_slow");
      Cancel();
      closing_ = true;
      out_.push_back(Out{"", websocket::close_reason(websocket::close_code::policy_error,
                                                     "events were not read in time")});
    }
    if (!writing_) WriteNext();
  }

  // Writes the queue's next message (taken off the queue as it starts), then the next.
  void WriteNext() {
    if (out_.empty() || gone_) {
      writing_ = false;
      return;
    }
    writing_ = true;
    Out next = std::move(out_.front());
    out_.pop_front();
    queued_bytes_ -= std::min(queued_bytes_, next.text.size());
    auto self = shared_from_this();
    if (next.close) {
      ws_.async_close(*next.close, [self](beast::error_code) {
        self->out_.clear();
        self->writing_ = false;
        self->Cancel();  // a job still running ends with the session
      });
      return;
    }
    writing_text_ = std::move(next.text);
    ws_.text(true);
    ws_.async_write(asio::buffer(writing_text_), [self](beast::error_code ec, size_t) {
      if (ec) {
        self->writing_ = false;
        self->Gone();
        return;
      }
      self->WriteNext();
    });
  }

  std::string NextEventId() { return fmt::format("event_{}_{}", id_.substr(5, 8), ++events_); }

  RealtimeService::Impl* svc_;  // outlives every session (its io_context holds them)
  asio::strand<asio::io_context::executor_type> strand_;
  websocket::stream<tcp::socket> ws_;
  UpgradeRequest request_;
  asio::steady_timer admit_timer_;
  asio::steady_timer idle_timer_;
  realtime::SessionConfig config_;
  std::unique_ptr<realtime::Resampler> resampler_;
  const std::string id_;
  beast::flat_buffer buf_;

  std::deque<Out> out_;
  std::string writing_text_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closing_ = false;    // a close is queued or done: no more events are sent
  bool gone_ = false;       // the connection ended
  bool oversized_ = false;  // the message being read is over max_frame_bytes: dropped

  JobState job_ = JobState::kNone;
  std::string job_id_;
  std::chrono::steady_clock::time_point waiting_since_;
  bool waiting_told_ = false;
  std::deque<live::Input> pending_;  // before admission, in order
  int64_t pending_samples_ = 0;
  int64_t events_ = 0;
};

RealtimeService::RealtimeService(RealtimeOptions options, server::LiveSessions& sessions)
    : impl_(std::make_unique<Impl>(std::move(options), sessions)) {
  const int n = std::max(1, impl_->options.threads);
  for (int i = 0; i < n; ++i) {
    impl_->threads.emplace_back([impl = impl_.get()] {
      for (;;) {
        try {
          impl->io.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("realtime: a session's handler failed: {}", e.what());
        }
      }
    });
  }
}

RealtimeService::~RealtimeService() {
  Stop();
}

void RealtimeService::Accept(int fd, UpgradeRequest request) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(impl_->gate->mu);
    if (!impl_->gate->open) {
      ::close(fd);
      return;
    }
  }
  auto session = std::make_shared<Session>(impl_.get(), std::move(request));
  beast::error_code ec;
  session->Assign(addr.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) {
    spdlog::warn("realtime: cannot take over the connection: {}", ec.message());
    ::close(fd);
    return;
  }
  session->Start();
}

int RealtimeService::open_sessions() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return static_cast<int>(impl_->live.size());
}

void RealtimeService::Stop() {
  std::call_once(impl_->stop_once, [this] {
    Impl& s = *impl_;
    std::vector<std::shared_ptr<Session>> open;
    {
      std::lock_guard<std::mutex> lock(s.gate->mu);
      s.gate->open = false;
    }
    // Every session closes (1001), on its strand; waiting for the set to empty waits for their
    // close frames (a session leaves it once its last handler is done).
    {
      std::unique_lock<std::mutex> lock(s.mu);
      for (Session* session : s.live) {
        // Alive while in the set (its destructor takes the lock to leave it).
        if (auto p = session->weak_from_this().lock()) open.push_back(std::move(p));
      }
    }
    for (auto& session : open) {
      session->CloseSoon(websocket::close_code::going_away, "the server is shutting down");
    }
    open.clear();
    {
      std::unique_lock<std::mutex> lock(s.mu);
      s.none_open.wait_for(lock, std::chrono::seconds(3), [&s] { return s.live.empty(); });
    }
    s.work.reset();  // (a session still open after the wait is dropped with the pool)
    s.io.stop();
    for (auto& t : s.threads) t.join();
  });
}

}  // namespace steno::api
