// FFmpeg's functions, loaded with dlopen on first use rather than linked.
//
// libavformat and libavcodec pull in over a hundred shared libraries (codecs, gnutls, glib, cairo,
// ...) whose loading and constructors cost every steno process about 30 ms at start, whether it
// reads audio or not (`steno --version`, a runner before its first decode). Loaded here instead,
// they cost that once, in the first process and thread that opens a media file: for a runner,
// the prefetch thread that decodes while the model loads.
//
// The audio code (probe.cc, decoder.cc, ffmpeg_util.cc) calls FFmpeg only through Api(), after
// Load() has succeeded; internal::OpenInput, the way into every probe and decode, calls Load().
// The libraries are the sonames of the headers steno was built with (libavformat.so.59, ...), as
// the linker would have recorded them, so the ABI is the one compiled against.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
}

#include "core/result.h"

namespace steno::audio::ffmpeg {

// Every FFmpeg function steno calls, with the library (avformat, avcodec, avutil, swresample)
// that exports it. A call to one not listed here fails to link (no FFmpeg library is linked).
#define STENO_FFMPEG_FUNCTIONS(X)           \
  X(avformat, avformat_alloc_context)       \
  X(avformat, avformat_open_input)          \
  X(avformat, avformat_find_stream_info)    \
  X(avformat, avformat_close_input)         \
  X(avformat, av_read_frame)                \
  X(avformat, av_probe_input_format2)       \
  X(avformat, avio_open2)                   \
  X(avformat, avio_closep)                  \
  X(avcodec, avcodec_find_decoder)          \
  X(avcodec, avcodec_get_name)              \
  X(avcodec, avcodec_alloc_context3)        \
  X(avcodec, avcodec_free_context)          \
  X(avcodec, avcodec_parameters_to_context) \
  X(avcodec, avcodec_open2)                 \
  X(avcodec, avcodec_send_packet)           \
  X(avcodec, avcodec_receive_frame)         \
  X(avcodec, av_packet_alloc)               \
  X(avcodec, av_packet_free)                \
  X(avcodec, av_packet_unref)               \
  X(avutil, av_strerror)                    \
  X(avutil, av_log_set_callback)            \
  X(avutil, av_log_format_line2)            \
  X(avutil, av_get_media_type_string)       \
  X(avutil, av_opt_set_double)              \
  X(avutil, av_frame_alloc)                 \
  X(avutil, av_frame_free)                  \
  X(avutil, av_frame_unref)                 \
  X(avutil, av_channel_layout_default)      \
  X(avutil, av_channel_layout_copy)         \
  X(avutil, av_channel_layout_compare)      \
  X(avutil, av_channel_layout_uninit)       \
  X(swresample, swr_alloc_set_opts2)        \
  X(swresample, swr_init)                   \
  X(swresample, swr_free)                   \
  X(swresample, swr_convert)                \
  X(swresample, swr_get_out_samples)

// Pointers to the functions above, each named and typed as FFmpeg declares it.
struct FunctionTable {
#define STENO_FFMPEG_POINTER(lib, name) decltype(&::name) name = nullptr;
  STENO_FFMPEG_FUNCTIONS(STENO_FFMPEG_POINTER)
#undef STENO_FFMPEG_POINTER
};

// Loads the libraries and resolves every function, once per process (thread-safe; later calls
// return the first call's outcome at once). Also routes FFmpeg's log output to spdlog
// (ffmpeg_util.h). An error (kInternal) names the library or function that could not be loaded.
Status Load();

// The loaded functions. Only after Load() has succeeded.
const FunctionTable& Api();

}  // namespace steno::audio::ffmpeg
