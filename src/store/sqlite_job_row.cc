#include "store/sqlite_job_row.h"

#include "store/job_store.h"

namespace steno::store::sqlite {
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
               "job " + id + " in the job database has " + what);
}

}  // namespace

const char kJobColumns[] =
    "id, state, priority, model, params, blob_digest, attempt, error_kind, error_code, "
    "error_message, created_ms, updated_ms, started_ms, finished_ms, not_before_ms, "
    "lease_owner, lease_expires_ms, idempotency_key";

Result<Job> ReadJob(const Statement& row) {
  Job job;
  job.id = row.Text(0);
  auto state = ParseJobState(row.Text(1));
  if (!state) return Corrupt(job.id, "an unknown state '" + row.Text(1) + "'");
  job.state = *state;
  int64_t priority = row.Int(2);
  if (priority < 0 || priority > 2) return Corrupt(job.id, "an unknown priority");
  job.priority = static_cast<Priority>(priority);
  job.model = row.Text(3);
  auto params = JobParamsFromJson(row.Text(4));
  if (!params.ok())
    return Corrupt(job.id, "unreadable parameters (" + params.error().message + ")");
  job.params = std::move(params).value();
  job.blob_digest = row.Text(5);
  job.attempt = static_cast<int>(row.Int(6));
  job.error = ReadError(row, 7);
  job.created_ms = row.Int(10);
  job.updated_ms = row.Int(11);
  job.started_ms = row.Int(12);
  job.finished_ms = row.Int(13);
  job.not_before_ms = row.Int(14);
  job.lease_owner = row.Text(15);
  job.lease_expires_ms = row.Int(16);
  job.idempotency_key = row.Text(17);
  return job;
}

Result<std::vector<Job>> ReadJobs(Statement& stmt) {
  std::vector<Job> jobs;
  for (;;) {
    auto row = stmt.Step();
    if (!row.ok()) return row.error();
    if (!*row) return jobs;
    auto job = ReadJob(stmt);
    if (!job.ok()) return job.error();
    jobs.push_back(std::move(job).value());
  }
}

Result<std::optional<Job>> LoadJob(Db& db, const std::string& id) {
  static const std::string kSelectJobById =
      std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?";
  auto stmt = db.Prepare(kSelectJobById);
  if (!stmt.ok()) return stmt.error();
  stmt->Bind(1, id);
  auto row = stmt->Step();
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<Job>();
  auto job = ReadJob(*stmt);
  if (!job.ok()) return job.error();
  return std::optional<Job>(std::move(job).value());
}

std::optional<Error> ReadError(const Statement& row, int column) {
  if (row.IsNull(column)) return std::nullopt;
  // A kind written by a newer steno reads as internal rather than failing the whole row.
  auto kind = ParseErrorKind(row.Text(column)).value_or(ErrorKind::kInternal);
  return Error(kind, row.Text(column + 1), row.Text(column + 2));
}

void BindError(Statement& stmt, int index, const std::optional<Error>& error) {
  if (!error) {
    stmt.BindNull(index).BindNull(index + 1).BindNull(index + 2);
    return;
  }
  stmt.Bind(index, ErrorKindName(error->kind))
      .Bind(index + 1, error->code)
      .Bind(index + 2, error->message);
}

}  // namespace steno::store::sqlite
