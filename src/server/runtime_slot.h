// RuntimeSlot: the service's Runtime (scheduler, runners, devices) while it runs, and the one
// way to reach it. Calls run on the runtime with no lock held, so a call that waits for the
// scheduler or a driver holds nobody else up. Shutdown takes the runtime out (Take): new calls
// get their `gone` value at once, calls in flight are waited for, and the runtime is stopped by
// the caller outside any lock, so readers are answered while runners stop.
// Safe from any thread; never call Take from inside With (it would wait for itself).
#pragma once

#include <memory>

#include "core/mutex.h"
#include "server/runtime.h"

namespace steno::server {

class RuntimeSlot {
 public:
  RuntimeSlot() = default;
  RuntimeSlot(const RuntimeSlot&) = delete;
  RuntimeSlot& operator=(const RuntimeSlot&) = delete;

  // Puts the started runtime in the (empty, never taken) slot.
  void Fill(std::unique_ptr<Runtime> runtime) EXCLUDES(mu_);

  // fn(Runtime&) while the runtime is in the slot; else `gone` (not started yet, or taken).
  template <class R, class F>
  R With(F fn, R gone) EXCLUDES(mu_) {
    Runtime* rt = Enter();
    if (!rt) return gone;
    struct Leave {
      RuntimeSlot* slot;
      ~Leave() { slot->Leave(); }
    } leave{this};
    return fn(*rt);
  }

  // Closes the slot to new calls, waits for the calls in flight to return, and hands the
  // runtime over (null if it was never filled or was taken before).
  std::unique_ptr<Runtime> Take() EXCLUDES(mu_);

 private:
  Runtime* Enter() EXCLUDES(mu_);
  void Leave() EXCLUDES(mu_);

  Mutex mu_;
  CondVar idle_;  // calls_ dropped to 0
  std::unique_ptr<Runtime> runtime_ GUARDED_BY(mu_);
  bool closed_ GUARDED_BY(mu_) = false;
  int calls_ GUARDED_BY(mu_) = 0;  // With calls running on runtime_
};

}  // namespace steno::server
