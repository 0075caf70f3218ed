#include "audio/ffmpeg_api.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include "audio/ffmpeg_util.h"

namespace steno::audio::ffmpeg {
namespace {

#define STENO_STR2(x) #x
#define STENO_STR(x) STENO_STR2(x)
// The sonames the linker would record for the headers in use, e.g. "libavformat.so.59".
constexpr const char* kAvformat = "libavformat.so." STENO_STR(LIBAVFORMAT_VERSION_MAJOR);
constexpr const char* kAvcodec = "libavcodec.so." STENO_STR(LIBAVCODEC_VERSION_MAJOR);
constexpr const char* kAvutil = "libavutil.so." STENO_STR(LIBAVUTIL_VERSION_MAJOR);
constexpr const char* kSwresample = "libswresample.so." STENO_STR(LIBSWRESAMPLE_VERSION_MAJOR);
#undef STENO_STR
#undef STENO_STR2

FunctionTable g_table;

struct Library {
  const char* soname;
  void* handle = nullptr;
};

Status Open(Library* lib) {
  // Never closed: FFmpeg stays loaded for the rest of the process, as a linked library would.
  lib->handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
  if (lib->handle) return {};
  const char* why = dlerror();
  return Error(ErrorKind::kInternal, "ffmpeg_unavailable",
               std::string("FFmpeg could not be loaded: ") + (why ? why : lib->soname));
}

template <class Fn>
Status Resolve(const Library& lib, const char* name, Fn* out) {
  *out = reinterpret_cast<Fn>(dlsym(lib.handle, name));
  if (*out) return {};
  return Error(ErrorKind::kInternal, "ffmpeg_unavailable",
               std::string("FFmpeg's ") + lib.soname + " has no function " + name);
}

Status LoadOnce() {
  // Each library before those that need it.
  Library avutil{kAvutil}, swresample{kSwresample}, avcodec{kAvcodec}, avformat{kAvformat};
  for (Library* lib : {&avutil, &swresample, &avcodec, &avformat}) {
    if (auto st = Open(lib); !st) return st;
  }
  FunctionTable t;
#define STENO_FFMPEG_RESOLVE(lib, name) \
  if (auto st = Resolve(lib, #name, &t.name); !st) return st;
  STENO_FFMPEG_FUNCTIONS(STENO_FFMPEG_RESOLVE)
#undef STENO_FFMPEG_RESOLVE
  g_table = t;
  RouteLogsToSpdlog();
  return {};
}

}  // namespace

Status Load() {
  static std::once_flag once;
  static Status outcome;
  std::call_once(once, [] { outcome = LoadOnce(); });
  return outcome;
}

const FunctionTable& Api() {
  return g_table;
}

}  // namespace steno::audio::ffmpeg
