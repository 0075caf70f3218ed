// BlobStore: uploads as content-addressed files, DATA_DIR/blobs/<sha256 hex>.
//
// Durability protocol (promise 3, "durable before 202"): bytes go to blobs/tmp/<random>.part,
// the file is fsynced, renamed to its digest name and the blobs directory is fsynced (a group
// fsync, group_sync.h: one covers every rename made while the previous one ran). Only after
// Commit() returns may a job reference the digest. A crash at any earlier point leaves at most a
// .part file, which never becomes a job (RemoveTempFiles clears them).
//
// Errors: a full filesystem or quota (ENOSPC, EDQUOT) while creating, writing or syncing an
// upload is kNoSpace "insufficient_storage"; other failures are kIo "blob_io". Either way the
// temp file is removed with its writer. Messages name server paths: they are for the server's
// log, and the API shows its own (api_errors.h).
//
// Identical uploads share one file. The store keeps no counts of its own: a blob's references
// are the jobs naming its digest (JobStore::ReferencedBlobs), and retention (retention.h) removes
// blobs no job references. A blob's modification time is refreshed each time it is committed,
// so retention can spare a blob that was just uploaded but whose job is not inserted yet.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "store/group_sync.h"

namespace steno::store {

struct BlobInfo {
  std::string digest;  // lowercase hex SHA-256 of the content
  int64_t size = 0;
};

struct BlobEntry {
  std::string digest;
  int64_t size = 0;
  int64_t mtime_ms = 0;  // last commit of this content
};

// 64 lowercase hex characters. Anything else is refused before it touches a path.
bool IsValidDigest(std::string_view digest);

// Streams one upload into a temp file while hashing it. Destroying a writer that was not
// committed removes its temp file (an upload cut off midway leaves nothing behind).
class BlobWriter {
 public:
  BlobWriter(BlobWriter&&) noexcept;
  BlobWriter& operator=(BlobWriter&&) noexcept;
  ~BlobWriter();

  Status Append(std::string_view bytes);
  // fsync, rename to the digest name, fsync the directory. The writer is spent afterwards.
  Result<BlobInfo> Commit();
  int64_t size() const;
  // The temp file the bytes went to (readable by path while the writer lives; never synced);
  // "" once committed. For uploads that need no durability (a synchronous request's audio).
  const std::string& temp_path() const;

 private:
  friend class BlobStore;
  struct State;
  explicit BlobWriter(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

class BlobStore {
 public:
  // Uses (creating if missing) `dir`, conventionally DATA_DIR/blobs, and dir/tmp.
  static Result<BlobStore> Open(const std::string& dir);

  Result<BlobWriter> Begin() const;
  // Begin + Append + Commit for content already in memory.
  Result<BlobInfo> Put(std::string_view bytes) const;

  // Where the content lives (for readers such as the runner); "" for an invalid digest.
  std::string PathOf(std::string_view digest) const;
  bool Contains(std::string_view digest) const;
  // Re-hashes the file: kNotFound "blob_not_found" if absent, kIntegrity "blob_corrupt" if its
  // content no longer matches its name.
  Status Verify(std::string_view digest) const;
  // Removes the blob (and syncs the directory); absent is not an error.
  Status Remove(std::string_view digest) const;
  // Removes the blob only if it was last committed before `cutoff_ms`; true if removed. Checked
  // and removed under the same lock Commit renames under, so a blob committed again a moment ago
  // (its job about to be inserted) is never lost to a concurrent retention run.
  Result<bool> RemoveIfOlder(std::string_view digest, int64_t cutoff_ms) const;
  // Every committed blob.
  Result<std::vector<BlobEntry>> List() const;
  // Removes temp files last written before `cutoff_ms` (wall clock); returns how many. At
  // startup, before accepting uploads, pass the current time: every .part is a crash leftover.
  Result<int> RemoveTempFiles(int64_t cutoff_ms) const;

  const std::string& dir() const { return dir_; }

 private:
  BlobStore(std::string dir, std::shared_ptr<std::mutex> mu, std::shared_ptr<GroupSync> dir_sync)
      : dir_(std::move(dir)), mu_(std::move(mu)), dir_sync_(std::move(dir_sync)) {}
  std::string dir_;
  std::shared_ptr<std::mutex> mu_;  // shared by copies and writers: orders renames and removals
  std::shared_ptr<GroupSync> dir_sync_;  // shared by copies and writers: fsyncs of dir_
};

}  // namespace steno::store
