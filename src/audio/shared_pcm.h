// Decoded audio handed to another process by descriptor: 16 kHz mono float samples (decoder.h's
// output) in a sealed memory file (memfd). The server decodes a synchronous request's upload once
// and passes this to the runner with the job (runner/protocol.h): no second open, probe and
// decode in the runner, no copy through the socket. The seals (no write, no resize) let the
// receiver trust what it maps or reads, whatever the sender does later.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "core/result.h"

namespace steno::audio {

class SharedPcm {
 public:
  // Copies `samples` into a new sealed memory file. kUnavailable "no_memfd" where the system has
  // no memfd_create (the caller then keeps the input as a file); kIo for other failures.
  static Result<std::shared_ptr<const SharedPcm>> Create(const std::vector<float>& samples);
  ~SharedPcm();  // closes the descriptor
  SharedPcm(const SharedPcm&) = delete;
  SharedPcm& operator=(const SharedPcm&) = delete;

  int fd() const { return fd_; }
  size_t samples() const { return samples_; }

 private:
  SharedPcm(int fd, size_t samples) : fd_(fd), samples_(samples) {}
  int fd_;
  size_t samples_;
};

// The receiving side: the `samples` floats of memory file `fd` (not closed here). kBadInput
// "bad_pcm" when its size is not exactly that many samples or it is not sealed against writes
// and resizing; kIo when it cannot be read.
Result<std::vector<float>> ReadSharedPcm(int fd, size_t samples);

}  // namespace steno::audio
