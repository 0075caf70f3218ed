#include "store/job_page_token.h"

#include <charconv>
#include <vector>

namespace steno::store {
namespace {

bool ParseInt(std::string_view s, int64_t* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

Error BadPageToken() {
  return Error(ErrorKind::kBadInput, "bad_page_token",
               "the page token is not one this server handed out");
}

std::optional<PageKey> ParsePageToken(std::string_view token, ListOrder order) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= token.size(); ++i) {
    if (i == token.size() || token[i] == '.') {
      parts.push_back(token.substr(start, i - start));
      start = i + 1;
    }
  }
  PageKey key;
  if (order == ListOrder::kNewestFirst) {
    if (parts.size() != 3 || parts[0] != "n" || !ParseInt(parts[1], &key.created_ms)) return {};
    key.id = parts[2];
  } else {
    if (parts.size() != 4 || parts[0] != "q" || !ParseInt(parts[1], &key.priority) ||
        !ParseInt(parts[2], &key.created_ms)) {
      return {};
    }
    key.id = parts[3];
  }
  if (key.id.empty()) return {};
  return key;
}

std::string PageToken(const Job& last, ListOrder order) {
  if (order == ListOrder::kNewestFirst) {
    return "n." + std::to_string(last.created_ms) + "." + last.id;
  }
  return "q." + std::to_string(static_cast<int>(last.priority)) + "." +
         std::to_string(last.created_ms) + "." + last.id;
}

}  // namespace steno::store
