// The PostgreSQL schema of the shared job store as an ordered list of migrations
// (migration_runner.h: version N is entry N-1, never edited once released). The
// schema_migrations table records every version applied and when.
//
// Several nodes may open the same database at once: Migrate takes a transaction-level advisory
// lock, so exactly one of them applies each migration (in its own transaction, with its
// schema_migrations row) and the others find it applied.
#pragma once

#include <vector>

#include "core/result.h"
#include "store/migration_runner.h"
#include "store/pg_connection.h"

namespace steno::store::pg {

const std::vector<Migration>& Migrations();
int LatestSchemaVersion();

// The database's schema version: 0 for a database without steno's tables. kIntegrity
// kErrForeignSchema when a table steno would create (jobs, results, ...) exists but
// schema_migrations does not: some other program's tables.
Result<int> SchemaVersion(Connection& conn);

// Brings the database up to `target` (default: the latest), one transaction per migration.
// kIntegrity kErrSchemaTooNew when the database is newer than this steno.
Status Migrate(Connection& conn, int target = LatestSchemaVersion());

}  // namespace steno::store::pg
