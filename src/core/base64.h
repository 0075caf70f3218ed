// Base64 (RFC 4648, standard alphabet, with padding) through OpenSSL's EVP coder: the audio a
// live session's client sends (OpenAI's input_audio_buffer.append) and what travels to runners.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace steno {

std::string Base64Encode(std::string_view bytes);
// The bytes `text` encodes. kBadInput "bad_base64" when it is not valid base64 (a character
// outside the alphabet, a length that is not a multiple of 4, misplaced padding). Whitespace is
// not allowed.
Result<std::string> Base64Decode(std::string_view text);

}  // namespace steno
