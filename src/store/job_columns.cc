#include "store/job_columns.h"

#include <algorithm>
#include <string_view>

#include "store/job_store.h"

namespace steno::store {
namespace {

Error Corrupt(const std::string& id, const char* where, const std::string& what) {
  return Error(ErrorKind::kIntegrity, kErrStoreCorrupt,
               "job " + id + " in " + where + " has " + what);
}

}  // namespace

const char kJobColumns[] =
    "id, state, priority, model, params, blob_digest, attempt, error_kind, error_code, "
    "error_message, created_ms, updated_ms, started_ms, finished_ms, not_before_ms, "
    "lease_owner, lease_expires_ms, idempotency_key, node";

int JobColumnCount() {
  static const int count = [] {
    std::string_view list = kJobColumns;
    return 1 + static_cast<int>(std::count(list.begin(), list.end(), ','));
  }();
  return count;
}

std::optional<ErrorKind> ParseErrorKind(const std::string& name) {
  for (auto k :
       {ErrorKind::kBadInput, ErrorKind::kNotFound, ErrorKind::kConflict, ErrorKind::kUnavailable,
        ErrorKind::kIntegrity, ErrorKind::kOutOfMemory, ErrorKind::kCancelled, ErrorKind::kTimeout,
        ErrorKind::kIo, ErrorKind::kNoSpace, ErrorKind::kInternal}) {
    if (name == ErrorKindName(k)) return k;
  }
  return std::nullopt;
}

Result<Job> ReadJobColumns(const RowColumns& row, int first, const char* where) {
  auto text = [&](int c) { return row.Text(first + c); };
  auto num = [&](int c) { return row.Int(first + c); };
  Job job;
  job.id = text(0);
  auto state = ParseJobState(text(1));
  if (!state) return Corrupt(job.id, where, "an unknown state '" + text(1) + "'");
  job.state = *state;
  int64_t priority = num(2);
  if (priority < 0 || priority > 2) return Corrupt(job.id, where, "an unknown priority");
  job.priority = static_cast<Priority>(priority);
  job.model = text(3);
  auto params = JobParamsFromJson(text(4));
  if (!params.ok()) {
    return Corrupt(job.id, where, "unreadable parameters (" + params.error().message + ")");
  }
  job.params = std::move(params).value();
  job.blob_digest = text(5);
  job.attempt = static_cast<int>(num(6));
  job.error = ReadErrorColumns(row, first + 7);
  job.created_ms = num(10);
  job.updated_ms = num(11);
  job.started_ms = num(12);
  job.finished_ms = num(13);
  job.not_before_ms = num(14);
  job.lease_owner = text(15);
  job.lease_expires_ms = num(16);
  job.idempotency_key = text(17);
  job.node = text(18);
  return job;
}

std::optional<Error> ReadErrorColumns(const RowColumns& row, int column) {
  if (row.IsNull(column)) return std::nullopt;
  // A kind written by a newer steno reads as internal rather than failing the whole row.
  auto kind = ParseErrorKind(row.Text(column)).value_or(ErrorKind::kInternal);
  return Error(kind, row.Text(column + 1), row.Text(column + 2));
}

}  // namespace steno::store
