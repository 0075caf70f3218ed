// The store factory: opens the job store `steno serve` runs on, named by its --store spec.
//   ""  (no spec)          the single-node SQLite store in the data dir (data_dir.h)
//   postgres://user:password@host:port/dbname?options  (or postgresql://...)  a store several
//                          nodes share
// The cluster capability (cluster_store.h: nodes table, notifications, shared uploads) comes
// with a shared store only: OpenedStore::cluster is null on SQLite, and that is how a caller
// asks whether the store is shared.
#pragma once

#include <memory>
#include <string>

#include "core/result.h"
#include "store/blob_store.h"
#include "store/cluster_store.h"
#include "store/job_store.h"

namespace steno::store {

struct OpenedStore {
  std::shared_ptr<JobStore> jobs;
  std::shared_ptr<ClusterStore> cluster;  // null: a single-node store
  BlobStore blobs;                        // this node's upload files (runners read them)
  int recovered = 0;                      // SQLite: jobs a crash left running, requeued on open
};

// Opens (creating if needed) `data_dir` and its blob store, then the job store `spec` names,
// sweeping what a crash left behind. A shared store requeues only jobs whose lease ran out
// (other nodes may be running the rest) and spares uploads younger than the retention grace
// (another node may be about to insert their job). kBadInput "bad_store" for a spec of no known
// kind (the message never repeats the spec, which may hold a password); otherwise the store's
// own errors (PgJobStore::Open, OpenDataDir).
Result<OpenedStore> OpenJobStore(const std::string& spec, const std::string& data_dir);

// Whether `spec` names a PostgreSQL store (postgres:// or postgresql://, any letter case).
bool IsPostgresSpec(const std::string& spec);

}  // namespace steno::store
