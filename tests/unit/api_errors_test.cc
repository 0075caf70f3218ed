// The API's error contract: OpenAI's shape, and every service error mapped to the status its
// policy names (a client's mistake is never a 5xx). Also the route table's 404 vs 405.
#include "api/api_errors.h"

#include <functional>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/router.h"

namespace steno::api {
namespace {

TEST(ApiErrorsTest, BodyHasOpenAiShape) {
  auto body = nlohmann::json::parse(
      ErrorBody(MakeApiError(404, "model_not_found", "no model 'x'", "model")));
  ASSERT_TRUE(body.contains("error"));
  const auto& e = body["error"];
  EXPECT_EQ(e["type"], "invalid_request_error");
  EXPECT_EQ(e["code"], "model_not_found");
  EXPECT_EQ(e["message"], "no model 'x'");
  EXPECT_EQ(e["param"], "model");
  auto no_param = nlohmann::json::parse(ErrorBody(MakeApiError(400, "bad_json", "x")));
  EXPECT_TRUE(no_param["error"]["param"].is_null());
}

TEST(ApiErrorsTest, InvalidUtf8InAMessageStillGivesValidJson) {
  auto text = ErrorBody(MakeApiError(400, "bad", std::string("bad \xff byte")));
  EXPECT_TRUE(nlohmann::json::accept(text));
}

TEST(ApiErrorsTest, TypesFollowOpenAi) {
  EXPECT_STREQ(ErrorTypeFor(400), "invalid_request_error");
  EXPECT_STREQ(ErrorTypeFor(404), "invalid_request_error");
  EXPECT_STREQ(ErrorTypeFor(401), "authentication_error");
  EXPECT_STREQ(ErrorTypeFor(403), "permission_error");
  EXPECT_STREQ(ErrorTypeFor(503), "server_error");
}

struct Case {
  ErrorKind kind;
  const char* code;
  int status;
};

TEST(ApiErrorsTest, ServiceErrorsMapToTheDocumentedStatuses) {
  const Case cases[] = {
      {ErrorKind::kBadInput, "not_media", 415},
      {ErrorKind::kBadInput, "no_audio_stream", 415},
      {ErrorKind::kBadInput, "corrupt_audio", 415},
      {ErrorKind::kBadInput, "unsupported_codec", 415},
      {ErrorKind::kBadInput, "empty_audio", 415},
      {ErrorKind::kBadInput, "truncated", 415},
      {ErrorKind::kBadInput, "too_long", 413},
      {ErrorKind::kConflict, "job_finished", 409},
      {ErrorKind::kConflict, "node_live", 409},
      {ErrorKind::kConflict, "a_code_the_api_never_heard_of", 409},
      {ErrorKind::kCancelled, "cancelled", 409},
      {ErrorKind::kBadInput, "bad_language", 400},
      {ErrorKind::kBadInput, "bad_job_params", 400},
      {ErrorKind::kBadInput, "path_not_allowed", 403},
      {ErrorKind::kBadInput, "file_not_found", 404},
      {ErrorKind::kNotFound, "model_not_found", 404},
      {ErrorKind::kNotFound, "job_not_found", 404},
      {ErrorKind::kUnavailable, "queue_full", 503},
      {ErrorKind::kUnavailable, "shutting_down", 503},
      {ErrorKind::kOutOfMemory, "", 503},
      {ErrorKind::kTimeout, "timeout", 504},
      {ErrorKind::kIo, "store_io", 500},
      {ErrorKind::kNoSpace, "insufficient_storage", 507},
      {ErrorKind::kInternal, "bug", 500},
  };
  for (const auto& c : cases) {
    ApiError e = FromError(Error(c.kind, c.code, "m"));
    EXPECT_EQ(e.status, c.status) << c.code;
    if (*c.code) {
      EXPECT_EQ(e.code, c.code);
    }
    EXPECT_FALSE(e.code.empty()) << c.code;
    EXPECT_EQ(e.type, ErrorTypeFor(c.status));
  }
}

// Retry-After is the error's own field, never read out of its message.
TEST(ApiErrorsTest, QueueFullCarriesItsRetryAfter) {
  auto e = FromError(Error(ErrorKind::kUnavailable, "queue_full", "the queue is full", 12));
  EXPECT_EQ(e.status, 503);
  EXPECT_EQ(e.retry_after_s, 12);
  EXPECT_EQ(e.message, "the queue is full");
  auto text_only = FromError(
      Error(ErrorKind::kUnavailable, "queue_full", "the queue is full; retry after 40 s"));
  EXPECT_EQ(text_only.retry_after_s, 5) << "a number in the message is not a contract";
  auto down = FromError(Error(ErrorKind::kUnavailable, "shutting_down", "bye"));
  EXPECT_EQ(down.retry_after_s, 5);
  EXPECT_EQ(FromError(Error(ErrorKind::kBadInput, "x", "y", 7)).retry_after_s, 0);
}

// A full disk is 507 insufficient_storage whatever layer noticed it (the blob store, SQLite's
// SQLITE_FULL), and no storage failure shows the client a server path: the store's message, which
// names files in the data dir, is replaced.
TEST(ApiErrorsTest, StorageFailuresNameNoServerPath) {
  const std::string path = "/srv/steno-data/blobs/tmp/0123abcd.part";
  auto full = FromError(Error(ErrorKind::kNoSpace, "store_full",
                              "cannot write upload to " + path + ": No space left on device"));
  EXPECT_EQ(full.status, 507);
  EXPECT_EQ(full.code, "insufficient_storage");
  EXPECT_EQ(full.type, "server_error");
  EXPECT_EQ(full.message.find("/srv"), std::string::npos) << full.message;
  EXPECT_EQ(full.retry_after_s, 0);

  for (ErrorKind kind : {ErrorKind::kIo, ErrorKind::kIntegrity}) {
    auto e = FromError(Error(kind, "blob_io", "cannot sync directory " + path));
    EXPECT_EQ(e.status, 500);
    EXPECT_EQ(e.code, "blob_io");
    EXPECT_EQ(e.message.find("/srv"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("blob_io"), std::string::npos) << e.message;
  }

  auto upload = FromUploadError(
      Error(ErrorKind::kNoSpace, "insufficient_storage", "cannot write upload to " + path),
      "talk.mp3");
  EXPECT_EQ(upload.status, 507);
  EXPECT_EQ(upload.code, "insufficient_storage");
  EXPECT_EQ(upload.message, "not enough disk space to store the upload talk.mp3; retry later");
  auto io = FromUploadError(Error(ErrorKind::kIo, "blob_io", "cannot create " + path), "a.wav");
  EXPECT_EQ(io.status, 500);
  EXPECT_EQ(io.message.find("/srv"), std::string::npos) << io.message;
  EXPECT_NE(io.message.find("a.wav"), std::string::npos) << io.message;
  // Not a storage failure: the message is the service's own.
  EXPECT_EQ(FromUploadError(Error(ErrorKind::kBadInput, "x", "bad field"), "a.wav").message,
            "bad field");
  EXPECT_EQ(CodeForStatus(507), "insufficient_storage");
}

TEST(ApiErrorsTest, LibraryStatusesGetCodes) {
  EXPECT_EQ(CodeForStatus(413), "payload_too_large");
  EXPECT_EQ(CodeForStatus(414), "uri_too_long");
  EXPECT_EQ(CodeForStatus(400), "bad_request");
  EXPECT_EQ(CodeForStatus(500), "internal_error");
}

TEST(ApiRouterTest, FindsRoutesAndTellsUnknownPathFromWrongMethod) {
  Router<std::function<int()>> r;
  r.Add("GET", "/v1/jobs", [] { return 1; });
  r.Add("POST", "/v1/jobs", [] { return 2; });
  r.Add("GET", "/v1/jobs/{id}", [] { return 3; });
  r.Add("DELETE", "/v1/jobs/{id}", [] { return 4; });
  r.Add("GET", "/v1/jobs/{id}/result", [] { return 5; });

  auto get = r.Find("GET", "/v1/jobs/abc");
  ASSERT_NE(get.route, nullptr);
  EXPECT_EQ(get.route->handler(), 3);
  EXPECT_EQ(get.params, std::vector<std::string>{"abc"});
  EXPECT_EQ(get.route->pattern, "/v1/jobs/{id}");

  auto head = r.Find("HEAD", "/v1/jobs");
  ASSERT_NE(head.route, nullptr);
  EXPECT_EQ(head.route->handler(), 1);

  auto put = r.Find("PUT", "/v1/jobs/abc");
  EXPECT_EQ(put.route, nullptr);
  EXPECT_EQ(put.allow, "GET, DELETE");  // → 405 with Allow

  auto none = r.Find("GET", "/v1/nothing");
  EXPECT_EQ(none.route, nullptr);
  EXPECT_TRUE(none.allow.empty());  // → 404

  EXPECT_EQ(r.Find("GET", "/v1/jobs/a/result").route->handler(), 5);
  EXPECT_EQ(r.Find("GET", "/v1/jobs/a/b/c").route, nullptr);
}

TEST(ApiRouterTest, ARestSegmentTakesTheRestOfThePath) {
  Router<std::function<int()>> r;
  r.Add("GET", "/v1/servers/{name}/{path...}", [] { return 1; });
  auto deep = r.Find("GET", "/v1/servers/tts/v1/audio/voices");
  ASSERT_NE(deep.route, nullptr);
  EXPECT_EQ(deep.params, (std::vector<std::string>{"tts", "v1/audio/voices"}));
  auto bare = r.Find("GET", "/v1/servers/tts");
  ASSERT_NE(bare.route, nullptr);
  EXPECT_EQ(bare.params, (std::vector<std::string>{"tts", ""}));
  EXPECT_EQ(r.Find("GET", "/v1/servers").route, nullptr);  // the name is still required
  EXPECT_EQ(r.Find("GET", "/v1/other/tts/x").route, nullptr);
}

}  // namespace
}  // namespace steno::api
