#include "api/client_uploads.h"

#include <utility>

namespace steno::api {

ClientUploads::Slot::Slot(Slot&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), client_(std::move(other.client_)) {}

ClientUploads::Slot& ClientUploads::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    if (owner_) owner_->Release(client_);
    owner_ = std::exchange(other.owner_, nullptr);
    client_ = std::move(other.client_);
  }
  return *this;
}

ClientUploads::Slot::~Slot() {
  if (owner_) owner_->Release(client_);
}

std::optional<ClientUploads::Slot> ClientUploads::TryAcquire(const std::string& client) {
  std::lock_guard lock(mu_);
  int& held = held_[client];
  if (per_client_ > 0 && held >= per_client_) {
    return std::nullopt;
  }
  ++held;
  return Slot(this, client);
}

int ClientUploads::Held(const std::string& client) const {
  std::lock_guard lock(mu_);
  auto it = held_.find(client);
  return it == held_.end() ? 0 : it->second;
}

void ClientUploads::Release(const std::string& client) {
  std::lock_guard lock(mu_);
  auto it = held_.find(client);
  if (it == held_.end()) return;
  if (--it->second <= 0) held_.erase(it);
}

}  // namespace steno::api
