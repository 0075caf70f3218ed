#include "store/sqlite_read_pool.h"

namespace steno::store::sqlite {

Result<std::unique_ptr<ReadPool>> ReadPool::Open(const std::string& path, int size,
                                                 int busy_timeout_ms, Db* writer,
                                                 std::mutex* writer_mu) {
  std::unique_ptr<ReadPool> pool(new ReadPool(writer, writer_mu));
  for (int i = 0; i < size; ++i) {
    auto db = Db::Open(path, busy_timeout_ms, OpenMode::kReadOnly);
    if (!db.ok()) return db.error();
    // Opening is lazy: a first read makes a connection that cannot work fail here, at open,
    // rather than in the middle of serving a request.
    {
      auto check = (*db)->Prepare("SELECT count(*) FROM sqlite_schema");
      if (!check.ok()) return check.error();
      if (auto row = check->Step(); !row.ok()) return row.error();
    }
    pool->free_.push_back(db->get());
    pool->all_.push_back(std::move(db).value());
  }
  return pool;
}

ReadPool::Lease ReadPool::Acquire() {
  if (all_.empty()) return Lease(writer_, std::unique_lock(*writer_mu_));
  std::unique_lock lock(mu_);
  freed_.wait(lock, [this] { return !free_.empty(); });
  Db* db = free_.back();
  free_.pop_back();
  return Lease(this, db);
}

void ReadPool::Return(Db* db) {
  // A connection that went back inside a transaction would serve its old snapshot to the next
  // borrower, breaking read-after-write; a failed statement or a forgotten ReadTransaction must
  // not be able to do that.
  if (db->InTransaction()) (void)db->Exec("ROLLBACK");
  {
    std::lock_guard lock(mu_);
    free_.push_back(db);
  }
  freed_.notify_one();
}

ReadPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), db_(other.db_), writer_lock_(std::move(other.writer_lock_)) {
  other.pool_ = nullptr;
  other.db_ = nullptr;
}

ReadPool::Lease::~Lease() {
  if (pool_ && db_) pool_->Return(db_);
}

}  // namespace steno::store::sqlite
