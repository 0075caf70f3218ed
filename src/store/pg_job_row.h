// How a Job maps to a row of the PostgreSQL jobs table (shared by the store's source files). The
// column list and the checks on read are the same for every store (job_columns.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/job.h"
#include "store/job_columns.h"
#include "store/pg_connection.h"

namespace steno::store::pg {

// Reads row `row` of a result selected with kJobColumns (job_columns.h; starting at column
// `first`). kIntegrity kErrStoreCorrupt if a stored value is not one this code could have written.
Result<Job> ReadJob(const Rows& rows, int row, int first = 0);

// Every row of `rows`, read with ReadJob.
Result<std::vector<Job>> ReadJobs(const Rows& rows);

// The job with this id, or nullopt if there is none. `for_update` locks its row until the
// transaction ends (the caller must have one open).
Result<std::optional<Job>> LoadJob(Connection& conn, const std::string& id, bool for_update);

// Reads an optional error from three columns (kind, code, message) starting at `column`; a NULL
// kind means none. A kind written by a newer steno reads as internal.
std::optional<Error> ReadError(const Rows& rows, int row, int column);

// Appends an optional error as three parameters (kind, code, message).
void AddError(std::vector<Param>& params, const std::optional<Error>& error);

}  // namespace steno::store::pg
