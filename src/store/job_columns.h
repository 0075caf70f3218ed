// How a Job maps to the columns of a jobs table, whichever database holds it: the column list
// both stores select, and reading a row back into a Job through a store's own row accessor
// (sqlite_job_row.h, pg_job_row.h), with the same checks and messages in both.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/error.h"
#include "core/job.h"
#include "core/result.h"

namespace steno::store {

// The columns ReadJobColumns expects, in order, as a SELECT list.
extern const char kJobColumns[];
// How many columns kJobColumns lists (where the columns a query selects after them start).
int JobColumnCount();

// One row of a query result as a store's driver exposes it; columns count from 0.
class RowColumns {
 public:
  virtual ~RowColumns() = default;
  virtual std::string Text(int column) const = 0;  // "" for NULL
  virtual int64_t Int(int column) const = 0;       // 0 for NULL
  virtual bool IsNull(int column) const = 0;
};

// Reads a row selected with kJobColumns (starting at column `first`). kIntegrity
// kErrStoreCorrupt if a stored value is not one this code could have written; the message says
// where the job is stored, as `where` (e.g. "the job database").
Result<Job> ReadJobColumns(const RowColumns& row, int first, const char* where);

// Reads an optional error from three columns (kind, code, message) starting at `column`; a NULL
// kind means none. A kind written by a newer steno reads as internal.
std::optional<Error> ReadErrorColumns(const RowColumns& row, int column);

// The kind named by ErrorKindName, or nullopt for a name this steno does not know.
std::optional<ErrorKind> ParseErrorKind(const std::string& name);

}  // namespace steno::store
