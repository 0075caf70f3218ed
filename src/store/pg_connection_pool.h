// A few connections to one PostgreSQL server, shared by one store's callers: each call borrows
// a connection for its statement or transaction and gives it back, so the calls of different
// threads (the writer, the claim loop, HTTP readers) run at once instead of queueing behind one
// connection. Row locks (FOR UPDATE, SKIP LOCKED) keep them correct, as they do between nodes.
//
// The first connection is given at construction (the store opened it to migrate); the others are
// opened when first needed and kept. A broken connection reconnects on its next statement
// (pg_connection.h). Listening (LISTEN) never borrows from a pool: a listener keeps its own.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/mutex.h"
#include "core/result.h"
#include "store/pg_connection.h"

namespace steno::store::pg {

class ConnectionPool {
 public:
  static constexpr int kDefaultSize = 4;

  ConnectionPool(std::string url, int connect_timeout_s, int size,
                 std::unique_ptr<Connection> first);
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // A borrowed connection; given back when the lease is destroyed. Leases must not outlive the
  // pool.
  class Lease {
   public:
    Lease(Lease&& other) noexcept : pool_(other.pool_), conn_(std::move(other.conn_)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    Connection& operator*() const { return *conn_; }
    Connection* operator->() const { return conn_.get(); }

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    ConnectionPool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  // An idle connection; else a new one while fewer than `size` are open; else waits for one to
  // be given back. kUnavailable kErrStoreUnavailable when a new one cannot be opened. A thread
  // holds at most one lease at a time (two could wait for each other).
  Result<Lease> Acquire() EXCLUDES(mu_);

  int size() const { return size_; }

 private:
  void GiveBack(std::unique_ptr<Connection> conn) EXCLUDES(mu_);

  const std::string url_;
  const int connect_timeout_s_;
  const int size_;
  Mutex mu_;
  CondVar returned_;
  std::vector<std::unique_ptr<Connection>> idle_ GUARDED_BY(mu_);
  int open_ GUARDED_BY(mu_) = 0;  // idle + lent + being opened
};

}  // namespace steno::store::pg
