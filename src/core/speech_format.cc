#include "core/speech_format.h"

#include <array>
#include <utility>

namespace steno {
namespace {

constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kFormats = {{
    {"mp3", "audio/mpeg"},
    {"opus", "audio/opus"},
    {"aac", "audio/aac"},
    {"flac", "audio/flac"},
    {"wav", "audio/wav"},
    {"pcm", "audio/pcm"},
}};

}  // namespace

bool IsSpeechFormat(std::string_view format) {
  for (const auto& [name, type] : kFormats) {
    if (name == format) return true;
  }
  return false;
}

std::string SpeechContentType(std::string_view format) {
  for (const auto& [name, type] : kFormats) {
    if (name == format) return std::string(type);
  }
  return "application/octet-stream";
}

std::string SpeechFormatList() {
  std::string out;
  for (size_t i = 0; i < kFormats.size(); ++i) {
    if (i > 0) out += i + 1 == kFormats.size() ? " or " : ", ";
    out += kFormats[i].first;
  }
  return out;
}

}  // namespace steno
