// The dashboard's files (web/dashboard), compiled into the binary by cmake/EmbedAssets.cmake, and
// where GET / and GET /dashboard/{file} find them: embedded, or in a directory on disk while the
// dashboard is being worked on (`steno serve --dashboard-dir DIR`).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace steno::api {

struct DashboardAsset {
  std::string_view name;  // "index.html", "app.js": the path under web/dashboard
  std::string_view body;
};

// Every embedded file (generated code).
const std::vector<DashboardAsset>& DashboardAssets();

// "text/html; charset=utf-8" for .html, and so on for .css, .js, .svg, .png, .json; else
// "application/octet-stream".
std::string ContentTypeOf(std::string_view name);

struct LoadedAsset {
  std::string body;
  std::string content_type;
  std::string etag;  // a strong validator of the body: "\"<hex>\""
};

// The file `name` (one path segment: no '/', no leading '.'): from `dir` when it is not empty,
// else embedded. nullopt when there is no such file or the name is not allowed.
std::optional<LoadedAsset> LoadDashboardAsset(const std::string& dir, std::string_view name);

}  // namespace steno::api
