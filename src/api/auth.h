// API keys: `--api-key KEY` (repeatable, or STENO_API_KEY) and `--api-key-file FILE` (one key per
// line; blank lines and lines starting with '#' are ignored). With no key configured every
// request is let through; with keys, a request must carry `Authorization: Bearer KEY` (the form
// OpenAI's clients send).
//
// Keys are compared in constant time: both sides are hashed to SHA-256 first (so neither the
// length nor the position of the first differing byte shows in the timing) and every configured
// key is compared, never stopping early. Keys are never logged, and error messages never echo
// what the client sent.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace steno::api {

class ApiKeys {
 public:
  ApiKeys() = default;  // no keys: authentication off

  // kBadInput "bad_api_key" for an empty key or one with whitespace/control characters;
  // kNotFound/kIo when the file cannot be read; kBadInput "no_api_keys" for a file without keys.
  static Result<ApiKeys> Load(const std::vector<std::string>& keys, const std::string& key_file);

  bool enabled() const { return !digests_.empty(); }
  size_t size() const { return digests_.size(); }

  enum class Verdict { kOk, kMissing, kInvalid };
  // Checks the value of an Authorization header ("" when the request has none).
  Verdict Check(std::string_view authorization) const;

 private:
  using Digest = std::array<unsigned char, 32>;
  static Digest Hash(std::string_view text);
  std::vector<Digest> digests_;
};

}  // namespace steno::api
