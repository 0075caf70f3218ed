#include "store/pg_job_row.h"

#include "store/job_store.h"

namespace steno::store::pg {
namespace {

std::optional<ErrorKind> ParseErrorKind(const std::string& name) {
  for (auto k : {ErrorKind::kBadInput, ErrorKind::kNotFound, ErrorKind::kUnavailable,
                 ErrorKind::kIntegrity, ErrorKind::kOutOfMemory, ErrorKind::kCancelled,
                 ErrorKind::kTimeout, ErrorKind::kIo, ErrorKind::kInternal}) {
    if (name == ErrorKindName(k)) return k;
  }
  return std::nullopt;
}

Error Corrupt(const std::string& id, const std::string& what) {
  return Error(ErrorKind::kIntegrity, kErrStoreCorrupt,
               "job " + id + " in the PostgreSQL job store has " + what);
}

}  // namespace

const char kJobColumns[] =
    "id, state, priority, model, params, blob_digest, attempt, error_kind, error_code, "
    "error_message, created_ms, updated_ms, started_ms, finished_ms, not_before_ms, "
    "lease_owner, lease_expires_ms, idempotency_key";

Result<Job> ReadJob(const Rows& rows, int row, int first) {
  auto text = [&](int c) { return rows.Text(row, first + c); };
  auto num = [&](int c) { return rows.Int(row, first + c); };
  Job job;
  job.id = text(0);
  auto state = ParseJobState(text(1));
  if (!state) return Corrupt(job.id, "an unknown state '" + text(1) + "'");
  job.state = *state;
  int64_t priority = num(2);
  if (priority < 0 || priority > 2) return Corrupt(job.id, "an unknown priority");
  job.priority = static_cast<Priority>(priority);
  job.model = text(3);
  auto params = JobParamsFromJson(text(4));
  if (!params.ok()) {
    return Corrupt(job.id, "unreadable parameters (" + params.error().message + ")");
  }
  job.params = std::move(params).value();
  job.blob_digest = text(5);
  job.attempt = static_cast<int>(num(6));
  job.error = ReadError(rows, row, first + 7);
  job.created_ms = num(10);
  job.updated_ms = num(11);
  job.started_ms = num(12);
  job.finished_ms = num(13);
  job.not_before_ms = num(14);
  job.lease_owner = text(15);
  job.lease_expires_ms = num(16);
  job.idempotency_key = text(17);
  return job;
}

Result<std::vector<Job>> ReadJobs(const Rows& rows) {
  std::vector<Job> jobs;
  jobs.reserve(static_cast<size_t>(rows.size()));
  for (int r = 0; r < rows.size(); ++r) {
    auto job = ReadJob(rows, r);
    if (!job.ok()) return job.error();
    jobs.push_back(std::move(job).value());
  }
  return jobs;
}

Result<std::optional<Job>> LoadJob(Connection& conn, const std::string& id, bool for_update) {
  static const std::string kSelect =
      std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = $1";
  static const std::string kSelectForUpdate = kSelect + " FOR UPDATE";
  auto rows = conn.Query(for_update ? kSelectForUpdate : kSelect, {P(id)});
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return std::optional<Job>();
  auto job = ReadJob(*rows, 0);
  if (!job.ok()) return job.error();
  return std::optional<Job>(std::move(job).value());
}

std::optional<Error> ReadError(const Rows& rows, int row, int column) {
  if (rows.IsNull(row, column)) return std::nullopt;
  auto kind = ParseErrorKind(rows.Text(row, column)).value_or(ErrorKind::kInternal);
  return Error(kind, rows.Text(row, column + 1), rows.Text(row, column + 2));
}

void AddError(std::vector<Param>& params, const std::optional<Error>& error) {
  if (!error) {
    params.insert(params.end(), {Param(), Param(), Param()});
    return;
  }
  params.push_back(P(ErrorKindName(error->kind)));
  params.push_back(P(error->code));
  params.push_back(P(error->message));
}

}  // namespace steno::store::pg
