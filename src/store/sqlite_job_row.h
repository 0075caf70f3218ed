// How a Job maps to a row of the SQLite jobs table (shared by the store's source files). The
// column list and the checks on read are the same for every store (job_columns.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/job.h"
#include "store/job_columns.h"
#include "store/sqlite_db.h"

namespace steno::store::sqlite {

// Reads a row selected with kJobColumns (job_columns.h). kIntegrity kErrStoreCorrupt if a stored
// value is not one this code could have written.
Result<Job> ReadJob(const Statement& row);

// Steps `stmt` to its end, reading every row with ReadJob.
Result<std::vector<Job>> ReadJobs(Statement& stmt);

// The job with this id on connection `db`, or nullopt if there is none.
Result<std::optional<Job>> LoadJob(Db& db, const std::string& id);

// Reads an optional error from three columns (kind, code, message) starting at `column`; a NULL
// kind means none. A kind written by a newer steno reads as internal.
std::optional<Error> ReadError(const Statement& row, int column);

// Binds an optional error as three parameters (kind, code, message) starting at `index`.
void BindError(Statement& stmt, int index, const std::optional<Error>& error);

}  // namespace steno::store::sqlite
