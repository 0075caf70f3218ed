#include "models/catalog.h"

#include <array>

namespace steno::models {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kGiB = int64_t{1} << 30;

// The tinydiarize model lives in its author's repository (download-ggml-model.sh switches the
// source for names containing "tdrz").
constexpr std::string_view kTdrzBaseUrl =
    "https://huggingface.co/akashmjn/tinydiarize-whisper.cpp/resolve/main";

// whisper.cpp's VAD models (models/download-vad-model.sh: "$src/resolve/main/ggml-NAME.bin").
constexpr std::string_view kVadBaseUrl = "https://huggingface.co/ggml-org/whisper-vad/resolve/main";

// Source: whisper.cpp 1.9.1, models/README.md ("Available models": name, disk size, SHA) and
// models/download-ggml-model.sh (names, base URL). Upstream's script also offers q5_1/q8_0
// variants (tiny-q5_1, base-q8_0, medium-q5_0, large-v3-turbo-q8_0, ...) but publishes no hash
// for them, so they are deliberately absent: use `steno models pull NAME --sha1 HEX` for those.
// Upstream publishes SHA-1; it is weak against a deliberate collision but is what the
// publisher gives, and HTTPS covers transport.
constexpr std::array kEntries{
    CatalogEntry{"tiny", "bd577a113a864445d4c299885e0cb97d4ba92b5f", 75 * kMiB, kDefaultBaseUrl,
                 true},
    CatalogEntry{"tiny.en", "c78c86eb1a8faa21b369bcd33207cc90d64ae9df", 75 * kMiB, kDefaultBaseUrl,
                 false},
    CatalogEntry{"base", "465707469ff3a37a2b9b8d8f89f2f99de7299dac", 142 * kMiB, kDefaultBaseUrl,
                 true},
    CatalogEntry{"base.en", "137c40403d78fd54d454da0f9bd998f78703390c", 142 * kMiB, kDefaultBaseUrl,
                 false},
    CatalogEntry{"small", "55356645c2b361a969dfd0ef2c5a50d530afd8d5", 466 * kMiB, kDefaultBaseUrl,
                 true},
    CatalogEntry{"small.en", "db8a495a91d927739e50b3fc1cc4c6b8f6c2d022", 466 * kMiB,
                 kDefaultBaseUrl, false},
    CatalogEntry{"small.en-tdrz", "b6c6e7e89af1a35c08e6de56b66ca6a02a2fdfa1", 465 * kMiB,
                 kTdrzBaseUrl, false},
    CatalogEntry{"medium", "fd9727b6e1217c2f614f9b698455c4ffd82463b4", 1536 * kMiB, kDefaultBaseUrl,
                 true},
    CatalogEntry{"medium.en", "8c30f0e44ce9560643ebd10bbe50cd20eafd3723", 1536 * kMiB,
                 kDefaultBaseUrl, false},
    CatalogEntry{"large-v1", "b1caaf735c4cc1429223d5a74f0f4d0b9b59a299", 29 * kGiB / 10,
                 kDefaultBaseUrl, true},
    CatalogEntry{"large-v2", "0f4c8e34f21cf1a914c59d8b3ce882345ad349d6", 29 * kGiB / 10,
                 kDefaultBaseUrl, true},
    CatalogEntry{"large-v2-q5_0", "00e39f2196344e901b3a2bd5814807a769bd1630", 11 * kGiB / 10,
                 kDefaultBaseUrl, true},
    CatalogEntry{"large-v3", "ad82bf6a9043ceed055076d0fd39f5f186ff8062", 29 * kGiB / 10,
                 kDefaultBaseUrl, true},
    CatalogEntry{"large-v3-q5_0", "e6e2ed78495d403bef4b7cff42ef4aaadcfea8de", 11 * kGiB / 10,
                 kDefaultBaseUrl, true},
    CatalogEntry{"large-v3-turbo", "4af2b29d7ec73d781377bfd1758ca957a807e941", 1536 * kMiB,
                 kDefaultBaseUrl, true},
    CatalogEntry{"large-v3-turbo-q5_0", "e050f7970618a659205450ad97eb95a18d69c9ee", 547 * kMiB,
                 kDefaultBaseUrl, true},
    // Upstream's download-vad-model.sh publishes no hash. The hub file's SHA-256
    // (2aa269b785eeb53a82983a20501ddf7c1d9c48e33ab63a41391ac6c9f7fb6987, 885,098 bytes, as its
    // Hugging Face LFS metadata lists it) is that of the copy tests use (../shared/models), so
    // this SHA-1 is the SHA-1 of those same bytes.
    CatalogEntry{"silero-v6.2.0", "470e5d9d094ddba2f0a512cecc3732a252188abd", 885'098, kVadBaseUrl,
                 true, ModelPurpose::kVoiceActivity},
};

}  // namespace

std::span<const CatalogEntry> Catalog() {
  return kEntries;
}

const CatalogEntry* FindCatalogEntry(std::string_view name) {
  for (const auto& e : kEntries) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

bool IsVoiceActivityModel(std::string_view name) {
  const CatalogEntry* e = FindCatalogEntry(name);
  return e != nullptr && e->purpose == ModelPurpose::kVoiceActivity;
}

std::string ModelFileName(std::string_view name) {
  return "ggml-" + std::string(name) + ".bin";
}

std::string KnownModelNames() {
  std::string out;
  for (const auto& e : kEntries) {
    if (!out.empty()) out += ", ";
    out += e.name;
  }
  return out;
}

}  // namespace steno::models
