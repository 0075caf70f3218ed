// Helpers the route files share: JSON responses and errors, body readers with limits, and the
// API's JSON form of a job.
#include <chrono>

#include "api/multipart.h"
#include "api/routes.h"
#include "core/wall_clock.h"

namespace steno::api {

void SendJson(httplib::Response& res, int status, const ojson& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

void SendError(httplib::Response& res, const ApiError& error) {
  res.status = error.status;
  if (error.retry_after_s > 0) res.set_header("Retry-After", std::to_string(error.retry_after_s));
  res.set_content(ErrorBody(error), "application/json");
}

void CloseAfter(httplib::Response& res) {
  res.set_header("Connection", "close");
  if (res.body.empty()) return;
  // cpp-httplib 0.11 keeps the connection open whatever the response's Connection header says;
  // it closes it only when writing the response fails. So the body goes out through a content
  // provider that writes all of it and then reports failure: the client gets the whole response,
  // and bytes of an unread request body are never parsed as the next request.
  auto body = std::make_shared<std::string>(std::move(res.body));
  res.body.clear();
  const std::string type = res.get_header_value("Content-Type");
  res.headers.erase("Content-Type");  // set again by set_content_provider
  res.set_content_provider(body->size(), type.empty() ? "application/json" : type,
                           [body](size_t offset, size_t, httplib::DataSink& sink) {
                             sink.write(body->data() + offset, body->size() - offset);
                             return false;
                           });
}

void SendErrorAndClose(httplib::Response& res, const ApiError& error) {
  SendError(res, error);
  CloseAfter(res);
}

static std::string MediaType(const httplib::Request& req) {
  std::string type = req.get_header_value("Content-Type");
  type = type.substr(0, type.find(';'));
  std::string out;
  for (char c : type) {
    if (c != ' ' && c != '\t')
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool IsMultipart(const httplib::Request& req) {
  return MediaType(req) == "multipart/form-data";
}

bool IsJson(const httplib::Request& req) {
  const std::string t = MediaType(req);
  return t == "application/json" || (t.size() > 5 && t.compare(t.size() - 5, 5, "+json") == 0);
}

// Reads the body as raw bytes. cpp-httplib parses a multipart body itself when the request
// says multipart (with a parser that refuses valid bodies, see multipart.h) and offers no way
// to read it raw; so the Content-Type is masked for the read and restored after. The request
// object is httplib's own non-const local, so the const_cast is well-defined.
bool ReadRaw(Call& call, const httplib::ContentReceiver& receiver) {
  auto& req = const_cast<httplib::Request&>(call.req);
  call.body_touched = true;
  if (!IsMultipart(req)) return (*call.reader)(receiver);
  const std::string type = req.get_header_value("Content-Type");
  req.headers.erase("Content-Type");
  req.set_header("Content-Type", "application/octet-stream");
  const bool ok = (*call.reader)(receiver);
  req.headers.erase("Content-Type");
  req.set_header("Content-Type", type);
  return ok;
}

// After refusing a body, the rest of it is still read (and dropped) up to this many bytes, so
// the client, which may still be sending, reads the error instead of a connection reset. A body
// larger than this is cut off and the connection closed.
constexpr int64_t kDrainLimit = int64_t{16} << 20;

uint64_t ContentLength(const httplib::Request& req) {
  const std::string v = req.get_header_value("Content-Length");
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + static_cast<uint64_t>(c - '0');
    if (n > (uint64_t{1} << 62)) break;
  }
  return n;
}

bool DrainBody(Call& call) {
  if (!call.reader || call.body_touched) return call.consumed;
  const auto& req = call.req;
  if (req.has_header("Content-Length")) {
    const std::string v = req.get_header_value("Content-Length");
    if (v.size() > 10 || std::stoll("0" + v) > kDrainLimit) return false;
  }
  int64_t total = 0;
  const bool ok = ReadRaw(call, [&](const char*, size_t n) {
    total += static_cast<int64_t>(n);
    return total <= kDrainLimit;
  });
  call.consumed = ok;
  return ok;
}

ApiError BodyReadFailed(const Call& call) {
  if (call.body_timed_out) {
    return MakeApiError(408, "request_timeout",
                        "the request body stopped arriving (no bytes within the read timeout)");
  }
  return MakeApiError(400, "bad_body", "the request body could not be read");
}

std::optional<ApiError> ReadBody(Call& call, int64_t limit, std::string& out) {
  out.clear();
  if (!call.reader) return std::nullopt;
  bool too_large = false;
  int64_t dropped = 0;
  call.body_touched = true;
  const bool ok = (*call.reader)([&](const char* data, size_t n) {
    if (too_large || static_cast<int64_t>(out.size() + n) > limit) {
      too_large = true;
      dropped += static_cast<int64_t>(n);
      return dropped <= kDrainLimit;
    }
    out.append(data, n);
    return true;
  });
  call.consumed = ok;
  if (too_large || call.res.status == 413) {
    out.clear();
    return MakeApiError(413, "payload_too_large",
                        "the request body is larger than " + std::to_string(limit) + " bytes");
  }
  if (!ok) return BodyReadFailed(call);
  return std::nullopt;
}

std::optional<ApiError> ReadJsonJobRequest(Context& ctx, Call& call, const JobRequestRules& rules,
                                           RequestFields& fields, server::SubmitJob& job) {
  nlohmann::json body;
  if (auto e = ReadJsonObject(call, ctx.options.max_json_bytes, body)) return e;
  if (auto e = FieldsFromJson(body, fields)) return e;
  return ParseJobRequest(fields, rules, job);
}

std::optional<ApiError> ReadJsonObject(Call& call, int64_t limit, nlohmann::json& out) {
  std::string body;
  if (auto e = ReadBody(call, limit, body)) return e;
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    out = nlohmann::json::object();
    return std::nullopt;
  }
  out = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded())
    return MakeApiError(400, "bad_json", "the request body is not valid JSON");
  if (!out.is_object()) {
    return MakeApiError(400, "bad_json", "the request body must be a JSON object");
  }
  return std::nullopt;
}

std::optional<ApiError> ReadMultipart(Call& call, MultipartUpload& upload) {
  if (!IsMultipart(call.req)) {
    DrainBody(call);
    return MakeApiError(415, "unsupported_content_type", "the request must be multipart/form-data");
  }
  if (!call.reader) return MakeApiError(400, "bad_body", "the request has no body");
  const std::string boundary = MultipartBoundary(call.req.get_header_value("Content-Type"));
  if (boundary.empty()) {
    DrainBody(call);
    return MakeApiError(400, "bad_multipart", "the multipart/form-data type has no boundary");
  }
  MultipartParser parser(
      boundary,
      [&](const MultipartParser::Part& p) {
        return upload.OnPart(p.name, p.filename, p.content_type);
      },
      [&](const char* data, size_t n) { return upload.OnData(data, n); });
  // Once something was refused, the rest of the body is dropped (up to kDrainLimit), so the
  // client reads the answer rather than a reset connection.
  bool refused = false;
  int64_t dropped = 0;
  const bool ok = ReadRaw(call, [&](const char* data, size_t n) {
    if (!refused && parser.Feed(data, n)) return true;
    refused = true;
    dropped += static_cast<int64_t>(n);
    return dropped <= kDrainLimit;
  });
  call.consumed = ok;
  if (upload.error()) return upload.error();
  if (call.res.status == 413) {
    return MakeApiError(413, "payload_too_large", "the request body is too large");
  }
  if (!parser.error().empty()) {
    return MakeApiError(400, "bad_multipart", "malformed multipart/form-data: " + parser.error());
  }
  if (!ok) return BodyReadFailed(call);
  if (!parser.Finish()) {
    return MakeApiError(400, "bad_multipart", "malformed multipart/form-data: " + parser.error());
  }
  return std::nullopt;
}

std::map<std::string, std::vector<std::string>> FieldsOf(const MultipartUpload& upload) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& name : upload.FieldNames()) out[name] = upload.Fields(name);
  return out;
}

namespace {

ojson TimeOrNull(int64_t ms) {
  return ms > 0 ? ojson(ms) : ojson(nullptr);
}

ojson ErrorOrNull(const std::optional<Error>& error) {
  if (!error) return nullptr;
  return {{"kind", ErrorKindName(error->kind)}, {"code", error->code}, {"message", error->message}};
}

ojson TextOrNull(const std::string& text) {
  return text.empty() ? ojson(nullptr) : ojson(text);
}

}  // namespace

ojson JobWithAttemptsJson(const store::JobWithAttempts& job) {
  ojson j = JobJson(job.job);
  ojson attempts = ojson::array();
  for (const auto& a : job.attempts) {
    attempts.push_back({{"attempt", a.attempt},
                        {"node", a.owner},
                        {"started_ms", TimeOrNull(a.started_ms)},
                        {"ended_ms", TimeOrNull(a.ended_ms)},
                        {"outcome", TextOrNull(a.outcome)},
                        {"error", ErrorOrNull(a.error)}});
  }
  j["attempts"] = std::move(attempts);
  return j;
}

ojson JobJson(const Job& job) {
  ojson j = {
      {"id", job.id},
      {"object", "transcription.job"},
      {"state", JobStateName(job.state)},
      {"model", job.model},
      {"priority", PriorityName(job.priority)},
      {"task", job.params.task},
      {"language", job.params.language},
      {"response_format", job.params.response_format},
      {"word_timestamps", job.params.word_timestamps},
      {"device", job.params.device.empty() ? ojson(nullptr) : ojson(job.params.device)},
      {"filename", job.params.filename.empty() ? ojson(nullptr) : ojson(job.params.filename)},
      {"attempt", job.attempt},
      {"node", TextOrNull(job.node)},
      {"created_ms", TimeOrNull(job.created_ms)},
      {"started_ms", TimeOrNull(job.started_ms)},
      {"finished_ms", TimeOrNull(job.finished_ms)},
      {"updated_ms", TimeOrNull(job.updated_ms)},
  };
  // Whether it runs with voice activity detection (decided when accepted: server/vad_policy.h).
  j["vad"] = job.params.vad ? ojson{{"threshold", job.params.vad->threshold},
                                    {"prefix_padding_ms", job.params.vad->prefix_padding_ms},
                                    {"silence_duration_ms", job.params.vad->silence_duration_ms}}
                            : ojson(nullptr);
  j["error"] = ErrorOrNull(job.error);
  j["result_url"] =
      job.state == JobState::kCompleted ? ojson("/v1/jobs/" + job.id + "/result") : ojson(nullptr);
  j["events_url"] = "/v1/jobs/" + job.id + "/events";
  return j;
}

}  // namespace steno::api
