// The official whisper.cpp ggml models that `steno models pull` knows how to fetch and verify:
// the Whisper models, and the Silero voice-activity model whisper.cpp runs before decoding.
//
// A model's name ("tiny.en", "large-v3-turbo-q5_0", "silero-v6.2.0") maps to the file
// ggml-NAME.bin, published under a base URL (Hugging Face by default). Every entry pins a SHA-1:
// a download is never accepted without a known hash.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace steno::models {

// Where whisper.cpp's own download script fetches from (models/download-ggml-model.sh).
inline constexpr std::string_view kDefaultBaseUrl =
    "https://huggingface.co/ggerganov/whisper.cpp/resolve/main";

// The VAD model steno uses (`steno models pull silero-v6.2.0`): Silero VAD v6.2.0 in whisper.cpp's
// ggml format, loaded by runners on the CPU (engine/vad.h).
inline constexpr std::string_view kVadModelName = "silero-v6.2.0";

// What a catalog model is for.
enum class ModelPurpose {
  kSpeechToText,   // a Whisper model: runners load it and transcribe with it
  kVoiceActivity,  // a VAD model: finds speech before a Whisper model decodes it; no model of
                   // its own for jobs (not listed by GET /v1/models, refused as a job's model)
};

struct CatalogEntry {
  std::string_view name;      // "tiny.en"
  std::string_view sha1;      // 40 lowercase hex digits of the whole file
  int64_t approx_bytes = 0;   // as published (rounded); for display and a free-space hint
  std::string_view base_url;  // the repository serving ggml-NAME.bin
  bool multilingual = true;   // false for ".en" models
  ModelPurpose purpose = ModelPurpose::kSpeechToText;
};

// Every known model, smallest family first, in the order upstream lists them.
std::span<const CatalogEntry> Catalog();

// The entry for `name`, or nullptr when it is not a known model.
const CatalogEntry* FindCatalogEntry(std::string_view name);

// Whether `name` is a catalog model that is no speech-to-text model (the VAD model).
bool IsVoiceActivityModel(std::string_view name);

// "ggml-NAME.bin": the file name whisper.cpp's tools and steno use for a named model.
std::string ModelFileName(std::string_view name);

// The known names joined by ", " for messages ("tiny, tiny.en, base, ...").
std::string KnownModelNames();

}  // namespace steno::models
