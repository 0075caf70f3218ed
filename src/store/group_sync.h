// Group commit: one fsync covers every commit made while the previous one ran.
//
// A store commits its transactions without an fsync of their own, then each writer calls Sync()
// (outside its locks). Sync() returns once a flush that began after the call has completed: the
// first caller becomes the leader and flushes; callers arriving meanwhile wait, and the next
// leader's one flush covers all of them. So a write is still acknowledged only after an fsync
// that covers it, and N concurrent writers cost about two flushes instead of N.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "core/result.h"

namespace steno::store {

class GroupSync {
 public:
  // `flush` makes every write issued before it began durable (an fsync); called on the thread
  // of whichever caller leads, one at a time.
  explicit GroupSync(std::function<Status()> flush) : flush_(std::move(flush)) {}

  // Blocks until a flush that began after this call has ended; that flush's error, if it failed.
  Status Sync();

  int64_t flushes() const;  // flushes run so far
  int64_t syncs() const;    // Sync() calls answered so far
  int64_t waiting() const;  // Sync() calls not answered yet (the one flushing included)

 private:
  std::function<Status()> flush_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t issued_ = 0;   // tickets handed out (one per Sync call)
  uint64_t covered_ = 0;  // every ticket up to this one has its flush finished
  bool flushing_ = false;
  // Ticket ranges [first, last] whose flush failed, with its error (rare; the oldest dropped).
  struct Failure {
    uint64_t first = 0, last = 0;
    Error error;
  };
  std::vector<Failure> failures_;
  int64_t flushes_ = 0;
  int64_t syncs_ = 0;
};

// A flush for a SQLite database in WAL mode: fdatasync of `db_path`-wal, which holds every commit
// not yet checkpointed (checkpoints sync the database file themselves at synchronous = NORMAL).
// A WAL that does not exist yet holds nothing to flush.
std::function<Status()> WalFlush(const std::string& db_path);

}  // namespace steno::store
