// Opens the shared job store named by a --store spec. Today the only kind is PostgreSQL:
//   postgres://user:password@host:port/dbname?options  (or postgresql://...)
// The single-node SQLite store is not opened here: it lives in the data dir (sqlite_job_store.h).
#pragma once

#include <memory>
#include <string>

#include "core/result.h"
#include "store/job_store.h"
#include "store/pg_blob_store.h"

namespace steno::store {

// kBadInput "bad_store" for a spec of no known kind (the message never repeats the spec, which
// may hold a password); otherwise what PgJobStore::Open returns.
Result<std::unique_ptr<JobStore>> OpenJobStore(const std::string& spec);

// The uploads of the same shared store (pg_blob_store.h); errors as OpenJobStore's.
Result<std::unique_ptr<PgBlobStore>> OpenSharedBlobStore(const std::string& spec);

// Whether `spec` names a PostgreSQL store (postgres:// or postgresql://, any letter case).
bool IsPostgresSpec(const std::string& spec);

}  // namespace steno::store
