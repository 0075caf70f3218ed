// The supervisor <-> runner wire format: length-prefixed JSON frames over a socketpair.
//
// A frame is a 4-byte big-endian payload length followed by that many bytes of UTF-8 JSON (one
// object with a "type" field). A job's audio never travels through the socket: a job names a file,
// or hands its decoded audio over as a descriptor (only a live session's `feed` frames carry audio,
// in small pieces as it arrives). A frame may carry one file descriptor
// (SCM_RIGHTS, sent with its first bytes); the frame then says so, and its reader takes the
// descriptor (FrameReader::TakeFd) as it handles the frame: descriptors are taken in the order
// their frames arrive. A `transcribe` frame with "pcm_samples": N carries a sealed memory file of
// N 16 kHz mono float samples (audio/shared_pcm.h): the input already decoded (a synchronous
// request's, decoded by the server), which the runner reads instead of opening "audio_path".
//
// Supervisor -> runner: load, transcribe, feed, cancel, set_streams, exit.
// Runner -> supervisor: ready, progress, segment, done, error, heartbeat.
// (The fields of each are built and read in runner/messages.h.)
//
// Live sessions (core/live_items.h, runner/live_steps.h) travel as one job: a `transcribe`
// frame with "live" (the session's live::Settings as JSON; "vad_model_path": the Silero model;
// no audio_path) starts it, each `feed` frame {"type":"feed","job_id":...,"input":
// live::Input as JSON} hands it the next input (audio as base64 PCM16 in the frame, the one
// exception to "audio never travels through the socket", bounded by kMaxFrameBytes), its
// `segment` frames carry live::Events ("segment": live::EventToJson), and it ends with `done`
// ("result": {"items", "audio_ms"}) or `error` like any job. A feed for a job that is not a live
// one running on the runner is dropped. A transcribe frame's "live_max_buffer_ms" bounds the audio
// the session holds (runner/live_steps.h; tests set it small).
//
// A frame longer than kMaxFrameBytes, or one that is not a JSON object with a string "type", is a
// protocol violation: the reader reports it and the connection must be closed. Never a crash.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <deque>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace steno::runner {

inline constexpr size_t kMaxFrameBytes = 16 * 1024 * 1024;

// Serialises one message as a frame. Invalid UTF-8 in strings (random models produce it) is
// replaced with U+FFFD rather than failing.
std::string EncodeFrame(const nlohmann::json& message);

// Writes whole frames to a file descriptor; safe to call from several threads at once.
class FrameWriter {
 public:
  explicit FrameWriter(int fd) : fd_(fd) {}
  // kUnavailable "peer_closed" once the other side is gone. With `fd` >= 0, a socket's frame
  // carries that descriptor (a copy: the caller keeps its own).
  Status Write(const nlohmann::json& message, int fd = -1);

 private:
  int fd_;
  std::mutex mu_;
};

// Reads frames from a file descriptor. Not thread-safe: one reader thread owns it.
class FrameReader {
 public:
  explicit FrameReader(int fd, size_t max_frame_bytes = kMaxFrameBytes)
      : fd_(fd), max_frame_bytes_(max_frame_bytes) {}
  ~FrameReader();  // closes the descriptors nobody took
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  // Blocks until a whole frame arrives or `timeout_ms` passes (-1: wait forever).
  // Errors: kTimeout "timeout" (nothing complete yet; call again), kUnavailable "peer_closed"
  // (clean EOF), kBadInput "frame_too_large" / "bad_frame" (protocol violation: close it),
  // kIo "read_failed".
  Result<nlohmann::json> Read(int timeout_ms = -1);

  // The oldest descriptor received and not yet taken (close-on-exec; the caller owns it), or -1.
  // A frame that says it carries one takes it when it is handled (the order frames arrive in).
  int TakeFd();

 private:
  ssize_t ReadSome(char* data, size_t size);  // read(), keeping any descriptors that came along

  Result<nlohmann::json> TakeFrame();  // from buffer_, if a whole one is there

  int fd_;
  size_t max_frame_bytes_;
  std::string buffer_;
  std::deque<int> fds_;  // received, not yet taken
};

}  // namespace steno::runner
