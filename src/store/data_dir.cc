#include "store/data_dir.h"

#include <sys/stat.h>

#include <filesystem>

#include "core/wall_clock.h"

namespace steno::store {

std::string ResultsDir(const std::string& data_dir) {
  return data_dir + "/results";
}

Result<BlobStore> OpenDataDirBlobs(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return Error(ErrorKind::kIo, kErrStoreIo,
                 "cannot create data dir " + data_dir + ": " + ec.message());
  }
  return BlobStore::Open(data_dir + "/blobs");
}

Result<DataDirStores> OpenDataDir(const std::string& data_dir, const RetentionPolicy& retention) {
  auto blobs = OpenDataDirBlobs(data_dir);
  if (!blobs.ok()) return blobs.error();
  SqliteOptions options;
  options.path = DefaultDbPath(data_dir);
  auto jobs = SqliteJobStore::Open(options);
  if (!jobs.ok()) return jobs.error();
  RetentionPolicy startup = retention;
  startup.grace_ms = 0;
  if (startup.results_dir.empty()) startup.results_dir = ResultsDir(data_dir);
  const int64_t now = UnixMillis();
  // +1: a leftover written in this very millisecond is still a leftover.
  auto swept = RunRetention(**jobs, *blobs, startup, now + 1);
  if (!swept.ok()) return swept.error();
  int recovered = (*jobs)->recovered_on_open();
  return DataDirStores{std::move(jobs).value(), std::move(blobs).value(), recovered, *swept};
}

}  // namespace steno::store
