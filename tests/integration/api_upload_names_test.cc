// An upload keeps the name its user gave it: the extension is FFmpeg's format hint for headerless
// formats (raw G.722 and GSM telephone prompts decode through the API as through the CLI), and
// every error about an upload names that file, never steno's internal blob name.
#include <regex>

#include <gtest/gtest.h>

#include "api_test_server.h"

namespace steno::test {
namespace {

using json = nlohmann::json;
using Items = httplib::MultipartFormDataItems;

// `media`'s bytes uploaded under the name `as`.
httplib::MultipartFormData FileAs(const std::string& media, const std::string& as) {
  auto part = FilePart(media);
  part.filename = as;
  return part;
}

// Neither a server path nor anything shaped like a content hash (the blob store's names).
void ExpectNoInternalName(const std::string& body, const ApiTestServer& s) {
  EXPECT_EQ(body.find(s.data), std::string::npos) << body;
  EXPECT_FALSE(std::regex_search(body, std::regex("[0-9a-f]{16,}"))) << body;
}

TEST(ApiUploadNamesTest, HeadlessFormatsDecodeByTheUploadedName) {
  ApiTestServer s;
  auto c = s.Client();
  for (const char* media : {"speech.g722", "speech.gsm"}) {
    SCOPED_TRACE(media);
    auto sync = c.Post("/v1/audio/transcriptions",
                       Items{FilePart(media), Field("model", "tiny"), Field("language", "en"),
                             Field("response_format", "verbose_json")});
    ASSERT_TRUE(sync);
    ASSERT_EQ(sync->status, 200) << sync->body;
    // The whole recording was decoded (speech.wav is about 8 s), not a fragment of noise.
    EXPECT_GT(JsonOf(sync)["duration"].get<double>(), 5.0) << sync->body;

    auto created =
        c.Post("/v1/jobs", Items{FilePart(media), Field("model", "tiny"), Field("language", "en")});
    ASSERT_TRUE(created);
    ASSERT_EQ(created->status, 202) << created->body;
    auto job = WaitForJob(c, JsonOf(created)["id"].get<std::string>());
    EXPECT_EQ(job["state"], "completed") << job.dump();
  }
}

TEST(ApiUploadNamesTest, ErrorsNameTheUploadedFile) {
  ApiTestServer s;
  auto c = s.Client();
  // The same G.722 bytes without the extension that identifies them: not decodable, and the
  // message says which file the user sent.
  for (const char* path : {"/v1/audio/transcriptions", "/v1/jobs"}) {
    SCOPED_TRACE(path);
    auto r = c.Post(path, Items{FileAs("speech.g722", "hello prompt.bin"), Field("model", "tiny")});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 415) << r->body;
    auto err = JsonOf(r)["error"];
    EXPECT_EQ(err["code"], "not_media") << r->body;
    EXPECT_NE(err["message"].get<std::string>().find("hello prompt.bin"), std::string::npos)
        << r->body;
    ExpectNoInternalName(r->body, s);

    auto text = c.Post(path, Items{FileAs("not_media.txt", "minutes.txt"), Field("model", "tiny")});
    ASSERT_TRUE(text);
    EXPECT_EQ(text->status, 415) << text->body;
    EXPECT_NE(text->body.find("minutes.txt"), std::string::npos) << text->body;
    ExpectNoInternalName(text->body, s);
  }
  EXPECT_TRUE(JsonOf(c.Get("/v1/jobs"))["data"].empty()) << "a refused upload left a job";
}

// Through the API as through the CLI: a 1.08 s upload gets no segment ending after 1.08 s.
TEST(ApiUploadNamesTest, SegmentsEndWithinTheUploadedAudio) {
  ApiTestServer s;
  auto c = s.Client();
  auto r = c.Post(
      "/v1/audio/transcriptions",
      Items{FilePart("speech_short.wav"), Field("model", "tiny"), Field("language", "en"),
            Field("response_format", "verbose_json"), Field("timestamp_granularities[]", "word"),
            Field("timestamp_granularities[]", "segment")});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto v = JsonOf(r);
  const double duration = v["duration"].get<double>();
  ASSERT_FALSE(v["segments"].empty()) << r->body;
  for (const auto& seg : v["segments"]) EXPECT_LE(seg["end"].get<double>(), duration) << seg;
  for (const auto& w : v["words"]) EXPECT_LE(w["end"].get<double>(), duration) << w;
}

}  // namespace
}  // namespace steno::test
