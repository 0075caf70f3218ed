#include "alerts/webhook.h"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>

#include "core/log.h"

namespace steno::alerts {
namespace {

struct CurlUrlFree {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct CurlFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// One part of a parsed URL, "" when absent.
std::string UrlPart(CURLU* u, CURLUPart part) {
  char* s = nullptr;
  if (curl_url_get(u, part, &s, 0) != CURLUE_OK || !s) return "";
  std::string out(s);
  curl_free(s);
  return out;
}

std::unique_ptr<CURLU, CurlUrlFree> ParseUrl(std::string_view url) {
  std::unique_ptr<CURLU, CurlUrlFree> u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, std::string(url).c_str(), 0) != CURLUE_OK) {
    return nullptr;
  }
  return u;
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t DiscardBody(char*, size_t size, size_t n, void*) {
  return size * n;
}

int AbortCheck(void* abort_flag, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<std::atomic<bool>*>(abort_flag)->load() ? 1 : 0;
}

bool Retryable(long status) {
  return status == 0 || status == 429 || status >= 500;
}

}  // namespace

std::string RedactUrl(std::string_view url) {
  auto u = ParseUrl(url);
  if (!u) return "<invalid url>";
  std::string out = UrlPart(u.get(), CURLUPART_SCHEME) + "://" + UrlPart(u.get(), CURLUPART_HOST);
  if (std::string port = UrlPart(u.get(), CURLUPART_PORT); !port.empty()) out += ":" + port;
  return out + UrlPart(u.get(), CURLUPART_PATH);
}

Result<std::unique_ptr<WebhookNotifier>> WebhookNotifier::Create(WebhookOptions o) {
  auto bad = [](std::string m) { return Error(ErrorKind::kBadInput, "bad_webhook", std::move(m)); };
  auto u = ParseUrl(o.url);
  const std::string scheme = u ? UrlPart(u.get(), CURLUPART_SCHEME) : "";
  if (!u || (scheme != "http" && scheme != "https") || UrlPart(u.get(), CURLUPART_HOST).empty()) {
    // The URL itself may hold a token: name only what is wrong with it.
    return bad("the alert webhook URL must be an http:// or https:// URL with a host");
  }
  if (o.max_attempts < 1 || o.max_attempts > 100) {
    return bad("webhook max_attempts must be between 1 and 100");
  }
  if (o.backoff_base_ms < 0 || o.backoff_max_ms < o.backoff_base_ms) {
    return bad("webhook backoff must be >= 0 and backoff_max_ms >= backoff_base_ms");
  }
  if (o.timeout_ms < 1) return bad("webhook timeout_ms must be >= 1");
  if (o.queue_capacity < 1) return bad("webhook queue_capacity must be >= 1");
  for (const auto& h : o.headers) {
    if (h.find(':') == std::string::npos || h.find_first_of("\r\n") != std::string::npos) {
      return bad("a webhook header must be one \"Name: value\" line");
    }
  }
  GlobalInit();
  return std::unique_ptr<WebhookNotifier>(new WebhookNotifier(std::move(o)));
}

WebhookNotifier::WebhookNotifier(WebhookOptions options)
    : options_(std::move(options)), redacted_url_(RedactUrl(options_.url)) {
  thread_ = std::thread([this] { Loop(); });
}

WebhookNotifier::~WebhookNotifier() {
  Stop(std::chrono::seconds(2));
}

bool WebhookNotifier::Notify(const AlertTransition& t) {
  return NotifyJson(ToJson(t),
                    fmt::format("{} {}", AlertKey(t.rule, t.labels), AlertStateName(t.state)));
}

bool WebhookNotifier::NotifyJson(const nlohmann::json& body, std::string what) {
  std::string text = body.dump();
  std::string dropped_what;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      ++stats_.dropped;
      return false;
    }
    if (queue_.size() >= options_.queue_capacity) {
      dropped_what = std::move(queue_.front().what);
      queue_.pop_front();
      ++stats_.dropped;
    }
    queue_.push_back({std::move(text), std::move(what)});
    ++stats_.queued;
  }
  cv_.notify_all();
  if (!dropped_what.empty()) {
    spdlog::warn("alert webhook {}: queue full ({}), dropped the oldest payload ({})",
                 redacted_url_, options_.queue_capacity, dropped_what);
  }
  return true;
}

bool WebhookNotifier::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_cv_.wait_for(lock, timeout, [&] { return done_ || (queue_.empty() && !in_flight_); });
}

void WebhookNotifier::Stop(std::chrono::milliseconds deadline) {
  std::lock_guard<std::mutex> one_stop(stop_mu_);
  const auto until = std::chrono::steady_clock::now() + deadline;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
    idle_cv_.wait_until(lock, until, [&] { return done_; });
    abort_ = true;  // past the deadline: cut backoffs and the request in flight short
  }
  cv_.notify_all();
  thread_.join();
}

WebhookStats WebhookNotifier::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void WebhookNotifier::Loop() {
  // One handle for the thread's life: its connection cache keeps a healthy endpoint's
  // connection open between payloads.
  std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || abort_ || !queue_.empty(); });
    if (abort_ || (stopping_ && queue_.empty())) break;
    Item item = std::move(queue_.front());
    queue_.pop_front();
    in_flight_ = true;
    lock.unlock();
    Deliver(curl.get(), item);
    lock.lock();
    in_flight_ = false;
    idle_cv_.notify_all();
  }
  if (!queue_.empty()) {
    spdlog::warn("alert webhook {}: stopped with {} payload(s) not delivered", redacted_url_,
                 queue_.size());
    stats_.dropped += static_cast<int64_t>(queue_.size());
    queue_.clear();
  }
  done_ = true;
  idle_cv_.notify_all();
}

bool WebhookNotifier::Backoff(int64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return abort_.load(); });
  return !abort_;
}

long WebhookNotifier::Post(void* handle, const Item& item, std::string& error) {
  CURL* c = static_cast<CURL*>(handle);
  std::unique_ptr<curl_slist, SlistFree> headers;
  curl_slist* list = curl_slist_append(nullptr, "Content-Type: application/json");
  for (const auto& h : options_.headers) list = curl_slist_append(list, h.c_str());
  headers.reset(list);
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_reset(c);  // keeps the connection cache: a healthy endpoint is reused
  curl_easy_setopt(c, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "steno/" STENO_VERSION);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, item.body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(item.body.size()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_ms));
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, DiscardBody);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, AbortCheck);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &abort_);
  const CURLcode rc = curl_easy_perform(c);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.attempts;
  }
  if (rc != CURLE_OK) {
    // curl's messages name host and port at most, never the path or query.
    error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    return 0;
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

void WebhookNotifier::Deliver(void* curl, const Item& item) {
  std::string last;
  int64_t wait = options_.backoff_base_ms;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    if (attempt > 2) wait = std::min(options_.backoff_max_ms, wait * 2);
    if (attempt > 1 && !Backoff(wait)) break;
    if (abort_) break;
    std::string error;
    const long status = curl ? Post(curl, item, error) : 0;
    if (!curl) error = "could not create a libcurl handle";
    if (status >= 200 && status < 300) {
      spdlog::debug("alert webhook {}: delivered {} (HTTP {}, try {})", redacted_url_, item.what,
                    status, attempt);
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.delivered;
      return;
    }
    last = status ? fmt::format("HTTP {}", status) : error;
    if (!Retryable(status)) {
      spdlog::error("alert webhook {}: {} refused with {}; not retrying", redacted_url_, item.what,
                    last);
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.failed;
      return;
    }
    if (abort_) break;
    if (attempt < options_.max_attempts) {
      spdlog::warn("alert webhook {}: try {}/{} for {} failed ({}); retrying", redacted_url_,
                   attempt, options_.max_attempts, item.what, last);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (abort_) {
    spdlog::warn("alert webhook {}: abandoned {} at shutdown ({})", redacted_url_, item.what,
                 last.empty() ? "not sent" : last);
    ++stats_.dropped;
  } else {
    spdlog::error("alert webhook {}: gave up on {} after {} tries (last: {})", redacted_url_,
                  item.what, options_.max_attempts, last);
    ++stats_.failed;
  }
}

}  // namespace steno::alerts
