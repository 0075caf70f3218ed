// SqliteJobStore: reads (get, list with paging, counts, results), measured model footprints and
// the deletions retention asks for. Reads run on a connection lent by the read pool, never on
// the writer (unless the pool is empty), and never take mu_.
#include "store/job_rules.h"
#include "store/sqlite_db.h"
#include "store/sqlite_job_row.h"
#include "store/sqlite_job_store.h"
#include "store/sqlite_read_pool.h"

namespace steno::store {

Result<Job> SqliteJobStore::Get(const std::string& id) {
  auto conn = readers_->Acquire();
  auto job = sqlite::LoadJob(conn.db(), id);
  if (!job.ok()) return job.error();
  return FoundJob(std::move(job).value(), id);
}

Result<JobPage> SqliteJobStore::List(const JobFilter& filter) {
  auto start = ListStart(filter);
  if (!start.ok()) return start.error();
  const std::optional<PageKey>& after = *start;
  // The SQL text depends only on which filters are present, so each shape is prepared once.
  std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE 1";
  if (!filter.states.empty()) {
    sql += " AND state IN (?";
    for (size_t i = 1; i < filter.states.size(); ++i) sql += ", ?";
    sql += ")";
  }
  if (!filter.model.empty()) sql += " AND model = ?";
  if (!filter.lease_owner.empty()) sql += " AND lease_owner = ?";
  bool newest = filter.order == ListOrder::kNewestFirst;
  if (after) {
    sql +=
        newest ? " AND (created_ms, id) < (?, ?)" : " AND (priority, created_ms, id) > (?, ?, ?)";
  }
  sql += newest ? " ORDER BY created_ms DESC, id DESC" : " ORDER BY priority, created_ms, id";
  sql += " LIMIT ?";

  auto conn = readers_->Acquire();
  auto stmt = conn.db().Prepare(sql);
  if (!stmt.ok()) return stmt.error();
  int i = 1;
  for (auto s : filter.states) stmt->Bind(i++, JobStateName(s));
  if (!filter.model.empty()) stmt->Bind(i++, filter.model);
  if (!filter.lease_owner.empty()) stmt->Bind(i++, filter.lease_owner);
  if (after) {
    if (!newest) stmt->Bind(i++, after->priority);
    stmt->Bind(i++, after->created_ms);
    stmt->Bind(i++, after->id);
  }
  stmt->Bind(i++, int64_t{filter.limit} + 1);  // one more tells whether another page exists
  JobPage page;
  for (;;) {
    auto row = stmt->Step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    if (PageIsFull(page, filter)) break;
    auto job = sqlite::ReadJob(*stmt);
    if (!job.ok()) return job.error();
    page.jobs.push_back(std::move(job).value());
  }
  return page;
}

Result<JobCounts> SqliteJobStore::Count() {
  auto conn = readers_->Acquire();
  auto stmt = conn.db().Prepare("SELECT state, n FROM job_counts");  // kept by triggers (v4)
  if (!stmt.ok()) return stmt.error();
  JobCounts counts;
  for (;;) {
    auto row = stmt->Step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    if (auto s = ParseJobState(stmt->Text(0))) {
      counts.by_state[static_cast<size_t>(*s)] = stmt->Int(1);
    }
  }
  return counts;
}

Result<std::vector<PendingModel>> SqliteJobStore::PendingByModel() {
  auto conn = readers_->Acquire();
  auto stmt = conn.db().Prepare(
      "SELECT model, count(*), sum(not_before_ms <= ?) FROM jobs WHERE state = 'pending' "
      "GROUP BY model ORDER BY model");
  if (!stmt.ok()) return stmt.error();
  stmt->Bind(1, Now());
  std::vector<PendingModel> out;
  for (;;) {
    auto row = stmt->Step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.push_back({stmt->Text(0), stmt->Int(1), stmt->Int(2)});
  }
  return out;
}

Result<std::string> SqliteJobStore::GetResult(const std::string& id) {
  auto conn = readers_->Acquire();
  // One snapshot for both statements: the job's state below explains the result missing above.
  auto snapshot = sqlite::ReadTransaction::Begin(conn.db());
  if (!snapshot.ok()) return snapshot.error();
  {
    auto stmt = conn.db().Prepare("SELECT result FROM results WHERE job_id = ?");
    if (!stmt.ok()) return stmt.error();
    stmt->Bind(1, id);
    auto row = stmt->Step();
    if (!row.ok()) return row.error();
    if (*row) return stmt->Text(0);
  }
  auto job = sqlite::LoadJob(conn.db(), id);
  if (!job.ok()) return job.error();
  if (!*job) return JobNotFound(id);
  return NoResult(id, JobStateName((*job)->state));
}

Result<std::vector<AttemptRecord>> SqliteJobStore::Attempts(const std::string& id) {
  auto got = GetWithAttempts(id);
  if (!got.ok()) return got.error();
  return std::move(got->attempts);
}

Result<JobWithAttempts> SqliteJobStore::GetWithAttempts(const std::string& id) {
  auto conn = readers_->Acquire();
  // One snapshot for both statements: the runs agree with the job (and it cannot be deleted
  // between them).
  auto snapshot = sqlite::ReadTransaction::Begin(conn.db());
  if (!snapshot.ok()) return snapshot.error();
  auto job = sqlite::LoadJob(conn.db(), id);
  if (!job.ok()) return job.error();
  if (!*job) return JobNotFound(id);
  auto stmt = conn.db().Prepare(
      "SELECT attempt, owner, started_ms, ended_ms, outcome, error_kind, error_code, "
      "error_message FROM attempts WHERE job_id = ? ORDER BY attempt");
  if (!stmt.ok()) return stmt.error();
  stmt->Bind(1, id);
  JobWithAttempts out{std::move(**job), {}};
  for (;;) {
    auto row = stmt->Step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    AttemptRecord a;
    a.attempt = static_cast<int>(stmt->Int(0));
    a.owner = stmt->Text(1);
    a.started_ms = stmt->Int(2);
    a.ended_ms = stmt->Int(3);
    a.outcome = stmt->Text(4);
    a.error = sqlite::ReadError(*stmt, 5);
    out.attempts.push_back(std::move(a));
  }
  return out;
}

Status SqliteJobStore::PutFootprintUnsynced(const ModelFootprint& fp) {
  if (auto st = ValidateFootprint(fp); !st.ok()) return st;
  std::lock_guard lock(mu_);
  auto tx = sqlite::Transaction::Begin(*db_);
  if (!tx.ok()) return tx.error();
  {
    auto stmt = db_->Prepare(
        "INSERT INTO model_footprints (model, device_name, weights_bytes, stream_bytes, "
        "measured_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT (model, device_name) DO UPDATE SET "
        "weights_bytes = excluded.weights_bytes, stream_bytes = excluded.stream_bytes, "
        "measured_ms = excluded.measured_ms");
    if (!stmt.ok()) return stmt.error();
    stmt->Bind(1, fp.model).Bind(2, fp.device_name).Bind(3, fp.weights_bytes);
    stmt->Bind(4, fp.stream_bytes).Bind(5, Now());
    if (auto st = stmt->Run(); !st.ok()) return st;
  }
  return Commit(*tx);
}

Result<std::optional<ModelFootprint>> SqliteJobStore::GetFootprint(const std::string& model,
                                                                   const std::string& device_name) {
  auto conn = readers_->Acquire();
  auto stmt = conn.db().Prepare(
      "SELECT weights_bytes, stream_bytes, measured_ms FROM model_footprints "
      "WHERE model = ? AND device_name = ?");
  if (!stmt.ok()) return stmt.error();
  stmt->Bind(1, model).Bind(2, device_name);
  auto row = stmt->Step();
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<ModelFootprint>();
  return std::optional<ModelFootprint>(
      ModelFootprint{model, device_name, stmt->Int(0), stmt->Int(1), stmt->Int(2)});
}

Result<std::vector<ModelFootprint>> SqliteJobStore::ListFootprints() {
  auto conn = readers_->Acquire();
  auto stmt = conn.db().Prepare(
      "SELECT model, device_name, weights_bytes, stream_bytes, measured_ms FROM model_footprints "
      "ORDER BY model, device_name");
  if (!stmt.ok()) return stmt.error();
  std::vector<ModelFootprint> out;
  for (;;) {
    auto row = stmt->Step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.push_back({stmt->Text(0), stmt->Text(1), stmt->Int(2), stmt->Int(3), stmt->Int(4)});
  }
  return out;
}

Result<int> SqliteJobStore::DeleteFinishedBeforeUnsynced(int64_t cutoff_ms, int limit) {
  if (auto st = ValidateRetentionLimit(limit); !st.ok()) return st.error();
  std::lock_guard lock(mu_);
  auto tx = sqlite::Transaction::Begin(*db_);
  if (!tx.ok()) return tx.error();
  int deleted = 0;
  {
    // Results and attempts go with their job (ON DELETE CASCADE).
    auto stmt = db_->Prepare(
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE finished_ms IS NOT NULL AND "
        "finished_ms < ? AND state IN ('completed', 'failed', 'cancelled') LIMIT ?)");
    if (!stmt.ok()) return stmt.error();
    stmt->Bind(1, cutoff_ms).Bind(2, int64_t{limit});
    if (auto st = stmt->Run(); !st.ok()) return st.error();
    deleted = db_->Changes();
  }
  if (auto st = Commit(*tx); !st.ok()) return st.error();
  return deleted;
}

Result<std::vector<std::string>> SqliteJobStore::ReferencedBlobs() {
  auto conn = readers_->Acquire();
  auto stmt =
      conn.db().Prepare("SELECT DISTINCT blob_digest FROM jobs WHERE blob_digest IS NOT NULL");
  if (!stmt.ok()) return stmt.error();
  std::vector<std::string> out;
  for (;;) {
    auto row = stmt->Step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.push_back(stmt->Text(0));
  }
  return out;
}

}  // namespace steno::store
