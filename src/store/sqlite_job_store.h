// The JobStore of a single node: one SQLite database in the data dir (DATA_DIR/steno.db).
//
// WAL mode, foreign keys on, a busy timeout, and by default (`durable`) every write acknowledged
// only once an fsync covers it, so that it survives power loss as well as a crash: with group
// commit (group_sync.h), one fsync of the WAL covers every write committed meanwhile. The schema
// is migrated on open (sqlite_migrations.h).
//
// Connections: one writer, behind a mutex, runs every call that changes something (each in one
// transaction; its fsync is the group's, after the writer is free for the next call); reads (Get,
// List, Count, PendingByModel, GetResult, Attempts, GetWithAttempts, GetFootprint, ListFootprints,
// ReferencedBlobs) run on a pool of read-only connections (sqlite_read_pool.h), so they never wait
// behind a write and its fsync. WAL gives each read the last committed state: a read that starts
// after a write returned sees it. A read that needs two statements reads them in one snapshot.
//
// Exactly one process owns the queue: with `own_queue` (the default) Open takes an exclusive
// lock on DATA_DIR/steno.db.lock, and since no other process can then hold a lease, every job
// found loading or processing was abandoned by a crash and goes back to pending with attempt + 1.
// Tools that only read (steno ps) pass own_queue = false and change nothing on open.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "store/group_sync.h"
#include "store/job_store.h"

namespace steno::store {

namespace sqlite {
class Db;
class ReadPool;
class Transaction;
}  // namespace sqlite

// DATA_DIR/steno.db
std::string DefaultDbPath(const std::string& data_dir);

struct SqliteOptions {
  std::string path;       // database file; its directory must exist
  bool own_queue = true;  // lock the database for this process and recover abandoned jobs
  bool durable = true;    // power-loss safe (group-fsynced writes) rather than only crash safe
  // Durable writes share fsyncs (group_sync.h); false: each commit syncs itself
  // (synchronous = FULL), for comparison in benchmarks.
  bool group_commit = true;

  int busy_timeout_ms = 5000;
  std::function<int64_t()> clock;  // ms since the epoch; default: the system clock
  // Read-only connections serving reads concurrently with the writer (each lent to one thread
  // at a time; more threads than this wait for a free one). 0, or a database that cannot use
  // WAL: reads share the writer connection and wait for it.
  int read_connections = 4;
  // Test seam: called inside every write transaction just before its COMMIT, with the writer
  // connection held (what a slow fsync looks like to everyone else).
  std::function<void()> before_commit;
};

class SqliteJobStore final : public JobStore {
 public:
  // Errors: kUnavailable kErrStoreLocked (another process owns the queue), kIntegrity
  // kErrStoreCorrupt / kErrSchemaTooNew / kErrForeignSchema, kIo kErrStoreIo, kNoSpace
  // kErrStoreFull (the disk is full; any call may return it).
  static Result<std::unique_ptr<SqliteJobStore>> Open(const SqliteOptions& options);
  ~SqliteJobStore() override;

  // Jobs moved back to pending when this store was opened (crash recovery).
  int recovered_on_open() const { return recovered_on_open_; }
  // Group commit's counters: WAL flushes run, and writes they acknowledged (0, 0 when not durable
  // or without WAL).
  int64_t flushes() const { return group_sync_ ? group_sync_->flushes() : 0; }
  int64_t synced_writes() const { return group_sync_ ? group_sync_->syncs() : 0; }
  // Read-only connections in use (SqliteOptions::read_connections, or 0 without WAL).
  int read_connections() const;

  Result<Inserted> Insert(const NewJob& job) override;
  Result<Job> Get(const std::string& id) override;
  Result<JobPage> List(const JobFilter& filter) override;
  Result<JobCounts> Count() override;
  Result<std::vector<PendingModel>> PendingByModel() override;
  Result<std::string> GetResult(const std::string& id) override;
  Result<std::vector<AttemptRecord>> Attempts(const std::string& id) override;
  Result<JobWithAttempts> GetWithAttempts(const std::string& id) override;

  Result<std::optional<Job>> Claim(const ClaimRequest& request) override;
  Result<std::vector<std::string>> Heartbeat(const std::string& owner, int64_t lease_ms) override;
  Status MarkProcessing(const std::string& id, const std::string& owner) override;
  Status Complete(const std::string& id, const std::string& owner,
                  const std::string& result_json) override;
  Status Fail(const std::string& id, const std::string& owner, const Error& error) override;
  Status Requeue(const RequeueRequest& request) override;
  Result<std::vector<std::string>> RequeueExpired() override;
  Result<Job> Cancel(const std::string& id) override;

  Status PutFootprint(const ModelFootprint& footprint) override;
  Result<std::optional<ModelFootprint>> GetFootprint(const std::string& model,
                                                     const std::string& device_name) override;
  Result<std::vector<ModelFootprint>> ListFootprints() override;

  Result<int> DeleteFinishedBefore(int64_t cutoff_ms, int limit) override;
  Result<std::vector<std::string>> ReferencedBlobs() override;

 private:
  SqliteJobStore(std::unique_ptr<sqlite::Db> db, SqliteOptions options, int lock_fd);
  int64_t Now() const;
  // Helpers below expect mu_ held and, where they write, a transaction open.
  Status Commit(sqlite::Transaction& tx);  // runs before_commit, then commits
  Result<Job> LoadHeld(const std::string& id, const std::string& owner, const char* action);
  // Ends the job's current attempt at `now`: the same instant as the state change that ends it.
  Status EndAttempt(const Job& job, int64_t now, const char* outcome,
                    const std::optional<Error>& error);
  Status RequeueLocked(const Job& job, const std::optional<Error>& reason, int64_t delay_ms,
                       const char* outcome);
  Status RecoverAbandoned();
  // The writes themselves: each commits without an fsync of its own (the public write then
  // waits for the group flush that covers it: Durable).
  Result<Inserted> InsertUnsynced(const NewJob& job);
  Result<std::optional<Job>> ClaimUnsynced(const ClaimRequest& request);
  Result<std::vector<std::string>> HeartbeatUnsynced(const std::string& owner, int64_t lease_ms);
  Status MarkProcessingUnsynced(const std::string& id, const std::string& owner);
  Status CompleteUnsynced(const std::string& id, const std::string& owner,
                          const std::string& result_json);
  Status FailUnsynced(const std::string& id, const std::string& owner, const Error& error);
  Status RequeueUnsynced(const RequeueRequest& request);
  Result<std::vector<std::string>> RequeueExpiredUnsynced();
  Result<Job> CancelUnsynced(const std::string& id);
  Status PutFootprintUnsynced(const ModelFootprint& footprint);
  Result<int> DeleteFinishedBeforeUnsynced(int64_t cutoff_ms, int limit);
  template <typename T>
  T Durable(T result);

  std::mutex mu_;  // guards db_, the writer
  std::unique_ptr<sqlite::Db> db_;
  std::unique_ptr<sqlite::ReadPool> readers_;  // after db_: closed first
  std::unique_ptr<GroupSync> group_sync_;      // durable stores in WAL mode; null otherwise
  SqliteOptions options_;
  int lock_fd_ = -1;
  int recovered_on_open_ = 0;
};

}  // namespace steno::store
