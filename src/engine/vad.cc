#include "engine/vad.h"

#include <filesystem>

#include <whisper.h>

#include "models/catalog.h"

namespace steno::engine {

Error VadModelMissing(const std::string& where) {
  const std::string name(models::kVadModelName);
  return Error(ErrorKind::kBadInput, "vad_model_missing",
               "voice activity detection needs the VAD model, which is not installed (" + where +
                   "); install it with `steno models pull " + name + "`");
}

Result<std::unique_ptr<VadDetector>> VadDetector::Load(const std::string& path) {
  std::error_code ec;
  if (path.empty() || !std::filesystem::is_regular_file(path, ec)) {
    return VadModelMissing(path.empty() ? "no models dir" : path);
  }
  whisper_vad_context_params cp = whisper_vad_default_context_params();
  cp.n_threads = 1;
  cp.use_gpu = false;  // tiny: the CPU is fast enough and needs no device memory
  whisper_vad_context* ctx = whisper_vad_init_from_file_with_params(path.c_str(), cp);
  if (!ctx) {
    return Error(ErrorKind::kBadInput, "bad_vad_model",
                 "whisper.cpp could not load the VAD model " + path);
  }
  return std::unique_ptr<VadDetector>(new VadDetector(ctx, path));
}

VadDetector::~VadDetector() {
  whisper_vad_free(ctx_);
}

Result<std::vector<SpeechRegion>> VadDetector::Detect(std::span<const float> pcm,
                                                      const VadSettings& settings) {
  whisper_vad_params vp = whisper_vad_default_params();
  vp.threshold = settings.threshold;
  vp.speech_pad_ms = settings.prefix_padding_ms;
  vp.min_silence_duration_ms = settings.silence_duration_ms;
  whisper_vad_segments* segs =
      whisper_vad_segments_from_samples(ctx_, vp, pcm.data(), static_cast<int>(pcm.size()));
  if (!segs) return Error(ErrorKind::kInternal, "vad_failed", "voice activity detection failed");
  std::vector<SpeechRegion> out;
  const int n = whisper_vad_segments_n_segments(segs);
  out.reserve(static_cast<size_t>(std::max(0, n)));
  for (int i = 0; i < n; ++i) {
    // whisper.cpp reports VAD times in centiseconds.
    out.push_back({whisper_vad_segments_get_segment_t0(segs, i) / 100.0,
                   whisper_vad_segments_get_segment_t1(segs, i) / 100.0});
  }
  whisper_vad_free_segments(segs);
  return out;
}

}  // namespace steno::engine
