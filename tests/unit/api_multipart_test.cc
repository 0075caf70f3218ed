// MultipartParser: the framings real clients send, split into chunks at every possible offset
// (the network decides where a chunk ends), and the malformed bodies it must refuse.
#include "api/multipart.h"

#include <gtest/gtest.h>

namespace steno::api {
namespace {

struct Parsed {
  std::vector<MultipartParser::Part> parts;
  std::vector<std::string> data;  // per part
  bool fed = false;
  bool finished = false;
  std::string error;
};

Parsed Parse(const std::string& boundary, const std::string& body, size_t chunk) {
  Parsed out;
  MultipartParser p(
      boundary,
      [&](const MultipartParser::Part& part) {
        out.parts.push_back(part);
        out.data.emplace_back();
        return true;
      },
      [&](const char* d, size_t n) {
        out.data.back().append(d, n);
        return true;
      },
      256);
  out.fed = true;
  for (size_t i = 0; i < body.size() && out.fed; i += chunk) {
    out.fed = p.Feed(body.data() + i, std::min(chunk, body.size() - i));
  }
  out.finished = out.fed && p.Finish();
  out.error = p.error();
  return out;
}

const std::string kBody =
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"model\"\r\n\r\n"
    "tiny\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"a; \\\"b\\\".wav\"\r\n"
    "Content-Type: audio/wav\r\n\r\n"
    "RIFF\r\n--Xy\r\n-- not a boundary\r\n"
    "--XyZ\r\n"
    "content-disposition: form-data; name=empty\r\n\r\n"
    "\r\n"
    "--XyZ--";

void ExpectParsed(const Parsed& p, const std::string& context) {
  ASSERT_TRUE(p.finished) << context << ": " << p.error;
  ASSERT_EQ(p.parts.size(), 3u) << context;
  EXPECT_EQ(p.parts[0].name, "model");
  EXPECT_EQ(p.data[0], "tiny");
  EXPECT_EQ(p.parts[1].name, "file");
  EXPECT_EQ(p.parts[1].filename, "a; \"b\".wav");
  EXPECT_EQ(p.parts[1].content_type, "audio/wav");
  EXPECT_EQ(p.data[1], "RIFF\r\n--Xy\r\n-- not a boundary") << context;
  EXPECT_EQ(p.parts[2].name, "empty");
  EXPECT_EQ(p.data[2], "");
}

TEST(ApiMultipartTest, EveryChunkingGivesTheSameParts) {
  for (size_t chunk = 1; chunk <= kBody.size(); ++chunk) {
    ExpectParsed(Parse("XyZ", kBody, chunk), "chunk " + std::to_string(chunk));
  }
}

TEST(ApiMultipartTest, FramingsRealClientsSend) {
  ExpectParsed(Parse("XyZ", kBody + "\r\n", 7), "CRLF after the closing boundary");
  ExpectParsed(Parse("XyZ", kBody, 7), "nothing after it (Node 18 fetch)");
  ExpectParsed(Parse("XyZ", kBody + "\r\nan epilogue\r\n", 7), "epilogue");
  ExpectParsed(Parse("XyZ", "a preamble\r\n" + kBody, 7), "preamble");
  std::string padded = kBody;
  padded.replace(0, 7, "--XyZ  \t\r\n");  // transport padding after the boundary
  ExpectParsed(Parse("XyZ", padded, 7), "padding");
}

TEST(ApiMultipartTest, MalformedBodiesAreRefused) {
  const std::string part = "Content-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n";
  struct Case {
    const char* what;
    std::string body;
  };
  const Case cases[] = {
      {"no boundary at all", "just text"},
      {"cut before the closing boundary", "--XyZ\r\n" + part},
      {"cut inside a part", "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nxx"},
      {"part without a name", "--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--"},
      {"part without Content-Disposition", "--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--"},
      {"not form-data", "--XyZ\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--XyZ--"},
      {"header without colon", "--XyZ\r\nnonsense\r\n\r\nx\r\n--XyZ--"},
      {"garbage after a boundary", "--XyZ junk\r\n" + part + "--XyZ--"},
      {"headers too large", "--XyZ\r\nX-Pad: " + std::string(400, 'p') + "\r\n" + part},
  };
  for (const auto& c : cases) {
    auto p = Parse("XyZ", c.body, 5);
    EXPECT_FALSE(p.finished) << c.what;
    EXPECT_FALSE(p.error.empty()) << c.what;
  }
}

TEST(ApiMultipartTest, CallbackCanStopParsing) {
  int parts = 0;
  MultipartParser p(
      "XyZ", [&](const MultipartParser::Part&) { return ++parts < 2; },
      [](const char*, size_t) { return true; });
  EXPECT_FALSE(p.Feed(kBody.data(), kBody.size()));
  EXPECT_EQ(parts, 2);
  EXPECT_TRUE(p.error().empty()) << "stopped by the caller, not malformed";
}

TEST(ApiMultipartTest, BoundaryFromContentType) {
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(MultipartBoundary("multipart/form-data; charset=utf-8; boundary=\"a b;c\""), "a b;c");
  EXPECT_EQ(MultipartBoundary("multipart/form-data;boundary=----WebKitFormBoundary7MA4YWxk"),
            "----WebKitFormBoundary7MA4YWxk");
  EXPECT_EQ(MultipartBoundary("multipart/form-data"), "");
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary="), "");
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=" + std::string(71, 'a')), "");
}

}  // namespace
}  // namespace steno::api
