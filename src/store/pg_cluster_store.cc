#include "store/pg_cluster_store.h"

#include "store/pg_connection.h"

namespace steno::store {
namespace {

class PgListener final : public NotificationListener {
 public:
  PgListener(std::string url, int connect_timeout_s, std::vector<std::string> channels,
             std::unique_ptr<pg::Connection> conn)
      : url_(std::move(url)),
        connect_timeout_s_(connect_timeout_s),
        channels_(std::move(channels)),
        conn_(std::move(conn)) {}

  // Opens a connection that listens to `channels`.
  static Result<std::unique_ptr<pg::Connection>> Connect(const std::string& url,
                                                         int connect_timeout_s,
                                                         const std::vector<std::string>& channels) {
    auto opened = pg::Connection::Open(url, connect_timeout_s);
    if (!opened.ok()) return opened.error();
    std::string sql;
    for (const auto& c : channels) sql += "LISTEN " + c + ";";
    if (auto st = (*opened)->Exec(sql); !st) return st.error();
    return opened;
  }

  Result<std::vector<Notification>> Wait(int timeout_ms) override {
    if (!conn_) {
      auto opened = Connect(url_, connect_timeout_s_, channels_);
      if (!opened.ok()) return opened.error();
      conn_ = std::move(opened).value();
    }
    auto notes = conn_->WaitForNotifications(timeout_ms);
    if (!notes.ok()) {
      conn_.reset();
      return notes.error();
    }
    std::vector<Notification> out;
    out.reserve(notes->size());
    for (auto& n : *notes) out.push_back({std::move(n.channel), std::move(n.payload)});
    return out;
  }

 private:
  const std::string url_;
  const int connect_timeout_s_;
  const std::vector<std::string> channels_;
  std::unique_ptr<pg::Connection> conn_;  // null after it broke: reopened by the next Wait
};

}  // namespace

PgClusterStore::PgClusterStore(std::string url, int connect_timeout_s,
                               std::shared_ptr<PgJobStore> jobs, std::unique_ptr<PgBlobStore> blobs)
    : url_(std::move(url)),
      connect_timeout_s_(connect_timeout_s),
      jobs_(std::move(jobs)),
      blobs_(std::move(blobs)) {}

PgClusterStore::~PgClusterStore() = default;

int64_t PgClusterStore::Now() const {
  return jobs_->Now();
}

Status PgClusterStore::PublishNode(const NodeInfo& info) {
  return jobs_->PublishNode(info);
}

Result<std::vector<NodeInfo>> PgClusterStore::ListNodes() {
  return jobs_->ListNodes();
}

Status PgClusterStore::RemoveNode(const std::string& id) {
  return jobs_->RemoveNode(id);
}

Result<int> PgClusterStore::RemoveNodesSilentFor(int64_t silent_ms) {
  return jobs_->RemoveNodesSilentFor(silent_ms);
}

Status PgClusterStore::Notify(const std::string& channel, const std::string& payload) {
  return jobs_->Notify(channel, payload);
}

Result<std::unique_ptr<NotificationListener>> PgClusterStore::Listen(
    const std::vector<std::string>& channels) {
  auto conn = PgListener::Connect(url_, connect_timeout_s_, channels);
  if (!conn.ok()) return conn.error();
  return std::unique_ptr<NotificationListener>(
      new PgListener(url_, connect_timeout_s_, channels, std::move(conn).value()));
}

Result<BlobInfo> PgClusterStore::PushBlob(const BlobStore& local, std::string_view digest) {
  return blobs_->Push(local, digest);
}

Result<std::string> PgClusterStore::FetchBlob(const BlobStore& local, std::string_view digest) {
  return blobs_->Materialise(local, digest);
}

Result<SharedBlobSweep> PgClusterStore::RemoveUnreferencedBlobs(int64_t grace_ms) {
  auto swept = blobs_->RemoveUnreferenced(grace_ms);
  if (!swept.ok()) return swept.error();
  return SharedBlobSweep{swept->removed, swept->bytes_freed};
}

}  // namespace steno::store
