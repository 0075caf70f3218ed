// Probe: validate a media file and describe its audio without decoding it.
//
// Probe() reads the container header (and the few packets FFmpeg needs to identify the codecs),
// picks the audio stream steno would transcribe, and returns what a scheduler needs before
// committing any work: the duration, and whether the file is usable at all. It is cheap for every
// common file: the duration comes from container/stream metadata. Only when the container declares
// no duration (e.g. a WebM written by a live recorder) does it read the packets of the audio
// stream, still without decoding them, and it stops reading as soon as a duration limit is passed.
//
// Errors (kind / code), each with a message naming the file:
//   kNotFound  file_not_found     the path does not exist
//   kBadInput  not_media          not a file FFmpeg can open as audio or video (text, a
//                                 directory, 0 bytes, a damaged header)
//   kBadInput  no_audio_stream    a media file with no audio stream (e.g. a silent video)
//   kBadInput  unsupported_codec  the audio stream's codec has no decoder in this FFmpeg build
//   kBadInput  too_long           the duration exceeds limits.max_duration_s
//   kBadInput  empty_audio        the audio stream provably holds no samples
//   kBadInput  truncated          a WAV file whose header declares more data than the file holds
//                                 (other containers are checked by Decode(), see decoder.h)
//   kIo        read_error         the operating system refused to open or read the file
//
// Only the local file at `file.path` is read: the path is never taken as a URL, and containers that
// would open further files (HLS/DASH playlists, ffconcat lists) are refused as not_media.
#pragma once

#include <string>
#include <utility>

#include "audio/ffmpeg_util.h"
#include "core/result.h"

namespace steno::audio {

// The sample rate Whisper consumes; Decode() always produces it.
constexpr int kSampleRate = 16000;

struct Limits {
  double max_duration_s = 0;  // 0 = unlimited
};

// A file to read and the name its owner knows it by. A server keeps uploads under internal names
// (content hashes); the user's file name is what messages show, and its extension is the format
// hint FFmpeg needs for headerless formats (raw G.722, raw PCM codecs), exactly as a local path's
// extension is for `steno transcribe`. Implicit from a path: a local file is known by its own name.
struct MediaFile {
  MediaFile(std::string p) : path(std::move(p)) {}  // NOLINT(google-explicit-constructor)
  MediaFile(const char* p) : path(p) {}             // NOLINT(google-explicit-constructor)
  MediaFile(std::string p, std::string n) : path(std::move(p)), name(std::move(n)) {}

  std::string path;  // the local file that is read
  std::string name;  // the user's name for it ("call.g722"); empty: the path's own

  // The name messages carry: the last component of `name`, else of `path` (never directories).
  std::string Shown() const;
  // What FFmpeg probes the format by: `name` when set, else `path`.
  const std::string& FormatHint() const { return name.empty() ? path : name; }
};

struct MediaInfo {
  // Seconds of audio: the audio stream's declared duration, else the container's, else (no
  // metadata) the extent of the audio packets. Always > 0 from a successful Probe().
  double duration_s = 0;
  // FFmpeg's demuxer name. Where FFmpeg names a family ("mov,mp4,m4a,3gp,3g2,mj2",
  // "matroska,webm") this is the member matching the file's extension, else the first member.
  std::string container;
  std::string codec;      // FFmpeg's codec name: "pcm_s16le", "mp3", "aac", "opus", ...
  int sample_rate = 0;    // of the source stream, in Hz
  int channels = 0;       // of the source stream
  int stream_index = -1;  // the stream Decode() reads: the first audio stream with a decoder
};

// Validates `file` and describes its audio; see the top of this file for the errors.
// Thread-safe: any number of calls may run at once.
Result<MediaInfo> Probe(const MediaFile& file, const Limits& limits = {});

// Probe()'s first checks, alone: the file exists (file_not_found), is neither a directory nor
// empty (not_media) and may be read (read_error), with Probe()'s messages. Loads no FFmpeg (tens
// of milliseconds of a process's start), for a caller that leaves the rest to a Decode() that
// runs elsewhere (`steno transcribe` with one input: its runner's decode probes it).
Status CheckFile(const MediaFile& file);

namespace internal {

// An opened and validated input, shared with decoder.cc so a file is opened once per Decode().
struct OpenedInput {
  ffmpeg::FormatContextPtr format;  // positioned at the first packet
  MediaInfo info;
  // The audio length the container header declares, in seconds, or < 0 when it declares none
  // (or only an estimate from the bit rate). Decode() compares the decoded length against it.
  double declared_duration_s = -1;
  bool duration_known = false;  // info.duration_s is real, not 0-for-unknown
};

// Probe()'s work, keeping the opened input. With scan_when_unknown = false, a file whose duration
// is not in its metadata is not read ahead (duration_known = false): the caller decodes it anyway
// and enforces the limits itself.
Result<OpenedInput> OpenInput(const MediaFile& file, const Limits& limits, bool scan_when_unknown);

// The truncation rule shared by Probe (WAV) and Decode (everything else): audio is truncated when
// it is shorter than declared by more than 0.25 s plus 1% of the declared length. The slack
// absorbs codec priming/padding and container rounding; a cut file misses far more.
bool IsTruncated(double declared_s, double actual_s);

}  // namespace internal
}  // namespace steno::audio
