#include "store/retention.h"

#include <sys/stat.h>

#include <filesystem>
#include <unordered_set>

#include "core/log.h"

namespace steno::store {
namespace {

// Deleting in batches keeps each write transaction short, so submissions are not held up.
constexpr int kDeleteBatch = 500;

// Removes the files in `dir` named `<job id>.<ext>` whose job the store no longer has, if
// older than `cutoff_ms` (a result written a moment before its job completes is spared).
int SweepResultFiles(JobStore& jobs, const std::string& dir, int64_t cutoff_ms) {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file(ec)) continue;
    const std::string name = entry.path().filename().string();
    struct stat st {};
    if (stat(entry.path().c_str(), &st) != 0) continue;
    if (int64_t{st.st_mtime} * 1000 >= cutoff_ms) continue;
    auto job = jobs.Get(name.substr(0, name.find('.')));
    if (job.ok() || job.error().kind != ErrorKind::kNotFound) continue;
    if (std::filesystem::remove(entry.path(), ec)) ++removed;
  }
  return removed;
}

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
  if (!policy.results_dir.empty()) {
    report.result_files_removed = SweepResultFiles(jobs, policy.results_dir, cutoff);
  }
  if (report.jobs_deleted || report.blobs_removed || report.temp_files_removed ||
      report.result_files_removed) {
    spdlog::info(
        "retention: deleted {} finished jobs, {} uploads ({} bytes), {} partial uploads, {} "
        "result files",
        report.jobs_deleted, report.blobs_removed, report.bytes_freed, report.temp_files_removed,
        report.result_files_removed);
  }
  return report;
}

}  // namespace steno::store
