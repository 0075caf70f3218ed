// PgJobStore: opening, submission and the lease transitions. Reads, footprints, retention and
// nodes are in pg_job_queries.cc.
#include "store/pg_job_store.h"

#include <algorithm>
#include <cstdlib>

#include "core/log.h"
#include "core/wall_clock.h"
#include "store/job_rules.h"
#include "store/pg_connection.h"
#include "store/pg_connection_pool.h"
#include "store/pg_job_row.h"
#include "store/pg_migrations.h"

namespace steno::store {
using pg::P;
using pg::Param;
using pg::Transaction;

namespace {

const std::string kJobColumnsText = kJobColumns;

}  // namespace

PgJobStore::PgJobStore(std::unique_ptr<pg::Connection> conn, PgOptions options,
                       int64_t clock_offset_ms)
    : pool_(std::make_unique<pg::ConnectionPool>(options.url, options.connect_timeout_s,
                                                 options.connections, std::move(conn))),
      options_(std::move(options)),
      clock_offset_ms_(clock_offset_ms) {}

PgJobStore::~PgJobStore() = default;

int64_t PgJobStore::Now() const {
  if (options_.clock) return options_.clock();
  return UnixMillis() + clock_offset_ms_;
}

Result<std::unique_ptr<PgJobStore>> PgJobStore::Open(const PgOptions& options) {
  if (options.url.empty()) return BadJob("no PostgreSQL URL given");
  auto conn = pg::Connection::Open(options.url, options.connect_timeout_s);
  if (!conn.ok()) return conn.error();
  if (auto st = pg::Migrate(**conn); !st.ok()) return st.error();
  int64_t before = UnixMillis();
  auto server = (*conn)->Query("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint");
  if (!server.ok()) return server.error();
  int64_t after = UnixMillis();
  int64_t offset = server->Int(0, 0) - (before + after) / 2;
  if (std::abs(offset) > 1000) {
    spdlog::warn("this host's clock is {} ms off the PostgreSQL server's; leases use the server's",
                 -offset);
  }
  return std::unique_ptr<PgJobStore>(new PgJobStore(std::move(conn).value(), options, offset));
}

Result<Inserted> PgJobStore::Insert(const NewJob& job) {
  if (auto st = ValidateNewJob(job); !st.ok()) return st.error();
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  int64_t now = Now();
  Job out = NewPendingJob(job, now);
  // One statement: two nodes inserting the same key at once get one job between them.
  auto inserted = conn.Query(
      "INSERT INTO jobs (id, state, priority, model, params, blob_digest, attempt, created_ms, "
      "updated_ms, not_before_ms, idempotency_key) "
      "VALUES ($1, 'pending', $2, $3, $4, $5, 1, $6, $6, 0, $7) "
      "ON CONFLICT (idempotency_key) DO NOTHING",
      {P(out.id), P(static_cast<int64_t>(job.priority)), P(job.model),
       P(JobParamsToJson(job.params)), pg::TextOrNull(job.blob_digest), P(now),
       pg::TextOrNull(job.idempotency_key)});
  if (!inserted.ok()) return inserted.error();
  if (inserted->Affected() == 1) return Inserted{std::move(out), false};
  if (job.idempotency_key.empty()) {
    return Error(ErrorKind::kInternal, "store_error", "job " + out.id + " was not inserted");
  }
  auto existing = conn.Query("SELECT " + kJobColumnsText + " FROM jobs WHERE idempotency_key = $1",
                             {P(job.idempotency_key)});
  if (!existing.ok()) return existing.error();
  if (existing->empty()) {
    // The job holding the key was deleted between the two statements (retention): rare.
    return Error(ErrorKind::kUnavailable, kErrStoreBusy,
                 "the job with idempotency key " + job.idempotency_key +
                     " was removed while this request ran; retry");
  }
  auto found = pg::ReadJob(*existing, 0);
  if (!found.ok()) return found.error();
  return Inserted{std::move(found).value(), true};
}

Result<Job> PgJobStore::LoadHeld(pg::Connection& conn, const std::string& id,
                                 const std::string& owner, const char* action) {
  auto job = pg::LoadJob(conn, id, /*for_update=*/true);
  if (!job.ok()) return job.error();
  return HeldJob(std::move(job).value(), id, owner, action);
}

Status PgJobStore::EndAttempt(pg::Connection& conn, const Job& job, int64_t now,
                              const char* outcome, const std::optional<Error>& error) {
  std::vector<Param> params = {P(now), P(outcome)};
  pg::AddError(params, error);
  params.push_back(P(job.id));
  params.push_back(P(int64_t{job.attempt}));
  auto st = conn.Query(
      "UPDATE attempts SET ended_ms = $1, outcome = $2, error_kind = $3, error_code = $4, "
      "error_message = $5 WHERE job_id = $6 AND attempt = $7 AND ended_ms IS NULL",
      params);
  if (!st.ok()) return st.error();
  return {};
}

Status PgJobStore::RequeueLocked(pg::Connection& conn, const Job& job,
                                 const std::optional<Error>& reason, int64_t delay_ms,
                                 const char* outcome) {
  int64_t now = Now();
  std::vector<Param> params = {P(delay_ms > 0 ? now + delay_ms : 0), P(now)};
  pg::AddError(params, reason);
  params.push_back(P(job.id));
  auto st = conn.Query(
      "UPDATE jobs SET state = 'pending', attempt = attempt + 1, lease_owner = NULL, "
      "lease_expires_ms = NULL, not_before_ms = $1, updated_ms = $2, error_kind = $3, "
      "error_code = $4, error_message = $5 WHERE id = $6",
      params);
  if (!st.ok()) return st.error();
  return EndAttempt(conn, job, now, outcome, reason);
}

Result<std::optional<Job>> PgJobStore::ClaimLocked(pg::Connection& conn,
                                                   const ClaimRequest& request, int64_t now) {
  static const std::string kSet =
      "UPDATE jobs SET state = 'loading', lease_owner = $2, node = $2, lease_expires_ms = $3, "
      "started_ms = $1, updated_ms = $1 WHERE ";
  std::vector<Param> params = {P(now), P(request.owner), P(now + request.lease_ms)};
  std::string sql;
  if (request.job_id) {
    // Waits for a transaction holding this row, then sees its outcome (READ COMMITTED).
    auto found = pg::LoadJob(conn, *request.job_id, /*for_update=*/true);
    if (!found.ok()) return found.error();
    if (!*found) return JobNotFound(*request.job_id);
    if ((*found)->state != JobState::kPending || (*found)->not_before_ms > now) {
      return std::optional<Job>();
    }
    params.push_back(P(*request.job_id));
    sql = kSet + "id = $4";
  } else {
    // SKIP LOCKED: a row another claimer is taking right now is passed over, not waited for.
    sql = kSet + "id = (SELECT id FROM jobs WHERE state = 'pending' AND not_before_ms <= $1";
    if (!request.models.empty()) {
      sql += " AND model IN (";
      for (size_t i = 0; i < request.models.size(); ++i) {
        params.push_back(P(request.models[i]));
        sql += (i ? ", $" : "$") + std::to_string(params.size());
      }
      sql += ")";
    }
    sql += " ORDER BY priority, created_ms, id LIMIT 1 FOR UPDATE SKIP LOCKED)";
  }
  sql += " RETURNING " + kJobColumnsText;
  auto updated = conn.Query(sql, params);
  if (!updated.ok()) return updated.error();
  if (updated->empty()) return std::optional<Job>();
  auto job = pg::ReadJob(*updated, 0);
  if (!job.ok()) return job.error();
  auto attempt = conn.Query(
      "INSERT INTO attempts (job_id, attempt, owner, started_ms) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (job_id, attempt) DO UPDATE SET owner = excluded.owner, "
      "started_ms = excluded.started_ms, ended_ms = NULL, outcome = NULL, error_kind = NULL, "
      "error_code = NULL, error_message = NULL",
      {P(job->id), P(int64_t{job->attempt}), P(request.owner), P(now)});
  if (!attempt.ok()) return attempt.error();
  return std::optional<Job>(std::move(job).value());
}

Result<std::optional<Job>> PgJobStore::Claim(const ClaimRequest& request) {
  if (auto st = ValidateClaim(request); !st.ok()) return st.error();
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto tx = Transaction::Begin(conn);
  if (!tx.ok()) return tx.error();
  auto job = ClaimLocked(conn, request, Now());
  if (!job.ok() || !*job) return job;
  if (auto st = tx->Commit(); !st.ok()) return st.error();
  return job;
}

Result<std::vector<std::string>> PgJobStore::Heartbeat(const std::string& owner, int64_t lease_ms) {
  if (auto st = ValidateHeartbeat(owner, lease_ms); !st.ok()) return st.error();
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto rows = conn.Query(
      "UPDATE jobs SET lease_expires_ms = $1 WHERE lease_owner = $2 AND "
      "state IN ('loading', 'processing') RETURNING id",
      {P(Now() + lease_ms), P(owner)});
  if (!rows.ok()) return rows.error();
  std::vector<std::string> held;
  for (int r = 0; r < rows->size(); ++r) held.push_back(rows->Text(r, 0));
  std::sort(held.begin(), held.end());
  return held;
}

Status PgJobStore::MarkProcessing(const std::string& id, const std::string& owner) {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto tx = Transaction::Begin(conn);
  if (!tx.ok()) return tx.error();
  auto job = LoadHeld(conn, id, owner, "start processing");
  if (!job.ok()) return job.error();
  if (job->state == JobState::kProcessing) return {};
  auto st = conn.Query("UPDATE jobs SET state = 'processing', updated_ms = $1 WHERE id = $2",
                       {P(Now()), P(id)});
  if (!st.ok()) return st.error();
  return tx->Commit();
}

Status PgJobStore::Complete(const std::string& id, const std::string& owner,
                            const std::string& result_json) {
  if (auto st = ValidateResult(id, result_json); !st.ok()) return st;
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto tx = Transaction::Begin(conn);
  if (!tx.ok()) return tx.error();
  auto job = LoadHeld(conn, id, owner, "complete");
  if (!job.ok()) {
    NoteRefusedCompletion(id, owner, job.error());
    return job.error();
  }
  int64_t now = Now();
  auto done = conn.Query(
      "UPDATE jobs SET state = 'completed', finished_ms = $1, updated_ms = $1, "
      "lease_owner = NULL, lease_expires_ms = NULL, error_kind = NULL, error_code = NULL, "
      "error_message = NULL WHERE id = $2",
      {P(now), P(id)});
  if (!done.ok()) return done.error();
  // The primary key on job_id is the last line of defence for "a result is written once".
  auto result = conn.Query("INSERT INTO results (job_id, result, created_ms) VALUES ($1, $2, $3)",
                           {P(id), P(result_json), P(now)});
  if (!result.ok()) return result.error();
  if (auto st = EndAttempt(conn, *job, now, "completed", std::nullopt); !st.ok()) return st;
  return tx->Commit();
}

Status PgJobStore::Fail(const std::string& id, const std::string& owner, const Error& error) {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto tx = Transaction::Begin(conn);
  if (!tx.ok()) return tx.error();
  auto job = LoadHeld(conn, id, owner, "fail");
  if (!job.ok()) return job.error();
  const int64_t now = Now();
  std::vector<Param> params = {P(now)};
  pg::AddError(params, error);
  params.push_back(P(id));
  auto st = conn.Query(
      "UPDATE jobs SET state = 'failed', finished_ms = $1, updated_ms = $1, lease_owner = NULL, "
      "lease_expires_ms = NULL, error_kind = $2, error_code = $3, error_message = $4 "
      "WHERE id = $5",
      params);
  if (!st.ok()) return st.error();
  if (auto end = EndAttempt(conn, *job, now, "failed", error); !end.ok()) return end;
  return tx->Commit();
}

Status PgJobStore::Requeue(const RequeueRequest& request) {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto tx = Transaction::Begin(conn);
  if (!tx.ok()) return tx.error();
  auto job = LoadHeld(conn, request.id, request.owner, "requeue");
  if (!job.ok()) return job.error();
  if (auto st = RequeueLocked(conn, *job, request.reason, request.delay_ms, "requeued"); !st.ok()) {
    return st;
  }
  return tx->Commit();
}

Result<std::vector<std::string>> PgJobStore::RequeueExpired() {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto tx = Transaction::Begin(conn);
  if (!tx.ok()) return tx.error();
  // SKIP LOCKED: a job some node is completing (or renewing) right now is left to that node;
  // if its lease is really gone the next sweep takes it.
  auto rows = conn.Query("SELECT " + kJobColumnsText +
                             " FROM jobs WHERE state IN ('loading', 'processing') AND "
                             "lease_expires_ms < $1 ORDER BY id FOR UPDATE SKIP LOCKED",
                         {P(Now())});
  if (!rows.ok()) return rows.error();
  auto expired = pg::ReadJobs(*rows);
  if (!expired.ok()) return expired.error();
  std::vector<std::string> ids;
  for (const auto& job : *expired) {
    if (auto st = RequeueLocked(conn, job, LeaseExpired(job), 0, "lease_expired"); !st.ok()) {
      return st.error();
    }
    ids.push_back(job.id);
  }
  if (auto st = tx->Commit(); !st.ok()) return st.error();
  NoteRequeuedExpired(*expired);
  return ids;
}

Result<Job> PgJobStore::Cancel(const std::string& id) {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto tx = Transaction::Begin(conn);
  if (!tx.ok()) return tx.error();
  auto found = pg::LoadJob(conn, id, /*for_update=*/true);
  if (!found.ok()) return found.error();
  auto loaded = CancellableJob(std::move(found).value(), id);
  if (!loaded.ok()) return loaded.error();
  Job job = std::move(loaded).value();
  if (job.state == JobState::kCancelled) return job;  // cancelling again changes nothing
  Error reason = CancelledByUser();
  int64_t now = Now();
  std::vector<Param> params = {P(now)};
  pg::AddError(params, reason);
  params.push_back(P(id));
  auto st = conn.Query(
      "UPDATE jobs SET state = 'cancelled', finished_ms = $1, updated_ms = $1, "
      "lease_owner = NULL, lease_expires_ms = NULL, error_kind = $2, error_code = $3, "
      "error_message = $4 WHERE id = $5",
      params);
  if (!st.ok()) return st.error();
  if (IsActive(job.state)) {
    if (auto end = EndAttempt(conn, job, now, "cancelled", reason); !end.ok()) return end.error();
  }
  if (auto commit = tx->Commit(); !commit.ok()) return commit.error();
  MarkCancelled(job, reason, now);
  return job;
}

}  // namespace steno::store
