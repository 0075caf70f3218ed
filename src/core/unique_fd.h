// A file descriptor owned by a scope: closed when the owner goes (-1: none to close). Neither
// copied nor moved: the one place that opened or received it closes it.
#pragma once

#include <unistd.h>

namespace steno {

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace steno
