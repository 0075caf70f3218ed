// SpeechStreams: the audio of a speech job while its model server is still producing it, so that
// the synchronous POST /v1/audio/speech sends it to its client as it comes (api/routes_speech.cc)
// while RunSpeech (server_speech.h) stores it as the job's result file.
//
// The API watches a job (Watch) from its submission until its response ends. RunSpeech, running
// in the same process, looks the watch up as it writes (Find: nullptr while nobody watches, as for
// a job submitted with POST /v1/jobs or run by another node) and reports each run of the job on
// it: Begin with the file the audio goes to, Wrote after each write, End when the run ends. The
// watcher reads the bytes from that file through its own descriptor (still readable after the
// file is renamed into place or removed), never from memory: a slow client holds no audio in
// steno and never slows the server's answer.
//
// One registry per process (SpeechStreams::Process()): the server kind's runners run inside
// `steno serve`, beside the API; job ids are unique. Safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "core/mutex.h"

namespace steno::runners {

// An open file descriptor, closed with the last reference to it.
class AudioFd {
 public:
  explicit AudioFd(int fd) : fd_(fd) {}
  ~AudioFd();
  AudioFd(const AudioFd&) = delete;
  AudioFd& operator=(const AudioFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// One job's audio as its runs write it.
class SpeechStream {
 public:
  // What a watcher sees. Bytes [0, bytes) of `file` are the current run's audio so far.
  struct View {
    uint64_t version = 0;                 // changes with every report (and JobEnded)
    uint64_t run = 0;                     // runs begun (0: none yet); a retried job begins another
    int64_t bytes = 0;                    // the current run's audio written so far
    bool ended = false;                   // the current run ended ...
    bool complete = false;                // ... with all its audio, stored as the job's result
    bool job_ended = false;               // the job reached a final state (JobEnded)
    std::shared_ptr<const AudioFd> file;  // the current run's file, readable; null before Begin
    std::string content_type;             // of the current run's audio
  };

  // --- the writer (RunSpeech), one run at a time ---
  // A run starts writing its audio into `fd` (duplicated here, so it must be readable too).
  // The previous run's bytes are no longer shown.
  void Begin(int fd, std::string content_type) EXCLUDES(mu_);
  // The run's file now holds `total` bytes of audio.
  void Wrote(int64_t total) EXCLUDES(mu_);
  // The run ended: `complete` when its audio is whole and stored, else it broke off.
  void End(bool complete) EXCLUDES(mu_);

  // --- the watcher (the API) ---
  // The job reached a final state: waits return, whatever the runs did.
  void JobEnded() EXCLUDES(mu_);
  View Current() const EXCLUDES(mu_);
  // Blocks until the view's version differs from `seen` or `timeout` passes; returns the view.
  View Wait(uint64_t seen, std::chrono::milliseconds timeout) const EXCLUDES(mu_);

 private:
  void Changed() REQUIRES(mu_);

  mutable Mutex mu_;
  mutable CondVar cv_;
  View view_ GUARDED_BY(mu_);
};

class SpeechStreams {
 public:
  // The process's registry (never destroyed, so watches may outlive static destruction).
  static SpeechStreams& Process();

  // Watches `job_id` until the last copy of the returned pointer is gone; two watchers of one
  // job (two requests with one Idempotency-Key) share one stream.
  std::shared_ptr<SpeechStream> Watch(const std::string& job_id) EXCLUDES(mu_);
  // The stream of `job_id`, or nullptr when nobody watches it.
  std::shared_ptr<SpeechStream> Find(const std::string& job_id) EXCLUDES(mu_);

 private:
  void Forget(const std::string& job_id) EXCLUDES(mu_);

  Mutex mu_;
  std::map<std::string, std::weak_ptr<SpeechStream>> streams_ GUARDED_BY(mu_);
};

}  // namespace steno::runners
