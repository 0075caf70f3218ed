// The shared state of simulated GPUs: one small JSON file in the data dir, read and rewritten
// under an exclusive flock by every process that uses the simulation (the server, its runners,
// `steno gpus simulate-external`, tests). Implementation detail of SimulatedDevices.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "gpu/owner_process.h"

namespace steno::gpu::sim {

struct DeviceState {
  int64_t total_bytes = 0;
  int64_t external_bytes = 0;  // another tenant's memory, not attributed to any pid
  int gpu_utilization_percent = 0;
  int memory_utilization_percent = 0;
  int temperature_c = 35;
  double power_watts = 60;
  double power_limit_watts = 300;
};

// Memory a process holds on a device; it stops counting when the process is gone.
struct Charge {
  int device = 0;
  ProcessIdentity owner;
  int64_t bytes = 0;
};

struct State {
  std::vector<DeviceState> devices;
  std::vector<Charge> charges;
};

// Holds the simulation's lock for as long as it lives. Readers and writers both take it
// exclusively: every operation is a few hundred bytes of I/O, so sharing buys nothing.
class Lock {
 public:
  static Result<Lock> Acquire(const std::string& lock_path);
  Lock(Lock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  Lock& operator=(Lock&&) = delete;
  ~Lock();

 private:
  explicit Lock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Reads the state file. kNotFound if it does not exist; kIntegrity if it cannot be parsed.
Result<State> Load(const std::string& path);

// Replaces the state file atomically (write a temporary, rename over).
Status Save(const std::string& path, const State& state);

}  // namespace steno::gpu::sim
