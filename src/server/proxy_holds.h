// ProxyHolds: the work items of requests the API relays to a managed model server itself
// (`/v1/servers/{name}/{path}`; task "proxy" in runners/server/server_model.h). A hold is
// scheduled like any job — admission, placement, a lazy start of the server, keep-alive, the
// runner's busy streams — and holds one stream of the runner while the request runs. It lives in
// memory only: it is never stored, so a restart forgets it, and its updates never reach the
// store (OnJob takes them).
//
// A hold: Acquire submits the work item and waits for the runner's kSegment {"endpoint"}; the
// caller relays the request there, then Release cancels the work item, which frees the stream.
//
// One mutex (the holds); no lock is held across a scheduler call. Safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/job.h"
#include "core/mutex.h"
#include "core/result.h"
#include "sched/scheduler_types.h"
#include "server/runtime_slot.h"

namespace steno::server {

inline constexpr const char* kProxyTask = "proxy";

struct ProxyRequest {
  std::string model;
  std::string device;               // "" lets placement choose
  std::optional<int> keep_alive_s;  // the runner's keep-alive after it; unset: the default
  Priority priority = Priority::kNormal;
};

class ProxyHolds {
 public:
  explicit ProxyHolds(RuntimeSlot& runtime);

  // The scheduler's job hook, called first: true when `u` is a hold's update (handled here, not
  // to be stored). Never blocks.
  bool OnJob(const sched::JobUpdate& u) EXCLUDES(mu_);

  struct Hold {
    std::string id;        // the work item's id (Release it)
    std::string endpoint;  // "http://HOST:PORT" of the server holding the stream
  };
  // Submits a hold and waits until its runner gives its endpoint, up to `timeout_ms`, or until
  // `stopping`. Errors: the scheduler's (model_not_found, shutting_down, ...); the work item's
  // own failure (a server that never turned healthy, ...); kTimeout "timeout" (the hold is
  // released); kUnavailable "shutting_down".
  Result<Hold> Acquire(const ProxyRequest& request, int64_t timeout_ms,
                       const std::atomic<bool>& stopping) EXCLUDES(mu_);
  // Ends a hold: cancels its work item (the runner's stream is freed once the kind confirms).
  void Release(const std::string& id) EXCLUDES(mu_);
  // Holds not ended yet (waiting, relaying, or released and not yet confirmed).
  size_t Count() const EXCLUDES(mu_);

 private:
  struct Entry {
    std::string endpoint;  // "" until the runner's segment
    std::optional<Error> failed;
    bool ended = false;     // final in the scheduler
    bool released = false;  // Release cancelled it; erased at its final update
  };

  RuntimeSlot& runtime_;
  mutable Mutex mu_;
  CondVar changed_;  // an endpoint came, or a hold ended
  std::map<std::string, Entry> holds_ GUARDED_BY(mu_);
  std::atomic<uint64_t> next_{1};
};

}  // namespace steno::server
