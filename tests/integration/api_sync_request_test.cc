// Synchronous OpenAI requests are kept in memory end to end (server/sync_runs.h): a real
// `steno serve`, a synchronous transcription, then what is on disk: no job row (GET /v1/jobs and
// the SQLite database's WAL untouched: nothing written, so nothing to fsync), no blob, no temp
// file left; the text equals an async job's for the same file; the run is still answered by id.
#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "api_test_server.h"

namespace steno::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// What a write to the job store changes: the WAL file's size and modification time.
struct WalState {
  bool exists = false;
  int64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const WalState&) const = default;
};

WalState WalOf(const std::string& data_dir) {
  struct stat st {};
  WalState w;
  if (stat((data_dir + "/steno.db-wal").c_str(), &st) != 0) return w;
  w.exists = true;
  w.size = st.st_size;
  w.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  return w;
}

// Files in `dir` (not directories), by name.
std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file()) out.push_back(e.path().filename().string());
  }
  return out;
}

// The temp file of an upload goes when its run ends, which may be a moment after the response.
bool TempFilesGone(const std::string& tmp_dir) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!FilesIn(tmp_dir).empty()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

TEST(ApiSyncRequestTest, LeavesNothingStoredAndGivesTheAsyncJobsText) {
  ApiTestServer s;
  auto c = s.Client();
  const std::string blobs = s.data + "/blobs";
  // An async job first (stored, durable): the text to compare, and once it is completed every
  // write its runner's start caused (its measured footprint) is in the store.
  const std::string async_id = PostJob(c, "speech.wav");
  EXPECT_EQ(WaitForJob(c, async_id)["state"], "completed");
  auto result = c.Get("/v1/jobs/" + async_id + "/result?format=json");
  ASSERT_EQ(StatusOf(result), 200);
  const std::string async_text = JsonOf(result).value("text", "");
  ASSERT_FALSE(async_text.empty());
  const WalState wal_before = WalOf(s.data);
  const auto blobs_before = FilesIn(blobs);

  auto sync = c.Post("/v1/audio/transcriptions",
                     httplib::MultipartFormDataItems{FilePart("speech.wav"), Field("model", "tiny"),
                                                     Field("language", "en")});
  ASSERT_EQ(StatusOf(sync), 200) << sync->body;
  EXPECT_EQ(JsonOf(sync).value("text", ""), async_text);
  const std::string id = sync->get_header_value("X-Steno-Job-Id");
  ASSERT_FALSE(id.empty());

  // Nothing stored: no row, no write to the database (so no fsync of it), no blob, no temp file.
  EXPECT_EQ(JsonOf(c.Get("/v1/jobs"))["data"].size(), 1u) << "a synchronous request left a row";
  EXPECT_EQ(WalOf(s.data), wal_before) << "a synchronous request wrote to the job store";
  EXPECT_EQ(FilesIn(blobs), blobs_before) << "a synchronous request's upload became a blob";
  EXPECT_TRUE(TempFilesGone(blobs + "/tmp")) << "its temp file outlived the run";
  // Still answered by id while it is remembered; its result was the response, not kept.
  auto job = JsonOf(c.Get("/v1/jobs/" + id));
  EXPECT_EQ(job["state"], "completed") << job.dump();
  EXPECT_EQ(job["attempts"].size(), 1u) << job.dump();
  EXPECT_EQ(StatusOf(c.Get("/v1/jobs/" + id + "/result")), 404);

  // The check above sees a stored job: a second async job changes the WAL.
  EXPECT_EQ(WaitForJob(c, PostJob(c, "speech.wav"))["state"], "completed");
  EXPECT_NE(WalOf(s.data), wal_before);
}

TEST(ApiSyncRequestTest, CountedInMetricsAndTheDashboard) {
  ApiTestServer s;
  auto c = s.Client();
  auto sync = c.Post("/v1/audio/translations",
                     httplib::MultipartFormDataItems{FilePart("speech.wav"), Field("model", "tiny"),
                                                     Field("response_format", "text")});
  ASSERT_EQ(StatusOf(sync), 200) << sync->body;
  const std::string id = sync->get_header_value("X-Steno-Job-Id");
  auto metrics = c.Get("/metrics");
  ASSERT_EQ(StatusOf(metrics), 200);
  EXPECT_NE(metrics->body.find("steno_jobs_finished_total{state=\"completed\",error_kind=\"\"} 1"),
            std::string::npos)
      << metrics->body;
  // The dashboard's recent jobs list it (from memory: the store has no row of it).
  std::string body;
  c.Get("/v1/events", [&](const char* data, size_t n) {
    body.append(data, n);
    return body.find("event: snapshot") == std::string::npos;
  });
  json snapshot;
  for (const auto& e : ParseSse(body + "\n\n")) {
    if (e.event == "snapshot") snapshot = e.data;
  }
  ASSERT_TRUE(snapshot.is_object()) << body.substr(0, 300);
  bool listed = false;
  for (const auto& j : snapshot["jobs"]) {
    if (j["id"] == id) {
      listed = true;
      EXPECT_EQ(j["state"], "completed");
      EXPECT_EQ(j["task"], "translate");
    }
  }
  EXPECT_TRUE(listed) << snapshot["jobs"].dump();
}

}  // namespace
}  // namespace steno::test
