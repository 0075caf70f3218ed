#include "server/runtime_slot.h"

namespace steno::server {

void RuntimeSlot::Fill(std::unique_ptr<Runtime> runtime) {
  MutexLock lock(mu_);
  if (!closed_) runtime_ = std::move(runtime);
}

Runtime* RuntimeSlot::Enter() {
  MutexLock lock(mu_);
  if (closed_ || !runtime_) return nullptr;
  ++calls_;
  return runtime_.get();
}

void RuntimeSlot::Leave() {
  MutexLock lock(mu_);
  if (--calls_ == 0) idle_.SignalAll();
}

std::unique_ptr<Runtime> RuntimeSlot::Take() {
  MutexLock lock(mu_);
  closed_ = true;
  while (calls_ > 0) idle_.Wait(mu_);
  return std::move(runtime_);
}

}  // namespace steno::server
