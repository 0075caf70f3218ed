// The bad-input suite: malformed requests and files against a real `steno serve`. Each case
// asserts the status, the error code in OpenAI's error shape, and that nothing was left behind:
// no job in GET /v1/jobs, no blob (or temp upload) in the data dir, no runner in GET /v1/runners.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <filesystem>
#include <functional>

#include <gtest/gtest.h>

#include "api_test_server.h"

namespace steno::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Items = httplib::MultipartFormDataItems;

size_t FilesIn(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) n += e.is_regular_file();
  return n;
}

// One server for the whole suite: limits small enough to test, a root for server paths.
class ApiBadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    audio_ = new ScopedTempDir("steno-api-bad");
    const std::string root = audio_->path + "/root";
    fs::create_directories(root + "/dir");
    fs::create_directories(audio_->path + "/outside");
    fs::copy_file(MediaPath("speech.wav"), root + "/speech.wav");
    fs::copy_file(MediaPath("not_media.txt"), root + "/notes.wav");
    fs::copy_file(MediaPath("speech.wav"), audio_->path + "/outside/secret.wav");
    fs::create_symlink(audio_->path + "/outside/secret.wav", root + "/escape.wav");
    server_ = new ApiTestServer(
        {"--allow-path", root, "--max-upload-bytes", "2MiB", "--max-duration", "15"});
  }
  static void TearDownTestSuite() {
    delete server_;
    delete audio_;
  }

  static std::string Root() { return audio_->path + "/root"; }

  // Sends the request, then checks the status, the error's code and shape, and that the server
  // kept nothing of it.
  void Expect(const std::function<httplib::Result(httplib::Client&)>& send, int status,
              const std::string& code) {
    auto c = server_->Client();
    auto r = send(c);
    ASSERT_TRUE(r) << code << ": no response (" << httplib::to_string(r.error()) << ")";
    EXPECT_EQ(r->status, status) << code << ": " << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json") << code;
    auto body = json::parse(r->body, nullptr, false);
    ASSERT_FALSE(body.is_discarded()) << code << ": " << r->body;
    ASSERT_TRUE(body.contains("error") && body["error"].is_object()) << r->body;
    EXPECT_EQ(body["error"]["code"], code) << r->body;
    EXPECT_TRUE(body["error"]["message"].is_string());
    EXPECT_TRUE(body["error"]["type"].is_string());
    ExpectNothingLeft(code);
  }

  void ExpectNothingLeft(const std::string& context) {
    auto c = server_->Client();
    auto jobs = JsonOf(c.Get("/v1/jobs"));
    EXPECT_EQ(jobs["data"].size(), 0u) << context << " left a job: " << jobs.dump();
    EXPECT_EQ(FilesIn(server_->data + "/blobs"), 0u) << context << " left a blob";
    EXPECT_EQ(FilesIn(server_->data + "/blobs/tmp"), 0u) << context << " left a temp upload";
    auto runners = JsonOf(c.Get("/v1/runners"));
    EXPECT_EQ(runners["data"].size(), 0u) << context << " left a runner";
  }

  static httplib::Result Upload(httplib::Client& c, Items items,
                                const std::string& path = "/v1/audio/transcriptions") {
    return c.Post(path, items);
  }
  static httplib::Result Audio(httplib::Client& c, const std::string& media,
                               Items extra = {Field("model", "tiny")}) {
    Items items = {FilePart(media)};
    for (auto& e : extra) items.push_back(e);
    return c.Post("/v1/audio/transcriptions", items);
  }
  static httplib::Result PathJob(httplib::Client& c, const std::string& path) {
    json body = {{"model", "tiny"}, {"path", path}};
    return c.Post("/v1/jobs", body.dump(), "application/json");
  }
  static std::string Bytes(size_t n, char fill = 'x') { return std::string(n, fill); }

  static ScopedTempDir* audio_;
  static ApiTestServer* server_;
};

ScopedTempDir* ApiBadInputTest::audio_ = nullptr;
ApiTestServer* ApiBadInputTest::server_ = nullptr;

// ---- undecodable or unacceptable audio ---------------------------------------------------------

TEST_F(ApiBadInputTest, TextFileIsNotMedia) {
  Expect([](auto& c) { return Audio(c, "not_media.txt"); }, 415, "not_media");
}
TEST_F(ApiBadInputTest, VideoWithoutAudio) {
  Expect([](auto& c) { return Audio(c, "video_only.mp4"); }, 415, "no_audio_stream");
}
TEST_F(ApiBadInputTest, TruncatedWav) {
  Expect([](auto& c) { return Audio(c, "truncated.wav"); }, 415, "truncated");
}
TEST_F(ApiBadInputTest, Mp3CutShortIsFoundByTheServersOneDecodeNotByARunner) {
  // The probe passes (the header is whole); decoding finds the audio missing. The server decodes
  // a synchronous request's upload itself, once, so the request is refused with the file's own
  // error and no runner is started for it (Expect checks that none is left).
  const std::vector<char> whole = ReadFileBytes(MediaPath("speech.mp3"));
  const std::string cut(whole.begin(),
                        whole.begin() + static_cast<std::ptrdiff_t>(whole.size() / 2));
  Expect(
      [&](auto& c) {
        auto r = Upload(c, {{"file", cut, "cut.mp3", ""}, Field("model", "tiny")});
        if (r) {
          auto body = json::parse(r->body, nullptr, false);
          EXPECT_EQ(body["error"]["param"], "file") << r->body;
          EXPECT_NE(r->body.find("cut.mp3"), std::string::npos) << r->body;
        }
        return r;
      },
      415, "truncated");
}
TEST_F(ApiBadInputTest, WavWithoutSamples) {
  Expect([](auto& c) { return Audio(c, "empty.wav"); }, 415, "empty_audio");
}
TEST_F(ApiBadInputTest, ZeroByteFile) {
  Expect(
      [](auto& c) {
        return Upload(c, {{"file", "", "a.wav", ""}, Field("model", "tiny")});
      },
      415, "not_media");
}
TEST_F(ApiBadInputTest, RandomBytes) {
  std::string noise;
  for (int i = 0; i < 50'000; ++i) noise += static_cast<char>((i * 7919 + 13) % 251);
  Expect(
      [&](auto& c) {
        return Upload(c, {{"file", noise, "x.mp3", ""}, Field("model", "tiny")});
      },
      415, "not_media");
}
TEST_F(ApiBadInputTest, AudioLongerThanTheLimit) {
  Expect([](auto& c) { return Audio(c, "long.wav"); }, 413, "too_long");
}

// ---- fields ----------------------------------------------------------------------------------

TEST_F(ApiBadInputTest, MissingFile) {
  Expect([](auto& c) { return Upload(c, {Field("model", "tiny")}); }, 400, "missing_file");
}
TEST_F(ApiBadInputTest, MissingModel) {
  Expect([](auto& c) { return Audio(c, "speech.wav", {}); }, 400, "missing_model");
}
TEST_F(ApiBadInputTest, UnknownModel) {
  Expect([](auto& c) { return Audio(c, "speech.wav", {Field("model", "large-v9")}); }, 404,
         "model_not_found");
}
TEST_F(ApiBadInputTest, ModelNamedByPath) {
  Expect([](auto& c) { return Audio(c, "speech.wav", {Field("model", "/etc/passwd")}); }, 400,
         "bad_model_name");
}
TEST_F(ApiBadInputTest, BadResponseFormat) {
  Expect(
      [](auto& c) {
        return Audio(c, "speech.wav", {Field("model", "tiny"), Field("response_format", "xml")});
      },
      400, "bad_response_format");
}
TEST_F(ApiBadInputTest, BadTemperature) {
  Expect(
      [](auto& c) {
        return Audio(c, "speech.wav", {Field("model", "tiny"), Field("temperature", "warm")});
      },
      400, "bad_temperature");
}
TEST_F(ApiBadInputTest, BadGranularity) {
  Expect(
      [](auto& c) {
        return Audio(c, "speech.wav",
                     {Field("model", "tiny"), Field("timestamp_granularities[]", "letter")});
      },
      400, "bad_timestamp_granularity");
}
TEST_F(ApiBadInputTest, BadPriority) {
  Expect(
      [](auto& c) {
        return Audio(c, "speech.wav", {Field("model", "tiny"), Field("priority", "asap")});
      },
      400, "bad_priority");
}
TEST_F(ApiBadInputTest, BadKeepAlive) {
  Expect(
      [](auto& c) {
        return Audio(c, "speech.wav", {Field("model", "tiny"), Field("keep_alive", "a while")});
      },
      400, "bad_keep_alive");
}
TEST_F(ApiBadInputTest, BadDevice) {
  Expect(
      [](auto& c) {
        return Audio(c, "speech.wav", {Field("model", "tiny"), Field("device", "tpu:0")});
      },
      400, "bad_device");
}
TEST_F(ApiBadInputTest, StreamingAsked) {
  // Transcriptions stream (transcription_stream_test); translations and jobs do not.
  Expect(
      [](auto& c) {
        return c.Post(
            "/v1/audio/translations",
            Items{FilePart("speech.wav"), Field("model", "tiny"), Field("stream", "true")});
      },
      400, "streaming_not_supported");
  Expect(
      [](auto& c) {
        return c.Post("/v1/jobs", Items{FilePart("speech.wav"), Field("model", "tiny"),
                                        Field("stream", "true")});
      },
      400, "streaming_not_supported");
  Expect(
      [](auto& c) {
        return Audio(c, "speech.wav", {Field("model", "tiny"), Field("stream", "maybe")});
      },
      400, "streaming_not_supported");
}
TEST_F(ApiBadInputTest, BadLanguage) {
  Expect(
      [](auto& c) {
        return Audio(c, "speech.wav", {Field("model", "tiny"), Field("language", "klingon")});
      },
      400, "bad_language");
}

// ---- multipart framing and sizes ----------------------------------------------------------------

TEST_F(ApiBadInputTest, FileInTheWrongField) {
  Expect(
      [](auto& c) {
        return Upload(c, {FilePart("speech.wav", "audio"), Field("model", "tiny")});
      },
      400, "unexpected_file");
}
TEST_F(ApiBadInputTest, TwoFiles) {
  Expect(
      [](auto& c) {
        return Upload(c, {FilePart("speech.wav"), FilePart("speech.wav"), Field("model", "tiny")});
      },
      400, "duplicate_file");
}
TEST_F(ApiBadInputTest, NotMultipart) {
  Expect(
      [](auto& c) {
        return c.Post("/v1/audio/transcriptions", R"({"model":"tiny"})", "application/json");
      },
      415, "unsupported_content_type");
}
TEST_F(ApiBadInputTest, MultipartWithoutBoundary) {
  Expect(
      [](auto& c) { return c.Post("/v1/audio/transcriptions", "--x\r\n", "multipart/form-data"); },
      400, "bad_multipart");
}
TEST_F(ApiBadInputTest, MultipartGarbage) {
  Expect(
      [](auto& c) {
        return c.Post("/v1/audio/transcriptions", "this is not a form at all",
                      "multipart/form-data; boundary=abc123");
      },
      400, "bad_multipart");
}
TEST_F(ApiBadInputTest, MultipartCutShort) {
  const std::string body =
      "--b0undary\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ntiny\r\n"
      "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
      "Content-Type: audio/wav\r\n\r\nRIFF....";  // no closing boundary
  Expect(
      [&](auto& c) {
        return c.Post("/v1/audio/transcriptions", body, "multipart/form-data; boundary=b0undary");
      },
      400, "bad_multipart");
}
TEST_F(ApiBadInputTest, UploadOverTheLimitByContentLength) {
  Expect(
      [](auto& c) {
        return Upload(c, {{"file", Bytes(4 << 20), "big.wav", ""}, Field("model", "tiny")});
      },
      413, "payload_too_large");
}
TEST_F(ApiBadInputTest, FilePartOverTheLimit) {
  // Within the body's framing slack, so the part itself trips the limit while streaming.
  Expect(
      [](auto& c) {
        return Upload(c,
                      {{"file", Bytes((2 << 20) + 1000), "big.wav", ""}, Field("model", "tiny")});
      },
      413, "file_too_large");
}
TEST_F(ApiBadInputTest, FieldOverTheLimit) {
  Expect(
      [](auto& c) {
        return Audio(c, "speech.wav", {Field("model", "tiny"), Field("prompt", Bytes(300 << 10))});
      },
      413, "field_too_large");
}

// ---- async jobs: JSON and server paths
// -----------------------------------------------------------

TEST_F(ApiBadInputTest, JobBodyNotJson) {
  Expect([](auto& c) { return c.Post("/v1/jobs", "{model: tiny", "application/json"); }, 400,
         "bad_json");
}
TEST_F(ApiBadInputTest, JobBodyNotAnObject) {
  Expect([](auto& c) { return c.Post("/v1/jobs", "[1, 2, 3]", "application/json"); }, 400,
         "bad_json");
}
TEST_F(ApiBadInputTest, JobBodyOfTheWrongType) {
  Expect([](auto& c) { return c.Post("/v1/jobs", "model=tiny", "text/plain"); }, 415,
         "unsupported_content_type");
}
TEST_F(ApiBadInputTest, JobJsonTooLarge) {
  Expect(
      [](auto& c) {
        return c.Post("/v1/jobs", "{\"prompt\":\"" + Bytes(1 << 20) + "\"}", "application/json");
      },
      413, "payload_too_large");
}
TEST_F(ApiBadInputTest, JobWithoutPath) {
  Expect([](auto& c) { return c.Post("/v1/jobs", R"({"model":"tiny"})", "application/json"); }, 400,
         "missing_path");
}
TEST_F(ApiBadInputTest, JobFieldOfTheWrongShape) {
  Expect(
      [](auto& c) {
        return c.Post("/v1/jobs", R"({"model":{"name":"tiny"},"path":"/x"})", "application/json");
      },
      400, "bad_field");
}
TEST_F(ApiBadInputTest, PathOutsideTheRoots) {
  Expect([](auto& c) { return PathJob(c, audio_->path + "/outside/secret.wav"); }, 403,
         "path_not_allowed");
}
TEST_F(ApiBadInputTest, PathWithDotDot) {
  Expect([](auto& c) { return PathJob(c, Root() + "/../outside/secret.wav"); }, 403,
         "path_not_allowed");
}
TEST_F(ApiBadInputTest, PathThroughASymlinkOut) {
  Expect([](auto& c) { return PathJob(c, Root() + "/escape.wav"); }, 403, "path_not_allowed");
}
TEST_F(ApiBadInputTest, SystemFile) {
  Expect([](auto& c) { return PathJob(c, "/etc/passwd"); }, 403, "path_not_allowed");
}
TEST_F(ApiBadInputTest, RelativePath) {
  Expect([](auto& c) { return PathJob(c, "speech.wav"); }, 400, "bad_path");
}
TEST_F(ApiBadInputTest, MissingServerFile) {
  Expect([](auto& c) { return PathJob(c, Root() + "/absent.wav"); }, 404, "file_not_found");
}
TEST_F(ApiBadInputTest, DirectoryAsPath) {
  Expect([](auto& c) { return PathJob(c, Root() + "/dir"); }, 400, "not_a_file");
}
TEST_F(ApiBadInputTest, ServerFileNotMedia) {
  Expect([](auto& c) { return PathJob(c, Root() + "/notes.wav"); }, 415, "not_media");
}
TEST_F(ApiBadInputTest, IdempotencyKeyTooLong) {
  Expect(
      [](auto& c) {
        json body = {{"model", "tiny"}, {"path", Root() + "/speech.wav"}};
        return c.Post("/v1/jobs", {{"Idempotency-Key", Bytes(300)}}, body.dump(),
                      "application/json");
      },
      400, "bad_idempotency_key");
}

// ---- reading jobs -------------------------------------------------------------------------------

TEST_F(ApiBadInputTest, UnknownJob) {
  Expect([](auto& c) { return c.Get("/v1/jobs/01HZZZZZZZZZZZZZZZZZZZZZZZ"); }, 404,
         "job_not_found");
}
TEST_F(ApiBadInputTest, ResultOfUnknownJob) {
  Expect([](auto& c) { return c.Get("/v1/jobs/nope/result"); }, 404, "job_not_found");
}
TEST_F(ApiBadInputTest, EventsOfUnknownJob) {
  Expect([](auto& c) { return c.Get("/v1/jobs/nope/events"); }, 404, "job_not_found");
}
TEST_F(ApiBadInputTest, CancelUnknownJob) {
  Expect([](auto& c) { return c.Delete("/v1/jobs/nope"); }, 404, "job_not_found");
}
TEST_F(ApiBadInputTest, ListWithBadState) {
  Expect([](auto& c) { return c.Get("/v1/jobs?state=done"); }, 400, "bad_state");
}
TEST_F(ApiBadInputTest, ListWithBadLimit) {
  Expect([](auto& c) { return c.Get("/v1/jobs?limit=0"); }, 400, "bad_limit");
  Expect([](auto& c) { return c.Get("/v1/jobs?limit=ten"); }, 400, "bad_limit");
}

// ---- models -------------------------------------------------------------------------------------

TEST_F(ApiBadInputTest, LoadUnknownModel) {
  Expect([](auto& c) { return c.Post("/v1/models/large-v9/load", "", "application/json"); }, 404,
         "model_not_found");
}
TEST_F(ApiBadInputTest, LoadWithBadDevice) {
  Expect(
      [](auto& c) {
        return c.Post("/v1/models/tiny/load", R"({"device":"gpu"})", "application/json");
      },
      400, "bad_device");
}
TEST_F(ApiBadInputTest, LoadWithBadJson) {
  Expect([](auto& c) { return c.Post("/v1/models/tiny/load", "{", "application/json"); }, 400,
         "bad_json");
}
TEST_F(ApiBadInputTest, UnknownModelInfo) {
  Expect([](auto& c) { return c.Get("/v1/models/large-v9"); }, 404, "model_not_found");
}

// ---- HTTP itself --------------------------------------------------------------------------------

TEST_F(ApiBadInputTest, UnknownRoute) {
  Expect([](auto& c) { return c.Get("/v2/everything"); }, 404, "route_not_found");
}
TEST_F(ApiBadInputTest, WrongMethod) {
  Expect([](auto& c) { return c.Put("/v1/jobs", "{}", "application/json"); }, 405,
         "method_not_allowed");
  auto r = server_->Client().Get("/v1/audio/transcriptions");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->get_header_value("Allow"), "POST");
}
TEST_F(ApiBadInputTest, GetWithABody) {
  Expect(
      [](auto& c) {
        httplib::Request req;
        req.method = "GET";
        req.path = "/v1/jobs";
        req.body = "surprise";
        req.set_header("Content-Type", "text/plain");
        req.set_header("Content-Length", "8");
        return c.send(req);
      },
      400, "unexpected_body");
}

// Raw HTTP over a socket: sends `request`, returns everything received until the server closes
// the connection or `timeout_ms` passes without data (then `closed` is false).
std::string RawExchange(int port, const std::string& request, bool& closed, int timeout_ms = 3000) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  closed = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  (void)!send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string reply;
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) {
      closed = true;
      break;
    }
    if (n < 0) break;  // timed out: the connection stayed open
    reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return reply;
}

// A request line the HTTP library cannot parse still gets the JSON error shape.
TEST_F(ApiBadInputTest, MalformedRequestLine) {
  bool closed = false;
  auto reply = RawExchange(server_->port, "BREW /coffee HTCPCP/1.0\r\n\r\n", closed, 500);
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
  EXPECT_NE(reply.find("\"code\":\"bad_request\""), std::string::npos) << reply;
  ExpectNothingLeft("malformed request line");
}

// A body the server did not read must never be parsed as the next request: the server closes
// the connection after answering.
TEST_F(ApiBadInputTest, UnreadBodyClosesTheConnection) {
  bool closed = false;
  auto reply = RawExchange(server_->port,
                           "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n"
                           "GET /v1/jobs HTTP/1.1\r\n\r\n\r\n",
                           closed);
  EXPECT_TRUE(closed) << reply;
  EXPECT_NE(reply.find("unexpected_body"), std::string::npos) << reply;
  EXPECT_EQ(reply.find("HTTP/1.1", 5), std::string::npos) << "a second response: " << reply;
}

// `Expect: 100-continue` with a body that would be refused: the answer comes before the body is
// sent, and the connection closes (a client that sends the body anyway cannot confuse it).
TEST_F(ApiBadInputTest, ExpectContinueRefusedBeforeTheBody) {
  bool closed = false;
  auto reply = RawExchange(server_->port,
                           "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
                           "Content-Type: multipart/form-data; boundary=z\r\n"
                           "Content-Length: 900000000\r\nExpect: 100-continue\r\n\r\n",
                           closed);
  EXPECT_EQ(reply.rfind("HTTP/1.1 413", 0), 0u) << reply;
  EXPECT_NE(reply.find("payload_too_large"), std::string::npos) << reply;
  EXPECT_TRUE(closed);
  ExpectNothingLeft("expect-continue");
}

// The server is still healthy after everything above, and serves a good request.
TEST_F(ApiBadInputTest, ZzServerStillServesAfterwards) {
  auto c = server_->Client();
  EXPECT_EQ(StatusOf(c.Get("/healthz")), 200);
  auto r = c.Post("/v1/audio/transcriptions",
                  Items{FilePart("speech.wav"), Field("model", "tiny"), Field("language", "en")});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

}  // namespace
}  // namespace steno::test
