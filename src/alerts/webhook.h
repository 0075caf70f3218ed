// WebhookNotifier: POSTs alert transitions as JSON (alert_types.h ToJson: one transition per
// request) to a configured URL, from its own thread, so an alert never waits on the network.
//
// Promises:
//   - Notify() never blocks on I/O: it appends to a bounded queue and returns. When the queue
//     is full the oldest waiting payload is dropped (counted in stats().dropped, logged), so a
//     dead endpoint cannot grow memory without bound and the newest state wins.
//   - Payloads are delivered one at a time, in the order queued.
//   - A connection error, a timeout, HTTP 5xx or 429 is retried: up to max_attempts tries in
//     all, waiting backoff_base_ms × 2^(k-1) (capped at backoff_max_ms) before try k+1. Any
//     other answer outside 2xx (4xx, 3xx: redirects are not followed) is final: the payload is
//     given up at once, since sending the same body again cannot fix it.
//   - A receiver may see a payload twice (it answered 5xx after acting on it): match on
//     ("key", "status", "started_ms") to deduplicate.
//   - Logs never hold secrets: the URL is logged as scheme://host[:port]/path only (its query
//     string, user info and fragment may carry tokens), and extra headers are never logged.
//   - Stop(deadline) stops taking payloads, keeps delivering the queued ones until the queue is
//     empty or the deadline passes, then abandons the rest (an attempt in flight is aborted
//     within about a second: libcurl's progress callback) and joins the thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "alerts/alert_types.h"
#include "core/result.h"

namespace steno::alerts {

struct WebhookOptions {
  std::string url;                   // http:// or https://
  std::vector<std::string> headers;  // extra "Name: value" lines, e.g. an Authorization token
  int max_attempts = 5;
  int64_t backoff_base_ms = 500;  // 0.5 s, 1 s, 2 s, 4 s between the 5 tries
  int64_t backoff_max_ms = 30'000;
  int64_t timeout_ms = 5'000;  // per try, connecting included
  size_t queue_capacity = 256;
};

struct WebhookStats {
  int64_t queued = 0;     // accepted by Notify
  int64_t delivered = 0;  // answered 2xx
  int64_t failed = 0;     // given up: a final answer, or every try failed
  int64_t dropped = 0;    // never tried to the end: the queue overflowed or Stop abandoned it
  int64_t attempts = 0;   // HTTP requests made (tries), delivered or not
};

class WebhookNotifier {
 public:
  // Validates the options (kBadInput "bad_webhook": the URL is not http(s) with a host, or a
  // number is out of range) and starts the delivery thread.
  static Result<std::unique_ptr<WebhookNotifier>> Create(WebhookOptions options);
  ~WebhookNotifier();  // Stop(2 s) if not stopped yet

  WebhookNotifier(const WebhookNotifier&) = delete;
  WebhookNotifier& operator=(const WebhookNotifier&) = delete;

  // Queues one transition. False when stopped (the payload is dropped).
  bool Notify(const AlertTransition& transition);
  // Queues a JSON body as is (the same path Notify takes). `what` names it in log lines.
  bool NotifyJson(const nlohmann::json& body, std::string what);

  // Waits until nothing is queued or in flight, or `timeout` passes; true when idle.
  bool WaitIdle(std::chrono::milliseconds timeout);
  void Stop(std::chrono::milliseconds deadline);  // idempotent; see above

  WebhookStats stats() const;
  // The URL as it appears in logs.
  const std::string& redacted_url() const { return redacted_url_; }

 private:
  struct Item {
    std::string body;
    std::string what;
  };
  explicit WebhookNotifier(WebhookOptions options);
  void Loop();
  void Deliver(void* curl, const Item& item);
  // One POST: 0 on a transport error (with `error` set), else the HTTP status.
  long Post(void* curl, const Item& item, std::string& error);
  // Waits `ms` unless Stop's deadline passes first; false when abandoned.
  bool Backoff(int64_t ms);

  const WebhookOptions options_;
  const std::string redacted_url_;
  std::mutex stop_mu_;  // one Stop at a time
  mutable std::mutex mu_;
  std::condition_variable cv_;       // work arrived, stop requested, abort
  std::condition_variable idle_cv_;  // the queue emptied / the thread finished
  std::deque<Item> queue_;
  bool in_flight_ = false;
  bool stopping_ = false;
  bool done_ = false;  // the thread has left its loop
  std::atomic<bool> abort_{false};
  WebhookStats stats_;
  std::thread thread_;
};

// "https://user:pw@hooks.example.com:8443/a/b?token=x#f" -> "https://hooks.example.com:8443/a/b".
// Text that is not a URL gives "<invalid url>".
std::string RedactUrl(std::string_view url);

}  // namespace steno::alerts
