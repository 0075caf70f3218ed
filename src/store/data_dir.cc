#include "store/data_dir.h"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>

namespace steno::store {

Result<DataDirStores> OpenDataDir(const std::string& data_dir, const RetentionPolicy& retention) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return Error(ErrorKind::kIo, kErrStoreIo,
                 "cannot create data dir " + data_dir + ": " + ec.message());
  }
  auto blobs = BlobStore::Open(data_dir + "/blobs");
  if (!blobs.ok()) return blobs.error();
  SqliteOptions options;
  options.path = DefaultDbPath(data_dir);
  auto jobs = SqliteJobStore::Open(options);
  if (!jobs.ok()) return jobs.error();
  RetentionPolicy startup = retention;
  startup.grace_ms = 0;
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  // +1: a leftover written in this very millisecond is still a leftover.
  auto swept = RunRetention(**jobs, *blobs, startup, now + 1);
  if (!swept.ok()) return swept.error();
  int recovered = (*jobs)->recovered_on_open();
  return DataDirStores{std::move(jobs).value(), std::move(blobs).value(), recovered, *swept};
}

}  // namespace steno::store
