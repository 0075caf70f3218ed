// Decode: any audio or video file FFmpeg reads -> 16 kHz mono float samples, Whisper's input.
//
// Decode() probes the file first (probe.h: every Probe() error applies, including too_long, which
// is therefore reported before anything is decoded), then decodes the first audio stream FFmpeg
// has a decoder for, downmixes it to mono (the mean of the channels for stereo) and resamples it
// to kSampleRate with libswresample.
//
// Promises:
//  - Values lie in [-1, 1]. A 16 kHz mono 16-bit PCM WAV decodes to exactly sample / 32768.0f for
//    every sample, which is what whisper-cli's own reader produces (the parity test relies on it).
//  - The length is the stream's decoded duration at 16 kHz: encoder priming and padding that the
//    container signals (AAC edit lists, Opus pre-skip, LAME gapless info) are removed.
//  - Packets the decoder rejects are skipped (as the ffmpeg tool does), so one damaged frame does
//    not lose a whole recording.
//  - Thread-safe: every call owns its FFmpeg contexts, so any number may run at once.
//
// Errors beyond Probe()'s (all kBadInput unless noted):
//   truncated      the file ends before the length its header declares. Rule: the container
//                  header declares the audio stream's length (WAV/FLAC/MP4/MP3 with a LAME/Xing
//                  header/single-stream Matroska do; bit-rate estimates do not count), and the
//                  decoded audio is shorter by more than 0.25 s + 1% of it
//                  (internal::IsTruncated). For WAV, Probe() already checks the header's data
//                  size against the file size. A demuxer data error part-way through ends the
//                  input like end-of-file (as the ffmpeg tool does: trailing junk is common and
//                  harmless), so it is this rule that decides whether audio is missing.
//   empty_audio    the stream decodes to zero samples
//   corrupt_audio  the decoder refused the stream's setup data (e.g. damaged Vorbis headers),
//                  rejected every packet of it, or produced frames that cannot be converted
//   unsupported_codec  the decoder exists but not for this variant of the codec
//   too_long       the decoded audio exceeds limits.max_duration_s; the backstop for containers
//                  that declare no duration (when they do, Probe's check already applied and
//                  1 s of slack covers codec padding)
//   kIo read_error the operating system failed a read part-way through (the I/O layer's own error
//                  state decides: demuxers also return AVERROR(EIO) for malformed data)
//   kOutOfMemory out_of_memory
//   kInternal decoder_failure  an FFmpeg failure that no input should cause
//
// What truncation cannot be seen: Ogg (Vorbis/Opus) and WebM/Matroska with several streams do not
// declare the audio stream's own length, so a cut file of those decodes to the audio it holds.
#pragma once

#include <string>
#include <vector>

#include "audio/probe.h"  // kSampleRate, Limits, MediaInfo
#include "core/result.h"

namespace steno::audio {

Result<std::vector<float>> Decode(const MediaFile& file, const Limits& limits = {});

// An input opened and probed once, decoded later if at all: Decode()'s work in two steps, for a
// caller that decides from the probe whether it decodes here (the server, for a synchronous
// request: see server/job_requests.h). Open's errors are Probe's, except that a file whose
// container declares no duration is not scanned for it (duration_known() is false; decoding
// tells, and enforces the limit). Decode's errors are Decode()'s beyond the probe's. Move-only;
// Decode at most once.
class OpenedMedia {
 public:
  const MediaInfo& info() const { return in_.info; }
  bool duration_known() const { return in_.duration_known; }
  Result<std::vector<float>> Decode();

 private:
  friend Result<OpenedMedia> Open(const MediaFile& file, const Limits& limits);
  OpenedMedia(MediaFile file, Limits limits, internal::OpenedInput in)
      : file_(std::move(file)), limits_(limits), in_(std::move(in)) {}
  MediaFile file_;
  Limits limits_;
  internal::OpenedInput in_;
};

Result<OpenedMedia> Open(const MediaFile& file, const Limits& limits = {});

}  // namespace steno::audio
