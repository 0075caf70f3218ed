// The API's route table: method + path pattern → handler. Patterns are literal segments,
// `{name}` segments (one path segment, no '/') and, last, `{name...}`: the rest of the path (any
// number of segments, none too; its value is them joined by '/'). Find() tells a route that exists
// for another method (405, with the Allow list) from a path no route knows (404), which the HTTP
// library's own routing cannot.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace steno::api {

template <class Handler>
class Router {
 public:
  struct Route {
    std::string method;
    std::string pattern;  // "/v1/jobs/{id}": also the route's label in metrics and logs
    std::vector<std::string> segments;
    bool is_public = false;  // served without an API key (health probes)
    Handler handler;
  };
  struct Match {
    const Route* route = nullptr;     // null: no route for this method and path
    std::vector<std::string> params;  // the {name} segments' values, in order
    std::string allow;                // methods the path has, "GET, POST" (for 405)
  };

  void Add(std::string method, std::string pattern, Handler handler, bool is_public = false) {
    Route r{std::move(method), std::move(pattern), {}, is_public, std::move(handler)};
    r.segments = Split(r.pattern);
    routes_.push_back(std::move(r));
  }

  Match Find(const std::string& method, const std::string& path) const {
    Match m;
    const auto parts = Split(path);
    for (const auto& r : routes_) {
      std::vector<std::string> params;
      if (!Matches(r.segments, parts, params)) continue;
      // HEAD is answered by the GET handler (the HTTP library drops the body).
      const bool same = r.method == method || (method == "HEAD" && r.method == "GET");
      if (same && !m.route) {
        m.route = &r;
        m.params = std::move(params);
      }
      if (m.allow.find(r.method) == std::string::npos) {
        m.allow += (m.allow.empty() ? "" : ", ") + r.method;
      }
    }
    return m;
  }

  const std::vector<Route>& routes() const { return routes_; }

 private:
  static std::vector<std::string> Split(const std::string& path) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < path.size()) {
      size_t j = path.find('/', i);
      if (j == std::string::npos) j = path.size();
      if (j > i) out.push_back(path.substr(i, j - i));
      i = j + 1;
    }
    return out;
  }
  static bool Matches(const std::vector<std::string>& pattern, const std::vector<std::string>& path,
                      std::vector<std::string>& params) {
    const bool rest = !pattern.empty() && pattern.back().size() > 5 &&
                      pattern.back().compare(pattern.back().size() - 4, 4, "...}") == 0;
    if (rest ? path.size() < pattern.size() - 1 : pattern.size() != path.size()) return false;
    for (size_t i = 0; i < pattern.size(); ++i) {
      const auto& p = pattern[i];
      if (rest && i + 1 == pattern.size()) {
        std::string tail;
        for (size_t j = i; j < path.size(); ++j) tail += (j > i ? "/" : "") + path[j];
        params.push_back(std::move(tail));
      } else if (p.size() >= 2 && p.front() == '{' && p.back() == '}') {
        params.push_back(path[i]);
      } else if (p != path[i]) {
        return false;
      }
    }
    return true;
  }

  std::vector<Route> routes_;
};

}  // namespace steno::api
