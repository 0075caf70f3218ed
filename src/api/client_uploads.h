// Bounds how many requests one client (by address) may have sending their body at once.
//
// Why: cpp-httplib serves a connection on one thread and reads a request's body on that thread,
// so a client that announces a body and then sends nothing holds a worker until the read timeout
// passes. A few hundred of those took every worker, and health checks and every other client
// waited behind them (issue 21).
//
// What is counted, and why only that: a request from the moment its headers are read (the
// library's pre-routing hook: the address is known and no byte of the body has been read) until
// its body has been read or the read failed. A request past the bound is refused there, before
// the body, so it costs its thread microseconds. Requests being handled are never counted:
// synchronous transcriptions and SSE streams hold their connections for minutes by design, and
// hundreds of them from one address (a dashboard, a proxy, a load test) stay unaffected. Neither
// are idle keep-alive connections (the keep-alive timeout ends those).
//
// Thread-safe. A Slot must not outlive its ClientUploads.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace steno::api {

class ClientUploads {
 public:
  // `per_client` < 1: no bound (slots are still counted).
  explicit ClientUploads(int per_client) : per_client_(per_client) {}
  ClientUploads(const ClientUploads&) = delete;
  ClientUploads& operator=(const ClientUploads&) = delete;

  // One request of one client whose body is being read; handed back when destroyed or reset.
  class Slot {
   public:
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    ~Slot();

   private:
    friend class ClientUploads;
    Slot(ClientUploads* owner, std::string client) : owner_(owner), client_(std::move(client)) {}
    ClientUploads* owner_;
    std::string client_;
  };

  // A slot for a request of `client`; nullopt when `client` already holds `per_client` of them.
  std::optional<Slot> TryAcquire(const std::string& client);
  // Slots `client` holds now.
  int Held(const std::string& client) const;
  int per_client() const { return per_client_; }

 private:
  void Release(const std::string& client);

  const int per_client_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, int> held_;  // guarded by mu_; clients holding none are erased
};

}  // namespace steno::api
