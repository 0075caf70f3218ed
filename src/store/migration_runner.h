// How a store's schema is brought up to date, whatever the database: the schema is an ordered
// list of migrations (version N is entry N-1; a later version is one more entry at the end, never
// an edit of an earlier one), each applied in its own transaction together with the row that
// records it, so a crash part-way leaves a consistent earlier version. The store's driver code
// (sqlite_migrations.cc, pg_migrations.cc) supplies the SQL and a MigrationTarget.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace steno::store {

struct Migration {
  int version;
  const char* description;
  const char* sql;  // one or more statements, run in one transaction with the version row
};

// One database as RunMigrations sees it.
class MigrationTarget {
 public:
  virtual ~MigrationTarget() = default;
  // The schema version the next migration must start from (0: no schema yet), read under
  // whatever keeps two migrators apart (a store may open the migration's transaction here).
  // kIntegrity kErrForeignSchema for tables steno did not make.
  virtual Result<int> Version() = 0;
  // Runs `m` and records it as applied at `applied_ms`, then commits.
  virtual Status Apply(const Migration& m, int64_t applied_ms) = 0;
  // Says in the log that `m` was applied; `at_start` is the version Migrate found first, and
  // `before` the one `m` was applied over.
  virtual void Applied(const Migration& m, int at_start, int before) = 0;
};

int LatestVersion(const std::vector<Migration>& all);

// Applies every migration of `all` up to version `target` that the database does not have yet.
// kIntegrity kErrSchemaTooNew when the database is newer than `target` (written by a newer
// steno); the message names the database as `where` (e.g. "the job database").
Status RunMigrations(MigrationTarget& db, const std::vector<Migration>& all, int target,
                     const std::string& where);

}  // namespace steno::store
