// SqliteJobStore: opening, crash recovery, submission and the lease transitions.
// Reads, footprints and retention are in sqlite_job_queries.cc.
#include "store/sqlite_job_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "core/wall_clock.h"
#include "store/job_rules.h"
#include "store/sqlite_db.h"
#include "store/sqlite_job_row.h"
#include "store/sqlite_migrations.h"
#include "store/sqlite_read_pool.h"

namespace steno::store {
using sqlite::Db;
using sqlite::Transaction;

namespace {

const std::string kSelectActive =
    std::string("SELECT ") + kJobColumns + " FROM jobs WHERE state IN ('loading', 'processing')";

}  // namespace

std::string DefaultDbPath(const std::string& data_dir) {
  return data_dir + "/steno.db";
}

SqliteJobStore::SqliteJobStore(std::unique_ptr<Db> db, SqliteOptions options, int lock_fd)
    : db_(std::move(db)), options_(std::move(options)), lock_fd_(lock_fd) {}

SqliteJobStore::~SqliteJobStore() {
  // Readers close first, so that the writer is the last connection: it checkpoints the WAL and
  // removes it, which a read-only connection cannot do.
  readers_.reset();
  db_.reset();  // close the database before giving up the lock
  if (lock_fd_ >= 0) close(lock_fd_);
}

int SqliteJobStore::read_connections() const {
  return readers_->size();
}

Status SqliteJobStore::Commit(Transaction& tx) {
  if (options_.before_commit) options_.before_commit();
  return tx.Commit();
}

int64_t SqliteJobStore::Now() const {
  if (options_.clock) return options_.clock();
  return UnixMillis();
}

Result<std::unique_ptr<SqliteJobStore>> SqliteJobStore::Open(const SqliteOptions& options) {
  if (options.path.empty()) return BadJob("no job database path given");
  int lock_fd = -1;
  if (options.own_queue) {
    // flock, not fcntl locks: it belongs to this open file, is released by the kernel when the
    // process dies however it dies, and O_CLOEXEC keeps runner children from inheriting it.
    std::string lock_path = options.path + ".lock";
    lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0) {
      return Error(ErrorKind::kIo, kErrStoreIo,
                   "cannot open " + lock_path + ": " + std::strerror(errno));
    }
    if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      close(lock_fd);
      return Error(ErrorKind::kUnavailable, kErrStoreLocked,
                   "another steno process is using the job database " + options.path);
    }
  }
  auto fail = [&](Error e) -> Result<std::unique_ptr<SqliteJobStore>> {
    if (lock_fd >= 0) close(lock_fd);
    e.message = options.path + ": " + e.message;
    return e;
  };
  auto db = Db::Open(options.path, options.busy_timeout_ms);
  if (!db.ok()) return fail(db.error());
  bool wal = false;
  // The first statement reads the file header: a file that is not a database fails here.
  {
    auto mode = (*db)->Prepare("PRAGMA journal_mode = WAL");
    if (!mode.ok()) return fail(mode.error());
    auto row = mode->Step();
    if (!row.ok()) return fail(row.error());
    wal = *row && mode->Text(0) == "wal";
    if (!wal) {
      spdlog::warn("job database {}: no WAL (journal mode {}), so reads wait for writes",
                   options.path, *row ? mode->Text(0) : "unknown");
    }
  }
  // Durable in WAL mode: commits write the WAL without an fsync (NORMAL) and each write waits
  // for a group flush of the WAL (group_sync.h), so that one fsync covers concurrent writers.
  // Without WAL, every commit syncs itself (FULL).
  const bool group = options.durable && options.group_commit && wal;
  if (auto st = (*db)->Exec(options.durable && !group ? "PRAGMA synchronous = FULL"
                                                      : "PRAGMA synchronous = NORMAL");
      !st.ok()) {
    return fail(st.error());
  }
  if (auto st = (*db)->Exec("PRAGMA foreign_keys = ON"); !st.ok()) return fail(st.error());
  if (auto st = sqlite::Migrate(**db); !st.ok()) return fail(st.error());

  std::unique_ptr<SqliteJobStore> store(
      new SqliteJobStore(std::move(db).value(), options, lock_fd));
  if (group) store->group_sync_ = std::make_unique<GroupSync>(WalFlush(options.path));
  // Opened after the writer set WAL mode and migrated: readers find the schema in place. From
  // here on the store owns lock_fd and closes it however Open ends.
  auto readers =
      sqlite::ReadPool::Open(options.path, wal ? std::max(0, options.read_connections) : 0,
                             options.busy_timeout_ms, store->db_.get(), &store->mu_);
  if (!readers.ok()) {
    Error e = readers.error();
    e.message = options.path + ": read connection: " + e.message;
    return e;
  }
  store->readers_ = std::move(readers).value();
  if (options.own_queue) {
    if (auto st = store->RecoverAbandoned(); !st.ok()) return st.error();
  }
  return store;
}

Status SqliteJobStore::RecoverAbandoned() {
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(*db_);
  if (!tx.ok()) return tx.error();
  std::vector<Job> abandoned;
  {
    auto stmt = db_->Prepare(kSelectActive);
    if (!stmt.ok()) return stmt.error();
    auto jobs = sqlite::ReadJobs(*stmt);
    if (!jobs.ok()) return jobs.error();
    abandoned = std::move(jobs).value();
  }
  for (const auto& job : abandoned) {
    Error reason(ErrorKind::kUnavailable, "run_lost",
                 "steno stopped while attempt " + std::to_string(job.attempt) + " was " +
                     JobStateName(job.state));
    if (auto st = RequeueLocked(job, reason, 0, "lost"); !st.ok()) return st;
  }
  if (auto st = Commit(*tx); !st.ok()) return st;
  for (const auto& job : abandoned) {
    spdlog::info("job {} was {} when steno stopped; queued again as attempt {}", job.id,
                 JobStateName(job.state), job.attempt + 1);
  }
  recovered_on_open_ = static_cast<int>(abandoned.size());
  return {};
}

Result<Inserted> SqliteJobStore::InsertUnsynced(const NewJob& job) {
  if (auto st = ValidateNewJob(job); !st.ok()) return st.error();
  std::string params = JobParamsToJson(job.params);
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(*db_);
  if (!tx.ok()) return tx.error();
  if (!job.idempotency_key.empty()) {
    auto stmt =
        db_->Prepare(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE idempotency_key = ?");
    if (!stmt.ok()) return stmt.error();
    stmt->Bind(1, job.idempotency_key);
    auto row = stmt->Step();
    if (!row.ok()) return row.error();
    if (*row) {
      auto existing = sqlite::ReadJob(*stmt);
      if (!existing.ok()) return existing.error();
      return Inserted{std::move(existing).value(), true};
    }
  }
  int64_t now = Now();
  Job out = NewPendingJob(job, now);
  {
    auto stmt = db_->Prepare(
        "INSERT INTO jobs (id, state, priority, model, params, blob_digest, attempt, created_ms, "
        "updated_ms, not_before_ms, idempotency_key) "
        "VALUES (?, 'pending', ?, ?, ?, ?, 1, ?, ?, 0, ?)");
    if (!stmt.ok()) return stmt.error();
    stmt->Bind(1, out.id)
        .Bind(2, static_cast<int64_t>(job.priority))
        .Bind(3, job.model)
        .Bind(4, params)
        .BindTextOrNull(5, job.blob_digest)
        .Bind(6, now)
        .Bind(7, now)
        .BindTextOrNull(8, job.idempotency_key);
    if (auto st = stmt->Run(); !st.ok()) return st.error();
  }
  if (auto st = Commit(*tx); !st.ok()) return st.error();
  return Inserted{std::move(out), false};
}

Result<Job> SqliteJobStore::LoadHeld(const std::string& id, const std::string& owner,
                                     const char* action) {
  auto job = sqlite::LoadJob(*db_, id);
  if (!job.ok()) return job.error();
  return HeldJob(std::move(job).value(), id, owner, action);
}

Status SqliteJobStore::EndAttempt(const Job& job, int64_t now, const char* outcome,
                                  const std::optional<Error>& error) {
  auto stmt = db_->Prepare(
      "UPDATE attempts SET ended_ms = ?, outcome = ?, error_kind = ?, error_code = ?, "
      "error_message = ? WHERE job_id = ? AND attempt = ? AND ended_ms IS NULL");
  if (!stmt.ok()) return stmt.error();
  stmt->Bind(1, now).Bind(2, outcome);
  sqlite::BindError(*stmt, 3, error);
  stmt->Bind(6, job.id).Bind(7, int64_t{job.attempt});
  return stmt->Run();
}

Status SqliteJobStore::RequeueLocked(const Job& job, const std::optional<Error>& reason,
                                     int64_t delay_ms, const char* outcome) {
  int64_t now = Now();
  auto stmt = db_->Prepare(
      "UPDATE jobs SET state = 'pending', attempt = attempt + 1, lease_owner = NULL, "
      "lease_expires_ms = NULL, not_before_ms = ?, updated_ms = ?, error_kind = ?, "
      "error_code = ?, error_message = ? WHERE id = ?");
  if (!stmt.ok()) return stmt.error();
  stmt->Bind(1, delay_ms > 0 ? now + delay_ms : 0).Bind(2, now);
  sqlite::BindError(*stmt, 3, reason);
  stmt->Bind(6, job.id);
  if (auto st = stmt->Run(); !st.ok()) return st;
  return EndAttempt(job, now, outcome, reason);
}

Result<std::optional<Job>> SqliteJobStore::ClaimUnsynced(const ClaimRequest& request) {
  if (auto st = ValidateClaim(request); !st.ok()) return st.error();
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(*db_);
  if (!tx.ok()) return tx.error();
  int64_t now = Now();
  std::optional<Job> job;
  if (request.job_id) {
    auto found = sqlite::LoadJob(*db_, *request.job_id);
    if (!found.ok()) return found.error();
    if (!*found) return JobNotFound(*request.job_id);
    if ((*found)->state != JobState::kPending || (*found)->not_before_ms > now) {
      return std::optional<Job>();
    }
    job = std::move(found).value();
  } else {
    std::string sql = std::string("SELECT ") + kJobColumns +
                      " FROM jobs WHERE state = 'pending' AND not_before_ms <= ?";
    if (!request.models.empty()) {
      sql += " AND model IN (?";
      for (size_t i = 1; i < request.models.size(); ++i) sql += ", ?";
      sql += ")";
    }
    sql += " ORDER BY priority, created_ms, id LIMIT 1";
    auto stmt = db_->Prepare(sql);
    if (!stmt.ok()) return stmt.error();
    stmt->Bind(1, now);
    for (size_t i = 0; i < request.models.size(); ++i) {
      stmt->Bind(static_cast<int>(i) + 2, request.models[i]);
    }
    auto row = stmt->Step();
    if (!row.ok()) return row.error();
    if (!*row) return std::optional<Job>();
    auto found = sqlite::ReadJob(*stmt);
    if (!found.ok()) return found.error();
    job = std::move(found).value();
  }
  job->state = JobState::kLoading;
  job->lease_owner = job->node = request.owner;
  job->lease_expires_ms = now + request.lease_ms;
  job->started_ms = job->updated_ms = now;
  {
    auto stmt = db_->Prepare(
        "UPDATE jobs SET state = 'loading', lease_owner = ?1, node = ?1, lease_expires_ms = ?2, "
        "started_ms = ?3, updated_ms = ?4 WHERE id = ?5");
    if (!stmt.ok()) return stmt.error();
    stmt->Bind(1, job->lease_owner).Bind(2, job->lease_expires_ms).Bind(3, now).Bind(4, now);
    stmt->Bind(5, job->id);
    if (auto st = stmt->Run(); !st.ok()) return st.error();
  }
  {
    auto stmt = db_->Prepare(
        "INSERT OR REPLACE INTO attempts (job_id, attempt, owner, started_ms) VALUES (?, ?, ?, ?)");
    if (!stmt.ok()) return stmt.error();
    stmt->Bind(1, job->id).Bind(2, int64_t{job->attempt}).Bind(3, request.owner).Bind(4, now);
    if (auto st = stmt->Run(); !st.ok()) return st.error();
  }
  if (auto st = Commit(*tx); !st.ok()) return st.error();
  return job;
}

Result<std::vector<std::string>> SqliteJobStore::HeartbeatUnsynced(const std::string& owner,
                                                                   int64_t lease_ms) {
  if (auto st = ValidateHeartbeat(owner, lease_ms); !st.ok()) return st.error();
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(*db_);
  if (!tx.ok()) return tx.error();
  std::vector<std::string> held;
  {
    auto stmt = db_->Prepare(
        "UPDATE jobs SET lease_expires_ms = ? WHERE lease_owner = ? AND "
        "state IN ('loading', 'processing') RETURNING id");
    if (!stmt.ok()) return stmt.error();
    stmt->Bind(1, Now() + lease_ms).Bind(2, owner);
    for (;;) {
      auto row = stmt->Step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      held.push_back(stmt->Text(0));
    }
  }
  if (auto st = Commit(*tx); !st.ok()) return st.error();
  return held;
}

Status SqliteJobStore::MarkProcessingUnsynced(const std::string& id, const std::string& owner) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(*db_);
  if (!tx.ok()) return tx.error();
  auto job = LoadHeld(id, owner, "start processing");
  if (!job.ok()) return job.error();
  if (job->state == JobState::kProcessing) return {};
  auto stmt = db_->Prepare("UPDATE jobs SET state = 'processing', updated_ms = ? WHERE id = ?");
  if (!stmt.ok()) return stmt.error();
  stmt->Bind(1, Now()).Bind(2, id);
  if (auto st = stmt->Run(); !st.ok()) return st;
  return Commit(*tx);
}

Status SqliteJobStore::CompleteUnsynced(const std::string& id, const std::string& owner,
                                        const std::string& result_json) {
  if (auto st = ValidateResult(id, result_json); !st.ok()) return st;
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(*db_);
  if (!tx.ok()) return tx.error();
  auto job = LoadHeld(id, owner, "complete");
  if (!job.ok()) {
    NoteRefusedCompletion(id, owner, job.error());
    return job.error();
  }
  int64_t now = Now();
  {
    auto stmt = db_->Prepare(
        "UPDATE jobs SET state = 'completed', finished_ms = ?, updated_ms = ?, lease_owner = NULL, "
        "lease_expires_ms = NULL, error_kind = NULL, error_code = NULL, error_message = NULL "
        "WHERE id = ?");
    if (!stmt.ok()) return stmt.error();
    stmt->Bind(1, now).Bind(2, now).Bind(3, id);
    if (auto st = stmt->Run(); !st.ok()) return st;
  }
  {
    // The primary key on job_id is the last line of defence for "a result is written once".
    auto stmt = db_->Prepare("INSERT INTO results (job_id, result, created_ms) VALUES (?, ?, ?)");
    if (!stmt.ok()) return stmt.error();
    stmt->Bind(1, id).Bind(2, result_json).Bind(3, now);
    if (auto st = stmt->Run(); !st.ok()) return st;
  }
  if (auto st = EndAttempt(*job, now, "completed", std::nullopt); !st.ok()) return st;
  return Commit(*tx);
}

Status SqliteJobStore::FailUnsynced(const std::string& id, const std::string& owner,
                                    const Error& error) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(*db_);
  if (!tx.ok()) return tx.error();
  auto job = LoadHeld(id, owner, "fail");
  if (!job.ok()) return job.error();
  int64_t now = Now();
  auto stmt = db_->Prepare(
      "UPDATE jobs SET state = 'failed', finished_ms = ?, updated_ms = ?, lease_owner = NULL, "
      "lease_expires_ms = NULL, error_kind = ?, error_code = ?, error_message = ? WHERE id = ?");
  if (!stmt.ok()) return stmt.error();
  stmt->Bind(1, now).Bind(2, now);
  sqlite::BindError(*stmt, 3, error);
  stmt->Bind(6, id);
  if (auto st = stmt->Run(); !st.ok()) return st;
  if (auto st = EndAttempt(*job, now, "failed", error); !st.ok()) return st;
  return Commit(*tx);
}

Status SqliteJobStore::RequeueUnsynced(const RequeueRequest& request) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(*db_);
  if (!tx.ok()) return tx.error();
  auto job = LoadHeld(request.id, request.owner, "requeue");
  if (!job.ok()) return job.error();
  if (auto st = RequeueLocked(*job, request.reason, request.delay_ms, "requeued"); !st.ok()) {
    return st;
  }
  return Commit(*tx);
}

Result<std::vector<std::string>> SqliteJobStore::RequeueExpiredUnsynced() {
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(*db_);
  if (!tx.ok()) return tx.error();
  int64_t now = Now();
  std::vector<Job> expired;
  {
    auto stmt = db_->Prepare(kSelectActive + " AND lease_expires_ms < ?");
    if (!stmt.ok()) return stmt.error();
    stmt->Bind(1, now);
    auto jobs = sqlite::ReadJobs(*stmt);
    if (!jobs.ok()) return jobs.error();
    expired = std::move(jobs).value();
  }
  std::vector<std::string> ids;
  for (const auto& job : expired) {
    if (auto st = RequeueLocked(job, LeaseExpired(job), 0, "lease_expired"); !st.ok()) {
      return st.error();
    }
    ids.push_back(job.id);
  }
  if (auto st = Commit(*tx); !st.ok()) return st.error();
  NoteRequeuedExpired(expired);
  return ids;
}

Result<Job> SqliteJobStore::CancelUnsynced(const std::string& id) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(*db_);
  if (!tx.ok()) return tx.error();
  auto found = sqlite::LoadJob(*db_, id);
  if (!found.ok()) return found.error();
  auto loaded = CancellableJob(std::move(found).value(), id);
  if (!loaded.ok()) return loaded.error();
  Job job = std::move(loaded).value();
  if (job.state == JobState::kCancelled) return job;  // cancelling again changes nothing
  Error reason = CancelledByUser();
  int64_t now = Now();
  {
    auto stmt = db_->Prepare(
        "UPDATE jobs SET state = 'cancelled', finished_ms = ?, updated_ms = ?, "
        "lease_owner = NULL, lease_expires_ms = NULL, error_kind = ?, error_code = ?, "
        "error_message = ? WHERE id = ?");
    if (!stmt.ok()) return stmt.error();
    stmt->Bind(1, now).Bind(2, now);
    sqlite::BindError(*stmt, 3, reason);
    stmt->Bind(6, id);
    if (auto st = stmt->Run(); !st.ok()) return st.error();
  }
  if (IsActive(job.state)) {
    if (auto st = EndAttempt(job, now, "cancelled", reason); !st.ok()) return st.error();
  }
  if (auto st = Commit(*tx); !st.ok()) return st.error();
  MarkCancelled(job, reason, now);
  return job;
}

// Every write: its transaction commits with no fsync of its own, then, with the writer connection
// free for the next one, waits for the group flush that covers it (group_sync.h).
template <typename T>
T SqliteJobStore::Durable(T result) {
  if (!result.ok() || !group_sync_) return result;
  if (auto st = group_sync_->Sync(); !st.ok()) return st.error();
  return result;
}

Result<Inserted> SqliteJobStore::Insert(const NewJob& job) {
  return Durable(InsertUnsynced(job));
}

Result<std::optional<Job>> SqliteJobStore::Claim(const ClaimRequest& request) {
  return Durable(ClaimUnsynced(request));
}

Result<std::vector<std::string>> SqliteJobStore::Heartbeat(const std::string& owner,
                                                           int64_t lease_ms) {
  return Durable(HeartbeatUnsynced(owner, lease_ms));
}

Status SqliteJobStore::MarkProcessing(const std::string& id, const std::string& owner) {
  return Durable(MarkProcessingUnsynced(id, owner));
}

Status SqliteJobStore::Complete(const std::string& id, const std::string& owner,
                                const std::string& result_json) {
  return Durable(CompleteUnsynced(id, owner, result_json));
}

Status SqliteJobStore::Fail(const std::string& id, const std::string& owner, const Error& error) {
  return Durable(FailUnsynced(id, owner, error));
}

Status SqliteJobStore::Requeue(const RequeueRequest& request) {
  return Durable(RequeueUnsynced(request));
}

Result<std::vector<std::string>> SqliteJobStore::RequeueExpired() {
  return Durable(RequeueExpiredUnsynced());
}

Result<Job> SqliteJobStore::Cancel(const std::string& id) {
  return Durable(CancelUnsynced(id));
}

Status SqliteJobStore::PutFootprint(const ModelFootprint& footprint) {
  return Durable(PutFootprintUnsynced(footprint));
}

Result<int> SqliteJobStore::DeleteFinishedBefore(int64_t cutoff_ms, int limit) {
  return Durable(DeleteFinishedBeforeUnsynced(cutoff_ms, limit));
}

}  // namespace steno::store
