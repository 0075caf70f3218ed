#include "api/dashboard_assets.h"

#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>

#include <fmt/format.h>

namespace steno::api {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool AllowedName(std::string_view name) {
  if (name.empty() || name.front() == '.') return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::string EtagOf(std::string_view body) {
  return fmt::format("\"{:016x}-{}\"", std::hash<std::string_view>{}(body), body.size());
}

}  // namespace

std::string ContentTypeOf(std::string_view name) {
  if (EndsWith(name, ".html")) return "text/html; charset=utf-8";
  if (EndsWith(name, ".css")) return "text/css; charset=utf-8";
  if (EndsWith(name, ".js")) return "text/javascript; charset=utf-8";
  if (EndsWith(name, ".svg")) return "image/svg+xml";
  if (EndsWith(name, ".png")) return "image/png";
  if (EndsWith(name, ".json")) return "application/json";
  return "application/octet-stream";
}

std::optional<LoadedAsset> LoadDashboardAsset(const std::string& dir, std::string_view name) {
  if (!AllowedName(name)) return std::nullopt;
  LoadedAsset out;
  if (!dir.empty()) {
    std::ifstream in(dir + "/" + std::string(name), std::ios::binary);
    if (!in) return std::nullopt;
    out.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } else {
    bool found = false;
    for (const auto& a : DashboardAssets()) {
      if (a.name == name) {
        out.body = std::string(a.body);
        found = true;
        break;
      }
    }
    if (!found) return std::nullopt;
  }
  out.content_type = ContentTypeOf(name);
  out.etag = EtagOf(out.body);
  return out;
}

}  // namespace steno::api
