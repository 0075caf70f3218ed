// ClusterLink: what a node sharing a PostgreSQL job store (serve --store postgres://...) does
// besides running its own jobs. PostgreSQL is the only coordinator; nodes talk through it:
//  - LISTEN/NOTIFY on its own connection: `steno_jobs` (a job became claimable: submitted,
//    requeued, handed back) wakes every node's claim loop; `steno_events` carries the state,
//    progress and segments of jobs running somewhere, so any node can stream any job's events.
//  - A claim thread calls hooks.claim whenever it is woken (a notification, WakeClaims) and at
//    least every poll period (a missed notification, a retry whose backoff ended).
//  - Every publish period it writes this node's description (hooks.describe) to the nodes table
//    and removes nodes silent for an hour; Stop removes this node (a node that leaves gracefully
//    is no longer listed).
//  - Every second, hooks.tick (the service re-reads jobs whose streams it serves: a notification
//    lost while the listening connection was down must not leave a stream hanging).
// A lost listening connection is reopened (and LISTEN reissued) on the next second; claims keep
// polling meanwhile.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "store/pg_job_store.h"

namespace steno::store::pg {
class Connection;
}  // namespace steno::store::pg

namespace steno::server {

struct ClusterHooks {
  std::function<void()> claim;                                // on the claim thread
  std::function<void(const nlohmann::json& event)> on_event;  // another node's job event
  std::function<void()> tick;                                 // every second
  std::function<store::NodeInfo()> describe;                  // this node (id set by the link)
};

class ClusterLink {
 public:
  static constexpr const char* kJobsChannel = "steno_jobs";
  static constexpr const char* kEventsChannel = "steno_events";
  // A node that has not published for this long (killed, or retired without a graceful stop) is
  // removed from the nodes table by the next node that publishes; until then it is listed as not
  // live.
  static constexpr int64_t kForgetSilentNodesMs = 60 * 60'000;

  // Opens the listening connection to `url` and starts the threads. `store` (this node's job
  // store) publishes the node and sends notifications; it must outlive the link.
  static Result<std::unique_ptr<ClusterLink>> Start(const std::string& url, const std::string& node,
                                                    int64_t publish_ms, int64_t poll_ms,
                                                    store::PgJobStore& store, ClusterHooks hooks);
  // Stop() if it was not called.
  ~ClusterLink();

  // Runs the claim hook soon (local capacity freed: a job ended, a runner loaded or unloaded).
  void WakeClaims();
  // Tells every node (this one too) that jobs are claimable.
  void AnnounceJobs();
  // Sends a job event to the other nodes: {"node", "id", "kind", ...}. One over NOTIFY's limit
  // (a very long segment) is sent without its segment; the stored result has it.
  void SendEvent(nlohmann::json event);
  // Joins the threads, then removes this node from the nodes table.
  void Stop();

 private:
  ClusterLink(std::string node, int64_t publish_ms, int64_t poll_ms, store::PgJobStore& store,
              ClusterHooks hooks);
  // `conn` listens already; reopened (and LISTEN reissued) when it breaks.
  void ListenLoop(std::string url, std::unique_ptr<store::pg::Connection> conn);
  void ClaimLoop();
  void Publish();

  std::string node_;
  int64_t publish_ms_;
  int64_t poll_ms_;
  store::PgJobStore& store_;
  ClusterHooks hooks_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false;
  bool stop_ = false;
  bool stopped_ = false;
  std::thread listener_;
  std::thread claimer_;
};

}  // namespace steno::server
