// PgBlobStore: uploads kept in the shared PostgreSQL database, so that any node can run any job.
//
// The seam is a mirror beside each node's local file BlobStore (blob_store.h), which stays what
// uploads stream into and what runners read (runners read files):
//  - Push: once an upload is committed locally, and before a job names it, its file is copied
//    into the database in ONE transaction: a row in `blobs` (digest, size, chunk count, time) and
//    its bytes as `blob_chunks` rows of kChunkBytes (bytea). The file is re-hashed on the way; a
//    file that no longer matches its name is refused (kIntegrity "blob_corrupt"), so what the
//    database holds always matches its digest. Pushing content the database already has writes
//    no bytes and only refreshes the blob's time (the retention grace), like a local re-commit.
//  - Materialise: a node that lacks the file streams the chunks (one consistent snapshot) into
//    a local BlobWriter, hashing them; the local file is committed only when size and SHA-256
//    match the digest (else kIntegrity "blob_corrupt", and nothing is left behind). A blob the
//    local store already holds is not fetched again.
//  - Retention: RemoveUnreferenced deletes, in one statement, the blobs no job in the same
//    database names that are older than a grace period (a blob is pushed a moment before its job
//    is inserted). Chunks go with their blob (ON DELETE CASCADE). Local copies are a cache that
//    the local retention (retention.h) sweeps as before.
//
// Time: blob times are the PostgreSQL server's clock (ms since the epoch), unless
// PgOptions::clock is given (tests), so nodes with skewed clocks agree on a blob's age.
//
// Thread safety: every call is safe from any thread. One object holds one connection and
// serializes its calls; a long Push or Materialise holds it for the whole transfer.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "store/blob_store.h"
#include "store/pg_job_store.h"

namespace steno::store {

// What a retention pass removed from the database.
struct PgBlobSweep {
  int removed = 0;
  int64_t bytes_freed = 0;
};

class PgBlobStore {
 public:
  // Bytes per blob_chunks row.
  static constexpr int64_t kChunkBytes = int64_t{1} << 20;

  // Connects and migrates (pg_migrations.h), like PgJobStore::Open and with its errors.
  static Result<std::unique_ptr<PgBlobStore>> Open(const PgOptions& options);
  ~PgBlobStore();
  PgBlobStore(const PgBlobStore&) = delete;
  PgBlobStore& operator=(const PgBlobStore&) = delete;

  // Copies the committed local blob `digest` into the database (see above). kBadInput
  // "bad_digest" for a malformed digest; kNotFound "blob_not_found" when `local` lacks it.
  Result<BlobInfo> Push(const BlobStore& local, std::string_view digest);
  // Makes sure `local` holds the blob and returns its path there. kNotFound "blob_not_found"
  // when the database lacks it too.
  Result<std::string> Materialise(const BlobStore& local, std::string_view digest);

  Result<bool> Contains(std::string_view digest);
  // Every blob in the database; mtime_ms is the time it was last pushed.
  Result<std::vector<BlobEntry>> List();
  // Removes the blob and its chunks; absent is not an error.
  Status Remove(std::string_view digest);
  // Removes every blob no job references that was last pushed more than `grace_ms` ago.
  Result<PgBlobSweep> RemoveUnreferenced(int64_t grace_ms);

 private:
  struct Impl;
  explicit PgBlobStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace steno::store
