// The SQLite schema as an ordered list of migrations (migration_runner.h: version N is entry N-1,
// never edited once released). The schema_version table records every version applied and when.
#pragma once

#include <vector>

#include "core/result.h"
#include "store/migration_runner.h"
#include "store/sqlite_db.h"

namespace steno::store::sqlite {

const std::vector<Migration>& Migrations();
int LatestSchemaVersion();

// The database's schema version: 0 for an empty database. kIntegrity kErrForeignSchema when the
// file holds tables but no schema_version (some other program's database); kErrStoreCorrupt
// when the file is not a database at all.
Result<int> SchemaVersion(Db& db);

// Brings the database up to `target` (default: the latest), one transaction per migration, so a
// crash part-way leaves a consistent earlier version. kIntegrity kErrSchemaTooNew when the
// database is newer than `target` (written by a newer steno).
Status Migrate(Db& db, int target = LatestSchemaVersion());

}  // namespace steno::store::sqlite
