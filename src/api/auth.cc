#include "api/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cctype>
#include <fstream>

#include "core/strings.h"

namespace steno::api {
namespace {

bool ValidKey(std::string_view key) {
  if (key.empty() || key.size() > 4096) return false;
  for (unsigned char c : key) {
    if (c <= 0x20 || c == 0x7f) return false;  // whitespace or control: a copy-paste accident
  }
  return true;
}

}  // namespace

ApiKeys::Digest ApiKeys::Hash(std::string_view text) {
  Digest d{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), d.data());
  return d;
}

Result<ApiKeys> ApiKeys::Load(const std::vector<std::string>& keys, const std::string& key_file) {
  ApiKeys out;
  for (const auto& k : keys) {
    if (!ValidKey(k)) {
      return Error(ErrorKind::kBadInput, "bad_api_key",
                   "--api-key must be non-empty, without spaces or control characters");
    }
    out.digests_.push_back(Hash(k));
  }
  if (!key_file.empty()) {
    std::ifstream in(key_file);
    if (!in) {
      return Error(ErrorKind::kNotFound, "api_key_file_not_found",
                   "cannot read the API key file " + key_file);
    }
    std::string line;
    int n = 0, lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      std::string key = std::string(Trim(line));
      if (key.empty() || key[0] == '#') continue;
      if (!ValidKey(key)) {
        return Error(ErrorKind::kBadInput, "bad_api_key",
                     key_file + ":" + std::to_string(lineno) +
                         ": a key must not contain spaces or control characters");
      }
      out.digests_.push_back(Hash(key));
      ++n;
    }
    if (in.bad()) {
      return Error(ErrorKind::kIo, "api_key_file_unreadable", "cannot read " + key_file);
    }
    if (n == 0) {
      return Error(ErrorKind::kBadInput, "no_api_keys",
                   "the API key file " + key_file + " holds no key (one per line)");
    }
  }
  return out;
}

ApiKeys::Verdict ApiKeys::Check(std::string_view authorization) const {
  if (!enabled()) return Verdict::kOk;
  authorization = Trim(authorization);
  if (authorization.empty()) return Verdict::kMissing;
  // The scheme is case-insensitive (RFC 7235).
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return Verdict::kInvalid;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) {
      return Verdict::kInvalid;
    }
  }
  const Digest presented = Hash(Trim(authorization.substr(kScheme.size())));
  int matches = 0;
  for (const auto& d : digests_) {
    matches |= CRYPTO_memcmp(d.data(), presented.data(), d.size()) == 0;
  }
  return matches ? Verdict::kOk : Verdict::kInvalid;
}

}  // namespace steno::api
