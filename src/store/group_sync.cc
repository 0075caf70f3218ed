#include "store/group_sync.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "store/job_store.h"

namespace steno::store {

Status GroupSync::Sync() {
  std::unique_lock lock(mu_);
  const uint64_t ticket = ++issued_;
  while (covered_ < ticket) {
    if (flushing_) {
      cv_.wait(lock);
      continue;
    }
    // Lead: this flush begins after every ticket issued so far, so it covers all of them.
    flushing_ = true;
    const uint64_t first = covered_ + 1, last = issued_;
    lock.unlock();
    Status st = flush_();
    lock.lock();
    ++flushes_;
    if (!st.ok()) {
      if (failures_.size() >= 64) failures_.erase(failures_.begin());
      failures_.push_back({first, last, st.error()});
    }
    covered_ = last;
    flushing_ = false;
    cv_.notify_all();
  }
  ++syncs_;
  for (const auto& f : failures_) {
    if (ticket >= f.first && ticket <= f.last) return f.error;
  }
  return {};
}

int64_t GroupSync::flushes() const {
  std::lock_guard lock(mu_);
  return flushes_;
}

int64_t GroupSync::waiting() const {
  std::lock_guard lock(mu_);
  return static_cast<int64_t>(issued_) - syncs_;
}

int64_t GroupSync::syncs() const {
  std::lock_guard lock(mu_);
  return syncs_;
}

std::function<Status()> WalFlush(const std::string& db_path) {
  return [wal = db_path + "-wal"]() -> Status {
    const int fd = open(wal.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return {};
      return Error(ErrorKind::kIo, kErrStoreIo, "cannot open " + wal + ": " + std::strerror(errno));
    }
    const int rc = fdatasync(fd);
    const int err = errno;
    close(fd);
    if (rc != 0) {
      return Error(err == ENOSPC ? ErrorKind::kNoSpace : ErrorKind::kIo,
                   err == ENOSPC ? kErrStoreFull : kErrStoreIo,
                   "cannot flush " + wal + ": " + std::strerror(err));
    }
    return {};
  };
}

}  // namespace steno::store
