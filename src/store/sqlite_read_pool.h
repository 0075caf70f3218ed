// ReadPool: read-only connections to the job database for the store's reads (Get, List, Count,
// results, attempts, footprints, referenced blobs), so that a read never waits behind the one
// writer connection while it commits and fsyncs.
//
// Why this is correct: the database is in WAL mode, where readers on other connections neither
// block nor are blocked by the writer. A read transaction sees every transaction committed before
// it began, so a read that starts after a write returned (on any thread) sees that write; it
// never sees a write that is still uncommitted.
//
// Each connection keeps its own cache of prepared statements and is lent to one thread at a time.
// A pool of size 0 (journal mode other than WAL, where a reader would block the writer and the
// other way round) lends the writer connection itself, under the writer's mutex.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/result.h"
#include "store/sqlite_db.h"

namespace steno::store::sqlite {

class ReadPool {
 public:
  // Opens `size` read-only connections to `path` (which must exist, already in WAL mode), each
  // checked with a first read. `writer` and `writer_mu` serve reads when `size` is 0; they must
  // outlive the pool.
  static Result<std::unique_ptr<ReadPool>> Open(const std::string& path, int size,
                                                int busy_timeout_ms, Db* writer,
                                                std::mutex* writer_mu);
  ReadPool(const ReadPool&) = delete;
  ReadPool& operator=(const ReadPool&) = delete;

  // One connection, lent until this goes out of scope. Statements prepared on it must be done
  // (destroyed) by then; a transaction left open is rolled back on return.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    Db& db() const { return *db_; }

   private:
    friend class ReadPool;
    Lease(ReadPool* pool, Db* db) : pool_(pool), db_(db) {}
    Lease(Db* writer, std::unique_lock<std::mutex> lock)
        : db_(writer), writer_lock_(std::move(lock)) {}
    ReadPool* pool_ = nullptr;  // null: the writer, held by writer_lock_
    Db* db_;
    std::unique_lock<std::mutex> writer_lock_;
  };

  // A free connection; waits for one when every connection is lent (the caller must not hold a
  // lease already, or the pool can run dry while every holder waits for a second one).
  Lease Acquire();
  int size() const { return static_cast<int>(all_.size()); }

 private:
  ReadPool(Db* writer, std::mutex* writer_mu) : writer_(writer), writer_mu_(writer_mu) {}
  void Return(Db* db);

  Db* writer_;
  std::mutex* writer_mu_;
  std::vector<std::unique_ptr<Db>> all_;
  std::mutex mu_;  // guards free_
  std::condition_variable freed_;
  std::vector<Db*> free_;
};

}  // namespace steno::store::sqlite
