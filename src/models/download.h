// Downloading an official ggml model into the models dir (`steno models pull NAME`).
//
// Promises:
//   - The model file appears only complete and verified: bytes go to models_dir/ggml-NAME.bin.part,
//     the SHA-1 is checked, then the .part is fsynced and renamed into place and the dir fsynced.
//     A crash leaves either no model file or the verified one, never a torn one.
//   - An interrupted download resumes: an existing .part is continued with an HTTP Range request.
//     A server that ignores Range (answers 200) restarts it from byte 0; one that answers 416 has
//     nothing more to give, so the .part is checked as is.
//   - A checksum mismatch deletes the .part (it cannot be trusted to resume from).
//   - A network failure keeps a non-empty .part for the next attempt and removes an empty one.
//   - Two processes never write the same .part: the second fails with "pull_in_progress".
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/result.h"

namespace steno::models {

// Environment variable naming a mirror that replaces the catalog's base URL.
inline constexpr const char* kBaseUrlEnv = "STENO_MODEL_BASE_URL";

// Bytes received so far (including a resumed .part) and the total; total is -1 when the server
// did not say. Called from the downloading thread, often; the callee throttles its output.
using PullProgress = std::function<void(int64_t done, int64_t total)>;

struct PullOptions {
  std::string name;           // "tiny.en"; the file is ggml-NAME.bin
  std::string models_dir;     // created (with parents) if missing
  std::string base_url;       // empty: $STENO_MODEL_BASE_URL, else the catalog's (Hugging Face)
  std::string expected_sha1;  // empty: the catalog's; set for mirrors or files not in the catalog
  bool force = false;         // download even if a verified file is present, and replace a
                              // present file whose hash differs
  PullProgress progress;      // optional
  int connect_timeout_s = 20;
  int stall_timeout_s = 60;  // abort when no byte arrived for this long
};

struct PullResult {
  std::string path;  // models_dir/ggml-NAME.bin
  std::string url;   // what was (or would have been) fetched
  std::string sha1;  // verified hash of the file
  int64_t file_bytes = 0;
  bool downloaded = false;   // false: the file was already present and verified
  int64_t resumed_from = 0;  // bytes of an earlier .part that were kept (0: from scratch)
};

// Downloads and verifies one model. Errors (code — meaning):
//   kBadInput "unknown_model"      — NAME is not in the catalog and no expected hash was given;
//                                    the message lists the known names
//   kBadInput "bad_model_name"     — NAME has characters a file name must not have
//   kBadInput "bad_sha1"           — expected_sha1 is not 40 hex digits
//   kBadInput "bad_base_url"       — the base URL is not http:// or https://
//   kIntegrity "checksum_mismatch" — the downloaded bytes do not hash to the expected SHA-1
//   kIntegrity "existing_file_mismatch" — a different file already has the model's name
//                                    (kept; --force replaces it)
//   kUnavailable "download_failed" — DNS, connection, TLS, timeout or HTTP 4xx/5xx; the message
//                                    names the host and suggests copying the file by hand
//   kUnavailable "pull_in_progress" — another process is downloading the same file
//   kIo "write_failed"             — the models dir or the file could not be written
Result<PullResult> PullModel(const PullOptions& options);

// SHA-1 of a whole file as 40 lowercase hex digits. Errors: kIo "read_failed".
Result<std::string> Sha1OfFile(const std::string& path);

}  // namespace steno::models
