// The scheduler's memory books for one device: what it may plan with, what its own runners hold,
// what everyone else holds, and what is left. Work is admitted only when its bytes Fit().
//
//   allocatable   = (total − reserved) × safety_factor          (gpu::AllocatableBytes)
//   allocated     = Σ our runners (weights + streams × stream)   (estimates until measured)
//   external      = used − our runners' pids as the driver lists per process
//                   (unknown list → used − allocated)
//   available     = max(0, allocatable − allocated − external)
//   usage_percent = allocated / allocatable × 100
//
// The CPU is a device too, but its scarce resource is cores: CpuLedger counts against the cores
// given to steno the threads of the jobs running there (each job is given its own count:
// placement.h, CpuThreadsFor; oversubscribing only slows every job down), and what our CPU
// runners hold: a core per stream, or the threads of their jobs where those are more, so that
// no more streams stay loaded on the CPU than it has cores (each holds memory), and eviction
// frees them as on a GPU. A job may compute on a core an idle stream holds: holding bounds the
// streams, not the computing.
// Pure values built from a sample; the scheduler rebuilds them after every sample or change.
#pragma once

#include <cstdint>
#include <vector>

#include "gpu/device.h"
#include "gpu/gpu_config.h"

namespace steno::sched {

// What one of our runners holds (or is about to hold) on a device.
struct RunnerCharge {
  // The processes its kind says hold its memory (empty while it loads): the device's memory
  // listed under these pids is ours, not external.
  std::vector<int> pids;
  int64_t weights_bytes = 0;
  int64_t stream_bytes = 0;  // per stream
  int streams = 0;

  int64_t Bytes() const { return weights_bytes + streams * stream_bytes; }
};

struct VramLedger {
  int device_index = 0;  // CUDA ordinal
  int64_t total = 0;
  int64_t reserved = 0;
  int64_t allocatable = 0;
  int64_t allocated = 0;
  int64_t external = 0;
  int64_t available = 0;
  double usage_percent = 0;

  // True when `bytes` more can be placed: bytes ≤ available.
  bool Fits(int64_t bytes) const { return bytes >= 0 && bytes <= available; }
};

// `charges` are our runners on this device (the caller filters by device).
VramLedger BuildLedger(const gpu::DeviceSample& sample, const std::vector<RunnerCharge>& charges,
                       const gpu::ReserveConfig& reserve,
                       double safety_factor = gpu::kDefaultSafetyFactor);

// The same ledger after `bytes` more were charged (a stream or runner just admitted), so one
// scheduling pass can admit several jobs before the next device sample. Negative `bytes` release
// (what the ledger would be without a runner: eviction's arithmetic).
VramLedger Charge(VramLedger ledger, int64_t bytes);

// The threads one of our CPU runners holds with `streams` created and its jobs using
// `busy_threads` together.
inline int CpuThreadsHeld(int streams, int busy_threads) {
  return busy_threads > streams ? busy_threads : streams;
}

struct CpuCharge {
  int streams = 1;
  int busy_threads = 0;  // of the jobs it runs now
};

struct CpuLedger {
  int cores = 0;         // given to steno
  int used_threads = 0;  // Σ CpuThreadsHeld of our CPU runners
  int available_threads = 0;
  int busy_threads = 0;  // Σ threads of the jobs running

  // Room for `threads` more held (a new stream or runner: one).
  bool Fits(int threads) const { return threads >= 0 && threads <= available_threads; }
  // The cores no running job uses: what a job starting on a loaded runner may be given.
  int idle_threads() const { return cores > busy_threads ? cores - busy_threads : 0; }
};

CpuLedger BuildCpuLedger(int cores, const std::vector<CpuCharge>& charges);

// The same ledger after `threads` more were charged (negative: released).
CpuLedger Charge(CpuLedger ledger, int threads);

}  // namespace steno::sched
