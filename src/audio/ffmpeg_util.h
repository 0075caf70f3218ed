// Small helpers shared by the FFmpeg-based audio code (probe.cc, decoder.cc): owning pointers for
// FFmpeg's C objects, error-code text, and routing FFmpeg's log output into steno's logger.
//
// FFmpeg types are only forward-declared here so that headers including this one do not pull in
// the FFmpeg headers.
#pragma once

#include <memory>
#include <string>

struct AVFormatContext;
struct AVCodecContext;
struct AVPacket;
struct AVFrame;
struct SwrContext;

namespace steno::audio::ffmpeg {

// Each deleter calls FFmpeg's matching free function; a format context's also closes the file that
// OpenLocalInput opened for it.
struct FormatContextDeleter {
  void operator()(AVFormatContext* p) const;
};
struct CodecContextDeleter {
  void operator()(AVCodecContext* p) const;
};
struct PacketDeleter {
  void operator()(AVPacket* p) const;
};
struct FrameDeleter {
  void operator()(AVFrame* p) const;
};
struct SwrContextDeleter {
  void operator()(SwrContext* p) const;
};

using FormatContextPtr = std::unique_ptr<AVFormatContext, FormatContextDeleter>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using SwrContextPtr = std::unique_ptr<SwrContext, SwrContextDeleter>;

// FFmpeg's text for an AVERROR code, e.g. "Invalid data found when processing input".
std::string ErrorString(int averror);

// Opens `path` as a local file for demuxing. Only the file itself is ever read: the path is not
// parsed as a URL ("http://...", "concat:..." are file names here), and a demuxer that would open
// further files or URLs (HLS/DASH playlists, ffconcat lists) is refused, so an uploaded playlist
// cannot make steno read other files or reach the network. On failure returns the AVERROR and
// sets *io_failed when the operating system refused a read (as opposed to the data being bad).
// `format_hint` is the name whose extension FFmpeg may use to recognise the format (the file's
// own path, or the name a user uploaded it under); it is never opened.
// The context must be freed through FormatContextPtr, which also closes the file.
int OpenLocalInput(const std::string& path, const std::string& format_hint, FormatContextPtr* out,
                   bool* io_failed);

// True when the file under `fmt` had a read refused by the operating system. Demuxers also return
// errno-style codes (AVERROR(EIO), AVERROR(EINVAL)) for malformed data, so the code alone cannot
// tell a disk failure from a damaged file; the I/O context's own error state can.
bool IoFailed(const AVFormatContext* fmt);

// Sends FFmpeg's log lines to spdlog (FFmpeg's info and below at debug, verbose at trace; its own
// debug chatter is dropped) instead of letting FFmpeg print them to stderr. Idempotent and
// thread-safe; ffmpeg::Load() (ffmpeg_api.h) calls it once FFmpeg is loaded, before any other use.
void RouteLogsToSpdlog();

// The file name a user sees in messages: the last path component. Messages never carry the
// directories, because for server uploads those are steno's internal blob paths.
std::string DisplayName(const std::string& path);

}  // namespace steno::audio::ffmpeg
