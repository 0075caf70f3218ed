// ServerRelay: one request relayed to a managed model server's endpoint with cpp-httplib, its
// bodies streamed both ways. The library's client pulls a request body from a provider and
// pushes the answer into a receiver, while its server pushes the client's body into a receiver
// and pulls the answer from a provider; so the client call runs on a thread of its own, and two
// bounded byte pipes join the sides:
//   the API's thread:  client body ─▶ RequestBody() ─▶ [pipe] ─▶ upstream request (relay thread)
//   the API's thread:  response provider ◀─ ReadAnswer() ◀─ [pipe] ◀─ upstream answer
// At most kPipeBytes wait in each pipe: a slow reader slows the writer, nothing piles up.
// Either side stopping (a client gone, a server that answered without reading the body) ends
// the other's waits. Safe from the two threads that use it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <httplib.h>

namespace steno::api {

// A bounded byte queue between one writer and one reader.
class BytePipe {
 public:
  static constexpr size_t kPipeBytes = 1 << 20;
  // Blocks while full; false once the reader has gone (CloseRead).
  bool Write(const char* data, size_t n);
  // End of data: Read returns what is left, then 0. `complete`: all of it came (else the
  // writer failed midway).
  void CloseWrite(bool complete);
  // Up to `max` bytes into `out`; blocks until some come or the writer closed (then 0).
  size_t Read(char* out, size_t max);
  void CloseRead();       // the reader has gone: writes fail from now on
  bool complete() const;  // closed by the writer with complete = true

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> chunks_;
  size_t bytes_ = 0;
  size_t front_offset_ = 0;  // bytes of chunks_.front() already read
  bool write_closed_ = false;
  bool complete_ = false;
  bool read_closed_ = false;
};

struct RelayTarget {
  std::string endpoint;  // "http://HOST:PORT"
  std::string method;
  std::string target;                   // path and query as the server gets them
  httplib::Headers headers;             // forwarded as they are (hop-by-hop ones dropped)
  std::optional<uint64_t> body_length;  // with a body: its length (nullopt: chunked)
  bool has_body = false;                // RequestBody must then be fed, then closed
  int timeout_s = 600;                  // the server's read/write timeouts
};

class ServerRelay {
 public:
  // Starts the upstream request on the relay's thread.
  explicit ServerRelay(RelayTarget target);
  // Ends the upstream request if it still runs (the client is gone) and joins the thread.
  ~ServerRelay();
  ServerRelay(const ServerRelay&) = delete;
  ServerRelay& operator=(const ServerRelay&) = delete;

  // Where the client's body goes (Write, then CloseWrite) when the target has one.
  BytePipe& RequestBody() { return request_; }

  // Blocks until the server's status and headers came (true), or the request failed (false,
  // with `error()` saying why).
  bool WaitAnswer();
  int status() const { return status_; }
  const httplib::Headers& headers() const { return headers_; }
  const std::string& error() const { return error_; }
  // Reads the answer's body (0: its end, or the request failed).
  size_t ReadAnswer(char* out, size_t max) { return answer_.Read(out, max); }
  // After ReadAnswer gave 0: whether the whole answer came (else the server's answer broke off).
  bool answer_complete() const { return answer_.complete(); }

 private:
  void Run(RelayTarget target);

  BytePipe request_;
  BytePipe answer_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool answered_ = false;  // status and headers are set
  bool finished_ = false;  // the upstream request ended
  int status_ = 0;
  httplib::Headers headers_;
  std::string error_;
  std::thread thread_;  // last: starts once everything above exists
};

// Whether a header is one a proxy must not forward (hop-by-hop headers, Host, the pseudo headers
// cpp-httplib adds to requests, Authorization with steno's own API key, Content-Length).
bool IsUnforwardedHeader(const std::string& name);

}  // namespace steno::api
