// The async jobs API under load, measured by a client light enough not to be the bottleneck: one
// thread per simulated client, each with its own keep-alive connection, timing each request with
// the steady clock right around it. (A single-threaded Node.js client on a 2-core machine spends
// more CPU parsing hundreds of responses a second than the server spends answering them, and its
// event loop's delays land in every figure it takes; tests/e2e/load_jobs.mjs remains the behaviour
// test, this is the figure.)
//
// Each client loops as load_jobs.mjs does: submit a clip (POST /v1/jobs), poll it
// (GET /v1/jobs/{id}) every --poll-ms until it is final, listing jobs (GET /v1/jobs?limit=20)
// instead of one poll in --list-every; a 503 queue_full waits its Retry-After. After --seconds,
// every accepted job must complete within --drain-seconds, with a result.
//
// The machine's own noise is measured in the same run: each poll of steno is followed at once, on
// a second keep-alive connection, by the same GET to a trivial HTTP server in this process (one
// thread per connection, cpp-httplib like steno) answering the bytes steno just answered that
// client. Its latency is what any HTTP server gets from this machine and this client right then.
//
//   api_load_client --url http://127.0.0.1:8080 --clip clip.wav --model tiny-random
//                   [--clients 200] [--seconds 60] [--poll-ms 250] [--list-every 10]
//                   [--drain-seconds 180] [--p99-limit-ms 10] [--trivial-ratio 1.5]
//                   [--submit-p99-limit-ms 50]
// Prints the latency figures, the targets as ratios (issue 23: GET /v1/jobs/{id} p99 under
// --p99-limit-ms, or within --trivial-ratio of the trivial server's p99; POST /v1/jobs p99 under
// --submit-p99-limit-ms, refusals included) and a JSON summary. Exit: 0 all good, 1 a lost job
// or an unexpected status (any 5xx but 503 queue_full, connection errors), 3 only a latency
// target missed, 2 bad usage.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

struct Options {
  std::string url, clip, model;
  int clients = 200, seconds = 60, poll_ms = 250, list_every = 10, drain_seconds = 180;
  double p99_limit_ms = 10, trivial_ratio = 1.5, submit_p99_limit_ms = 50;
};

// The trivial server: GET /c/{n} answers the body steno last answered client n's poll.
class TrivialServer {
 public:
  explicit TrivialServer(int clients) : bodies_(static_cast<size_t>(clients)) {
    const size_t threads = static_cast<size_t>(clients) + 8;  // one per keep-alive connection
    svr_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    svr_.set_keep_alive_timeout(5);
    svr_.set_keep_alive_max_count(1000);
    svr_.Get(R"(/c/(\d+))", [this](const httplib::Request& req, httplib::Response& res) {
      const size_t n = std::stoul(req.matches[1]);
      std::string body;
      {
        std::lock_guard lock(mu_);
        if (n < bodies_.size()) body = bodies_[n];
      }
      res.set_content(body, "application/json");
    });
    port_ = svr_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
    while (!svr_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~TrivialServer() {
    svr_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void SetBody(int n, const std::string& body) {
    std::lock_guard lock(mu_);
    bodies_[static_cast<size_t>(n)] = body;
  }

 private:
  httplib::Server svr_;
  std::mutex mu_;
  std::vector<std::string> bodies_;
  int port_ = 0;
  std::thread thread_;
};

struct Shared {
  std::mutex mu;
  std::vector<double> get_ms, submit_ms, list_ms, trivial_ms;
  std::vector<double> accepted_ms, refused_ms;  // submit_ms split: 2xx, 503 queue_full
  std::map<std::string, int> statuses;          // "GET /v1/jobs/{id} 200" -> count
  std::vector<std::string> problems;            // the first ones in full
  int problem_count = 0;
  std::map<std::string, std::string> jobs;  // accepted id -> last state seen
  int rejected_full = 0;

  void Problem(const std::string& what) {
    std::lock_guard lock(mu);
    if (++problem_count <= 20) problems.push_back(what);
  }
};

bool IsFinal(const std::string& s) {
  return s == "completed" || s == "failed" || s == "cancelled";
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

json Summary(const std::vector<double>& v) {
  auto r = [](double x) { return std::round(x * 100) / 100; };
  return {{"count", v.size()},
          {"p50", r(Percentile(v, 50))},
          {"p90", r(Percentile(v, 90))},
          {"p99", r(Percentile(v, 99))},
          {"max", v.empty() ? NAN : r(*std::max_element(v.begin(), v.end()))}};
}

std::unique_ptr<httplib::Client> Connect(const std::string& url) {
  auto c = std::make_unique<httplib::Client>(url);
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);  // as Node.js, curl and Python clients do: no Nagle delay on the body
  c->set_connection_timeout(10, 0);
  c->set_read_timeout(60, 0);
  c->set_write_timeout(60, 0);
  return c;
}

// GET with one retry when the server closed an idle keep-alive connection just as it was reused
// (inherent to HTTP/1.1; clients retry idempotent requests).
httplib::Result TimedGet(httplib::Client& c, const std::string& path, double& ms) {
  const auto t0 = Clock::now();
  auto r = c.Get(path);
  if (!r) r = c.Get(path);
  ms = Ms(Clock::now() - t0);
  return r;
}

void RunClient(int n, const Options& o, const std::string& clip, Clock::time_point end,
               TrivialServer& trivial, Shared& shared) {
  auto c = Connect(o.url);
  auto t = Connect(trivial.url());
  std::mt19937 rng(static_cast<unsigned>(n));
  std::this_thread::sleep_for(std::chrono::milliseconds((n * 997) % 1000));
  std::vector<double> get_ms, submit_ms, list_ms, trivial_ms, accepted_ms, refused_ms;
  std::map<std::string, std::string> mine;
  std::map<std::string, int> statuses;
  int rejected = 0, ticks = n, submissions = 0;
  auto note = [&](const std::string& key) { ++statuses[key]; };
  while (Clock::now() < end) {
    const std::string key = "load-" + std::to_string(n) + "-" + std::to_string(++submissions);
    httplib::MultipartFormDataItems items = {{"file", clip, "clip.wav", "audio/wav"},
                                             {"model", o.model, "", ""},
                                             {"language", "en", "", ""}};
    const auto t0 = Clock::now();
    auto r = c->Post("/v1/jobs", {{"Idempotency-Key", key}}, items);
    if (!r) r = c->Post("/v1/jobs", {{"Idempotency-Key", key}}, items);  // same key: safe
    submit_ms.push_back(Ms(Clock::now() - t0));
    if (!r) {
      shared.Problem("POST /v1/jobs: " + httplib::to_string(r.error()));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    note("POST /v1/jobs " + std::to_string(r->status));
    (r->status == 503 ? refused_ms : accepted_ms).push_back(submit_ms.back());
    if (r->status == 503) {
      ++rejected;
      const auto body = json::parse(r->body, nullptr, false);
      const std::string retry = r->get_header_value("Retry-After");
      if (retry.empty() || body.is_discarded() || body["error"].value("code", "") != "queue_full") {
        shared.Problem("503 without Retry-After or queue_full: " + r->body.substr(0, 200));
      }
      const double s = retry.empty() ? 1.0 : std::atof(retry.c_str());
      const double wait_ms = 1000 * s * (1 + std::uniform_real_distribution<>(0, 0.25)(rng));
      std::this_thread::sleep_until(
          std::min(end, Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(wait_ms))));
      continue;
    }
    const auto job = json::parse(r->body, nullptr, false);
    if (r->status != 202 && r->status != 200 && r->status != 201) {
      shared.Problem("POST /v1/jobs " + std::to_string(r->status) + ": " + r->body.substr(0, 200));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (job.is_discarded() || !job.contains("id")) {
      shared.Problem("POST /v1/jobs accepted without an id: " + r->body.substr(0, 200));
      continue;
    }
    const std::string id = job["id"];
    std::string state = job.value("state", "pending");
    mine[id] = state;
    while (!IsFinal(state) && Clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(o.poll_ms));
      double ms = 0;
      if (++ticks % o.list_every == 0) {
        auto l = TimedGet(*c, "/v1/jobs?limit=20", ms);
        list_ms.push_back(ms);
        if (!l || l->status != 200) {
          shared.Problem("GET /v1/jobs: " +
                         (l ? std::to_string(l->status) : httplib::to_string(l.error())));
        } else {
          note("GET /v1/jobs 200");
        }
        continue;
      }
      auto g = TimedGet(*c, "/v1/jobs/" + id, ms);
      get_ms.push_back(ms);
      if (!g || g->status != 200) {
        shared.Problem("GET /v1/jobs/" + id + ": " +
                       (g ? std::to_string(g->status) : httplib::to_string(g.error())));
        continue;
      }
      note("GET /v1/jobs/{id} 200");
      trivial.SetBody(n, g->body);
      auto tg = TimedGet(*t, "/c/" + std::to_string(n), ms);
      trivial_ms.push_back(ms);
      if (!tg || tg->status != 200 || tg->body != g->body) {
        shared.Problem("the trivial server did not answer steno's bytes");
      }
      const auto j = json::parse(g->body, nullptr, false);
      if (j.is_discarded() || !j.contains("state")) {
        shared.Problem("GET /v1/jobs/" + id + " without a state");
        continue;
      }
      state = j["state"];
      mine[id] = state;
    }
  }
  std::lock_guard lock(shared.mu);
  shared.get_ms.insert(shared.get_ms.end(), get_ms.begin(), get_ms.end());
  shared.submit_ms.insert(shared.submit_ms.end(), submit_ms.begin(), submit_ms.end());
  shared.list_ms.insert(shared.list_ms.end(), list_ms.begin(), list_ms.end());
  shared.trivial_ms.insert(shared.trivial_ms.end(), trivial_ms.begin(), trivial_ms.end());
  shared.accepted_ms.insert(shared.accepted_ms.end(), accepted_ms.begin(), accepted_ms.end());
  shared.refused_ms.insert(shared.refused_ms.end(), refused_ms.begin(), refused_ms.end());
  for (auto& [k, v] : statuses) shared.statuses[k] += v;
  for (auto& [k, v] : mine) shared.jobs[k] = v;
  shared.rejected_full += rejected;
}

// CPU time (user + system) this process has used, in seconds.
double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(u.ru_utime) + seconds(u.ru_stime);
}

int Usage(const char* message) {
  std::fprintf(stderr, "api_load_client: %s\n", message);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return Usage(("missing value after " + a).c_str());
    const std::string v = argv[++i];
    if (a == "--url")
      o.url = v;
    else if (a == "--clip")
      o.clip = v;
    else if (a == "--model")
      o.model = v;
    else if (a == "--clients")
      o.clients = std::atoi(v.c_str());
    else if (a == "--seconds")
      o.seconds = std::atoi(v.c_str());
    else if (a == "--poll-ms")
      o.poll_ms = std::atoi(v.c_str());
    else if (a == "--list-every")
      o.list_every = std::atoi(v.c_str());
    else if (a == "--drain-seconds")
      o.drain_seconds = std::atoi(v.c_str());
    else if (a == "--p99-limit-ms")
      o.p99_limit_ms = std::atof(v.c_str());
    else if (a == "--trivial-ratio")
      o.trivial_ratio = std::atof(v.c_str());
    else if (a == "--submit-p99-limit-ms")
      o.submit_p99_limit_ms = std::atof(v.c_str());
    else
      return Usage(("unknown flag " + a).c_str());
  }
  if (o.url.empty() || o.clip.empty() || o.model.empty()) {
    return Usage("--url, --clip and --model are required");
  }
  if (o.clients < 1 || o.seconds < 1 || o.poll_ms < 1 || o.list_every < 1) {
    return Usage("--clients, --seconds, --poll-ms and --list-every must be positive");
  }
  std::ifstream in(o.clip, std::ios::binary);
  if (!in) return Usage(("cannot read " + o.clip).c_str());
  const std::string clip((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  std::printf("load: %d clients for %d s against %s, poll every %d ms, one list per %d polls\n",
              o.clients, o.seconds, o.url.c_str(), o.poll_ms, o.list_every);
  std::fflush(stdout);
  Shared shared;
  TrivialServer trivial(o.clients);
  const double cpu0 = CpuSeconds();
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(o.seconds);
  std::vector<std::thread> threads;
  for (int n = 0; n < o.clients; ++n) {
    threads.emplace_back(RunClient, n, std::cref(o), std::cref(clip), end, std::ref(trivial),
                         std::ref(shared));
  }
  for (auto& t : threads) t.join();
  const double load_s = Ms(Clock::now() - start) / 1000;
  const double client_cores = (CpuSeconds() - cpu0) / load_s;

  // Drain: every accepted job must become final.
  auto c = Connect(o.url);
  const auto drain_start = Clock::now();
  const auto drain_end = drain_start + std::chrono::seconds(o.drain_seconds);
  std::vector<std::string> open;
  for (const auto& [id, s] : shared.jobs) {
    if (!IsFinal(s)) open.push_back(id);
  }
  const size_t open_at_end = open.size();
  while (!open.empty() && Clock::now() < drain_end) {
    std::vector<std::string> next;
    for (const auto& id : open) {
      double ms = 0;
      auto g = TimedGet(*c, "/v1/jobs/" + id, ms);
      const auto j = g && g->status == 200 ? json::parse(g->body, nullptr, false) : json();
      if (!j.is_object() || !j.contains("state")) {
        next.push_back(id);
        continue;
      }
      shared.jobs[id] = j["state"];
      if (!IsFinal(shared.jobs[id])) next.push_back(id);
    }
    open.swap(next);
    if (!open.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  const double drain_s = Ms(Clock::now() - drain_start) / 1000;
  int completed = 0, with_result = 0;
  std::map<std::string, int> by_state;
  for (const auto& [id, s] : shared.jobs) {
    ++by_state[s];
    if (s != "completed") continue;
    ++completed;
    double ms = 0;
    auto r = TimedGet(*c, "/v1/jobs/" + id + "/result?format=json", ms);
    const auto j = r && r->status == 200 ? json::parse(r->body, nullptr, false) : json();
    if (j.is_object() && j.contains("text"))
      ++with_result;
    else
      shared.Problem("no result for completed job " + id);
  }

  const json get = Summary(shared.get_ms);
  const json trivial_get = Summary(shared.trivial_ms);
  const json submit = Summary(shared.submit_ms);
  const json summary = {
      {"clients", o.clients},
      {"seconds", load_s},
      {"accepted", shared.jobs.size()},
      {"rejected_queue_full", shared.rejected_full},
      {"jobs_by_final_state", by_state},
      {"open_at_end_of_load", open_at_end},
      {"drain_seconds", drain_s},
      {"with_result", with_result},
      {"get_job_ms", get},
      {"trivial_get_ms", trivial_get},
      {"submit_ms", submit},
      {"submit_accepted_ms", Summary(shared.accepted_ms)},
      {"submit_refused_ms", Summary(shared.refused_ms)},
      {"list_ms", Summary(shared.list_ms)},
      {"get_requests_per_second", std::round(static_cast<double>(shared.get_ms.size()) / load_s)},
      {"client_cpu_cores", std::round(client_cores * 100) / 100},
      {"statuses", shared.statuses},
      {"unexpected", shared.problem_count},
  };
  std::printf(
      "GET /v1/jobs/{id} latency under load: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, "
      "max %.2f ms over %zu requests\n",
      get["p50"].get<double>(), get["p90"].get<double>(), get["p99"].get<double>(),
      get["max"].get<double>(), shared.get_ms.size());
  std::printf("%s\n", summary.dump(2).c_str());
  int rc = 0;
  if (shared.problem_count > 0) {
    std::printf("FAIL: %d unexpected responses, first ones:\n", shared.problem_count);
    for (const auto& p : shared.problems) std::printf("  %s\n", p.c_str());
    rc = 1;
  }
  if (completed != static_cast<int>(shared.jobs.size()) || with_result != completed) {
    std::printf("FAIL: %zu accepted, %d completed, %d with a result\n", shared.jobs.size(),
                completed, with_result);
    rc = 1;
  }
  if (shared.get_ms.size() < static_cast<size_t>(o.clients)) {
    std::printf("FAIL: only %zu GETs measured\n", shared.get_ms.size());
    rc = 1;
  }
  // The targets, each as a ratio (<= 1 met), from this one run.
  const double p99 = get["p99"].get<double>();
  const double trivial_p99 = trivial_get["p99"].get<double>();
  const double submit_p99 = submit["p99"].get<double>();
  const double get_ratio = p99 / o.p99_limit_ms;
  const double trivial_ratio = p99 / (o.trivial_ratio * trivial_p99);
  const double submit_ratio = submit_p99 / o.submit_p99_limit_ms;
  const bool get_met = get_ratio <= 1 || trivial_ratio <= 1;
  std::printf(
      "target GET /v1/jobs/{id} p99 %.2f ms: / %.1f ms = %.2f; / (%.1f x trivial server's p99 "
      "%.2f ms) = %.2f: %s\n",
      p99, o.p99_limit_ms, get_ratio, o.trivial_ratio, trivial_p99, trivial_ratio,
      get_met ? "met" : "MISSED");
  std::printf("target POST /v1/jobs p99 %.2f ms: / %.1f ms = %.2f: %s\n", submit_p99,
              o.submit_p99_limit_ms, submit_ratio, submit_ratio <= 1 ? "met" : "MISSED");
  if (rc == 0 && (!get_met || !(submit_ratio <= 1))) rc = 3;
  return rc;
}
