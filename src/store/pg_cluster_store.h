// The ClusterStore (cluster_store.h) of a PostgreSQL job store: the nodes table and NOTIFY of the
// job store (pg_job_store.h), LISTEN on a connection of each listener's own, and the shared
// uploads of pg_blob_store.h.
#pragma once

#include <memory>
#include <string>

#include "store/cluster_store.h"
#include "store/pg_blob_store.h"
#include "store/pg_job_store.h"

namespace steno::store {

class PgClusterStore final : public ClusterStore {
 public:
  // `jobs` and `blobs` are open on the database `url` names; `jobs` is shared with whoever
  // uses it as the JobStore.
  PgClusterStore(std::string url, int connect_timeout_s, std::shared_ptr<PgJobStore> jobs,
                 std::unique_ptr<PgBlobStore> blobs);
  ~PgClusterStore() override;

  int64_t Now() const override;
  Status PublishNode(const NodeInfo& info) override;
  Result<std::vector<NodeInfo>> ListNodes() override;
  Status RemoveNode(const std::string& id) override;
  Result<int> RemoveNodesSilentFor(int64_t silent_ms) override;
  Status Notify(const std::string& channel, const std::string& payload) override;
  Result<std::unique_ptr<NotificationListener>> Listen(
      const std::vector<std::string>& channels) override;
  Result<BlobInfo> PushBlob(const BlobStore& local, std::string_view digest) override;
  Result<std::string> FetchBlob(const BlobStore& local, std::string_view digest) override;
  Result<SharedBlobSweep> RemoveUnreferencedBlobs(int64_t grace_ms) override;

 private:
  const std::string url_;
  const int connect_timeout_s_;
  std::shared_ptr<PgJobStore> jobs_;
  std::unique_ptr<PgBlobStore> blobs_;
};

}  // namespace steno::store
