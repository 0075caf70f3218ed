// A managed model server's process tree: every process in its process group and all their
// descendants, read from /proc. A server may fork workers (into its group or out of it, with
// setsid); what holds its memory is the whole tree, and an unload is over only when no process
// of it is left.
#pragma once

#include <sys/types.h>

#include <vector>

#include "gpu/owner_process.h"

namespace steno::runners {

// The live (not zombie) processes whose process group is `pgid`, plus every live descendant of
// them, in pid order. Read from one pass over /proc; empty when none is left.
std::vector<gpu::ProcessIdentity> ProcessTree(pid_t pgid);

// The pids of `tree`, in its order.
std::vector<int> PidsOf(const std::vector<gpu::ProcessIdentity>& tree);

// A tree that remembers every process it has seen: a worker whose parent died is reparented
// (to init or a subreaper) and drops out of a fresh ProcessTree() unless it stayed in the group,
// yet it still belongs to the server. Not thread-safe.
class TrackedTree {
 public:
  explicit TrackedTree(pid_t pgid) : pgid_(pgid) {}

  // Rescans: ProcessTree(pgid) plus the remembered processes still alive. True when the set of
  // live processes changed since the last call.
  bool Refresh();
  const std::vector<gpu::ProcessIdentity>& live() const { return live_; }
  bool empty() const { return live_.empty(); }

  // Sends `sig` to the group and to every remembered process still alive (a pid reused by a
  // later process is not signalled: identities carry the start time).
  void Signal(int sig) const;

 private:
  pid_t pgid_;
  std::vector<gpu::ProcessIdentity> live_;
};

}  // namespace steno::runners
