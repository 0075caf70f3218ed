// ClusterStore: what a job store shared by several nodes offers besides the queue itself
// (job_store.h): the nodes table, notifications between nodes, the store's clock, and the
// uploads every node can fetch. A single-node store has none of it: the store factory
// (open_job_store.h) returns a ClusterStore only for a shared store, and "is the store shared?"
// is asked by whether it returned one. Leases and claims are JobStore calls (every store has them).
//
// Every call is safe from any thread. Implementations: PostgreSQL (pg_cluster_store.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "store/blob_store.h"

namespace steno::store {

// One node sharing the queue, as it last published itself. The three JSON documents are stored
// as given (each must be valid JSON) and are the node's own business.
struct NodeInfo {
  std::string id;            // unique per node, e.g. "gpu-box-1"
  std::string url;           // where its HTTP API answers
  int64_t heartbeat_ms = 0;  // set by the store to its clock on PublishNode
  std::string devices_json = "[]";
  std::string runners_json = "[]";
  std::string ledger_json = "{}";
};

// A message another node (or this one) sent on a channel.
struct Notification {
  std::string channel;
  std::string payload;
};

// Receives the notifications of some channels on a connection of its own (so waiting for them
// never holds up the store's other calls). Used by one thread at a time.
class NotificationListener {
 public:
  virtual ~NotificationListener() = default;
  // Waits up to `timeout_ms` and returns what arrived, maybe nothing. kUnavailable when the
  // connection broke: what was sent meanwhile is lost, and the next call connects and listens
  // again (failing the same way while the store cannot be reached).
  virtual Result<std::vector<Notification>> Wait(int timeout_ms) = 0;
};

// What a retention pass removed from the shared uploads.
struct SharedBlobSweep {
  int removed = 0;
  int64_t bytes_freed = 0;
};

class ClusterStore {
 public:
  virtual ~ClusterStore() = default;

  // Now on the store's clock (ms since the epoch): what leases and node heartbeats are stamped
  // with, the same on every node whatever its own clock says.
  virtual int64_t Now() const = 0;

  // --- Nodes table ---
  // Inserts or replaces the node with info.id, stamping heartbeat_ms with the store's clock.
  // kBadInput "bad_node" for an empty id or a JSON field that is not JSON.
  virtual Status PublishNode(const NodeInfo& info) = 0;
  // Every published node, by id.
  virtual Result<std::vector<NodeInfo>> ListNodes() = 0;
  // Removes a node that left (no-op if it is not listed).
  virtual Status RemoveNode(const std::string& id) = 0;
  // Removes the nodes that have not published for `silent_ms` or longer; returns how many.
  virtual Result<int> RemoveNodesSilentFor(int64_t silent_ms) = 0;

  // --- Notifications ---
  // Sends `payload` (under 8000 bytes) to every listener of `channel`, on every node.
  virtual Status Notify(const std::string& channel, const std::string& payload) = 0;
  // Starts listening to `channels`. Errors: the store cannot be reached.
  virtual Result<std::unique_ptr<NotificationListener>> Listen(
      const std::vector<std::string>& channels) = 0;

  // --- Uploads every node can fetch ---
  // Copies the committed local blob into the shared store before a job names it.
  virtual Result<BlobInfo> PushBlob(const BlobStore& local, std::string_view digest) = 0;
  // Makes sure `local` holds the blob (fetching and verifying it) and returns its path there.
  virtual Result<std::string> FetchBlob(const BlobStore& local, std::string_view digest) = 0;
  // Removes the shared uploads no job names that were last pushed over `grace_ms` ago.
  virtual Result<SharedBlobSweep> RemoveUnreferencedBlobs(int64_t grace_ms) = 0;
};

}  // namespace steno::store
