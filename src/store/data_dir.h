// Opening the data dir the way a server must before it accepts work: create the directory, open
// the blob store (DATA_DIR/blobs) and the job database (DATA_DIR/steno.db, which requeues jobs a
// crash left running), then sweep what a crash left behind (partial uploads, uploads whose job
// was never inserted, finished jobs past retention). Nothing is in flight yet, so the sweep uses
// no grace period.
#pragma once

#include <memory>
#include <string>

#include "core/result.h"
#include "store/blob_store.h"
#include "store/retention.h"
#include "store/sqlite_job_store.h"

namespace steno::store {

struct DataDirStores {
  std::unique_ptr<SqliteJobStore> jobs;
  BlobStore blobs;
  int recovered = 0;      // jobs requeued because a crash left them running
  RetentionReport swept;  // what the startup sweep removed
};

// DATA_DIR/results: jobs' results that are files (a speech job's audio, `<job id>.<ext>`);
// retention removes each with its job.
std::string ResultsDir(const std::string& data_dir);

// Creates `data_dir` if needed and opens its blob store (DATA_DIR/blobs): the part of opening a
// data dir that a node on a shared job store needs too (its local copies of uploads).
Result<BlobStore> OpenDataDirBlobs(const std::string& data_dir);

// `retention.max_age_ms` applies to the sweep; its grace is ignored (0 at startup); its
// results_dir, if empty, is ResultsDir(data_dir).
Result<DataDirStores> OpenDataDir(const std::string& data_dir,
                                  const RetentionPolicy& retention = {});

}  // namespace steno::store
