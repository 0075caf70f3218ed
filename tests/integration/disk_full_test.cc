// A full data dir (issue 21, defect 6): `steno serve` on a small tmpfs. An upload that meets a
// full disk is 507 insufficient_storage whose body names no server path, leaves no temp file and
// no job; below --min-free-disk uploads are refused before they are read and the
// disk_space_low alert fires; jobs accepted earlier still complete.
//
// Mounting needs root (CAP_SYS_ADMIN); elsewhere the tests skip and say why.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "api_test_server.h"
#include "support/child_process.h"

namespace steno {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::ApiTestServer;
using test::Field;
using test::FilePart;
using test::JsonOf;

constexpr int64_t kMiB = int64_t{1} << 20;

// A tmpfs of `bytes` at `dir`, unmounted (lazily, so a straggler cannot block it) when it goes.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& dir, int64_t bytes) : dir_(dir) {
    fs::create_directories(dir);
    const std::string options = "size=" + std::to_string(bytes);
    if (mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) == 0) {
      mounted_ = true;
    } else {
      why_ = std::strerror(errno);
    }
  }
  ~TmpfsMount() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& why() const { return why_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string why_;
};

int64_t FreeBytes(const std::string& dir) {
  struct statvfs st {};
  EXPECT_EQ(statvfs(dir.c_str(), &st), 0) << std::strerror(errno);
  return static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
}

// Writes `path` until about `leave` bytes stay free on its filesystem (to the page).
void FillLeaving(const std::string& path, int64_t leave) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  const std::string chunk(64 << 10, 'f');
  const std::string dir = fs::path(path).parent_path().string();
  for (int64_t left = FreeBytes(dir) - leave; left > 0;) {
    const size_t n = static_cast<size_t>(std::min<int64_t>(left, chunk.size()));
    const ssize_t wrote = write(fd, chunk.data(), n);
    if (wrote <= 0) break;
    left -= wrote;
  }
  close(fd);
}

int PartFiles(const std::string& dir) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) n += e.path().extension() == ".part";
  return n;
}

size_t JobCount(httplib::Client& c) {
  auto list = JsonOf(c.Get("/v1/jobs?limit=1000"));
  return list.is_null() ? 0 : list["data"].size();
}

std::string Submit(httplib::Client& c, const std::string& media) {
  auto r =
      c.Post("/v1/jobs", httplib::MultipartFormDataItems{FilePart(media), Field("model", "tiny")});
  EXPECT_TRUE(r);
  if (!r) return "";
  EXPECT_EQ(r->status, 202) << r->body;
  return JsonOf(r).value("id", "");
}

httplib::Result Junk(httplib::Client& c, const std::string& route, int64_t bytes,
                     const std::string& name = "big talk.wav") {
  return c.Post(route,
                httplib::MultipartFormDataItems{
                    {"file", std::string(static_cast<size_t>(bytes), 'x'), name, "audio/wav"},
                    Field("model", "tiny")});
}

// The 507 in OpenAI's shape, naming none of the server's directories.
void ExpectInsufficientStorage(const httplib::Result& r, const std::string& data_dir) {
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 507) << r->body;
  auto body = JsonOf(r);
  ASSERT_FALSE(body.is_null());
  EXPECT_EQ(body["error"].value("code", ""), "insufficient_storage") << r->body;
  EXPECT_EQ(body["error"].value("type", ""), "server_error") << r->body;
  EXPECT_EQ(r->body.find(data_dir), std::string::npos) << r->body;
  EXPECT_EQ(r->body.find("/blobs"), std::string::npos) << r->body;
  EXPECT_EQ(r->body.find(".part"), std::string::npos) << r->body;
}

// Each test's data dir is a 32 MiB tmpfs of its own (skipped where mounting is not permitted).
class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    disk_ = std::make_unique<TmpfsMount>(data, 32 * kMiB);
    if (!disk_->mounted()) {
      GTEST_SKIP() << "needs a small filesystem for the data dir: mount -t tmpfs failed ("
                   << disk_->why() << "); run as root (CAP_SYS_ADMIN) to test a full disk";
    }
  }

  test::ScopedTempDir dir{"steno-disk"};
  const std::string data = dir.path + "/data";
  std::unique_ptr<TmpfsMount> disk_;  // unmounted before `dir` is removed
};

TEST_F(DiskFullTest, FullDiskIsA507ThatNamesNoServerPathAndStoresNothing) {
  ApiTestServer s({"--data-dir", data, "--min-free-disk", "0"});  // only a full disk refuses
  auto c = s.Client();
  const std::string first = Submit(c, "speech.mp3");
  ASSERT_FALSE(first.empty());

  FillLeaving(data + "/filler", 256 << 10);
  ExpectInsufficientStorage(Junk(c, "/v1/jobs", 2 * kMiB), data);
  auto sync = Junk(c, "/v1/audio/transcriptions", 2 * kMiB, "memo.wav");
  ExpectInsufficientStorage(sync, data);
  ASSERT_TRUE(sync);
  EXPECT_NE(JsonOf(sync)["error"].value("message", "").find("memo.wav"), std::string::npos)
      << sync->body;  // the client's own file name

  EXPECT_EQ(PartFiles(data + "/blobs/tmp"), 0) << "a partial upload was left behind";
  EXPECT_EQ(JobCount(c), 1u) << "a refused upload became a job";
  EXPECT_EQ(test::WaitForJob(c, first).value("state", ""), "completed");

  fs::remove(data + "/filler");  // space again: uploads are accepted again
  EXPECT_FALSE(Submit(c, "speech.ogg").empty());
}

TEST_F(DiskFullTest, BelowTheMarginUploadsAreRefusedUpFrontAndTheAlertFires) {
  ApiTestServer s({"--data-dir", data, "--min-free-disk", "8MiB", "--alert-interval", "50ms"});
  auto c = s.Client();
  const std::string first = Submit(c, "speech.mp3");
  ASSERT_FALSE(first.empty());
  EXPECT_TRUE(JsonOf(c.Get("/v1/alerts"))["alerts"].empty());

  // 12 MiB free: a 5 MiB upload would fit, but would leave less than the 8 MiB margin.
  FillLeaving(data + "/filler", 12 * kMiB);
  auto crossing = Junk(c, "/v1/jobs", 5 * kMiB);
  ExpectInsufficientStorage(crossing, data);
  ASSERT_TRUE(crossing);
  EXPECT_NE(crossing->body.find("would leave"), std::string::npos) << crossing->body;

  // 6 MiB free: far from full, yet below the margin: nothing is accepted.
  FillLeaving(data + "/filler", 6 * kMiB);
  auto low = c.Post(
      "/v1/jobs", httplib::MultipartFormDataItems{FilePart("speech.ogg"), Field("model", "tiny")});
  ExpectInsufficientStorage(low, data);
  EXPECT_EQ(JobCount(c), 1u);
  EXPECT_EQ(PartFiles(data + "/blobs/tmp"), 0);

  nlohmann::json alerts;
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        alerts = JsonOf(c.Get("/v1/alerts"));
        for (const auto& a : alerts["alerts"]) {
          if (a.value("name", "") == "disk_space_low") return true;
        }
        return false;
      },
      10s))
      << alerts.dump();
  for (const auto& a : alerts["alerts"]) {
    if (a.value("name", "") != "disk_space_low") continue;
    EXPECT_EQ(a.value("kind", ""), "disk_space_low");
    EXPECT_EQ(a.value("threshold", 0.0), 8.0 * kMiB) << a.dump();
    EXPECT_LT(a.value("value", 0.0), 8.0 * kMiB) << a.dump();
    EXPECT_EQ(a.dump().find(data), std::string::npos) << a.dump();
  }
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("steno_alerts_firing{alert=\"disk_space_low\""), std::string::npos);
  EXPECT_NE(metrics->body.find("steno_disk_free_bytes "), std::string::npos);
  EXPECT_NE(metrics->body.find("steno_disk_min_free_bytes 8388608"), std::string::npos);

  EXPECT_EQ(test::WaitForJob(c, first).value("state", ""), "completed");
}

}  // namespace
}  // namespace steno
