#include "api/http_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "api/client_uploads.h"
#include "api/routes.h"

namespace steno::api {
namespace {

using Clock = std::chrono::steady_clock;

// cpp-httplib's task queue, elastic: `min` threads at start; when queued connections have found
// no thread for kGrace and no thread took one meanwhile (every thread is held: SSE, synchronous
// waits, keep-alive, slow uploads), one more thread for each of them, up to `max`. While threads
// keep taking connections, none are added: a burst of short requests (hundreds of connections
// refused at once, see ClientUploads) is served by the threads there are instead of spawning
// one each. Threads are not retired (an idle one costs a stack
// of untouched pages), so a burst is served at once the next time too.
class ElasticPool final : public httplib::TaskQueue {
 public:
  static constexpr auto kGrace = std::chrono::milliseconds(2);

  ElasticPool(size_t min, size_t max) : max_(std::max<size_t>(1, max)) {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < std::min(min, max_); ++i) SpawnLocked();
    spawner_ = std::thread([this] { Spawn(); });
  }
  ~ElasticPool() override = default;

  void enqueue(std::function<void()> fn) override {
    bool short_of_threads = false;
    {
      std::lock_guard lock(mu_);
      jobs_.push_back({std::move(fn), Clock::now()});
      short_of_threads = idle_ + starting_ < jobs_.size();
    }
    cv_.notify_one();
    if (short_of_threads) spawn_cv_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      shutdown_ = true;
    }
    cv_.notify_all();
    spawn_cv_.notify_all();
    spawner_.join();
    for (auto& t : threads_) t.join();
  }

 private:
  struct Job {
    std::function<void()> fn;
    Clock::time_point queued;
  };

  void SpawnLocked() {
    ++starting_;
    threads_.emplace_back([this] { Work(); });
  }

  // The spawner thread (see the class comment).
  void Spawn() {
    std::unique_lock lock(mu_);
    while (!shutdown_) {
      const size_t coming = idle_ + starting_;  // threads that will take the first queued jobs
      if (jobs_.size() <= coming) {
        spawn_cv_.wait(lock);
        continue;
      }
      const auto now = Clock::now();
      const auto due = std::max(jobs_[coming].queued, last_taken_) + kGrace;
      if (now < due) {
        spawn_cv_.wait_until(lock, due);
      } else if (threads_.size() < max_) {
        for (size_t i = coming; i < jobs_.size() && jobs_[i].queued + kGrace <= now; ++i) {
          if (threads_.size() < max_) SpawnLocked();
        }
      } else {
        if (Clock::now() - last_warning_ > std::chrono::seconds(60)) {
          last_warning_ = Clock::now();
          spdlog::warn(
              "all {} HTTP worker threads are busy: new connections wait (raise "
              "--max-connections)",
              max_);
        }
        spawn_cv_.wait_for(lock, std::chrono::milliseconds(100));
      }
    }
  }

  void Work() {
    std::unique_lock lock(mu_);
    --starting_;
    for (;;) {
      ++idle_;
      cv_.wait(lock, [&] { return shutdown_ || !jobs_.empty(); });
      --idle_;
      if (jobs_.empty()) return;  // shutting down and nothing left
      auto fn = std::move(jobs_.front().fn);
      jobs_.pop_front();
      last_taken_ = Clock::now();
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  const size_t max_;
  std::mutex mu_;               // guards everything below but max_ and the threads' own stacks
  std::condition_variable cv_;  // workers: a job or shutdown
  std::condition_variable spawn_cv_;  // the spawner: a job may lack a thread, or shutdown
  std::deque<Job> jobs_;
  std::vector<std::thread> threads_;
  std::thread spawner_;
  size_t idle_ = 0, starting_ = 0;
  bool shutdown_ = false;
  Clock::time_point last_taken_{};  // when a thread last took a queued connection
  Clock::time_point last_warning_{};
};

// The library listens with a backlog of 5 (compiled in); a burst of hundreds of clients would
// see SYNs dropped and retried a second later. listen() again on the bound socket raises it.
class ApiHttpServer : public httplib::Server {
 public:
  void RaiseBacklog(int backlog) {
    const int fd = static_cast<int>(svr_sock_);
    if (fd >= 0 && ::listen(fd, backlog) != 0) {
      spdlog::warn("cannot raise the listen backlog to {}", backlog);
    }
  }
};

bool HasBody(const httplib::Request& req) {
  if (req.has_header("Transfer-Encoding")) return true;
  if (!req.has_header("Content-Length")) return false;
  return req.get_header_value("Content-Length") != "0";
}

std::string UrlOf(const std::string& host, int port) {
  const bool v6 = host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// The URL other nodes and browsers reach this server at: the listening address, or this
// machine's host name when it listens on every address (0.0.0.0 or ::).
std::string AdvertisedUrl(const std::string& host, int port) {
  if (host == "0.0.0.0" || host == "::" || host.empty()) {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) == 0 && name[0] != '\0') return UrlOf(name, port);
  }
  return UrlOf(host, port);
}

// The upload slot (ClientUploads) of the request this worker thread is reading: taken in the
// pre-routing hook, handed back once its body is read, at the latest once its response is written.
// One per thread: a worker serves one request at a time, hook to response.
std::optional<ClientUploads::Slot>& CurrentUploadSlot() {
  thread_local std::optional<ClientUploads::Slot> slot;
  return slot;
}

// `inner`, and once the body is read or the read failed, the request's upload slot is handed back.
// A read that failed though the route took every byte, with no bytes for `idle` before it, timed
// out: the call is marked body_timed_out (408).
httplib::ContentReader TimedReader(const httplib::ContentReader& inner, Call& call,
                                   Clock::duration idle) {
  struct Watch {
    Clock::time_point last_bytes = Clock::now();
    bool refused = false;  // the route's receiver stopped the read
  };
  auto finish = [&call, idle](bool ok, const Watch& w) {
    CurrentUploadSlot().reset();
    if (!ok && !w.refused && Clock::now() - w.last_bytes >= idle) call.body_timed_out = true;
    return ok;
  };
  auto watched = [](Watch& w, const httplib::ContentReceiver& receiver) {
    return [&w, &receiver](const char* data, size_t n) {
      w.last_bytes = Clock::now();
      if (receiver(data, n)) return true;
      w.refused = true;
      return false;
    };
  };
  return httplib::ContentReader(
      [&inner, finish, watched](httplib::ContentReceiver receiver) {
        Watch w;
        return finish(inner(watched(w, receiver)), w);
      },
      [&inner, finish, watched](httplib::MultipartContentHeader header,
                                httplib::ContentReceiver receiver) {
        Watch w;
        auto on_header = [&w, &header](const httplib::MultipartFormData& file) {
          if (header(file)) return true;
          w.refused = true;
          return false;
        };
        return finish(inner(on_header, watched(w, receiver)), w);
      });
}

// The request's API key as an Authorization value: the header, or, for a WebSocket upgrade
// without one, what OpenAI's browser client sends instead (browsers cannot set headers on a
// WebSocket): the subprotocol `openai-insecure-api-key.KEY`.
std::string AuthorizationOf(const httplib::Request& req) {
  std::string header = req.get_header_value("Authorization");
  if (!header.empty() || !req.has_header("Sec-WebSocket-Protocol")) return header;
  const std::string offered = req.get_header_value("Sec-WebSocket-Protocol");
  const std::string prefix = "openai-insecure-api-key.";
  size_t at = offered.find(prefix);
  if (at == std::string::npos) return header;
  at += prefix.size();
  const size_t end = offered.find_first_of(", ", at);
  return "Bearer " + offered.substr(at, end == std::string::npos ? end : end - at);
}

RealtimeOptions RealtimeOptionsOf(const HttpOptions& o) {
  RealtimeOptions r = o.realtime;
  r.default_model = o.default_model;
  return r;
}

std::string MessageForStatus(int status) {
  switch (status) {
    case 400: return "malformed HTTP request";
    case 404: return "no such route";
    case 413: return "request body too large";
    case 414: return "request URI too long";
    default: return "request failed";
  }
}

}  // namespace

struct HttpServer::Impl {
  HttpOptions options;
  std::shared_ptr<LiveHttpOptions> live = std::make_shared<LiveHttpOptions>(options);
  server::JobService& service;
  ClientUploads uploads{options.max_connections_per_client};
  std::atomic<int64_t> last_refusal_log{0};  // steady-clock seconds of the last 429 logged
  PathPolicy paths;
  std::atomic<bool> stopping{false};
  MemoryHistory history;
  SnapshotCache snapshots;
  std::string url;  // what the node publishes (AdvertisedUrl)
  RealtimeService realtime;
  Context ctx;
  ApiRouter router;
  ApiHttpServer svr;
  std::thread thread;
  int port = 0;
  std::once_flag stop_once;

  Impl(HttpOptions o, server::JobService& s, PathPolicy p)
      : options(std::move(o)),
        service(s),
        paths(std::move(p)),
        realtime(RealtimeOptionsOf(options), s.sessions()),
        ctx{service, options, *live, paths, stopping, history, snapshots, url, realtime} {}

  void AddCors(const httplib::Request& req, httplib::Response& res) const {
    if (options.cors_origin.empty()) return;
    const std::string origin = req.get_header_value("Origin");
    if (options.cors_origin == "*") {
      res.set_header("Access-Control-Allow-Origin", "*");
    } else if (origin == options.cors_origin) {
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Vary", "Origin");
    } else {
      return;
    }
    res.set_header("Access-Control-Expose-Headers", "Location, Retry-After, X-Steno-Job-Id");
  }

  void Dispatch(const httplib::Request& req, httplib::Response& res,
                const httplib::ContentReader* reader) {
    const auto start = Clock::now();
    std::string label = "unmatched";
    Handle(req, res, reader, label);
    CurrentUploadSlot().reset();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    service.metrics().OnHttpRequest(label, req.method, res.status < 0 ? 200 : res.status, seconds);
    spdlog::debug("{} {} -> {} ({:.1f} ms)", req.method, label, res.status, seconds * 1000);
  }

  // The pre-routing hook: the headers are read, no byte of the body yet. A request with a body
  // takes one of its client's upload slots, or is refused at once with 429 and its connection
  // closed, which frees its thread (ClientUploads). False: refused, `res` is the answer.
  bool Admit(const httplib::Request& req, httplib::Response& res) {
    auto& slot = CurrentUploadSlot();
    slot.reset();
    if (!HasBody(req)) return true;
    slot = uploads.TryAcquire(req.remote_addr);
    if (slot) return true;
    const std::string bound = std::to_string(uploads.per_client());
    AddCors(req, res);
    ApiError e = MakeApiError(
        429, "too_many_uploads",
        "this client already has " + bound +
            " requests sending their body (--max-connections-per-client); retry when one is done");
    e.retry_after_s = 1;
    SendErrorAndClose(res, e);
    service.metrics().OnHttpRequest("unmatched", req.method, 429, 0);
    const int64_t now_s =
        std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
    int64_t last = last_refusal_log.load();
    if (now_s - last >= 60 && last_refusal_log.compare_exchange_strong(last, now_s)) {
      spdlog::warn("refusing requests from {}: {} of its requests are already sending a body",
                   req.remote_addr, bound);
    }
    return false;
  }

  // Checks made before any body is read (also answering `Expect: 100-continue`, so a client
  // that waits for it never sends a body that would be refused). nullopt: go on.
  std::optional<ApiError> Guard(const httplib::Request& req, const ApiRouter::Match& match,
                                httplib::Response& res) const {
    if (static_cast<int>(req.headers.size()) > options.max_headers) {
      return MakeApiError(431, "headers_too_large", "the request has too many header fields");
    }
    // Multipart framing adds a little to the file; the upload's own limit is exact.
    const uint64_t body_limit = static_cast<uint64_t>(options.max_upload_bytes) + (1 << 20);
    if (HasBody(req) && ContentLength(req) > body_limit) {
      return MakeApiError(413, "payload_too_large",
                          "the request body is larger than this server accepts (" +
                              std::to_string(options.max_upload_bytes) + " bytes)");
    }
    if (req.method == "OPTIONS") return std::nullopt;
    if (!match.route) {
      if (!match.allow.empty()) {
        res.set_header("Allow", match.allow);
        return MakeApiError(405, "method_not_allowed",
                            req.method + " is not allowed here; use " + match.allow);
      }
      return MakeApiError(404, "route_not_found", "no such route: " + req.path);
    }
    if (match.route->is_public) return std::nullopt;
    switch (options.keys.Check(AuthorizationOf(req))) {
      case ApiKeys::Verdict::kOk: return std::nullopt;
      case ApiKeys::Verdict::kMissing:
        res.set_header("WWW-Authenticate", "Bearer");
        return MakeApiError(401, "missing_api_key",
                            "this server requires an API key: Authorization: Bearer KEY");
      case ApiKeys::Verdict::kInvalid:
        res.set_header("WWW-Authenticate", "Bearer");
        return MakeApiError(401, "invalid_api_key", "the API key is not valid");
    }
    return std::nullopt;
  }

  void Handle(const httplib::Request& req, httplib::Response& res,
              const httplib::ContentReader* reader, std::string& label) {
    AddCors(req, res);
    auto match = router.Find(req.method, req.path);
    Call call{req, res, reader, {}};
    std::optional<httplib::ContentReader> timed;
    if (reader) {
      const auto idle = std::chrono::milliseconds(int64_t{options.read_timeout_s} * 900);
      call.reader = &timed.emplace(TimedReader(*reader, call, idle));
    }
    const bool has_body = HasBody(req);
    auto reject = [&](const ApiError& e) {
      // Read what the client is sending anyway (bounded), so it reads this answer.
      const bool drained = has_body && DrainBody(call);
      SendError(res, e);
      if (has_body && !drained) CloseAfter(res);
    };
    if (has_body && !reader) {
      // GET and friends: the library never reads their body; it must not be taken for the
      // next request on this connection.
      SendErrorAndClose(
          res, MakeApiError(400, "unexpected_body", req.method + " requests take no body"));
      return;
    }
    if (auto e = Guard(req, match, res)) return reject(*e);
    if (req.method == "OPTIONS") {
      res.status = 204;
      res.set_header("Allow", match.allow + ", OPTIONS");
      if (!options.cors_origin.empty()) {
        res.set_header("Access-Control-Allow-Methods", match.allow + ", OPTIONS");
        res.set_header("Access-Control-Allow-Headers",
                       "Authorization, Content-Type, Idempotency-Key");
        res.set_header("Access-Control-Max-Age", "600");
      }
      return;
    }
    label = match.route->pattern;
    call.params = std::move(match.params);
    try {
      match.route->handler(call);
    } catch (const std::exception& e) {
      spdlog::error("{} {} failed: {}", req.method, label, e.what());
      res = httplib::Response();
      AddCors(req, res);
      return SendErrorAndClose(res, MakeApiError(500, "internal_error", "internal error"));
    }
    if (has_body && !call.consumed && !DrainBody(call)) CloseAfter(res);
  }

  int Expect100(const httplib::Request& req, httplib::Response& res) {
    auto match = router.Find(req.method, req.path);
    if (auto e = Guard(req, match, res)) {
      AddCors(req, res);
      // The client may send the body anyway: it must not be read as the next request.
      SendErrorAndClose(res, *e);
      service.metrics().OnHttpRequest("unmatched", req.method, e->status, 0);
      return e->status;
    }
    return 100;
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  Stop();
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(HttpOptions options,
                                                      server::JobService& service) {
  auto paths = PathPolicy::Create(options.allow_paths);
  if (!paths.ok()) return paths.error();
  if (options.max_connections < 1 || options.max_connections > 100'000) {
    return Error(ErrorKind::kBadInput, "bad_max_connections",
                 "--max-connections must be from 1 to 100000");
  }
  if (options.read_timeout_s < 1) {
    return Error(ErrorKind::kBadInput, "bad_read_timeout", "--read-timeout must be positive");
  }
  if (options.max_upload_bytes < 1) {
    return Error(ErrorKind::kBadInput, "bad_max_upload", "--max-upload-bytes must be positive");
  }
  auto impl = std::make_unique<Impl>(std::move(options), service, std::move(paths.value()));
  Impl* p = impl.get();
  const auto& o = p->options;

  AddOpenAiRoutes(p->router, p->ctx);
  AddJobRoutes(p->router, p->ctx);
  AddModelRoutes(p->router, p->ctx);
  AddMonitorRoutes(p->router, p->ctx);
  AddEventRoutes(p->router, p->ctx);
  AddDashboardRoutes(p->router, p->ctx);
  AddClusterRoutes(p->router, p->ctx);
  AddSpeechRoutes(p->router, p->ctx);
  AddServerProxyRoutes(p->router, p->ctx);
  AddRealtimeRoutes(p->router, p->ctx);
  p->history.Start([p] { return p->service.runners().Snapshot().devices; },
                   [] { return UnixMillis(); });

  auto& svr = p->svr;
  const size_t min_threads = static_cast<size_t>(std::max(1, o.min_threads));
  const size_t max_threads = static_cast<size_t>(o.max_connections);
  svr.new_task_queue = [min_threads, max_threads] {
    return new ElasticPool(min_threads, max_threads);
  };
  svr.set_read_timeout(o.read_timeout_s, 0);
  svr.set_write_timeout(o.write_timeout_s, 0);
  svr.set_keep_alive_timeout(o.keep_alive_timeout_s);
  svr.set_keep_alive_max_count(static_cast<size_t>(std::max(1, o.keep_alive_max_count)));
  svr.set_payload_max_length(static_cast<size_t>(o.max_upload_bytes) + (1 << 20));
  svr.set_tcp_nodelay(true);
  // The library's default adds SO_REUSEPORT, which would let a second server bind the same port
  // and silently take half the connections. Only SO_REUSEADDR (restart over TIME_WAIT).
  svr.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });

  auto plain = [p](const httplib::Request& req, httplib::Response& res) {
    p->Dispatch(req, res, nullptr);
  };
  auto with_body = [p](const httplib::Request& req, httplib::Response& res,
                       const httplib::ContentReader& reader) { p->Dispatch(req, res, &reader); };
  svr.Get(".*", plain);
  svr.Options(".*", plain);
  svr.Delete(".*", plain);
  svr.Post(".*", with_body);
  svr.Put(".*", with_body);
  svr.Patch(".*", with_body);
  svr.Delete(".*", with_body);
  // Errors the library answers itself (malformed request line, URI too long, unknown method):
  // give them the same JSON shape. Bodies set by routes are left alone.
  svr.set_error_handler(httplib::Server::HandlerWithResponse(
      [p](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty() || res.content_provider_) {
          return httplib::Server::HandlerResponse::Unhandled;
        }
        p->AddCors(req, res);
        SendError(
            res, MakeApiError(res.status, CodeForStatus(res.status), MessageForStatus(res.status)));
        return httplib::Server::HandlerResponse::Handled;
      }));
  svr.set_pre_routing_handler([p](const httplib::Request& req, httplib::Response& res) {
    return p->Admit(req, res) ? httplib::Server::HandlerResponse::Unhandled
                              : httplib::Server::HandlerResponse::Handled;
  });
  // Every response ends its request's upload slot, also where no route ran (the library's 404).
  svr.set_logger(
      [](const httplib::Request&, const httplib::Response&) { CurrentUploadSlot().reset(); });
  svr.set_expect_100_continue_handler(
      [p](const httplib::Request& req, httplib::Response& res) { return p->Expect100(req, res); });
  svr.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr) {
        spdlog::error("{} {}: unexpected exception", req.method, req.path);
        SendError(res, MakeApiError(500, "internal_error", "internal error"));
      });

  if (o.port == 0) {
    p->port = svr.bind_to_any_port(o.host);
    if (p->port <= 0) p->port = 0;
  } else if (o.port > 0 && o.port < 65536 && svr.bind_to_port(o.host, o.port)) {
    p->port = o.port;
  }
  if (p->port == 0) {
    return Error(ErrorKind::kUnavailable, "bind_failed",
                 "cannot listen on " + o.host + ":" + std::to_string(o.port) +
                     " (address in use, or not an address of this machine)");
  }
  svr.RaiseBacklog(o.listen_backlog);
  // Set before the first request (the listener thread starts below) and never changed.
  p->url = AdvertisedUrl(o.host, p->port);
  p->thread = std::thread([p] {
    if (!p->svr.listen_after_bind() && !p->stopping) spdlog::error("the HTTP listener failed");
  });
  // Stop() must find the listener running, or svr.stop() would be a no-op and the thread would
  // listen forever.
  for (int i = 0; i < 5000 && !svr.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // The node describes itself to a shared store from now on (every publish period, on the
  // service's thread). The describer shares the live options (what DeviceJson reads), never this
  // server: it may outlive it.
  if (server::ClusterMember* cluster = service.cluster()) {
    cluster->SetNodeDescriber([&service, live = p->live, url = p->url] {
      return DescribeNode(service, *live->Get(), url);
    });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Reconfigure(HttpOptions options) {
  impl_->live->Set(std::move(options));
}

int HttpServer::port() const {
  return impl_->port;
}

std::string HttpServer::url() const {
  return UrlOf(impl_->options.host, impl_->port);
}

void HttpServer::Stop() {
  if (!impl_) return;
  std::call_once(impl_->stop_once, [this] {
    impl_->stopping = true;
    impl_->history.Stop();
    impl_->realtime.Stop();  // every live session gets its close frame
    impl_->svr.stop();
    if (impl_->thread.joinable()) impl_->thread.join();
  });
}

}  // namespace steno::api
