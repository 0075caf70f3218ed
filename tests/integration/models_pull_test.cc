// `steno models pull` and `steno models list` against a real HTTP server in this process.
//
// The server (cpp-httplib on 127.0.0.1, an ephemeral port) serves one model file under several
// paths, each behaving like a kind of server a download meets in the wild:
//   /ok/ggml-tiny.en.bin       honours Range (206 + Content-Range)
//   /norange/ggml-tiny.en.bin  ignores Range and always sends the whole file (200)
//   /flaky/ggml-tiny.en.bin    drops the connection halfway through its first response
//   anything else              404
// It records every request's Range header and the body bytes it sent, so the tests can assert
// what went over the wire. Nothing here talks to anything but 127.0.0.1.
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/gapped_speech.h"
#include "support/process.h"
#include "support/test_env.h"

namespace steno {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string Sha1Hex(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha1(), nullptr);
  std::string hex;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", md[i]);
    hex += buf;
  }
  return hex;
}

// The served file: the generated tiny model when the test-data fixture made one (so `models
// list` can read real hparams), else 3 MiB of deterministic pseudo-random bytes.
std::string ServedBytes() {
  std::error_code ec;
  if (fs::is_regular_file(test::TinyModel(), ec)) return ReadAll(test::TinyModel());
  std::string bytes(3 << 20, '\0');
  uint32_t x = 12345;
  for (char& c : bytes) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return bytes;
}

class FileServer {
 public:
  explicit FileServer(std::string body) : body_(std::move(body)) {
    server_.Get("/ok/ggml-tiny.en.bin",
                [this](const httplib::Request& req, httplib::Response& res) {
                  Record(req);
                  // A sized provider: httplib answers Range requests with 206 and asks for that
                  // slice only.
                  res.set_content_provider(body_.size(), "application/octet-stream",
                                           [this](size_t off, size_t len, httplib::DataSink& sink) {
                                             len = std::min(len, body_.size() - off);
                                             bytes_served_ += static_cast<int64_t>(len);
                                             return sink.write(body_.data() + off, len);
                                           });
                });
    server_.Get("/norange/ggml-tiny.en.bin", [this](const httplib::Request& req,
                                                    httplib::Response& res) {
      Record(req);
      res.status = 200;  // a chunked provider is never sliced: the whole file whatever was asked
      res.set_chunked_content_provider(
          "application/octet-stream", [this](size_t off, httplib::DataSink& sink) {
            if (off >= body_.size()) {
              sink.done();
              return true;
            }
            size_t len = std::min<size_t>(64 << 10, body_.size() - off);
            bytes_served_ += static_cast<int64_t>(len);
            return sink.write(body_.data() + off, len);
          });
    });
    server_.Get(
        "/flaky/ggml-tiny.en.bin", [this](const httplib::Request& req, httplib::Response& res) {
          bool first = Record(req) == 1;
          res.set_content_provider(body_.size(), "application/octet-stream",
                                   [this, first](size_t off, size_t len, httplib::DataSink& sink) {
                                     size_t half = body_.size() / 2;
                                     if (first && off >= half) return false;  // drop the connection
                                     len = std::min(len, (first ? half : body_.size()) - off);
                                     len = std::min<size_t>(len, 64 << 10);
                                     bytes_served_ += static_cast<int64_t>(len);
                                     return sink.write(body_.data() + off, len);
                                   });
        });
    server_.set_error_handler(
        [this](const httplib::Request& req, httplib::Response&) { Record(req); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // The socket already listens (bind_to_any_port), so clients can connect at once; wait for
    // the accept loop only so that stop() in the destructor always finds it running.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  ~FileServer() {
    server_.stop();
    thread_.join();
  }

  std::string Url(const std::string& prefix) const {
    return "http://127.0.0.1:" + std::to_string(port_) + prefix;
  }
  const std::string& body() const { return body_; }
  int64_t bytes_served() const { return bytes_served_; }
  int requests() {
    std::lock_guard lock(mu_);
    return static_cast<int>(ranges_.size());
  }
  std::vector<std::string> ranges() {  // the Range header of each request ("" when none)
    std::lock_guard lock(mu_);
    return ranges_;
  }

 private:
  int Record(const httplib::Request& req) {
    std::lock_guard lock(mu_);
    ranges_.push_back(req.get_header_value("Range"));
    return static_cast<int>(ranges_.size());
  }

  std::string body_;
  httplib::Server server_;
  int port_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> ranges_;
  std::atomic<int64_t> bytes_served_{0};
};

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

std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class ModelsPullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<FileServer>(ServedBytes());
    models_dir_ = test::MakeTempDir("steno-models-pull");
    model_path_ = models_dir_ + "/ggml-tiny.en.bin";
    sha1_ = Sha1Hex(server_->body());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(models_dir_, ec);
  }

  test::ProcessResult Steno(std::vector<std::string> args,
                            std::vector<std::pair<std::string, std::string>> env = {}) {
    args.insert(args.begin(), test::StenoBin());
    test::ProcessOptions o;
    o.env = {{"STENO_MODELS", models_dir_},
             {"STENO_MODEL_BASE_URL", ""},
             {"no_proxy", "*"},
             {"NO_PROXY", "*"}};
    for (auto& kv : env) o.env.push_back(kv);
    o.timeout_s = 120;
    return test::RunProcess(args, o);
  }

  test::ProcessResult Pull(const std::string& prefix, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"models", "pull", "tiny.en", "--base-url",
                                     server_->Url(prefix)};
    args.insert(args.end(), extra.begin(), extra.end());
    return Steno(args);
  }

  std::unique_ptr<FileServer> server_;
  std::string models_dir_;
  std::string model_path_;
  std::string sha1_;
};

TEST_F(ModelsPullTest, PullsVerifiesAndRenamesIntoPlace) {
  auto r = Pull("/ok", {"--sha1", sha1_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadAll(model_path_), server_->body());
  EXPECT_EQ(DirEntries(models_dir_), std::vector<std::string>{"ggml-tiny.en.bin"});  // no .part
  EXPECT_EQ(server_->ranges(), std::vector<std::string>{""});  // one request, no Range
  EXPECT_EQ(server_->bytes_served(), static_cast<int64_t>(server_->body().size()));
  // stderr is not a terminal here: no progress bar, no control characters.
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\033'), std::string::npos) << r.err;
  EXPECT_NE(r.out.find(model_path_), std::string::npos) << r.out;

  // Pulling again finds the verified file and downloads nothing.
  auto again = Pull("/ok", {"--sha1", sha1_});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("already installed"), std::string::npos) << again.out;
  EXPECT_EQ(server_->requests(), 1);

  // --force downloads it again.
  auto forced = Pull("/ok", {"--sha1", sha1_, "--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(server_->requests(), 2);
  EXPECT_EQ(ReadAll(model_path_), server_->body());
}

TEST_F(ModelsPullTest, BaseUrlFromEnvironment) {
  auto r = Steno({"models", "pull", "tiny.en", "--sha1", sha1_},
                 {{"STENO_MODEL_BASE_URL", server_->Url("/ok/")}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadAll(model_path_), server_->body());
  EXPECT_EQ(server_->requests(), 1);
}

TEST_F(ModelsPullTest, ResumesPartialDownloadWithRange) {
  const std::string& body = server_->body();
  const size_t half = body.size() / 2;
  WriteAll(model_path_ + ".part", body.substr(0, half));

  auto r = Pull("/ok", {"--sha1", sha1_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadAll(model_path_), body);
  EXPECT_FALSE(fs::exists(model_path_ + ".part"));
  EXPECT_EQ(server_->ranges(), std::vector<std::string>{"bytes=" + std::to_string(half) + "-"});
  EXPECT_EQ(server_->bytes_served(), static_cast<int64_t>(body.size() - half));
  EXPECT_NE(r.out.find("resumed"), std::string::npos) << r.out;
}

TEST_F(ModelsPullTest, RestartsWhenServerIgnoresRange) {
  const std::string& body = server_->body();
  // A .part whose bytes are wrong: if they were kept, the hash could not match.
  WriteAll(model_path_ + ".part", std::string(body.size() / 3, 'x'));

  auto r = Pull("/norange", {"--sha1", sha1_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadAll(model_path_), body);
  EXPECT_FALSE(fs::exists(model_path_ + ".part"));
  ASSERT_EQ(server_->requests(), 1);
  EXPECT_EQ(server_->ranges()[0], "bytes=" + std::to_string(body.size() / 3) + "-");
  EXPECT_EQ(server_->bytes_served(), static_cast<int64_t>(body.size()));
}

TEST_F(ModelsPullTest, StaleResumedBytesAreRedownloadedOnce) {
  const std::string& body = server_->body();
  // Same length as a real prefix but different content (an older version of the file).
  WriteAll(model_path_ + ".part", std::string(body.size() / 2, 'y'));

  auto r = Pull("/ok", {"--sha1", sha1_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadAll(model_path_), body);
  auto ranges = server_->ranges();
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_FALSE(ranges[0].empty());
  EXPECT_TRUE(ranges[1].empty());  // the retry starts over
}

TEST_F(ModelsPullTest, InterruptedTransferResumesAutomatically) {
  auto r = Pull("/flaky", {"--sha1", sha1_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadAll(model_path_), server_->body());
  auto ranges = server_->ranges();
  ASSERT_GE(ranges.size(), 2u);
  EXPECT_TRUE(ranges[0].empty());
  EXPECT_EQ(ranges[1].rfind("bytes=", 0), 0u) << ranges[1];
  EXPECT_EQ(DirEntries(models_dir_), std::vector<std::string>{"ggml-tiny.en.bin"});
}

TEST_F(ModelsPullTest, WrongSha1FailsAndLeavesNothing) {
  std::string wrong(40, '0');
  auto r = Pull("/ok", {"--sha1", wrong});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  std::string err = r.err;
  std::transform(err.begin(), err.end(), err.begin(), ::tolower);
  EXPECT_NE(err.find("checksum"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(sha1_), std::string::npos)
      << "message should show the actual hash: " << r.err;
  EXPECT_TRUE(DirEntries(models_dir_).empty());
}

TEST_F(ModelsPullTest, CatalogHashIsEnforcedWithoutSha1Flag) {
  // Without --sha1 the catalog's hash of the real tiny.en applies, which the served file lacks.
  auto r = Pull("/ok");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("c78c86eb1a8faa21b369bcd33207cc90d64ae9df"), std::string::npos) << r.err;
  EXPECT_TRUE(DirEntries(models_dir_).empty());
}

TEST_F(ModelsPullTest, UnknownModelIsUsageError) {
  auto r = Steno({"models", "pull", "no-such-model", "--base-url", server_->Url("/ok")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("no-such-model"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("large-v3-turbo"), std::string::npos)
      << "should list known names: " << r.err;
  EXPECT_EQ(server_->requests(), 0);
  EXPECT_TRUE(DirEntries(models_dir_).empty());
}

TEST_F(ModelsPullTest, MalformedSha1IsUsageError) {
  auto r = Pull("/ok", {"--sha1", "abc"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--sha1"), std::string::npos) << r.err;
  EXPECT_EQ(server_->requests(), 0);
}

TEST_F(ModelsPullTest, UnreachableServerFailsClearly) {
  std::string url = "http://127.0.0.1:" + std::to_string(ClosedPort());
  auto r = Steno({"models", "pull", "tiny.en", "--base-url", url, "--sha1", sha1_});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("could not reach 127.0.0.1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("offline"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(models_dir_), std::string::npos) << "should say where to copy it: " << r.err;
  EXPECT_TRUE(DirEntries(models_dir_).empty());
}

TEST_F(ModelsPullTest, HttpErrorFailsClearly) {
  auto r = Pull("/missing", {"--sha1", sha1_});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("404"), std::string::npos) << r.err;
  EXPECT_TRUE(DirEntries(models_dir_).empty());
}

TEST_F(ModelsPullTest, ListJsonShowsPulledModel) {
  auto empty = Steno({"models", "list", "--json"});
  ASSERT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_TRUE(nlohmann::json::parse(empty.out)["models"].empty());

  ASSERT_EQ(Pull("/ok", {"--sha1", sha1_}).exit_code, 0);
  WriteAll(models_dir_ + "/ggml-broken.bin", "not a model");

  auto r = Steno({"models", "list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["models_dir"], models_dir_);
  ASSERT_EQ(j["models"].size(), 2u) << r.out;
  const auto& broken = j["models"][0];  // sorted by name
  EXPECT_EQ(broken["name"], "broken");
  EXPECT_TRUE(broken.contains("error")) << r.out;  // listed with its error, not fatal
  const auto& m = j["models"][1];
  EXPECT_EQ(m["name"], "tiny.en");
  EXPECT_EQ(m["path"], model_path_);
  EXPECT_EQ(m["file_bytes"].get<int64_t>(), static_cast<int64_t>(server_->body().size()));
  if (fs::is_regular_file(test::TinyModel())) {  // the served file is a real (random) model
    EXPECT_FALSE(m.contains("error")) << r.out;
    EXPECT_GT(m["n_mels"].get<int>(), 0);
    EXPECT_GT(m["tensor_bytes"].get<int64_t>(), 0);
  }

  auto table = Steno({"models", "list"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("tiny.en"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("broken"), std::string::npos) << table.out;
}

TEST_F(ModelsPullTest, PullsTheVadModelAgainstItsPinnedHash) {
  const std::string silero = test::SileroModel();
  if (silero.empty()) GTEST_SKIP() << "the real VAD model is not at ../shared/models";
  const std::string real = ReadAll(silero);
  std::string served = real;
  served[served.size() / 2] ^= 0x01;  // first a corrupted copy
  std::mutex mu;
  httplib::Server mirror;
  mirror.Get("/ggml-silero-v6.2.0.bin", [&](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mu);
    res.set_content(served, "application/octet-stream");
  });
  const int port = mirror.bind_to_any_port("127.0.0.1");
  std::thread t([&] { mirror.listen_after_bind(); });
  while (!mirror.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const std::string url = "http://127.0.0.1:" + std::to_string(port);

  // No --sha1: the catalog's pinned hash decides.
  auto bad = Steno({"models", "pull", "silero-v6.2.0", "--base-url", url});
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  EXPECT_NE(bad.err.find("470e5d9d094ddba2f0a512cecc3732a252188abd"), std::string::npos) << bad.err;
  EXPECT_TRUE(DirEntries(models_dir_).empty());

  {
    std::lock_guard lock(mu);
    served = real;
  }
  auto r = Steno({"models", "pull", "silero-v6.2.0", "--base-url", url});
  mirror.stop();
  t.join();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadAll(models_dir_ + "/ggml-silero-v6.2.0.bin"), real);

  // Listed as what it is, not as a broken Whisper model.
  auto list = Steno({"models", "list", "--json", "--available"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto j = nlohmann::json::parse(list.out);
  ASSERT_EQ(j["models"].size(), 1u) << list.out;
  EXPECT_EQ(j["models"][0]["name"], "silero-v6.2.0");
  EXPECT_EQ(j["models"][0]["type"], "vad");
  EXPECT_FALSE(j["models"][0].contains("error")) << list.out;
  bool available = false;
  for (const auto& a : j["available"]) {
    if (a["name"] == "silero-v6.2.0") available = a["installed"] == true && a["type"] == "vad";
  }
  EXPECT_TRUE(available) << list.out;
}

}  // namespace
}  // namespace steno
