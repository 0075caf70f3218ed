// Who owns GPU memory: process identity that survives pid reuse, liveness, and "is this a
// steno process" for a CLI that is not the supervisor.
#pragma once

#include <cstdint>
#include <optional>

namespace steno::gpu {

// A pid plus the process's start time (clock ticks since boot, /proc/PID/stat field 22): a pid
// that was reused by a later process has a different start time, so it is not mistaken for the
// owner of memory charged by the earlier one.
struct ProcessIdentity {
  int pid = 0;
  uint64_t start_ticks = 0;
  bool operator==(const ProcessIdentity&) const = default;
};

// The identity of a running process, or nullopt if there is none (or it already exited and is
// a zombie waiting to be reaped).
std::optional<ProcessIdentity> IdentifyProcess(int pid);

// Whether the process still runs. A zombie counts as dead: its memory (host and GPU) was
// returned when it exited, before anyone reaped it.
bool IsAlive(const ProcessIdentity& process);

// The parent of a running process, or nullopt if there is none (or it is a zombie).
std::optional<int> ParentPid(int pid);

// Whether `pid` is steno's: the calling process, or one that runs the same executable file or
// the runner program beside it (core/paths.h RunnerProgram; same device and inode as
// /proc/PID/exe). This is how steno, and a separate `steno gpus`, tell steno's runners apart
// from other tenants; a process it may not inspect is not ours.
bool IsStenoProcess(int pid);

}  // namespace steno::gpu
