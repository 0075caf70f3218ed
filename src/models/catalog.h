// The official whisper.cpp ggml models that `steno models pull` knows how to fetch and verify.
//
// A model's name ("tiny.en", "large-v3-turbo-q5_0") maps to the file ggml-NAME.bin, published
// under a base URL (Hugging Face by default). Only models whose SHA-1 is published by
// whisper.cpp itself are listed: a download is never accepted without a known hash.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace steno::models {

// Where whisper.cpp's own download script fetches from (models/download-ggml-model.sh).
inline constexpr std::string_view kDefaultBaseUrl =
    "https://huggingface.co/ggerganov/whisper.cpp/resolve/main";

struct CatalogEntry {
  std::string_view name;      // "tiny.en"
  std::string_view sha1;      // 40 lowercase hex digits of the whole file
  int64_t approx_bytes = 0;   // as published (rounded); for display and a free-space hint
  std::string_view base_url;  // the repository serving ggml-NAME.bin
  bool multilingual = true;   // false for ".en" models
};

// Every known model, smallest family first, in the order upstream lists them.
std::span<const CatalogEntry> Catalog();

// The entry for `name`, or nullptr when it is not a known model.
const CatalogEntry* FindCatalogEntry(std::string_view name);

// "ggml-NAME.bin": the file name whisper.cpp's tools and steno use for a named model.
std::string ModelFileName(std::string_view name);

// The known names joined by ", " for messages ("tiny, tiny.en, base, ...").
std::string KnownModelNames();

}  // namespace steno::models
