// make_test_model: writes a random-weight Whisper model in whisper.cpp's ggml format (see
// engine/model_writer.h). Tests use the few-MB "tiny-test" preset; benchmarks write real sizes.
//
//   make_test_model --out PATH [--preset NAME] [--n-vocab N ... --n-mels N] [--seed N]
//
// Explicit dimensions override the preset's. Exit 0 on success (one line on stdout: path, size,
// dims), 2 on bad usage or dimensions, 1 when the file cannot be written.
#include <cstdio>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "engine/model_writer.h"

namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : "|") + item;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace steno::engine;
  CLI::App app{
      "Write a Whisper model with random weights in whisper.cpp's ggml format. Its text "
      "output is meaningless; it exists to test and benchmark without real weights.",
      "make_test_model"};
  std::string out;
  std::string preset = "tiny-test";
  uint64_t seed = 0;
  app.add_option("--out", out, "Path of the model file to write (replaced atomically)")->required();
  app.add_option("--preset", preset, "Dimensions to start from: " + Join(ModelPresetNames()))
      ->capture_default_str()
      ->check(CLI::IsMember(ModelPresetNames()));
  app.add_option("--seed", seed, "Seed of the weights: the same seed writes the same bytes")
      ->capture_default_str()
      ->check(CLI::Validator(  // CLI11 would wrap -1 to 2^64 - 1
          [](std::string& v) {
            const bool digits =
                !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
            return digits ? std::string() : "must be a non-negative integer, got " + v;
          },
          ""));

  // Overrides, in the file's hparams order.
  struct Override {
    const char* flag;
    int32_t ModelHparams::*field;
    std::optional<int32_t> value;
  };
  Override overrides[] = {
      {"--n-vocab", &ModelHparams::n_vocab, {}},
      {"--n-audio-ctx", &ModelHparams::n_audio_ctx, {}},
      {"--n-audio-state", &ModelHparams::n_audio_state, {}},
      {"--n-audio-head", &ModelHparams::n_audio_head, {}},
      {"--n-audio-layer", &ModelHparams::n_audio_layer, {}},
      {"--n-text-ctx", &ModelHparams::n_text_ctx, {}},
      {"--n-text-state", &ModelHparams::n_text_state, {}},
      {"--n-text-head", &ModelHparams::n_text_head, {}},
      {"--n-text-layer", &ModelHparams::n_text_layer, {}},
      {"--n-mels", &ModelHparams::n_mels, {}},
  };
  for (auto& o : overrides) {
    app.add_option(o.flag, o.value, std::string("Override the preset's ") + (o.flag + 2))
        ->group("Dimensions");
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }

  auto dims = ModelPreset(preset);
  if (!dims) {
    std::fprintf(stderr, "make_test_model: %s\n", dims.error().message.c_str());
    return kExitUsage;
  }
  ModelHparams h = *dims;
  for (const auto& o : overrides) {
    if (o.value) h.*o.field = *o.value;
  }
  if (auto ok = CheckWritableHparams(h); !ok) {
    std::fprintf(stderr, "make_test_model: %s\n", ok.error().message.c_str());
    return kExitUsage;
  }

  if (h.n_text_layer == 2 && h.n_vocab != 51866) {
    std::fprintf(stderr,
                 "make_test_model: note: whisper.cpp takes a model with 2 text layers for "
                 "distil-whisper and will force no_timestamps on it\n");
  }
  auto written = WriteRandomModel(out, h, seed);
  if (!written) {
    std::fprintf(stderr, "make_test_model: %s\n", written.error().message.c_str());
    return kExitFailed;
  }
  std::printf(
      "%s: %lld bytes (%.1f MB), vocab %d, audio ctx %d state %d heads %d layers %d, "
      "text ctx %d state %d heads %d layers %d, mels %d, f16, seed %llu\n",
      out.c_str(), static_cast<long long>(*written), static_cast<double>(*written) / 1e6, h.n_vocab,
      h.n_audio_ctx, h.n_audio_state, h.n_audio_head, h.n_audio_layer, h.n_text_ctx, h.n_text_state,
      h.n_text_head, h.n_text_layer, h.n_mels, static_cast<unsigned long long>(seed));
  return 0;
}
