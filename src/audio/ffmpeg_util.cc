#include "audio/ffmpeg_util.h"

#include <cstdarg>
#include <cstring>
#include <mutex>

#include <spdlog/spdlog.h>

#include "audio/ffmpeg_api.h"

namespace steno::audio::ffmpeg {

void FormatContextDeleter::operator()(AVFormatContext* p) const {
  if (!p) return;
  // With caller-supplied I/O (OpenLocalInput), avformat_close_input leaves the file open.
  AVIOContext* pb = (p->flags & AVFMT_FLAG_CUSTOM_IO) ? p->pb : nullptr;
  Api().avformat_close_input(&p);
  Api().avio_closep(&pb);
}
void CodecContextDeleter::operator()(AVCodecContext* p) const {
  Api().avcodec_free_context(&p);
}
void PacketDeleter::operator()(AVPacket* p) const {
  Api().av_packet_free(&p);
}
void FrameDeleter::operator()(AVFrame* p) const {
  Api().av_frame_free(&p);
}
void SwrContextDeleter::operator()(SwrContext* p) const {
  Api().swr_free(&p);
}

std::string ErrorString(int averror) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  if (Api().av_strerror(averror, buf, sizeof buf) < 0)
    return "FFmpeg error " + std::to_string(averror);
  return buf;
}

namespace {

void LogCallback(void* avcl, int level, const char* fmt, va_list vl) {
  // FFmpeg emits one line in several calls; a line is complete when a call's text ends in '\n'.
  // The pieces of one line always come from one thread, so per-thread state is enough.
  thread_local std::string pending;
  thread_local int print_prefix = 1;
  if (level > AV_LOG_VERBOSE) return;  // debug/trace: per-packet chatter, never useful here
  const auto sp_level = level <= AV_LOG_INFO ? spdlog::level::debug : spdlog::level::trace;
  if (!spdlog::should_log(sp_level)) {
    const size_t n = std::strlen(fmt);
    print_prefix = n > 0 && fmt[n - 1] == '\n';
    pending.clear();
    return;
  }
  char line[1024];
  Api().av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &print_prefix);
  pending += line;
  if (!pending.empty() && pending.back() == '\n') {
    pending.pop_back();
    spdlog::log(sp_level, "ffmpeg: {}", pending);
    pending.clear();
  }
}

// AVFormatContext::io_open: demuxers call it to open any file besides the main one.
int RefuseNestedOpen(AVFormatContext*, AVIOContext**, const char* url, int, AVDictionary**) {
  spdlog::debug("ffmpeg: refused to open {} from inside a media file", url ? url : "");
  return AVERROR(EPERM);
}

}  // namespace

int OpenLocalInput(const std::string& path, const std::string& format_hint, FormatContextPtr* out,
                   bool* io_failed) {
  *io_failed = false;
  AVIOContext* pb = nullptr;
  // "file:" makes FFmpeg take the rest literally as a local path.
  if (int rc = Api().avio_open2(&pb, ("file:" + path).c_str(), AVIO_FLAG_READ, nullptr, nullptr);
      rc < 0) {
    *io_failed = true;
    return rc;
  }
  AVFormatContext* fmt = Api().avformat_alloc_context();
  if (!fmt) {
    Api().avio_closep(&pb);
    return AVERROR(ENOMEM);
  }
  fmt->pb = pb;  // marks the context AVFMT_FLAG_CUSTOM_IO
  fmt->io_open = RefuseNestedOpen;
  // With caller-supplied I/O the URL is only a name: FFmpeg probes its extension, opens nothing.
  if (int rc = Api().avformat_open_input(&fmt, format_hint.c_str(), nullptr, nullptr); rc < 0) {
    // FFmpeg freed fmt, not pb.
    *io_failed = pb->error < 0 && pb->error != AVERROR_EOF;
    Api().avio_closep(&pb);
    return rc;
  }
  out->reset(fmt);
  return 0;
}

bool IoFailed(const AVFormatContext* fmt) {
  return fmt && fmt->pb && fmt->pb->error < 0 && fmt->pb->error != AVERROR_EOF;
}

void RouteLogsToSpdlog() {
  static std::once_flag once;
  std::call_once(once, [] { Api().av_log_set_callback(LogCallback); });
}

std::string DisplayName(const std::string& path) {
  const auto slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  return name.empty() ? path : name;
}

}  // namespace steno::audio::ffmpeg
