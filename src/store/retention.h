// Retention: how long finished jobs and uploads are kept (default 7 days), and the sweep that
// removes what nothing references any more.
//
// A blob's reference count is the number of jobs naming its digest; the sweep deletes expired
// final jobs first, then every blob no remaining job references. Pending and running jobs are
// never touched, whatever their age. Result files (a speech job's audio, `<job id>.<ext>` in
// RetentionPolicy::results_dir) go with their job: the sweep removes those whose job is gone.
//
// Uploads in flight: a blob is committed a moment before its job is inserted, so a sweep running
// concurrently spares unreferenced blobs younger than `grace_ms` (and temp files younger than
// `grace_ms`). At startup, before the server accepts uploads, nothing is in flight and a sweep
// with grace 0 removes everything a crash left behind.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"
#include "store/blob_store.h"
#include "store/job_store.h"

namespace steno::store {

inline constexpr int64_t kDefaultRetentionMs = int64_t{7} * 24 * 3600 * 1000;

struct RetentionPolicy {
  int64_t max_age_ms = kDefaultRetentionMs;  // final jobs finished longer ago are deleted
  int64_t grace_ms = int64_t{3600} * 1000;   // unreferenced blobs/temp files younger are kept
  std::string results_dir;                   // jobs' result files; "": none swept
};

struct RetentionReport {
  int jobs_deleted = 0;
  int blobs_removed = 0;
  int64_t bytes_freed = 0;  // by removed blobs
  int temp_files_removed = 0;
  int result_files_removed = 0;  // result files whose job was deleted (or never stored)
};

// `now_ms` is wall-clock time (blob ages come from file modification times).
Result<RetentionReport> RunRetention(JobStore& jobs, const BlobStore& blobs,
                                     const RetentionPolicy& policy, int64_t now_ms);

}  // namespace steno::store
