// The audio formats of a text-to-speech result (OpenAI's /v1/audio/speech response_format):
// mp3 (the default), opus, aac, flac, wav and pcm (raw 16-bit little-endian samples, 24 kHz
// mono in OpenAI's API). One list for the request check, the server kind that writes the file
// and the API that sends it.
#pragma once

#include <string>
#include <string_view>

namespace steno {

inline constexpr std::string_view kDefaultSpeechFormat = "mp3";

// Whether `format` is one of the names above, spelled exactly.
bool IsSpeechFormat(std::string_view format);
// The Content-Type OpenAI's API answers with: audio/mpeg, audio/opus, audio/aac, audio/flac,
// audio/wav, audio/pcm; application/octet-stream for a name that is not a speech format.
std::string SpeechContentType(std::string_view format);
// "mp3, opus, aac, flac, wav or pcm" (for messages).
std::string SpeechFormatList();

}  // namespace steno
