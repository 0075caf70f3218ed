#include "api/api_errors.h"

#include <set>
#include <string_view>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace steno::api {
namespace {

// Probe/decoder codes for audio that exists but cannot be used (415).
bool IsUndecodableAudio(std::string_view code) {
  static const std::set<std::string_view> kCodes = {"not_media",     "no_audio_stream",
                                                    "corrupt_audio", "unsupported_codec",
                                                    "empty_audio",   "truncated"};
  return kCodes.count(code) > 0;
}

int StatusFor(const Error& e) {
  switch (e.kind) {
    case ErrorKind::kBadInput:
      if (IsUndecodableAudio(e.code)) return 415;
      if (e.code == "too_long") return 413;
      if (e.code == "file_not_found") return 404;
      if (e.code == "path_not_allowed") return 403;
      return 400;
    case ErrorKind::kNotFound: return 404;
    case ErrorKind::kConflict: return 409;
    case ErrorKind::kUnavailable:
    case ErrorKind::kOutOfMemory: return 503;
    case ErrorKind::kCancelled: return 409;
    case ErrorKind::kTimeout: return 504;
    case ErrorKind::kNoSpace: return 507;
    case ErrorKind::kIntegrity:
    case ErrorKind::kIo:
    case ErrorKind::kInternal: return 500;
  }
  return 500;
}

// The client's message for a failure of the server's own storage. The error's message names
// server paths (data dir, models dir) and stays in the log.
std::string StorageMessage(const Error& e) {
  switch (e.kind) {
    case ErrorKind::kNoSpace: return "not enough disk space on the server; retry later";
    case ErrorKind::kIntegrity:
      return "the server found damaged data (" + e.code + "); its log has the details";
    default:
      return "the server could not read or write its files (" + e.code +
             "); its log has the details";
  }
}

bool IsStorageFailure(ErrorKind kind) {
  return kind == ErrorKind::kIo || kind == ErrorKind::kNoSpace || kind == ErrorKind::kIntegrity;
}

}  // namespace

const char* ErrorTypeFor(int status) {
  if (status == 401) return "authentication_error";
  if (status == 403) return "permission_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

ApiError MakeApiError(int status, std::string code, std::string message, std::string param) {
  ApiError e;
  e.status = status;
  e.type = ErrorTypeFor(status);
  e.code = std::move(code);
  e.message = std::move(message);
  e.param = std::move(param);
  return e;
}

ApiError FromError(const Error& error, std::string param) {
  const int status = StatusFor(error);
  std::string code = error.code.empty() ? CodeForStatus(status) : error.code;
  if (error.kind == ErrorKind::kNoSpace) code = "insufficient_storage";
  std::string message = error.message;
  if (IsStorageFailure(error.kind)) {
    spdlog::warn("request failed: {} ({}): {}", ErrorKindName(error.kind), error.code,
                 error.message);
    message = StorageMessage(error);
  }
  ApiError e = MakeApiError(status, std::move(code), std::move(message), std::move(param));
  if (error.kind == ErrorKind::kOutOfMemory && error.code.empty()) e.code = "insufficient_memory";
  if (status == 503) e.retry_after_s = error.retry_after_s > 0 ? error.retry_after_s : 5;
  return e;
}

ApiError FromUploadError(const Error& error, const std::string& upload_name) {
  ApiError e = FromError(error);
  if (error.kind == ErrorKind::kNoSpace) {
    e.message = "not enough disk space to store the upload" +
                (upload_name.empty() ? std::string() : " " + upload_name) + "; retry later";
  } else if (IsStorageFailure(error.kind)) {
    e.message = "the server could not store the upload" +
                (upload_name.empty() ? std::string() : " " + upload_name) + " (" + e.code +
                "); its log has the details";
  }
  return e;
}

std::string CodeForStatus(int status) {
  switch (status) {
    case 400: return "bad_request";
    case 401: return "invalid_api_key";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 408: return "request_timeout";
    case 409: return "conflict";
    case 413: return "payload_too_large";
    case 414: return "uri_too_long";
    case 415: return "unsupported_media_type";
    case 416: return "range_not_satisfiable";
    case 431: return "headers_too_large";
    case 503: return "unavailable";
    case 504: return "timeout";
    case 507: return "insufficient_storage";
    default: return status >= 500 ? "internal_error" : "bad_request";
  }
}

std::string ErrorBody(const ApiError& e) {
  nlohmann::ordered_json j = {{"error",
                               {{"message", e.message},
                                {"type", e.type.empty() ? ErrorTypeFor(e.status) : e.type},
                                {"param", e.param.empty() ? nlohmann::ordered_json(nullptr)
                                                          : nlohmann::ordered_json(e.param)},
                                {"code", e.code}}}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace steno::api
