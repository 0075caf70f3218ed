#include "runners/server/speech_stream.h"

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace steno::runners {

AudioFd::~AudioFd() {
  if (fd_ >= 0) close(fd_);
}

void SpeechStream::Changed() {
  ++view_.version;
  cv_.SignalAll();
}

void SpeechStream::Begin(int fd, std::string content_type) {
  auto file = std::make_shared<const AudioFd>(fcntl(fd, F_DUPFD_CLOEXEC, 0));
  MutexLock lock(mu_);
  ++view_.run;
  view_.bytes = 0;
  view_.ended = false;
  view_.complete = false;
  // A descriptor that could not be duplicated shows as a run that broke at once.
  if (file->get() < 0) view_.ended = true;
  view_.file = std::move(file);
  view_.content_type = std::move(content_type);
  Changed();
}

void SpeechStream::Wrote(int64_t total) {
  MutexLock lock(mu_);
  if (view_.ended || total <= view_.bytes) return;
  view_.bytes = total;
  Changed();
}

void SpeechStream::End(bool complete) {
  MutexLock lock(mu_);
  if (view_.ended) return;
  view_.ended = true;
  view_.complete = complete;
  Changed();
}

void SpeechStream::JobEnded() {
  MutexLock lock(mu_);
  if (view_.job_ended) return;
  view_.job_ended = true;
  Changed();
}

SpeechStream::View SpeechStream::Current() const {
  MutexLock lock(mu_);
  return view_;
}

SpeechStream::View SpeechStream::Wait(uint64_t seen, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(mu_);
  while (view_.version == seen) {
    if (!cv_.WaitUntil(mu_, deadline)) break;
  }
  return view_;
}

SpeechStreams& SpeechStreams::Process() {
  static SpeechStreams* const streams = new SpeechStreams();
  return *streams;
}

std::shared_ptr<SpeechStream> SpeechStreams::Watch(const std::string& job_id) {
  MutexLock lock(mu_);
  if (auto existing = streams_[job_id].lock()) return existing;
  std::shared_ptr<SpeechStream> stream(new SpeechStream(), [this, job_id](SpeechStream* s) {
    delete s;
    Forget(job_id);
  });
  streams_[job_id] = stream;
  return stream;
}

std::shared_ptr<SpeechStream> SpeechStreams::Find(const std::string& job_id) {
  MutexLock lock(mu_);
  auto it = streams_.find(job_id);
  return it == streams_.end() ? nullptr : it->second.lock();
}

void SpeechStreams::Forget(const std::string& job_id) {
  MutexLock lock(mu_);
  auto it = streams_.find(job_id);
  // A watch made again since (its entry alive) stays.
  if (it != streams_.end() && it->second.expired()) streams_.erase(it);
}

}  // namespace steno::runners
