// ServiceMetrics: the Prometheus text must parse line by line (what a scraper does), each family
// declared once before its samples, histograms cumulative and closed by +Inf == _count; and the
// numbers must be the ones fed in.
#include "core/strings.h"
#include "core/wall_clock.h"
#include "server/service_metrics.h"

#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

namespace steno::server {
namespace {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// A strict reader of the text format (0.0.4). Fails the test on any line it cannot read.
std::vector<Sample> ParseExposition(const std::string& text) {
  static const std::regex kHelp(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*$)");
  static const std::regex kType(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? ([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|Inf|NaN))$)");
  static const std::regex kLabel(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$))re");
  std::vector<Sample> out;
  std::map<std::string, std::string> types;
  std::set<std::string> helped;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::smatch m;
    if (std::regex_match(line, m, kHelp)) {
      EXPECT_TRUE(helped.insert(m[1]).second) << "HELP twice for " << m[1];
      continue;
    }
    if (std::regex_match(line, m, kType)) {
      EXPECT_TRUE(types.emplace(m[1], m[2]).second) << "TYPE twice for " << m[1];
      continue;
    }
    if (!std::regex_match(line, m, kSample)) {
      ADD_FAILURE() << "line " << n << " does not parse: " << line;
      continue;
    }
    Sample s;
    s.name = m[1];
    std::string labels = m[3];
    for (std::sregex_iterator it(labels.begin(), labels.end(), kLabel), end; it != end; ++it) {
      s.labels[(*it)[1]] = (*it)[2];
    }
    std::string v = m[4];
    s.value = v == "+Inf" || v == "Inf" ? INFINITY : std::stod(v);
    std::string family = s.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string sfx = suffix;
      if (!types.count(family) && family.size() > sfx.size() &&
          family.compare(family.size() - sfx.size(), sfx.size(), sfx) == 0) {
        family = family.substr(0, family.size() - sfx.size());
      }
    }
    EXPECT_TRUE(types.count(family)) << "sample before its TYPE: " << line;
    out.push_back(std::move(s));
  }
  EXPECT_EQ(text.back(), '\n');
  return out;
}

double Value(const std::vector<Sample>& samples, const std::string& name,
             const std::map<std::string, std::string>& labels = {}) {
  for (const auto& s : samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  ADD_FAILURE() << "no sample " << name;
  return -1;
}

// A histogram series: its name and labels other than `le`.
std::string SeriesKey(const std::string& name, std::map<std::string, std::string> labels) {
  labels.erase("le");
  std::string key = name;
  for (const auto& [k, v] : labels) key += "|" + k + "=" + v;
  return key;
}

// Every histogram series: buckets in increasing `le`, counts never decreasing, +Inf last ==
// _count.
void CheckHistograms(const std::vector<Sample>& samples) {
  std::map<std::string, std::vector<std::pair<double, double>>> buckets;
  std::map<std::string, double> counts;
  for (const auto& s : samples) {
    const std::string sfx = "_bucket";
    if (s.name.size() > sfx.size() &&
        s.name.compare(s.name.size() - sfx.size(), sfx.size(), sfx) == 0) {
      ASSERT_TRUE(s.labels.count("le")) << s.name;
      const std::string le = s.labels.at("le");
      buckets[SeriesKey(s.name.substr(0, s.name.size() - sfx.size()), s.labels)].push_back(
          {le == "+Inf" ? INFINITY : std::stod(le), s.value});
    }
    if (s.name.size() > 6 && s.name.compare(s.name.size() - 6, 6, "_count") == 0) {
      counts[SeriesKey(s.name.substr(0, s.name.size() - 6), s.labels)] = s.value;
    }
  }
  ASSERT_FALSE(buckets.empty());
  for (const auto& [name, list] : buckets) {
    ASSERT_FALSE(list.empty());
    for (size_t i = 1; i < list.size(); ++i) {
      EXPECT_LT(list[i - 1].first, list[i].first) << name;
      EXPECT_LE(list[i - 1].second, list[i].second) << name << " is not cumulative";
    }
    EXPECT_TRUE(std::isinf(list.back().first)) << name << " has no +Inf bucket";
    ASSERT_TRUE(counts.count(name)) << name;
    EXPECT_EQ(list.back().second, counts[name]) << name;
  }
}

sched::SchedulerSnapshot Snapshot() {
  sched::SchedulerSnapshot s;
  s.now_ms = 1000;
  sched::RunnerInfo a;
  a.view.id = 1;
  a.view.model = "base.en";
  a.kind = "whisper";
  a.view.device = "cuda:0";
  a.view.streams = 2;
  a.view.busy_streams = 1;
  a.view.weights_bytes = 100;
  a.view.stream_bytes = 10;
  a.state = sched::RunnerState::kReady;
  sched::RunnerInfo b = a;
  b.view.id = 2;
  b.view.streams = 1;
  b.view.busy_streams = 0;
  s.runners = {a, b};
  sched::DeviceLedger gpu;
  gpu.name = "cuda:0";
  gpu.memory.total = 24LL << 30;
  gpu.memory.allocatable = 20LL << 30;
  gpu.memory.allocated = 130;
  gpu.memory.available = 19LL << 30;
  sched::DeviceLedger cpu;
  cpu.name = "cpu";
  cpu.cpu = true;
  cpu.cores.cores = 8;
  cpu.cores.used_threads = 2;
  cpu.cores.busy_threads = 1;
  s.devices = {gpu, cpu};
  s.queued_by_priority = {3, 5, 7};
  s.queued = 15;
  s.running = 1;
  return s;
}

std::vector<gpu::DeviceSample> Devices() {
  gpu::DeviceSample d;
  d.index = 0;
  d.name = "Test GPU \"quoted\"";
  d.total_bytes = 24LL << 30;
  d.used_bytes = 5LL << 30;
  d.processes = {{111, 1LL << 30}, {222, 3LL << 30}};
  return {d};
}

TEST(ApiMetricsTest, EmptyMetricsAreValidExposition) {
  ServiceMetrics m([](int) { return false; });
  auto samples =
      ParseExposition(m.RenderPrometheus(sched::SchedulerSnapshot{}, {}, store::JobCounts{}));
  CheckHistograms(samples);
  EXPECT_EQ(Value(samples, "steno_job_queue_wait_seconds_count"), 0);
}

// A model's DTW variant (scheduler key "NAME#dtw") is shown as the model the user named, told
// apart by how its runners time words, never by the internal key; its loads count as the model's.
TEST(ApiMetricsTest, ADtwVariantsRunnersAreLabelledWithTheUsersModelName) {
  ServiceMetrics m([](int) { return false; });
  sched::SchedulerSnapshot s = Snapshot();
  s.runners[1].view.model = "base.en#dtw";
  s.runners[1].load.dtw_words = true;
  sched::RunnerUpdate loaded;
  loaded.model = "base.en#dtw";
  loaded.device = "cuda:0";
  m.OnRunner(loaded);
  const std::string text = m.RenderPrometheus(s, {}, store::JobCounts{});
  EXPECT_EQ(text.find("#dtw"), std::string::npos) << text;
  auto samples = ParseExposition(text);
  const std::map<std::string, std::string> plain = {
      {"model", "base.en"}, {"kind", "whisper"}, {"device", "cuda:0"}, {"word_timing", "tokens"}};
  std::map<std::string, std::string> dtw = plain;
  dtw["word_timing"] = "dtw";
  EXPECT_EQ(Value(samples, "steno_runners", plain), 1);
  EXPECT_EQ(Value(samples, "steno_runners", dtw), 1);
  EXPECT_EQ(Value(samples, "steno_runner_streams", dtw), 1);
  EXPECT_EQ(
      Value(samples, "steno_runner_loads_total", {{"model", "base.en"}, {"device", "cuda:0"}}), 1);
}

TEST(ApiMetricsTest, GaugesComeFromSnapshotSamplesAndCounts) {
  ServiceMetrics m([](int pid) { return pid == 222; });
  store::JobCounts counts;
  counts.by_state[static_cast<size_t>(JobState::kCompleted)] = 42;
  auto samples = ParseExposition(m.RenderPrometheus(Snapshot(), Devices(), counts));
  const std::map<std::string, std::string> dev = {{"device", "cuda:0"}};
  EXPECT_EQ(Value(samples, "steno_gpu_memory_total_bytes", dev), double(24LL << 30));
  EXPECT_EQ(Value(samples, "steno_gpu_memory_used_bytes", dev), double(5LL << 30));
  EXPECT_EQ(Value(samples, "steno_gpu_memory_ours_bytes", dev), double(3LL << 30));
  EXPECT_EQ(Value(samples, "steno_gpu_memory_external_bytes", dev), double(2LL << 30));
  EXPECT_EQ(Value(samples, "steno_gpu_memory_allocatable_bytes", dev), double(20LL << 30));
  EXPECT_EQ(Value(samples, "steno_gpu_memory_allocated_bytes", dev), 130);
  const std::map<std::string, std::string> runner = {
      {"model", "base.en"}, {"kind", "whisper"}, {"device", "cuda:0"}, {"word_timing", "tokens"}};
  EXPECT_EQ(Value(samples, "steno_runners", runner), 2);
  EXPECT_EQ(Value(samples, "steno_runner_bytes", runner), 100 + 20 + 100 + 10);
  EXPECT_EQ(Value(samples, "steno_runner_streams", runner), 3);
  EXPECT_EQ(Value(samples, "steno_runner_streams_busy", runner), 1);
  EXPECT_EQ(Value(samples, "steno_queue_length", {{"priority", "high"}}), 3);
  EXPECT_EQ(Value(samples, "steno_queue_length", {{"priority", "low"}}), 7);
  EXPECT_EQ(Value(samples, "steno_jobs_running"), 1);
  EXPECT_EQ(Value(samples, "steno_jobs", {{"state", "completed"}}), 42);
  EXPECT_EQ(Value(samples, "steno_jobs", {{"state", "pending"}}), 0);
  EXPECT_EQ(Value(samples, "steno_cpu_threads"), 8);
  EXPECT_EQ(Value(samples, "steno_cpu_threads_used"), 2);
  EXPECT_EQ(Value(samples, "steno_cpu_threads_computing"), 1);
}

TEST(ApiMetricsTest, JobAndRunnerHooksFillCountersAndHistograms) {
  ServiceMetrics m([](int) { return false; });
  const int64_t now = UnixMillis();
  sched::JobUpdate u;
  u.job.id = "j1";
  u.job.created_ms = now - 2000;  // waited ~2 s
  u.job.state = JobState::kLoading;
  m.OnJob(u);
  u.job.state = JobState::kProcessing;
  m.OnJob(u);
  sched::JobUpdate seg = u;
  seg.kind = sched::JobUpdate::Kind::kSegment;
  m.OnJob(seg);
  m.OnJob(seg);
  u.job.state = JobState::kCompleted;
  u.payload = {{"duration", 10.0}};
  m.OnJob(u);

  sched::JobUpdate f;
  f.job.id = "j2";
  f.job.created_ms = now;
  f.job.state = JobState::kLoading;
  m.OnJob(f);
  f.job.state = JobState::kPending;  // a retry after a crash
  f.job.error = Error(ErrorKind::kInternal, "crash", "runner died");
  m.OnJob(f);
  f.job.state = JobState::kFailed;
  f.job.error = Error(ErrorKind::kBadInput, "corrupt_audio", "bad");
  m.OnJob(f);

  sched::RunnerUpdate loaded;
  loaded.kind = sched::RunnerUpdate::Kind::kLoaded;
  loaded.model = "tiny";
  loaded.device = "cpu";
  loaded.duration_ms = 1500;
  m.OnRunner(loaded);
  sched::RunnerUpdate unloaded;
  unloaded.kind = sched::RunnerUpdate::Kind::kUnloaded;
  unloaded.reason = "keep-alive expired";
  unloaded.duration_ms = 40;
  m.OnRunner(unloaded);
  m.OnHttpRequest("/v1/jobs/{id}", "GET", 200, 0.002);
  m.OnHttpRequest("/v1/jobs/{id}", "GET", 200, 0.003);
  m.OnHttpRequest("/v1/audio/transcriptions", "POST", 200, 2.0);

  const std::string text = m.RenderPrometheus(sched::SchedulerSnapshot{}, {}, store::JobCounts{});
  auto samples = ParseExposition(text);
  CheckHistograms(samples);
  EXPECT_EQ(Value(samples, "steno_job_queue_wait_seconds_count"), 2);
  EXPECT_EQ(Value(samples, "steno_job_queue_wait_seconds_bucket", {{"le", "1"}}), 1)
      << "j2 waited ~0 s, j1 ~2 s";
  EXPECT_EQ(Value(samples, "steno_job_queue_wait_seconds_bucket", {{"le", "2.5"}}), 2);
  EXPECT_EQ(Value(samples, "steno_job_processing_seconds_count"), 1);
  EXPECT_EQ(Value(samples, "steno_job_real_time_factor_count"), 1);
  EXPECT_EQ(Value(samples, "steno_job_real_time_factor_bucket", {{"le", "0.01"}}), 1);
  EXPECT_EQ(Value(samples, "steno_audio_seconds_total"), 10);
  EXPECT_EQ(Value(samples, "steno_job_segments_total"), 2);
  EXPECT_EQ(
      Value(samples, "steno_jobs_finished_total", {{"state", "completed"}, {"error_kind", ""}}), 1);
  EXPECT_EQ(Value(samples, "steno_jobs_finished_total",
                  {{"state", "failed"}, {"error_kind", "bad_input"}}),
            1);
  EXPECT_EQ(Value(samples, "steno_job_retries_total", {{"error_kind", "internal"}}), 1);
  EXPECT_EQ(Value(samples, "steno_runner_loads_total", {{"model", "tiny"}, {"device", "cpu"}}), 1);
  EXPECT_EQ(Value(samples, "steno_runner_unloads_total", {{"reason", "keep-alive expired"}}), 1);
  EXPECT_EQ(Value(samples, "steno_runner_load_seconds_sum"), 1.5);
  EXPECT_EQ(Value(samples, "steno_runner_release_seconds_bucket", {{"le", "0.05"}}), 1);
  EXPECT_EQ(Value(samples, "steno_http_requests_total",
                  {{"route", "/v1/jobs/{id}"}, {"method", "GET"}, {"status", "200"}}),
            2);
  EXPECT_EQ(Value(samples, "steno_http_request_duration_seconds_bucket",
                  {{"route", "/v1/jobs/{id}"}, {"le", "0.0025"}}),
            1);
  EXPECT_EQ(
      Value(samples, "steno_http_request_duration_seconds_count", {{"route", "/v1/jobs/{id}"}}), 2);
  EXPECT_EQ(Value(samples, "steno_http_request_duration_seconds_count",
                  {{"route", "/v1/audio/transcriptions"}}),
            1);
}

TEST(ApiMetricsTest, LabelValuesAreEscaped) {
  EXPECT_EQ(PrometheusLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  ServiceMetrics m([](int) { return false; });
  sched::RunnerUpdate u;
  u.kind = sched::RunnerUpdate::Kind::kUnloaded;
  u.reason = "weird \"reason\"\nwith newline";
  m.OnRunner(u);
  auto samples =
      ParseExposition(m.RenderPrometheus(sched::SchedulerSnapshot{}, {}, store::JobCounts{}));
  bool found = false;
  for (const auto& s : samples) found = found || s.name == "steno_runner_unloads_total";
  EXPECT_TRUE(found);
}

TEST(ApiMetricsTest, HistogramBucketsAreUpperInclusive) {
  Histogram h({1, 2});
  h.Observe(1);
  h.Observe(1.5);
  h.Observe(5);
  std::string out;
  h.Render("x", "", out);
  EXPECT_NE(out.find("x_bucket{le=\"1\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{le=\"2\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_count 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_sum 7.5\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace steno::server
