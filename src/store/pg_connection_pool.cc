#include "store/pg_connection_pool.h"

#include <algorithm>

namespace steno::store::pg {

ConnectionPool::ConnectionPool(std::string url, int connect_timeout_s, int size,
                               std::unique_ptr<Connection> first)
    : url_(std::move(url)), connect_timeout_s_(connect_timeout_s), size_(std::max(1, size)) {
  MutexLock lock(mu_);
  if (first) {
    idle_.push_back(std::move(first));
    open_ = 1;
  }
}

ConnectionPool::Lease::~Lease() {
  if (conn_) pool_->GiveBack(std::move(conn_));
}

void ConnectionPool::GiveBack(std::unique_ptr<Connection> conn) {
  {
    MutexLock lock(mu_);
    idle_.push_back(std::move(conn));
  }
  returned_.Signal();
}

Result<ConnectionPool::Lease> ConnectionPool::Acquire() {
  {
    MutexLock lock(mu_);
    while (idle_.empty() && open_ >= size_) returned_.Wait(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<Connection> conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    ++open_;  // this thread opens one, outside the lock (a network round trip)
  }
  auto opened = Connection::Open(url_, connect_timeout_s_);
  if (!opened.ok()) {
    {
      MutexLock lock(mu_);
      --open_;
    }
    returned_.Signal();  // a waiter may open one itself
    return opened.error();
  }
  return Lease(this, std::move(opened).value());
}

}  // namespace steno::store::pg
