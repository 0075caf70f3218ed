#include "api/server_relay.h"

#include <strings.h>
#include <algorithm>
#include <array>
#include <cstring>

namespace steno::api {

bool BytePipe::Write(const char* data, size_t n) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return read_closed_ || bytes_ < kPipeBytes; });
  if (read_closed_) return false;
  if (n == 0) return true;
  chunks_.emplace_back(data, n);
  bytes_ += n;
  cv_.notify_all();
  return true;
}

void BytePipe::CloseWrite(bool complete) {
  std::lock_guard<std::mutex> lock(mu_);
  write_closed_ = true;
  complete_ = complete;
  cv_.notify_all();
}

size_t BytePipe::Read(char* out, size_t max) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return read_closed_ || write_closed_ || !chunks_.empty(); });
  size_t n = 0;
  while (n < max && !chunks_.empty()) {
    const std::string& front = chunks_.front();
    const size_t take = std::min(max - n, front.size() - front_offset_);
    std::memcpy(out + n, front.data() + front_offset_, take);
    n += take;
    front_offset_ += take;
    if (front_offset_ == front.size()) {
      chunks_.pop_front();
      front_offset_ = 0;
    }
  }
  bytes_ -= n;
  cv_.notify_all();
  return n;
}

void BytePipe::CloseRead() {
  std::lock_guard<std::mutex> lock(mu_);
  read_closed_ = true;
  chunks_.clear();
  bytes_ = 0;
  cv_.notify_all();
}

bool BytePipe::complete() const {
  std::lock_guard<std::mutex> lock(mu_);
  return write_closed_ && complete_;
}

bool IsUnforwardedHeader(const std::string& name) {
  static constexpr std::array<const char*, 16> kDropped = {
      "Connection",  "Keep-Alive",    "Proxy-Authenticate", "Proxy-Authorization",
      "TE",          "Trailer",       "Transfer-Encoding",  "Upgrade",
      "Host",        "Authorization", "Content-Length",     "REMOTE_ADDR",
      "REMOTE_PORT", "LOCAL_ADDR",    "LOCAL_PORT",         "Expect"};
  for (const char* d : kDropped) {
    if (strcasecmp(d, name.c_str()) == 0) return true;
  }
  return false;
}

ServerRelay::ServerRelay(RelayTarget target)
    : thread_([this, t = std::move(target)]() mutable { Run(std::move(t)); }) {}

ServerRelay::~ServerRelay() {
  answer_.CloseRead();         // a client that left: the upstream receiver stops
  request_.CloseWrite(false);  // no more body will come
  if (thread_.joinable()) thread_.join();
}

bool ServerRelay::WaitAnswer() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return answered_ || finished_; });
  return answered_;
}

void ServerRelay::Run(RelayTarget t) {
  httplib::Client client(t.endpoint);
  client.set_connection_timeout(10, 0);
  client.set_read_timeout(t.timeout_s, 0);
  client.set_write_timeout(t.timeout_s, 0);
  client.set_decompress(false);  // bytes pass through as the server encoded them
  httplib::Request req;
  req.method = t.method;
  req.path = t.target;
  req.headers = t.headers;
  if (t.has_body) {
    const bool chunked = !t.body_length;
    req.content_provider_ = [this, chunked](size_t offset, size_t length, httplib::DataSink& sink) {
      (void)offset;
      char buf[64 * 1024];
      // A chunked body is asked for with length 0: any amount will do.
      const size_t n = request_.Read(buf, chunked ? sizeof buf : std::min(length, sizeof buf));
      if (n > 0) return sink.write(buf, n);
      // The body's end. A length-framed body ends by its length: ending short is a failure.
      if (!chunked || !request_.complete()) return false;
      sink.done();
      return true;
    };
    if (t.body_length) {
      req.content_length_ = static_cast<size_t>(*t.body_length);
    } else {
      req.is_chunked_content_provider_ = true;
      req.set_header("Transfer-Encoding", "chunked");
    }
  }
  req.response_handler = [this](const httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = res.status;
    headers_ = res.headers;
    answered_ = true;
    cv_.notify_all();
    return true;
  };
  req.content_receiver = [this](const char* data, size_t n, uint64_t, uint64_t) {
    return answer_.Write(data, n);
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  const bool ok = client.send(req, res, error);
  request_.CloseRead();  // a server that answered without the whole body: the feeder stops
  answer_.CloseWrite(ok);
  std::lock_guard<std::mutex> lock(mu_);
  if (ok && !answered_) {  // no body to stream (HEAD): the library skips the handler
    status_ = res.status;
    headers_ = res.headers;
    answered_ = true;
  }
  if (!ok && !answered_) error_ = httplib::to_string(error);
  finished_ = true;
  cv_.notify_all();
}

}  // namespace steno::api
