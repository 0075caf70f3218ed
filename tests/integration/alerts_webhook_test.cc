// The alert webhook against a real HTTP server in this process (cpp-httplib on 127.0.0.1):
// issue 9's acceptance (each alert arrives once when it fires and once when it resolves, driven
// by the monitor on the virtual clock), retries with backoff on 5xx, no retry on 4xx, an
// unreachable URL given up after the retries, a caller never blocked by the receiver, bounded
// queue, Stop's deadline, and logs that never show the URL's query string or extra headers.
// Backoff is 50 ms here to keep waits short.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "alerts/alert_monitor.h"
#include "alerts/webhook.h"
#include "core/log.h"
#include "support/hook_server.h"

namespace steno::alerts {
namespace {

using std::chrono::milliseconds;
using test::HookServer;
using Clock = std::chrono::steady_clock;
constexpr int64_t kMin = 60'000;

// A port on 127.0.0.1 with nothing listening: bound once to learn a free number, then closed.
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

WebhookOptions FastOptions(std::string url) {
  WebhookOptions o;
  o.url = std::move(url);
  o.backoff_base_ms = 50;
  o.timeout_ms = 30'000;  // a slow answer on a busy machine is not a failed delivery
  return o;
}

std::unique_ptr<WebhookNotifier> MakeNotifier(WebhookOptions o) {
  auto n = WebhookNotifier::Create(std::move(o));
  EXPECT_TRUE(n.ok()) << n.error().message;
  return n.ok() ? std::move(n.value()) : nullptr;
}

AlertTransition Sample(const std::string& rule = "queue_length") {
  AlertTransition t;
  t.rule = rule;
  t.state = AlertState::kFiring;
  t.value = 12;
  t.threshold = 10;
  t.started_ms = t.at_ms = 1'000;
  t.message = "12 jobs are waiting";
  return t;
}

void AdvanceTo(sched::VirtualClock& clock, int64_t ms) {
  while (clock.FireNext(ms)) {
  }
  clock.SetNow(ms);
}

TEST(AlertWebhook, ReceivesEachAlertOnceWhenItFiresAndOnceWhenItResolves) {
  HookServer server;
  auto notifier = MakeNotifier(FastOptions(server.Url()));
  ASSERT_TRUE(notifier);

  sched::VirtualClock clock(0);
  std::mutex mu;
  Observation obs;
  obs.devices = {{"cuda:0", 95, true}, {"cuda:1", 10, true}};
  auto set = [&](auto fn) {
    std::lock_guard<std::mutex> lock(mu);
    fn(obs);
  };
  AlertMonitorOptions options;  // the default rules, evaluated every 15 s
  auto monitor = AlertMonitor::Create(
      clock, options,
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return obs;
      },
      notifier.get());
  ASSERT_TRUE(monitor.ok());
  (*monitor)->Start();

  AdvanceTo(clock, 10 * kMin - 1);  // memory_usage fired at 5:00
  set([](Observation& o) { o.devices.pop_back(); });
  AdvanceTo(clock, 20 * kMin - 1);  // device_missing fired at 10:00
  set([](Observation& o) { o.devices = {{"cuda:0", 40, true}, {"cuda:1", 10, true}}; });
  AdvanceTo(clock, 60 * kMin);  // cuda:1 back at 20:00; memory resolves a minute after 19:45
  (*monitor)->Stop();
  ASSERT_TRUE(notifier->WaitIdle(milliseconds(60'000)));

  const auto payloads = server.Payloads();
  ASSERT_EQ(payloads.size(), 4u);
  std::map<std::pair<std::string, std::string>, int> seen;
  for (const auto& p : payloads) ++seen[{p["key"].get<std::string>(), p["status"]}];
  EXPECT_EQ(seen.size(), 4u);
  for (const auto& [what, count] : seen) EXPECT_EQ(count, 1) << what.first << " " << what.second;

  EXPECT_EQ(payloads[0]["key"], "memory_usage{device=\"cuda:0\"}");
  EXPECT_EQ(payloads[0]["status"], "firing");
  EXPECT_EQ(payloads[0]["started_ms"], 5 * kMin);
  EXPECT_EQ(payloads[0]["value"], 95);
  EXPECT_EQ(payloads[0]["severity"], "warning");
  EXPECT_EQ(payloads[1]["key"], "device_missing{device=\"cuda:1\"}");
  EXPECT_EQ(payloads[1]["status"], "firing");
  EXPECT_EQ(payloads[1]["started_ms"], 10 * kMin);
  EXPECT_EQ(payloads[2]["key"], "device_missing{device=\"cuda:1\"}");
  EXPECT_EQ(payloads[2]["status"], "resolved");
  EXPECT_EQ(payloads[2]["started_ms"], 10 * kMin);
  EXPECT_EQ(payloads[2]["resolved_ms"], 20 * kMin);
  EXPECT_EQ(payloads[3]["key"], "memory_usage{device=\"cuda:0\"}");
  EXPECT_EQ(payloads[3]["status"], "resolved");
  EXPECT_EQ(payloads[3]["started_ms"], 5 * kMin);
  EXPECT_EQ(payloads[3]["resolved_ms"], 20 * kMin + 45'000);
  EXPECT_EQ(payloads[3]["value"], 40);
  for (const auto& ct : server.ContentTypes()) EXPECT_EQ(ct, "application/json");

  const WebhookStats stats = notifier->stats();
  EXPECT_EQ(stats.delivered, 4);
  EXPECT_EQ(stats.attempts, 4);
  EXPECT_EQ(stats.failed + stats.dropped, 0);
}

TEST(AlertWebhook, ServerErrorsAreRetriedWithBackoffAndDeliveredOnce) {
  HookServer server([](int n) { return n <= 2 ? 500 : 200; });
  auto notifier = MakeNotifier(FastOptions(server.Url()));
  ASSERT_TRUE(notifier);
  const auto start = Clock::now();
  ASSERT_TRUE(notifier->Notify(Sample()));
  ASSERT_TRUE(notifier->WaitIdle(milliseconds(60'000)));
  EXPECT_GE(Clock::now() - start, milliseconds(50 + 100));  // waited 50 ms, then 100 ms
  const auto payloads = server.Payloads();
  ASSERT_EQ(payloads.size(), 3u);
  EXPECT_EQ(payloads[0], payloads[2]);  // the same body each time
  const WebhookStats stats = notifier->stats();
  EXPECT_EQ(stats.delivered, 1);
  EXPECT_EQ(stats.attempts, 3);
  EXPECT_EQ(stats.failed, 0);
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(server.requests(), 3);  // nothing after the 200
}

TEST(AlertWebhook, TooManyRequestsIsRetried) {
  HookServer server([](int n) { return n == 1 ? 429 : 204; });
  auto notifier = MakeNotifier(FastOptions(server.Url()));
  ASSERT_TRUE(notifier);
  notifier->Notify(Sample());
  ASSERT_TRUE(notifier->WaitIdle(milliseconds(60'000)));
  EXPECT_EQ(server.requests(), 2);
  EXPECT_EQ(notifier->stats().delivered, 1);
}

TEST(AlertWebhook, ClientErrorIsNotRetried) {
  HookServer server([](int) { return 400; });
  auto notifier = MakeNotifier(FastOptions(server.Url()));
  ASSERT_TRUE(notifier);
  notifier->Notify(Sample());
  ASSERT_TRUE(notifier->WaitIdle(milliseconds(60'000)));
  std::this_thread::sleep_for(milliseconds(300));  // longer than any backoff would be
  EXPECT_EQ(server.requests(), 1);
  const WebhookStats stats = notifier->stats();
  EXPECT_EQ(stats.failed, 1);
  EXPECT_EQ(stats.attempts, 1);
  EXPECT_EQ(stats.delivered, 0);
}

// Notify only queues: it returns while the receiver still holds the first delivery (released
// only after Notify returned, or by a watchdog a minute later, which fails the test).
TEST(AlertWebhook, NotifyNeverWaitsForTheReceiver) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> held_to_the_end{false};
  HookServer server([released, &held_to_the_end](int n) {
    if (n == 1 && released.wait_for(std::chrono::seconds(60)) == std::future_status::timeout) {
      held_to_the_end = true;
    }
    return 200;
  });
  auto notifier = MakeNotifier(FastOptions(server.Url()));
  ASSERT_TRUE(notifier);
  ASSERT_TRUE(notifier->Notify(Sample("first")));
  ASSERT_TRUE(server.WaitForRequests(1, milliseconds(60'000)));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(notifier->Notify(Sample("rule_" + std::to_string(i))));
  EXPECT_FALSE(held_to_the_end) << "Notify waited for the receiver";
  release.set_value();
  ASSERT_TRUE(notifier->WaitIdle(milliseconds(60'000)));
  EXPECT_EQ(server.requests(), 4);
  EXPECT_EQ(notifier->stats().delivered, 4);
}

TEST(AlertWebhook, UnreachableUrlGivesUpAfterTheRetries) {
  auto notifier =
      MakeNotifier(FastOptions("http://127.0.0.1:" + std::to_string(ClosedPort()) + "/hook"));
  ASSERT_TRUE(notifier);
  const auto start = Clock::now();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(notifier->Notify(Sample("rule_" + std::to_string(i))));
  ASSERT_TRUE(notifier->WaitIdle(milliseconds(60'000)));
  // 5 tries each with 50 + 100 + 200 + 400 ms between them.
  EXPECT_GE(Clock::now() - start, milliseconds(3 * 750));
  const WebhookStats stats = notifier->stats();
  EXPECT_EQ(stats.queued, 3);
  EXPECT_EQ(stats.failed, 3);
  EXPECT_EQ(stats.attempts, 15);
  EXPECT_EQ(stats.delivered, 0);
}

TEST(AlertWebhook, StopAbandonsWhatIsLeftAtTheDeadline) {
  HookServer server([](int) { return 503; });
  WebhookOptions o = FastOptions(server.Url());
  o.backoff_base_ms = o.backoff_max_ms = 600'000;  // the first retry would be 10 min away
  auto notifier = MakeNotifier(o);
  ASSERT_TRUE(notifier);
  notifier->Notify(Sample("a"));
  notifier->Notify(Sample("b"));
  ASSERT_TRUE(server.WaitForRequests(1, milliseconds(60'000)));
  const auto start = Clock::now();
  notifier->Stop(milliseconds(100));
  // Waiting for the retry would take 10 min; a healthy Stop returns about 100 ms after its call.
  EXPECT_LT(Clock::now() - start, milliseconds(60'000));
  EXPECT_FALSE(notifier->Notify(Sample("c")));  // stopped: refused, counted as dropped
  const WebhookStats stats = notifier->stats();
  EXPECT_EQ(stats.delivered, 0);
  EXPECT_EQ(stats.dropped, 3);  // a (in backoff), b (queued), c (after Stop)
  EXPECT_EQ(server.requests(), 1);
}

TEST(AlertWebhook, StopDeliversWhatIsQueuedBeforeTheDeadline) {
  HookServer server;
  auto notifier = MakeNotifier(FastOptions(server.Url()));
  ASSERT_TRUE(notifier);
  for (int i = 0; i < 5; ++i) notifier->Notify(Sample("rule_" + std::to_string(i)));
  notifier->Stop(milliseconds(60'000));
  EXPECT_EQ(server.requests(), 5);
  EXPECT_EQ(notifier->stats().delivered, 5);
}

TEST(AlertWebhook, FullQueueDropsTheOldestWaitingPayload) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  HookServer server([released](int n) {
    if (n == 1) released.wait();  // hold the first request in flight
    return 200;
  });
  WebhookOptions o = FastOptions(server.Url());
  o.queue_capacity = 2;
  auto notifier = MakeNotifier(o);
  ASSERT_TRUE(notifier);
  notifier->Notify(Sample("a"));
  ASSERT_TRUE(server.WaitForRequests(1, milliseconds(60'000)));
  for (const char* name : {"b", "c", "d"}) notifier->Notify(Sample(name));  // b is dropped
  release.set_value();
  ASSERT_TRUE(notifier->WaitIdle(milliseconds(60'000)));
  const auto payloads = server.Payloads();
  ASSERT_EQ(payloads.size(), 3u);
  EXPECT_EQ(payloads[0]["name"], "a");
  EXPECT_EQ(payloads[1]["name"], "c");
  EXPECT_EQ(payloads[2]["name"], "d");
  EXPECT_EQ(notifier->stats().dropped, 1);
  EXPECT_EQ(notifier->stats().delivered, 3);
}

TEST(AlertWebhook, LogsNeverShowTheQueryStringOrHeaders) {
  HookServer server([](int) { return 401; });
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  auto logger = spdlog::default_logger();
  logger->sinks().push_back(sink);
  {
    WebhookOptions o = FastOptions(server.Url("?token=s3cret-query#frag"));
    o.headers = {"Authorization: Bearer s3cret-header"};
    auto notifier = MakeNotifier(o);
    ASSERT_TRUE(notifier);
    EXPECT_EQ(notifier->redacted_url(), server.Url());
    notifier->Notify(Sample());
    ASSERT_TRUE(notifier->WaitIdle(milliseconds(60'000)));
    notifier->Stop(milliseconds(1000));
  }
  logger->sinks().pop_back();
  const std::string log = captured.str();
  EXPECT_NE(log.find(server.Url() + ": queue_length firing refused with HTTP 401"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("s3cret"), std::string::npos) << log;
  ASSERT_EQ(server.AuthHeaders().size(), 1u);
  EXPECT_EQ(server.AuthHeaders()[0], "Bearer s3cret-header");  // sent, just never logged
}

TEST(AlertWebhook, RedactUrlKeepsSchemeHostPortAndPathOnly) {
  EXPECT_EQ(RedactUrl("https://user:pw@hooks.example.com:8443/a/b?token=x#f"),
            "https://hooks.example.com:8443/a/b");
  EXPECT_EQ(RedactUrl("http://example.com"), "http://example.com/");
  EXPECT_EQ(RedactUrl("::not a url::"), "<invalid url>");
}

TEST(AlertWebhook, CreateRejectsBadUrlsWithoutEchoingThem) {
  for (const char* url : {"ftp://example.com/x?token=abc", "not a url token=abc", "", "http://"}) {
    auto n = WebhookNotifier::Create(FastOptions(url));
    ASSERT_FALSE(n.ok()) << url;
    EXPECT_EQ(n.error().code, "bad_webhook");
    EXPECT_EQ(n.error().message.find("abc"), std::string::npos);
  }
  WebhookOptions o = FastOptions("http://127.0.0.1:1/hook");
  o.max_attempts = 0;
  EXPECT_FALSE(WebhookNotifier::Create(o).ok());
  o = FastOptions("http://127.0.0.1:1/hook");
  o.headers = {"no colon here"};
  EXPECT_FALSE(WebhookNotifier::Create(o).ok());
}

}  // namespace
}  // namespace steno::alerts
