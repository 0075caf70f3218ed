// PgJobStore: reads (get, list with paging, counts, results, attempts), measured model
// footprints, the deletions retention asks for, and the nodes table. Each read is one statement,
// so it sees one snapshot of the database.
#include <nlohmann/json.hpp>

#include "core/log.h"
#include "store/job_rules.h"
#include "store/pg_connection.h"
#include "store/pg_connection_pool.h"
#include "store/pg_job_row.h"
#include "store/pg_job_store.h"

namespace steno::store {
using pg::P;
using pg::Param;

namespace {

const std::string kJobColumnsText = kJobColumns;

// Count folds the count deltas once there are more rows than this (a few state changes' worth
// per state; each job adds about seven in its life).
constexpr int64_t kCountDeltasToFold = 256;

std::string Placeholder(const std::vector<Param>& params) {
  return "$" + std::to_string(params.size());
}

}  // namespace

Result<Job> PgJobStore::Get(const std::string& id) {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto job = pg::LoadJob(conn, id, /*for_update=*/false);
  if (!job.ok()) return job.error();
  return FoundJob(std::move(job).value(), id);
}

Result<JobPage> PgJobStore::List(const JobFilter& filter) {
  auto start = ListStart(filter);
  if (!start.ok()) return start.error();
  const std::optional<PageKey>& after = *start;
  // Only the shape of the SQL depends on the filter; every value is a parameter.
  std::vector<Param> params;
  std::string sql = "SELECT " + kJobColumnsText + " FROM jobs WHERE TRUE";
  if (!filter.states.empty()) {
    sql += " AND state IN (";
    for (size_t i = 0; i < filter.states.size(); ++i) {
      params.push_back(P(JobStateName(filter.states[i])));
      sql += (i ? ", " : "") + Placeholder(params);
    }
    sql += ")";
  }
  if (!filter.model.empty()) {
    params.push_back(P(filter.model));
    sql += " AND model = " + Placeholder(params);
  }
  if (!filter.lease_owner.empty()) {
    params.push_back(P(filter.lease_owner));
    sql += " AND lease_owner = " + Placeholder(params);
  }
  bool newest = filter.order == ListOrder::kNewestFirst;
  if (after) {
    if (newest) {
      params.push_back(P(after->created_ms));
      std::string created = Placeholder(params);
      params.push_back(P(after->id));
      sql += " AND (created_ms, id) < (" + created + "::bigint, " + Placeholder(params) + ")";
    } else {
      params.push_back(P(after->priority));
      std::string priority = Placeholder(params);
      params.push_back(P(after->created_ms));
      std::string created = Placeholder(params);
      params.push_back(P(after->id));
      sql += " AND (priority, created_ms, id) > (" + priority + "::smallint, " + created +
             "::bigint, " + Placeholder(params) + ")";
    }
  }
  sql += newest ? " ORDER BY created_ms DESC, id DESC" : " ORDER BY priority, created_ms, id";
  params.push_back(P(int64_t{filter.limit} + 1));  // one more tells whether another page exists
  sql += " LIMIT " + Placeholder(params);

  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto rows = conn.Query(sql, params);
  if (!rows.ok()) return rows.error();
  JobPage page;
  for (int r = 0; r < rows->size(); ++r) {
    if (PageIsFull(page, filter)) break;
    auto job = pg::ReadJob(*rows, r);
    if (!job.ok()) return job.error();
    page.jobs.push_back(std::move(job).value());
  }
  return page;
}

Result<JobCounts> PgJobStore::Count() {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  // Kept by triggers (schema v6): the sum of each state's deltas, not a scan of jobs.
  auto rows = conn.Query("SELECT state, sum(n), count(*) FROM job_count_deltas GROUP BY state");
  if (!rows.ok()) return rows.error();
  JobCounts counts;
  int64_t deltas = 0;
  for (int r = 0; r < rows->size(); ++r) {
    if (auto s = ParseJobState(rows->Text(r, 0))) {
      counts.by_state[static_cast<size_t>(*s)] = rows->Int(r, 1);
    }
    deltas += rows->Int(r, 2);
  }
  if (deltas > kCountDeltasToFold) {
    if (auto st = CompactCounts(conn); !st.ok()) {
      spdlog::warn("could not fold the job count deltas: {}", st.error().message);
    }
  }
  return counts;
}

Status PgJobStore::CompactCounts(pg::Connection& conn) {
  auto folded = conn.Query(
      "WITH gone AS (DELETE FROM job_count_deltas WHERE ctid = ANY(ARRAY("
      "SELECT ctid FROM job_count_deltas FOR UPDATE SKIP LOCKED)) RETURNING state, n) "
      "INSERT INTO job_count_deltas (state, n) SELECT state, sum(n) FROM gone GROUP BY state "
      "HAVING sum(n) <> 0");
  if (!folded.ok()) return folded.error();
  return {};
}

Result<std::vector<PendingModel>> PgJobStore::PendingByModel() {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto rows = conn.Query(
      "SELECT model, count(*), count(*) FILTER (WHERE not_before_ms <= $1) FROM jobs "
      "WHERE state = 'pending' GROUP BY model ORDER BY model",
      {P(Now())});
  if (!rows.ok()) return rows.error();
  std::vector<PendingModel> out;
  for (int r = 0; r < rows->size(); ++r) {
    out.push_back({rows->Text(r, 0), rows->Int(r, 1), rows->Int(r, 2)});
  }
  return out;
}

Result<std::string> PgJobStore::GetResult(const std::string& id) {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  // One statement: the job's state explains a missing result, from the same snapshot.
  auto rows = conn.Query(
      "SELECT j.state, r.result, r.job_id IS NOT NULL FROM jobs j "
      "LEFT JOIN results r ON r.job_id = j.id WHERE j.id = $1",
      {P(id)});
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return JobNotFound(id);
  if (rows->Text(0, 2) == "t") return rows->Text(0, 1);
  return NoResult(id, rows->Text(0, 0));
}

Result<std::vector<AttemptRecord>> PgJobStore::Attempts(const std::string& id) {
  auto got = GetWithAttempts(id);
  if (!got.ok()) return got.error();
  return std::move(got->attempts);
}

Result<JobWithAttempts> PgJobStore::GetWithAttempts(const std::string& id) {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  // One statement, one snapshot: the job's columns on every row, then one run per row (a job
  // without runs still gives one row, its attempt columns NULL).
  static const int kFirst = static_cast<int>(JobColumnCount());
  auto rows = conn.Query(
      "SELECT j.*, a.attempt, a.owner, a.started_ms, a.ended_ms, a.outcome, a.error_kind, "
      "a.error_code, a.error_message FROM (SELECT " +
          kJobColumnsText +
          " FROM jobs WHERE id = $1) j LEFT JOIN attempts a ON a.job_id = j.id "
          "ORDER BY a.attempt",
      {P(id)});
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return JobNotFound(id);
  auto job = pg::ReadJob(*rows, 0);
  if (!job.ok()) return job.error();
  JobWithAttempts out{std::move(job).value(), {}};
  for (int r = 0; r < rows->size(); ++r) {
    if (rows->IsNull(r, kFirst)) continue;
    AttemptRecord a;
    a.attempt = static_cast<int>(rows->Int(r, kFirst));
    a.owner = rows->Text(r, kFirst + 1);
    a.started_ms = rows->Int(r, kFirst + 2);
    a.ended_ms = rows->Int(r, kFirst + 3);
    a.outcome = rows->Text(r, kFirst + 4);
    a.error = pg::ReadError(*rows, r, kFirst + 5);
    out.attempts.push_back(std::move(a));
  }
  return out;
}

Status PgJobStore::PutFootprint(const ModelFootprint& fp) {
  if (auto st = ValidateFootprint(fp); !st.ok()) return st;
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto st = conn.Query(
      "INSERT INTO model_footprints (model, device_name, weights_bytes, stream_bytes, "
      "measured_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (model, device_name) DO UPDATE SET "
      "weights_bytes = excluded.weights_bytes, stream_bytes = excluded.stream_bytes, "
      "measured_ms = excluded.measured_ms",
      {P(fp.model), P(fp.device_name), P(fp.weights_bytes), P(fp.stream_bytes), P(Now())});
  if (!st.ok()) return st.error();
  return {};
}

Result<std::optional<ModelFootprint>> PgJobStore::GetFootprint(const std::string& model,
                                                               const std::string& device_name) {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto rows = conn.Query(
      "SELECT weights_bytes, stream_bytes, measured_ms FROM model_footprints "
      "WHERE model = $1 AND device_name = $2",
      {P(model), P(device_name)});
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return std::optional<ModelFootprint>();
  return std::optional<ModelFootprint>(
      ModelFootprint{model, device_name, rows->Int(0, 0), rows->Int(0, 1), rows->Int(0, 2)});
}

Result<std::vector<ModelFootprint>> PgJobStore::ListFootprints() {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto rows = conn.Query(
      "SELECT model, device_name, weights_bytes, stream_bytes, measured_ms FROM model_footprints "
      "ORDER BY model, device_name");
  if (!rows.ok()) return rows.error();
  std::vector<ModelFootprint> out;
  for (int r = 0; r < rows->size(); ++r) {
    out.push_back(
        {rows->Text(r, 0), rows->Text(r, 1), rows->Int(r, 2), rows->Int(r, 3), rows->Int(r, 4)});
  }
  return out;
}

Result<int> PgJobStore::DeleteFinishedBefore(int64_t cutoff_ms, int limit) {
  if (auto st = ValidateRetentionLimit(limit); !st.ok()) return st.error();
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  // Results and attempts go with their job (ON DELETE CASCADE). SKIP LOCKED: two nodes sweeping
  // at once delete different jobs rather than waiting for each other.
  auto rows = conn.Query(
      "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE finished_ms IS NOT NULL AND "
      "finished_ms < $1 AND state IN ('completed', 'failed', 'cancelled') ORDER BY finished_ms "
      "LIMIT $2 FOR UPDATE SKIP LOCKED)",
      {P(cutoff_ms), P(int64_t{limit})});
  if (!rows.ok()) return rows.error();
  // A store nobody counts still keeps its deltas short: retention sweeps on every node.
  if (auto st = CompactCounts(conn); !st.ok()) return st.error();
  return static_cast<int>(rows->Affected());
}

Result<std::vector<std::string>> PgJobStore::ReferencedBlobs() {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto rows = conn.Query("SELECT DISTINCT blob_digest FROM jobs WHERE blob_digest IS NOT NULL");
  if (!rows.ok()) return rows.error();
  std::vector<std::string> out;
  for (int r = 0; r < rows->size(); ++r) out.push_back(rows->Text(r, 0));
  return out;
}

Status PgJobStore::PublishNode(const NodeInfo& info) {
  auto bad = [](const std::string& message) {
    return Error(ErrorKind::kBadInput, "bad_node", message);
  };
  if (info.id.empty() || info.id.size() > 255) return bad("a node id has 1 to 255 bytes");
  for (const auto* doc : {&info.devices_json, &info.runners_json, &info.ledger_json}) {
    if (!nlohmann::json::accept(*doc)) return bad("node " + info.id + " published invalid JSON");
  }
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto st = conn.Query(
      "INSERT INTO nodes (id, url, heartbeat_ms, devices, runners, ledger) "
      "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET url = excluded.url, "
      "heartbeat_ms = excluded.heartbeat_ms, devices = excluded.devices, "
      "runners = excluded.runners, ledger = excluded.ledger",
      {P(info.id), P(info.url), P(Now()), P(info.devices_json), P(info.runners_json),
       P(info.ledger_json)});
  if (!st.ok()) return st.error();
  return {};
}

Result<std::vector<NodeInfo>> PgJobStore::ListNodes() {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto rows =
      conn.Query("SELECT id, url, heartbeat_ms, devices, runners, ledger FROM nodes ORDER BY id");
  if (!rows.ok()) return rows.error();
  std::vector<NodeInfo> out;
  for (int r = 0; r < rows->size(); ++r) {
    out.push_back({rows->Text(r, 0), rows->Text(r, 1), rows->Int(r, 2), rows->Text(r, 3),
                   rows->Text(r, 4), rows->Text(r, 5)});
  }
  return out;
}

Status PgJobStore::Notify(const std::string& channel, const std::string& payload) {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto st = conn.Query("SELECT pg_notify($1, $2)", {P(channel), P(payload)});
  if (!st.ok()) return st.error();
  return {};
}

Result<int> PgJobStore::RemoveNodesSilentFor(int64_t silent_ms) {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto rows = conn.Query("DELETE FROM nodes WHERE heartbeat_ms <= $1", {P(Now() - silent_ms)});
  if (!rows.ok()) return rows.error();
  return static_cast<int>(rows->Affected());
}

Status PgJobStore::RemoveNode(const std::string& id) {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = **lease;
  auto st = conn.Query("DELETE FROM nodes WHERE id = $1", {P(id)});
  if (!st.ok()) return st.error();
  return {};
}

}  // namespace steno::store
