#include "store/retention.h"

#include <unordered_set>

#include "core/log.h"

namespace steno::store {
namespace {

// Deleting in batches keeps each write transaction short, so submissions are not held up.
constexpr int kDeleteBatch = 500;

}  // namespace

Result<RetentionReport> RunRetention(JobStore& jobs, const BlobStore& blobs,
                                     const RetentionPolicy& policy, int64_t now_ms) {
  RetentionReport report;
  for (;;) {
    auto deleted = jobs.DeleteFinishedBefore(now_ms - policy.max_age_ms, kDeleteBatch);
    if (!deleted.ok()) return deleted.error();
    report.jobs_deleted += *deleted;
    if (*deleted < kDeleteBatch) break;
  }
  // Blobs are listed after the references are read: a blob committed in between is young, and
  // the grace period spares it.
  auto referenced = jobs.ReferencedBlobs();
  if (!referenced.ok()) return referenced.error();
  std::unordered_set<std::string> keep(referenced->begin(), referenced->end());
  auto listed = blobs.List();
  if (!listed.ok()) return listed.error();
  int64_t cutoff = now_ms - policy.grace_ms;
  for (const auto& blob : *listed) {
    if (keep.count(blob.digest)) continue;
    auto removed = blobs.RemoveIfOlder(blob.digest, cutoff);
    if (!removed.ok()) return removed.error();
    if (*removed) {
      ++report.blobs_removed;
      report.bytes_freed += blob.size;
    }
  }
  auto temps = blobs.RemoveTempFiles(cutoff);
  if (!temps.ok()) return temps.error();
  report.temp_files_removed = *temps;
  if (report.jobs_deleted || report.blobs_removed || report.temp_files_removed) {
    spdlog::info("retention: deleted {} finished jobs, {} uploads ({} bytes), {} partial uploads",
                 report.jobs_deleted, report.blobs_removed, report.bytes_freed,
                 report.temp_files_removed);
  }
  return report;
}

}  // namespace steno::store
