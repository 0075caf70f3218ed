#include "audio/probe.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "audio/ffmpeg_api.h"

namespace steno::audio {
namespace internal {
namespace {

Error BadInput(const char* code, std::string message) {
  return Error(ErrorKind::kBadInput, code, std::move(message));
}

Error ReadError(const MediaFile& file, const std::string& why) {
  return Error(ErrorKind::kIo, "read_error",
               fmt::format("could not read {}: {}", file.Shown(), why));
}

Error NotMedia(const MediaFile& file) {
  return BadInput("not_media",
                  fmt::format("{} is not an audio or video file FFmpeg can read", file.Shown()));
}

// Before FFmpeg sees the path: the cases FFmpeg would report vaguely ("No such file", "Is a
// directory", an empty file probed as "Invalid data").
Result<uint64_t> CheckedFileSize(const MediaFile& file) {
  struct stat st {};
  if (::stat(file.path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return Error(ErrorKind::kNotFound, "file_not_found",
                   fmt::format("{} does not exist", file.Shown()));
    }
    return ReadError(file, std::strerror(err));
  }
  if (S_ISDIR(st.st_mode)) {
    return BadInput("not_media",
                    fmt::format("{} is a directory, not an audio or video file", file.Shown()));
  }
  if (S_ISREG(st.st_mode) && st.st_size == 0) {
    return BadInput("not_media",
                    fmt::format("{} is empty (0 bytes), not an audio or video file", file.Shown()));
  }
  if (::access(file.path.c_str(), R_OK) != 0) return ReadError(file, std::strerror(errno));
  return static_cast<uint64_t>(S_ISREG(st.st_mode) ? st.st_size : 0);
}

// The demuxer's name as MediaInfo::container documents it.
std::string ContainerName(const AVInputFormat* f, const std::string& path) {
  const std::string names = f->name;
  const auto dot = path.find_last_of('.');
  const auto slash = path.find_last_of('/');
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) {
    std::string ext = path.substr(dot + 1);
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (ext == "mkv") ext = "matroska";
    size_t start = 0;
    while (start <= names.size()) {
      size_t end = names.find(',', start);
      if (end == std::string::npos) end = names.size();
      if (names.compare(start, end - start, ext) == 0) return ext;
      start = end + 1;
    }
  }
  return names.substr(0, names.find(','));
}

// Opening failed. On data (not I/O), says "damaged" when the first bytes still look like a known
// container (e.g. an MP4 cut before its index), which is more useful than "not media".
Error OpenFailure(const MediaFile& file, int averror, bool io_failed) {
  if (io_failed) {
    if (averror == AVERROR(ENOENT)) {
      return Error(ErrorKind::kNotFound, "file_not_found",
                   fmt::format("{} does not exist", file.Shown()));
    }
    return ReadError(file, ffmpeg::ErrorString(averror));
  }
  std::vector<uint8_t> buf(4096 + AV_INPUT_BUFFER_PADDING_SIZE, 0);
  std::ifstream in(file.path, std::ios::binary);
  in.read(reinterpret_cast<char*>(buf.data()), 4096);
  AVProbeData pd{};
  pd.filename = "";  // judge the bytes, not the extension
  pd.buf = buf.data();
  pd.buf_size = static_cast<int>(in.gcount());
  int score = 0;
  const AVInputFormat* guess = ffmpeg::Api().av_probe_input_format2(&pd, 1, &score);
  if (guess && score >= AVPROBE_SCORE_MAX / 2) {
    return BadInput(
        "not_media",
        fmt::format("{} is a damaged or incomplete {} file that FFmpeg cannot read ({})",
                    file.Shown(), ContainerName(guess, file.FormatHint()),
                    ffmpeg::ErrorString(averror)));
  }
  return NotMedia(file);
}

uint32_t ReadLe32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// FFmpeg's WAV demuxer silently ignores a data-chunk size larger than the file (it reads what is
// there), so a WAV cut short would decode "fine". Reads the RIFF header itself and returns
// {declared seconds, seconds present} for the data chunk, or {-1, -1} when the header declares no
// usable length (RF64, streaming writers' 0 / 0xFFFFFFFF, unparseable).
std::pair<double, double> WavDeclaredAndPresent(const std::string& path, uint64_t file_size) {
  constexpr std::pair<double, double> kUnknown{-1, -1};
  std::vector<uint8_t> buf(64 * 1024);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
  const size_t n = static_cast<size_t>(in.gcount());
  if (n < 12 || std::memcmp(buf.data(), "RIFF", 4) != 0 ||
      std::memcmp(buf.data() + 8, "WAVE", 4) != 0) {
    return kUnknown;
  }
  uint32_t byte_rate = 0;
  size_t pos = 12;
  while (pos + 8 <= n) {
    const uint8_t* chunk = buf.data() + pos;
    const uint32_t size = ReadLe32(chunk + 4);
    const uint64_t body = pos + 8;
    if (std::memcmp(chunk, "fmt ", 4) == 0 && size >= 16 && body + 16 <= n) {
      byte_rate = ReadLe32(buf.data() + body + 8);
    } else if (std::memcmp(chunk, "data", 4) == 0) {
      if (byte_rate == 0 || size == 0 || size == 0xFFFFFFFFu) return kUnknown;
      const uint64_t present = file_size > body ? std::min<uint64_t>(size, file_size - body) : 0;
      return {double(size) / byte_rate, double(present) / byte_rate};
    }
    pos = body + size + (size & 1);  // chunks are padded to even sizes
  }
  return kUnknown;
}

double Seconds(int64_t ts, AVRational tb) {
  return double(ts) * av_q2d(tb);
}

// Reads (without decoding) the packets of `stream` to measure its extent, for containers that
// declare no duration. Stops once limits are exceeded, so a huge file costs no more than the limit;
// then *partial is set and the result is only a lower bound.
double ScanDuration(AVFormatContext* fmt, int stream, const Limits& limits, bool* partial) {
  *partial = false;
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    if (int(i) != stream) fmt->streams[i]->discard = AVDISCARD_ALL;
  }
  const AVRational tb = fmt->streams[stream]->time_base;
  ffmpeg::PacketPtr pkt(ffmpeg::Api().av_packet_alloc());
  int64_t first = AV_NOPTS_VALUE, last_end = AV_NOPTS_VALUE, duration_sum = 0;
  while (pkt && ffmpeg::Api().av_read_frame(fmt, pkt.get()) >= 0) {
    if (pkt->stream_index == stream) {
      const int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
      if (pkt->duration > 0) duration_sum += pkt->duration;
      if (ts != AV_NOPTS_VALUE) {
        if (first == AV_NOPTS_VALUE || ts < first) first = ts;
        const int64_t end = ts + std::max<int64_t>(pkt->duration, 0);
        if (last_end == AV_NOPTS_VALUE || end > last_end) last_end = end;
      }
      const double so_far =
          first != AV_NOPTS_VALUE ? Seconds(last_end - first, tb) : Seconds(duration_sum, tb);
      if (limits.max_duration_s > 0 && so_far > limits.max_duration_s) {
        *partial = true;
        return so_far;
      }
    }
    ffmpeg::Api().av_packet_unref(pkt.get());
  }
  return first != AV_NOPTS_VALUE ? Seconds(last_end - first, tb) : Seconds(duration_sum, tb);
}

// What FFmpeg reads of a PCM stream's packets to check their content (see OpenInput).
constexpr int64_t kPcmContentProbeBytes = 4096;

// Whether the header alone says everything Probe and Decode read: one PCM audio stream with its
// sample rate, channels and length declared (a WAV file, for one). avformat_find_stream_info
// reads ahead to fill in what a header leaves out; here it would change nothing this code reads,
// and for a WAV file it read (and content-probed, see OpenInput) the whole file: 8-15 ms for
// 9 s of 16 kHz audio, more than the rest of a probe and decode together.
bool HeaderIsComplete(const AVFormatContext* fmt) {
  if ((fmt->ctx_flags & AVFMTCTX_NOHEADER) != 0 || fmt->nb_streams != 1) return false;
  const AVStream* st = fmt->streams[0];
  const AVCodecParameters* par = st->codecpar;
  const bool pcm =
      par->codec_id >= AV_CODEC_ID_PCM_S16LE && par->codec_id < AV_CODEC_ID_ADPCM_IMA_QT;
  return par->codec_type == AVMEDIA_TYPE_AUDIO && pcm && par->sample_rate > 0 &&
         par->ch_layout.nb_channels > 0 && st->duration > 0 && st->time_base.num > 0 &&
         ffmpeg::Api().avcodec_find_decoder(par->codec_id) != nullptr;
}

}  // namespace

bool IsTruncated(double declared_s, double actual_s) {
  return declared_s > 0 && actual_s < declared_s - (0.25 + 0.01 * declared_s);
}

Result<OpenedInput> OpenInput(const MediaFile& file, const Limits& limits, bool scan_when_unknown) {
  auto file_size = CheckedFileSize(file);
  if (!file_size) return file_size.error();
  if (auto loaded = ffmpeg::Load(); !loaded) return loaded.error();

  OpenedInput in;
  bool io_failed = false;
  if (int rc = ffmpeg::OpenLocalInput(file.path, file.FormatHint(), &in.format, &io_failed);
      rc < 0) {
    return OpenFailure(file, rc, io_failed);
  }
  AVFormatContext* fmt = in.format.get();

  // What the header itself declares, captured before avformat_find_stream_info fills gaps with
  // estimates: only a declared length is evidence that a shorter decode means a damaged file.
  std::vector<int64_t> header_durations;
  for (unsigned i = 0; i < fmt->nb_streams; ++i)
    header_durations.push_back(fmt->streams[i]->duration);
  const int64_t header_container_duration = fmt->duration;
  const unsigned header_streams = fmt->nb_streams;

  if (HeaderIsComplete(fmt)) {
    // The WAV demuxer also asks for the content of a "PCM" stream to be probed (it may hold
    // S/PDIF or MP3), and FFmpeg does so on the packets read, again at every doubling of what it
    // holds, up to probesize (5 MB): over a whole file, about 10 ms of CPU per 10 s of 16 kHz
    // audio. The first packet is what that check needs.
    fmt->probesize = kPcmContentProbeBytes;
  } else {
    if (int rc = ffmpeg::Api().avformat_find_stream_info(fmt, nullptr); rc < 0) {
      if (ffmpeg::IoFailed(fmt)) return ReadError(file, ffmpeg::ErrorString(rc));
      return NotMedia(file);
    }
  }

  int audio = -1;
  int first_audio = -1;
  std::string other_streams;
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    const AVCodecParameters* par = fmt->streams[i]->codecpar;
    if (par->codec_type != AVMEDIA_TYPE_AUDIO) {
      if (par->codec_type == AVMEDIA_TYPE_VIDEO || par->codec_type == AVMEDIA_TYPE_SUBTITLE) {
        if (!other_streams.empty()) other_streams += ", ";
        other_streams +=
            fmt::format("{} {}", ffmpeg::Api().av_get_media_type_string(par->codec_type),
                        ffmpeg::Api().avcodec_get_name(par->codec_id));
      }
      continue;
    }
    if (first_audio < 0) first_audio = int(i);
    if (ffmpeg::Api().avcodec_find_decoder(par->codec_id) != nullptr) {
      audio = int(i);
      break;
    }
  }
  if (first_audio < 0) {
    if (fmt->nb_streams == 0) return NotMedia(file);
    const std::string what = fmt::format("{} has no audio stream to transcribe", file.Shown());
    return BadInput(
        "no_audio_stream",
        other_streams.empty() ? what : fmt::format("{} (it contains: {})", what, other_streams));
  }
  if (audio < 0) {
    const AVCodecID id = fmt->streams[first_audio]->codecpar->codec_id;
    return BadInput(
        "unsupported_codec",
        id == AV_CODEC_ID_NONE
            ? fmt::format("{} has audio in an unknown encoding that FFmpeg cannot decode",
                          file.Shown())
            : fmt::format("{} has audio encoded as {}, which this FFmpeg build cannot decode",
                          file.Shown(), ffmpeg::Api().avcodec_get_name(id)));
  }

  const AVStream* st = fmt->streams[audio];
  MediaInfo& info = in.info;
  info.container = ContainerName(fmt->iformat, file.FormatHint());
  info.codec = ffmpeg::Api().avcodec_get_name(st->codecpar->codec_id);
  info.sample_rate = st->codecpar->sample_rate;
  info.channels = st->codecpar->ch_layout.nb_channels;
  info.stream_index = audio;

  if (unsigned(audio) < header_durations.size() && header_durations[audio] > 0) {
    in.declared_duration_s = Seconds(header_durations[audio], st->time_base);
  } else if (header_streams == 1 && header_container_duration > 0) {
    // One stream: the container's declared length is the audio's (Matroska, for one, only
    // declares a segment duration).
    in.declared_duration_s = double(header_container_duration) / AV_TIME_BASE;
  }

  if (st->duration > 0) {
    info.duration_s = Seconds(st->duration, st->time_base);
    in.duration_known = true;
  } else if (fmt->duration > 0) {
    info.duration_s = double(fmt->duration) / AV_TIME_BASE;
    in.duration_known = true;
  }

  // A WAV header's data size is the declared length (FFmpeg drops it when it exceeds the file).
  double wav_present_s = -1;
  if (info.container == "wav" && file_size.value() > 0) {
    const auto [declared, present] = WavDeclaredAndPresent(file.path, file_size.value());
    if (declared > 0) {
      in.declared_duration_s = declared;
      info.duration_s = declared;
      in.duration_known = true;
      wav_present_s = present;
    }
  }

  bool scan_partial = false;
  if (!in.duration_known && scan_when_unknown) {
    info.duration_s = ScanDuration(fmt, audio, limits, &scan_partial);
    in.duration_known = true;
    if (info.duration_s <= 0) {
      return BadInput("empty_audio", fmt::format("{} contains no audio samples", file.Shown()));
    }
  }

  if (limits.max_duration_s > 0 && in.duration_known && info.duration_s > limits.max_duration_s) {
    return BadInput("too_long",
                    scan_partial
                        ? fmt::format("{} is longer than the limit of {:g} s", file.Shown(),
                                      limits.max_duration_s)
                        : fmt::format("{} is {:.1f} s long; the limit is {:g} s", file.Shown(),
                                      info.duration_s, limits.max_duration_s));
  }
  // After the limit: a file both too long and cut short is reported as too long, the check a
  // caller can act on without reading the file.
  if (wav_present_s >= 0 && IsTruncated(in.declared_duration_s, wav_present_s)) {
    return BadInput(
        "truncated",
        fmt::format("{} is truncated: its header declares {:.1f} s of audio but the file "
                    "ends after {:.1f} s",
                    file.Shown(), in.declared_duration_s, wav_present_s));
  }
  return in;
}

}  // namespace internal

std::string MediaFile::Shown() const {
  return ffmpeg::DisplayName(name.empty() ? path : name);
}

Result<MediaInfo> Probe(const MediaFile& file, const Limits& limits) {
  auto in = internal::OpenInput(file, limits, /*scan_when_unknown=*/true);
  if (!in) return in.error();
  return std::move(in.value().info);
}

Status CheckFile(const MediaFile& file) {
  if (auto size = internal::CheckedFileSize(file); !size) return size.error();
  return {};
}

}  // namespace steno::audio
