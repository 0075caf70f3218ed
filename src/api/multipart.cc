#include "api/multipart.h"

#include <algorithm>
#include <cctype>

namespace steno::api {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view TrimWs(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Parameters of a header value: `form-data; name="file"; filename="a b.wav"`. Quoted values may
// hold ';' and backslash-escaped quotes. Keys are lowercased.
void ParseParams(std::string_view value,
                 const std::function<void(const std::string&, std::string&)>& fn) {
  size_t i = value.find(';');
  while (i != std::string_view::npos && i < value.size()) {
    ++i;
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    size_t eq = value.find('=', i);
    size_t semi = value.find(';', i);
    if (eq == std::string_view::npos || (semi != std::string_view::npos && semi < eq)) {
      i = semi;
      continue;
    }
    std::string key = Lower(TrimWs(value.substr(i, eq - i)));
    size_t j = eq + 1;
    while (j < value.size() && (value[j] == ' ' || value[j] == '\t')) ++j;
    std::string v;
    if (j < value.size() && value[j] == '"') {
      ++j;
      while (j < value.size() && value[j] != '"') {
        if (value[j] == '\\' && j + 1 < value.size()) ++j;
        v += value[j++];
      }
      i = value.find(';', j);
    } else {
      size_t end = value.find(';', j);
      v = std::string(TrimWs(value.substr(j, end == std::string_view::npos ? end : end - j)));
      i = end;
    }
    fn(key, v);
  }
}

}  // namespace

std::string MultipartBoundary(std::string_view content_type) {
  std::string boundary;
  ParseParams(content_type, [&](const std::string& key, std::string& value) {
    if (key == "boundary") boundary = std::move(value);
  });
  if (boundary.empty() || boundary.size() > 70) return "";
  for (unsigned char c : boundary) {
    if (c < 0x20 || c > 0x7e) return "";
  }
  return boundary;
}

MultipartParser::MultipartParser(std::string boundary, OnPart on_part, OnData on_data,
                                 size_t max_header_bytes)
    : delimiter_("\r\n--" + boundary),
      on_part_(std::move(on_part)),
      on_data_(std::move(on_data)),
      max_header_bytes_(max_header_bytes),
      // The first boundary may open the body: as if a line break came before it.
      buf_("\r\n") {}

bool MultipartParser::Fail(std::string message) {
  state_ = State::kFailed;
  error_ = std::move(message);
  return false;
}

bool MultipartParser::Emit(size_t n) {
  if (n == 0) return true;
  const bool ok = on_data_(buf_.data(), n);
  buf_.erase(0, n);
  if (!ok) state_ = State::kFailed;
  return ok;
}

bool MultipartParser::ParseHeaders(std::string_view block) {
  Part part;
  bool disposition = false;
  size_t i = 0;
  while (i < block.size()) {
    size_t end = block.find("\r\n", i);
    if (end == std::string_view::npos) end = block.size();
    std::string_view line = block.substr(i, end - i);
    i = end + 2;
    if (line.empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Fail("a part header has no ':'");
    const std::string key = Lower(TrimWs(line.substr(0, colon)));
    const std::string_view value = TrimWs(line.substr(colon + 1));
    if (key == "content-disposition") {
      if (Lower(value.substr(0, value.find(';'))) != "form-data") {
        return Fail("a part is not form-data");
      }
      disposition = true;
      ParseParams(value, [&](const std::string& k, std::string& v) {
        if (k == "name") part.name = std::move(v);
        if (k == "filename") part.filename = std::move(v);
      });
    } else if (key == "content-type") {
      part.content_type = std::string(value);
    }
  }
  if (!disposition) return Fail("a part has no Content-Disposition");
  if (part.name.empty()) return Fail("a part has no name");
  if (!on_part_(part)) {
    state_ = State::kFailed;
    return false;
  }
  return true;
}

bool MultipartParser::Feed(const char* data, size_t size) {
  if (state_ == State::kFailed) return false;
  if (state_ == State::kEpilogue) return true;
  buf_.append(data, size);
  for (;;) {
    switch (state_) {
      case State::kPreamble: {
        size_t pos = buf_.find(delimiter_);
        if (pos == std::string::npos) {
          // Keep what could be the start of the delimiter.
          if (buf_.size() >= delimiter_.size()) buf_.erase(0, buf_.size() - delimiter_.size() + 1);
          return true;
        }
        buf_.erase(0, pos + delimiter_.size());
        state_ = State::kAfterDelimiter;
        break;
      }
      case State::kAfterDelimiter: {
        if (buf_.size() < 2) return true;
        if (buf_.compare(0, 2, "--") == 0) {
          state_ = State::kEpilogue;
          buf_.clear();
          return true;
        }
        size_t i = 0;
        while (i < buf_.size() && (buf_[i] == ' ' || buf_[i] == '\t')) ++i;
        if (i > 256) return Fail("malformed boundary line");
        if (buf_.size() < i + 2) return true;
        if (buf_.compare(i, 2, "\r\n") != 0) return Fail("malformed boundary line");
        buf_.erase(0, i + 2);
        state_ = State::kHeaders;
        break;
      }
      case State::kHeaders: {
        size_t end = buf_.compare(0, 2, "\r\n") == 0 ? 0 : buf_.find("\r\n\r\n");
        if (end == std::string::npos) {
          if (buf_.size() > max_header_bytes_) return Fail("a part's headers are too large");
          return true;
        }
        if (end > max_header_bytes_) return Fail("a part's headers are too large");
        if (!ParseHeaders(std::string_view(buf_).substr(0, end))) return false;
        buf_.erase(0, end == 0 ? 2 : end + 4);
        state_ = State::kBody;
        break;
      }
      case State::kBody: {
        size_t pos = buf_.find(delimiter_);
        if (pos == std::string::npos) {
          const size_t keep = delimiter_.size() - 1;
          if (buf_.size() > keep && !Emit(buf_.size() - keep)) return false;
          return true;
        }
        if (!Emit(pos)) return false;
        buf_.erase(0, delimiter_.size());
        state_ = State::kAfterDelimiter;
        break;
      }
      case State::kEpilogue: buf_.clear(); return true;
      case State::kFailed: return false;
    }
  }
}

bool MultipartParser::Finish() {
  if (state_ == State::kEpilogue) return true;
  if (state_ != State::kFailed) {
    Fail(state_ == State::kPreamble ? "the body holds no multipart boundary"
                                    : "the body ends before the closing boundary");
  }
  return false;
}

}  // namespace steno::api
