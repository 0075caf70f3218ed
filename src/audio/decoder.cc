#include "audio/decoder.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "audio/ffmpeg_api.h"
#include "audio/ffmpeg_util.h"

namespace steno::audio {
namespace {

using ffmpeg::DisplayName;

// Failures other than the input's own faults: allocation (kOutOfMemory) or an FFmpeg call that no
// input should make fail (kInternal).
Error Failure(const MediaFile& file, const std::string& what, int averror) {
  if (averror == AVERROR(ENOMEM)) {
    return Error(ErrorKind::kOutOfMemory, "out_of_memory",
                 fmt::format("out of memory while decoding {}", file.Shown()));
  }
  return Error(
      ErrorKind::kInternal, "decoder_failure",
      fmt::format("decoding {} failed: {}: {}", file.Shown(), what, ffmpeg::ErrorString(averror)));
}

// Converts decoded frames of any sample format, rate and channel layout to kSampleRate mono float,
// appending to a vector. Rebuilds itself if the stream's format changes part-way (legal in MP3,
// AAC and others), after draining what the old converter still holds.
class MonoResampler {
 public:
  ~MonoResampler() { ffmpeg::Api().av_channel_layout_uninit(&layout_); }

  int Push(const AVFrame* frame, std::vector<float>& out) {
    AVChannelLayout layout{};
    if (frame->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || frame->ch_layout.nb_channels <= 0) {
      // Decoders that only know a channel count: assume the usual layout for it.
      ffmpeg::Api().av_channel_layout_default(&layout, std::max(frame->ch_layout.nb_channels, 1));
    } else if (int rc = ffmpeg::Api().av_channel_layout_copy(&layout, &frame->ch_layout); rc < 0) {
      return rc;
    }
    if (!swr_ || frame->format != format_ || frame->sample_rate != rate_ ||
        ffmpeg::Api().av_channel_layout_compare(&layout, &layout_) != 0) {
      if (swr_) {
        if (int rc = Flush(out); rc < 0) {
          ffmpeg::Api().av_channel_layout_uninit(&layout);
          return rc;
        }
      }
      ffmpeg::Api().av_channel_layout_uninit(&layout_);
      layout_ = layout;  // takes ownership
      format_ = frame->format;
      rate_ = frame->sample_rate;
      if (int rc = Configure(); rc < 0) {
        swr_.reset();  // never convert through a half-configured context
        return rc;
      }
    } else {
      ffmpeg::Api().av_channel_layout_uninit(&layout);
    }
    return Convert(const_cast<const uint8_t**>(frame->extended_data), frame->nb_samples, out);
  }

  // Emits the samples the resampler's filter still holds (its delay). Call once at the end.
  int Flush(std::vector<float>& out) {
    if (!swr_) return 0;
    int rc;
    do rc = Convert(nullptr, 0, out);
    while (rc > 0);
    return rc;
  }

 private:
  int Configure() {
    swr_.reset();
    SwrContext* swr = nullptr;
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    int rc =
        ffmpeg::Api().swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_FLT, kSampleRate, &layout_,
                                          static_cast<AVSampleFormat>(format_), rate_, 0, nullptr);
    if (rc < 0) return rc;
    swr_.reset(swr);
    // Normalise the downmix so each output sample is a weighted mean of the channels (stereo:
    // (L + R) / 2, as whisper-cli's reader does). For float output libswresample otherwise keeps
    // its unnormalised matrix (L·0.707 + R·0.707), 3 dB louder and able to exceed full scale.
    if (int rc = ffmpeg::Api().av_opt_set_double(swr, "rematrix_maxval", 1.0, 0); rc < 0) return rc;
    return ffmpeg::Api().swr_init(swr);
  }

  // Converts `count` input samples (nullptr/0 drains), appending the output. Returns the number of
  // samples appended or an AVERROR.
  int Convert(const uint8_t** in, int count, std::vector<float>& out) {
    const int room = ffmpeg::Api().swr_get_out_samples(swr_.get(), count);
    if (room < 0) return room;
    if (room == 0) return 0;
    const size_t old = out.size();
    out.resize(old + static_cast<size_t>(room));
    uint8_t* dst = reinterpret_cast<uint8_t*>(out.data() + old);
    const int got = ffmpeg::Api().swr_convert(swr_.get(), &dst, room, in, count);
    out.resize(old + static_cast<size_t>(std::max(got, 0)));
    return got;
  }

  ffmpeg::SwrContextPtr swr_;
  int format_ = -1;
  int rate_ = 0;
  AVChannelLayout layout_{};
};

Result<std::vector<float>> DecodeOpened(const MediaFile& file, const Limits& limits,
                                        internal::OpenedInput& in) {
  AVFormatContext* fmt = in.format.get();
  const int index = in.info.stream_index;
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    // Video packets are still read from disk but not handed out or buffered.
    if (int(i) != index) fmt->streams[i]->discard = AVDISCARD_ALL;
  }
  const AVStream* st = fmt->streams[index];

  const AVCodec* codec =
      ffmpeg::Api().avcodec_find_decoder(st->codecpar->codec_id);  // OpenInput checked it
  ffmpeg::CodecContextPtr ctx(ffmpeg::Api().avcodec_alloc_context3(codec));
  if (!ctx) return Failure(file, "allocating the decoder", AVERROR(ENOMEM));
  if (int rc = ffmpeg::Api().avcodec_parameters_to_context(ctx.get(), st->codecpar); rc < 0) {
    return Failure(file, "configuring the decoder", rc);
  }
  ctx->pkt_timebase = st->time_base;  // lets the decoder apply priming/padding trims exactly
  ctx->thread_count = 1;              // callers parallelise across files, not within one
  if (int rc = ffmpeg::Api().avcodec_open2(ctx.get(), codec, nullptr); rc < 0) {
    if (rc == AVERROR(ENOMEM)) return Failure(file, "opening the decoder", rc);
    if (rc == AVERROR_PATCHWELCOME || rc == AVERROR(ENOSYS)) {
      return Error(ErrorKind::kBadInput, "unsupported_codec",
                   fmt::format("{} uses a variant of {} audio that FFmpeg cannot decode ({})",
                               file.Shown(), in.info.codec, ffmpeg::ErrorString(rc)));
    }
    // The decoder exists but rejects the stream's setup data (e.g. Vorbis headers).
    return Error(ErrorKind::kBadInput, "corrupt_audio",
                 fmt::format("{}: the header of its {} audio is damaged ({})", file.Shown(),
                             in.info.codec, ffmpeg::ErrorString(rc)));
  }

  ffmpeg::PacketPtr pkt(ffmpeg::Api().av_packet_alloc());
  ffmpeg::FramePtr frame(ffmpeg::Api().av_frame_alloc());
  if (!pkt || !frame) return Failure(file, "allocating buffers", AVERROR(ENOMEM));

  std::vector<float> pcm;
  if (in.duration_known) {
    // Sized from metadata, capped so that a header lying about a huge length cannot make a small
    // file reserve gigabytes.
    pcm.reserve(static_cast<size_t>(std::min(in.info.duration_s, 600.0) * kSampleRate) +
                kSampleRate);
  }
  // Probe already compared a declared duration with the limit; then only codec padding can exceed
  // it. Without a declared duration the decoded length is all there is.
  const double limit_s = limits.max_duration_s > 0
                             ? limits.max_duration_s + (in.duration_known ? 1.0 : 0.0)
                             : std::numeric_limits<double>::infinity();
  const double cap = limit_s * kSampleRate;

  MonoResampler resampler;
  int decode_errors = 0;
  int failure = 0;          // ENOMEM: ends decoding
  int convert_failure = 0;  // the decoded frames' format cannot be converted: damaged data

  // Moves every frame the decoder has ready into pcm.
  auto drain = [&]() {
    while (true) {
      const int rc = ffmpeg::Api().avcodec_receive_frame(ctx.get(), frame.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
      if (rc < 0) {
        if (rc == AVERROR(ENOMEM)) failure = rc;
        ++decode_errors;
        return;
      }
      const int pushed = resampler.Push(frame.get(), pcm);
      ffmpeg::Api().av_frame_unref(frame.get());
      if (pushed < 0) {
        (pushed == AVERROR(ENOMEM) ? failure : convert_failure) = pushed;
        return;
      }
    }
  };

  int read_rc = 0;
  while (failure == 0 && convert_failure == 0 && double(pcm.size()) <= cap) {
    read_rc = ffmpeg::Api().av_read_frame(fmt, pkt.get());
    if (read_rc < 0) break;
    if (pkt->stream_index != index) {
      ffmpeg::Api().av_packet_unref(pkt.get());
      continue;
    }
    const int rc = ffmpeg::Api().avcodec_send_packet(ctx.get(), pkt.get());
    ffmpeg::Api().av_packet_unref(pkt.get());
    if (rc < 0 && rc != AVERROR(EAGAIN)) {
      if (rc == AVERROR(ENOMEM)) failure = rc;
      ++decode_errors;  // a damaged packet: skip it, as the ffmpeg tool does
      spdlog::debug("{}: skipping a packet the decoder rejected: {}", file.Shown(),
                    ffmpeg::ErrorString(rc));
    }
    drain();
  }
  if (failure != 0) return Failure(file, "decoding", failure);
  if (convert_failure == 0 && double(pcm.size()) > cap) {
    return Error(
        ErrorKind::kBadInput, "too_long",
        fmt::format("{} is longer than the limit of {:g} s", file.Shown(), limits.max_duration_s));
  }
  if (read_rc < 0 && read_rc != AVERROR_EOF) {
    if (ffmpeg::IoFailed(fmt)) {
      return Error(
          ErrorKind::kIo, "read_error",
          fmt::format("could not read {}: {}", file.Shown(), ffmpeg::ErrorString(read_rc)));
    }
    spdlog::debug("{}: demuxer stopped early: {}", file.Shown(), ffmpeg::ErrorString(read_rc));
  }

  // End of input: take what the decoder and the resampler still hold.
  ffmpeg::Api().avcodec_send_packet(ctx.get(), nullptr);
  drain();
  if (failure == 0 && convert_failure == 0) {
    const int rc = resampler.Flush(pcm);
    if (rc < 0) (rc == AVERROR(ENOMEM) ? failure : convert_failure) = rc;
  }
  if (failure != 0) return Failure(file, "decoding", failure);
  if (convert_failure != 0) {
    return Error(ErrorKind::kBadInput, "corrupt_audio",
                 fmt::format("{}: its {} audio is damaged: FFmpeg cannot convert it ({})",
                             file.Shown(), in.info.codec, ffmpeg::ErrorString(convert_failure)));
  }

  if (pcm.empty()) {
    if (decode_errors > 0) {
      return Error(ErrorKind::kBadInput, "corrupt_audio",
                   fmt::format("{}: its {} audio is damaged; no part of it could be decoded",
                               file.Shown(), in.info.codec));
    }
    return Error(ErrorKind::kBadInput, "empty_audio",
                 fmt::format("{} contains no audio samples", file.Shown()));
  }
  const double decoded_s = double(pcm.size()) / kSampleRate;
  if (internal::IsTruncated(in.declared_duration_s, decoded_s)) {
    // Missing audio with rejected packets means damage inside the file rather than a cut end.
    return Error(ErrorKind::kBadInput, "truncated",
                 fmt::format("{} is {}: its header declares {:.1f} s of audio but only {:.1f} s "
                             "could be decoded",
                             file.Shown(), decode_errors > 0 ? "damaged or truncated" : "truncated",
                             in.declared_duration_s, decoded_s));
  }
  // Float codecs and resampling filters can overshoot full scale slightly; Whisper expects [-1, 1].
  // In-range values (all of them, for 16-bit PCM) are left bit-exact; a NaN from a damaged float
  // stream becomes silence.
  for (float& v : pcm) v = std::isnan(v) ? 0.0f : std::clamp(v, -1.0f, 1.0f);
  return pcm;
}

// Decodes `in` (of `file`), turning an allocation failure into this file's error.
Result<std::vector<float>> DecodeCatching(const MediaFile& file, const Limits& limits,
                                          internal::OpenedInput& in) {
  try {
    return DecodeOpened(file, limits, in);
  } catch (const std::bad_alloc&) {
    // The output vector for a very long file: an error for this file, not the process's end.
    return Error(ErrorKind::kOutOfMemory, "out_of_memory",
                 fmt::format("out of memory while decoding {}", file.Shown()));
  }
}

}  // namespace

Result<std::vector<float>> Decode(const MediaFile& file, const Limits& limits) {
  auto opened = internal::OpenInput(file, limits, /*scan_when_unknown=*/false);
  if (!opened) return opened.error();
  return DecodeCatching(file, limits, opened.value());
}

Result<OpenedMedia> Open(const MediaFile& file, const Limits& limits) {
  auto opened = internal::OpenInput(file, limits, /*scan_when_unknown=*/false);
  if (!opened) return opened.error();
  return OpenedMedia(file, limits, std::move(opened).value());
}

Result<std::vector<float>> OpenedMedia::Decode() {
  if (!in_.format) {
    return Error(ErrorKind::kInternal, "decoded_already", file_.Shown() + " was decoded already");
  }
  auto pcm = DecodeCatching(file_, limits_, in_);
  in_.format.reset();  // the file is closed once decoded
  return pcm;
}

}  // namespace steno::audio
