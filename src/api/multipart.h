// A streaming multipart/form-data parser (RFC 7578 over RFC 2046's framing), fed the raw body
// in whatever chunks the network delivers. It replaces cpp-httplib 0.11's own parser, which
// rejects bodies that real clients send: Node 18's fetch ends the body right after the closing
// `--boundary--` with no CRLF, which RFC 2046 allows.
//
// Accepted: a preamble before the first boundary and an epilogue after the last (both ignored),
// transport padding (spaces, tabs) after a boundary, parts without headers other than
// Content-Disposition, quoted or bare parameter values. Refused, with a message: a body that
// ends before the closing boundary, a part without a name, a malformed boundary line, part
// headers over `max_header_bytes`.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace steno::api {

class MultipartParser {
 public:
  struct Part {
    std::string name;
    std::string filename;      // empty for a plain field
    std::string content_type;  // empty when the part has none
  };
  // Each returns false to stop parsing (Feed then returns false with an empty error()).
  using OnPart = std::function<bool(const Part&)>;
  using OnData = std::function<bool(const char* data, size_t size)>;

  MultipartParser(std::string boundary, OnPart on_part, OnData on_data,
                  size_t max_header_bytes = 16 << 10);

  // False once the body is malformed (error() says how) or a callback stopped it.
  bool Feed(const char* data, size_t size);
  // At the end of the body: true when the closing boundary was seen.
  bool Finish();

  const std::string& error() const { return error_; }
  bool done() const { return state_ == State::kEpilogue; }

 private:
  enum class State { kPreamble, kAfterDelimiter, kHeaders, kBody, kEpilogue, kFailed };
  bool Fail(std::string message);
  bool ParseHeaders(std::string_view block);
  bool Emit(size_t n);

  std::string delimiter_;  // "\r\n--" + boundary
  OnPart on_part_;
  OnData on_data_;
  size_t max_header_bytes_;
  State state_ = State::kPreamble;
  std::string buf_;
  std::string error_;
};

// The boundary parameter of a multipart/form-data Content-Type value (quoted or not), or "" when
// it is missing or not a valid boundary (1 to 70 characters, RFC 2046).
std::string MultipartBoundary(std::string_view content_type);

}  // namespace steno::api
