// A webhook receiver for tests: a real HTTP server on 127.0.0.1 (cpp-httplib, its own thread)
// that records every POST /hook (body, Content-Type, Authorization) and answers each with the
// status `respond` picks from the request's number (1-based); `respond` may block to hold a
// request in flight. Stopped and joined by the destructor.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace steno::test {

class HookServer {
 public:
  explicit HookServer(std::function<int(int)> respond = [](int) { return 200; })
      : respond_(std::move(respond)) {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      int n;
      {
        std::lock_guard<std::mutex> lock(mu_);
        bodies_.push_back(req.body);
        content_types_.push_back(req.get_header_value("Content-Type"));
        auth_.push_back(req.get_header_value("Authorization"));
        n = static_cast<int>(bodies_.size());
      }
      cv_.notify_all();
      res.status = respond_(n);
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~HookServer() {
    server_.stop();
    thread_.join();
  }
  std::string Url(const std::string& suffix = "") const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/hook" + suffix;
  }
  int port() const { return port_; }
  int requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(bodies_.size());
  }
  bool WaitForRequests(int n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return static_cast<int>(bodies_.size()) >= n; });
  }
  // The first payload `match` accepts, waiting up to `timeout` for it to arrive; null if none.
  nlohmann::json WaitForPayload(const std::function<bool(const nlohmann::json&)>& match,
                                std::chrono::milliseconds timeout) {
    nlohmann::json found;
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] {
      for (const auto& b : bodies_) {
        auto j = nlohmann::json::parse(b, nullptr, false);
        if (!j.is_discarded() && match(j)) {
          found = std::move(j);
          return true;
        }
      }
      return false;
    });
    return found;
  }
  std::vector<nlohmann::json> Payloads() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<nlohmann::json> out;
    for (const auto& b : bodies_) out.push_back(nlohmann::json::parse(b));
    return out;
  }
  std::vector<std::string> ContentTypes() {
    std::lock_guard<std::mutex> lock(mu_);
    return content_types_;
  }
  std::vector<std::string> AuthHeaders() {
    std::lock_guard<std::mutex> lock(mu_);
    return auth_;
  }

 private:
  std::function<int(int)> respond_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> bodies_, content_types_, auth_;
};

}  // namespace steno::test
