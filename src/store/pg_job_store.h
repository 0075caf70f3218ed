// The JobStore that several steno nodes share: one PostgreSQL database (libpq). Same semantics
// as the SQLite store (job_store.h), with these differences, all because many processes use the
// queue at once:
//  - Claim picks the next job with SELECT ... FOR UPDATE SKIP LOCKED, in one transaction with
//    its update and its attempt row: concurrent claimers (threads, processes, machines) never get
//    the same job, and never wait for each other's candidate row.
//  - Every transition locks the job's row (FOR UPDATE) before checking who holds it, so a
//    Complete racing a Cancel or a RequeueExpired on another node has exactly one winner.
//  - Opening never requeues jobs found loading or processing: another node may be running them.
//    A node that died is detected by its lease running out; some node's RequeueExpired then puts
//    its jobs back to pending with attempt + 1.
//  - A nodes table lists the nodes sharing the queue (PublishNode / ListNodes).
//
// Time: leases compare times taken on different machines. By default the store's clock is this
// host's clock corrected by the offset to the PostgreSQL server's clock, measured on Open, so
// every node reads (nearly) the same time whatever its own clock says.
//
// Durability: a call that returned ok has committed (with the server's synchronous_commit and
// fsync settings, on by default). If the connection breaks during a COMMIT the call fails with
// kUnavailable and its outcome is unknown; the next call reconnects.
//
// Thread safety: every call is safe from any thread. Each call borrows one connection of a small
// pool (pg_connection_pool.h, PgOptions::connections) for its statement or transaction, so up to
// that many calls run at once; the rest wait for a connection.
// The schema is migrated on Open (pg_migrations.h), safely when several nodes open at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "store/cluster_store.h"
#include "store/job_store.h"

namespace steno::store {

namespace pg {
class Connection;
class ConnectionPool;
}  // namespace pg

struct PgOptions {
  std::string url;  // postgres://user:password@host:port/dbname?sslmode=...
  int connect_timeout_s = 10;
  std::function<int64_t()> clock;  // ms since the epoch; default: the server-corrected clock
  int connections = 4;             // the pool's size (pg::ConnectionPool::kDefaultSize)
};

class PgJobStore final : public JobStore {
 public:
  // Connects and migrates. kUnavailable pg::kErrStoreUnavailable when the server cannot be
  // reached or refuses the login (the message names the server without the password); kIntegrity
  // kErrSchemaTooNew / kErrForeignSchema.
  static Result<std::unique_ptr<PgJobStore>> Open(const PgOptions& options);
  ~PgJobStore() override;

  // Server clock minus this host's clock, as measured on Open (ms).
  int64_t clock_offset_ms() const { return clock_offset_ms_; }
  // Now on the store's clock (ms since the epoch): what leases and node heartbeats are stamped
  // with.
  int64_t Now() const;

  Result<Inserted> Insert(const NewJob& job) override;
  Result<Job> Get(const std::string& id) override;
  Result<JobPage> List(const JobFilter& filter) override;
  Result<JobCounts> Count() override;
  Result<std::vector<PendingModel>> PendingByModel() override;
  Result<std::string> GetResult(const std::string& id) override;
  Result<std::vector<AttemptRecord>> Attempts(const std::string& id) override;
  Result<JobWithAttempts> GetWithAttempts(const std::string& id) override;

  Result<std::optional<Job>> Claim(const ClaimRequest& request) override;
  Result<std::vector<std::string>> Heartbeat(const std::string& owner, int64_t lease_ms) override;
  Status MarkProcessing(const std::string& id, const std::string& owner) override;
  Status Complete(const std::string& id, const std::string& owner,
                  const std::string& result_json) override;
  Status Fail(const std::string& id, const std::string& owner, const Error& error) override;
  Status Requeue(const RequeueRequest& request) override;
  Result<std::vector<std::string>> RequeueExpired() override;
  Result<Job> Cancel(const std::string& id) override;

  Status PutFootprint(const ModelFootprint& footprint) override;
  Result<std::optional<ModelFootprint>> GetFootprint(const std::string& model,
                                                     const std::string& device_name) override;
  Result<std::vector<ModelFootprint>> ListFootprints() override;

  Result<int> DeleteFinishedBefore(int64_t cutoff_ms, int limit) override;
  Result<std::vector<std::string>> ReferencedBlobs() override;

  // --- Nodes and notifications (not part of JobStore: only a shared store has several nodes;
  // servers reach them through ClusterStore, pg_cluster_store.h) ---
  // Inserts or replaces the node with info.id, stamping heartbeat_ms with the store's clock.
  // kBadInput "bad_node" for an empty id or a JSON field that is not JSON.
  Status PublishNode(const NodeInfo& info);
  // Every published node, by id.
  Result<std::vector<NodeInfo>> ListNodes();
  // Removes a node that left (no-op if it is not listed).
  Status RemoveNode(const std::string& id);
  // Removes the nodes that have not published for `silent_ms` or longer (they died, or were
  // retired without a graceful stop); returns how many.
  Result<int> RemoveNodesSilentFor(int64_t silent_ms);
  // NOTIFY `channel` with `payload` (under 8000 bytes) for the nodes that LISTEN to it.
  Status Notify(const std::string& channel, const std::string& payload);

 private:
  PgJobStore(std::unique_ptr<pg::Connection> conn, PgOptions options, int64_t clock_offset_ms);
  // Helpers below run on the caller's borrowed connection and, where they write, inside its open
  // transaction.
  Result<Job> LoadHeld(pg::Connection& conn, const std::string& id, const std::string& owner,
                       const char* action);
  // Ends the job's current attempt at `now`: the same instant as the state change that ends it.
  Status EndAttempt(pg::Connection& conn, const Job& job, int64_t now, const char* outcome,
                    const std::optional<Error>& error);
  Status RequeueLocked(pg::Connection& conn, const Job& job, const std::optional<Error>& reason,
                       int64_t delay_ms, const char* outcome);
  Result<std::optional<Job>> ClaimLocked(pg::Connection& conn, const ClaimRequest& request,
                                         int64_t now);
  // Folds the count deltas (schema v6) into one row per state, in one statement, so Count reads
  // a handful of rows. Rows another compaction is folding right now are left to it (SKIP LOCKED):
  // two nodes compacting at once never wait for each other, and the sums stay exact.
  Status CompactCounts(pg::Connection& conn);

  std::unique_ptr<pg::ConnectionPool> pool_;
  PgOptions options_;
  int64_t clock_offset_ms_ = 0;
};

}  // namespace steno::store
