// ClusterLink: what a node sharing a job store (serve --store postgres://...) does besides
// running its own jobs. The store is the only coordinator; nodes talk through its cluster
// capability (store/cluster_store.h):
//  - Notifications, listened to on a connection of their own: `steno_jobs` (a job became
//    claimable: submitted, requeued, handed back) wakes every node's claim loop; `steno_events`
//    carries the state, progress and segments of jobs running somewhere, so any node can stream
//    any job's events.
//  - A claim thread calls hooks.claim whenever it is woken (a notification, WakeClaims) and at
//    least every poll period (a missed notification, a retry whose backoff ended).
//  - Every publish period it writes this node's description (hooks.describe) to the nodes table
//    and removes nodes silent for an hour; Stop removes this node (a node that leaves gracefully
//    is no longer listed).
//  - Every second, hooks.tick (the service re-reads jobs whose streams it serves: a notification
//    lost while the listening connection was down must not leave a stream hanging).
// A lost listening connection is reopened (and listening resumed) on the next second; claims keep
// polling meanwhile, and are woken once it listens again. Two threads; one mutex (the wake and
// stop flags), never held across a store call or a hook.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/mutex.h"
#include "core/result.h"
#include "store/cluster_store.h"

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

  // Sends through `store` (which must outlive the link); nothing runs until Start.
  ClusterLink(std::string node, int64_t publish_ms, int64_t poll_ms, store::ClusterStore& store);
  // Stop() if it was not called.
  ~ClusterLink();

  // Starts listening (a store that cannot be listened to fails the start), publishes this node
  // and starts the threads that call `hooks`. Called once.
  Status Start(ClusterHooks hooks) EXCLUDES(mu_);

  // Runs the claim hook soon (local capacity freed: a job ended, a runner loaded or unloaded).
  void WakeClaims() EXCLUDES(mu_);
  // Tells every node (this one too) that jobs are claimable.
  void AnnounceJobs();
  // Sends a job event to the other nodes: {"node", "id", "kind", ...}. One over NOTIFY's limit
  // (a very long segment) is sent without its segment; the stored result has it.
  void SendEvent(nlohmann::json event);
  // Joins the threads, then (if it started) removes this node from the nodes table.
  void Stop() EXCLUDES(mu_);

 private:
  // `listener` listens already; it reconnects by itself when its connection breaks.
  void ListenLoop(std::unique_ptr<store::NotificationListener> listener) EXCLUDES(mu_);
  void ClaimLoop() EXCLUDES(mu_);
  void Publish();
  bool stopping() EXCLUDES(mu_);

  const std::string node_;
  const int64_t publish_ms_;
  const int64_t poll_ms_;
  store::ClusterStore& store_;
  ClusterHooks hooks_;  // set by Start, before the threads

  Mutex mu_;
  CondVar cv_;  // wake_ or stop_ set
  bool wake_ GUARDED_BY(mu_) = false;
  bool stop_ GUARDED_BY(mu_) = false;
  bool started_ GUARDED_BY(mu_) = false;
  bool stopped_ GUARDED_BY(mu_) = false;
  std::thread listener_;
  std::thread claimer_;
};

}  // namespace steno::server
