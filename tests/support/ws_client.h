// A WebSocket client for the tests of live sessions (GET /v1/realtime): Boost.Beast on its own
// Asio thread. The handshake is synchronous (the constructor); then every text message received
// is queued as JSON for Next/WaitFor, sends are queued and written in order, and the close (or
// the connection's end) is recorded with its code.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

namespace steno::test {

class WsClient {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;

  // Connects to 127.0.0.1:`port` and asks for `target` with `headers`. ok() says whether the
  // server took the upgrade; status() is the HTTP status it answered otherwise.
  WsClient(int port, const std::string& target, const Headers& headers = {}) {
    namespace http = boost::beast::http;
    namespace websocket = boost::beast::websocket;
    boost::beast::error_code ec;
    boost::asio::ip::tcp::endpoint at(boost::asio::ip::make_address("127.0.0.1"),
                                      static_cast<unsigned short>(port));
    ws_.next_layer().connect(at, ec);
    if (ec) {
      error_ = "connect: " + ec.message();
      return;
    }
    ws_.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
      for (const auto& [name, value] : headers) req.set(name, value);
    }));
    websocket::response_type res;
    ws_.handshake(res, "127.0.0.1:" + std::to_string(port), target, ec);
    status_ = static_cast<int>(res.result_int());
    protocol_ = std::string(res[http::field::sec_websocket_protocol]);
    if (ec) {
      error_ = "handshake: " + ec.message() + " (HTTP " + std::to_string(status_) + ")";
      return;
    }
    ws_.read_message_max(64 << 20);
    ok_ = true;
    Read();
    thread_ = std::thread([this] { io_.run(); });
  }

  ~WsClient() {
    Drop();
    if (thread_.joinable()) thread_.join();
  }

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  int status() const { return status_; }
  const std::string& protocol() const { return protocol_; }

  void Send(const nlohmann::json& event) { SendText(event.dump()); }
  void SendText(std::string text) { Write(std::move(text), false); }
  void SendBinary(std::string bytes) { Write(std::move(bytes), true); }

  // Ends the TCP connection without a close frame (a client gone).
  void Drop() {
    if (!ok_) return;
    boost::asio::post(io_, [this] {
      boost::beast::error_code ignored;
      ws_.next_layer().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
      ws_.next_layer().close(ignored);
    });
    work_.reset();
  }

  // The next event, waiting up to `timeout`; nullopt once closed (and all read) or on timeout.
  std::optional<nlohmann::json> Next(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, timeout, [this] { return !in_.empty() || closed_; });
    if (in_.empty()) return std::nullopt;
    nlohmann::json j = std::move(in_.front());
    in_.pop_front();
    return j;
  }

  // The next event of `type`, skipping others; null on timeout or close.
  nlohmann::json WaitFor(const std::string& type, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return nullptr;
      auto e = Next(left);
      if (!e) return nullptr;
      if ((*e).value("type", "") == type) return *e;
      skipped.push_back(*e);
    }
  }

  // True once the connection ended (close frame or not) within `timeout`.
  bool WaitClosed(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, timeout, [this] { return closed_; });
  }
  // The close frame's code (0: the connection ended without one).
  int close_code() {
    std::lock_guard<std::mutex> lock(mu_);
    return close_code_;
  }

  std::vector<nlohmann::json> skipped;  // events WaitFor passed over

 private:
  void Read() {
    ws_.async_read(buf_, [this](boost::beast::error_code ec, size_t) {
      std::lock_guard<std::mutex> lock(mu_);
      if (ec) {
        closed_ = true;
        if (ec == boost::beast::websocket::error::closed) close_code_ = ws_.reason().code;
        changed_.notify_all();
        return;
      }
      auto j = nlohmann::json::parse(boost::beast::buffers_to_string(buf_.data()), nullptr, false);
      buf_.consume(buf_.size());
      in_.push_back(std::move(j));
      changed_.notify_all();
      Read();
    });
  }

  void Write(std::string data, bool binary) {
    if (!ok_) return;
    boost::asio::post(io_, [this, data = std::move(data), binary]() mutable {
      out_.emplace_back(std::move(data), binary);
      if (out_.size() == 1) WriteNext();
    });
  }

  void WriteNext() {
    if (out_.empty()) return;
    ws_.binary(out_.front().second);
    ws_.async_write(boost::asio::buffer(out_.front().first),
                    [this](boost::beast::error_code ec, size_t) {
                      out_.pop_front();
                      if (ec) {
                        out_.clear();
                        return;
                      }
                      WriteNext();
                    });
  }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_{io_};
  boost::beast::flat_buffer buf_;
  std::deque<std::pair<std::string, bool>> out_;  // on the io thread only
  std::thread thread_;
  bool ok_ = false;
  std::string error_;
  int status_ = 0;
  std::string protocol_;

  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<nlohmann::json> in_;
  bool closed_ = false;
  int close_code_ = 0;
};

}  // namespace steno::test
