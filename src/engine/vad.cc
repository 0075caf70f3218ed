#include "engine/vad.h"

#include <algorithm>
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
  whisper_vad_reset_state(ctx);  // the model's state is not zeroed when it is allocated
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

Result<std::vector<float>> VadDetector::FrameProbabilities(std::span<const float> pcm) {
  if (pcm.size() % kFrameSamples != 0) {
    return Error(
        ErrorKind::kBadInput, "bad_vad_frames",
        "streaming VAD reads whole frames of " + std::to_string(kFrameSamples) + " samples");
  }
  if (pcm.empty()) return std::vector<float>();
  if (!whisper_vad_detect_speech_no_reset(ctx_, pcm.data(), static_cast<int>(pcm.size()))) {
    return Error(ErrorKind::kInternal, "vad_failed", "voice activity detection failed");
  }
  const int n = whisper_vad_n_probs(ctx_);
  const float* probs = whisper_vad_probs(ctx_);
  return std::vector<float>(probs, probs + std::max(0, n));
}

void VadDetector::ResetState() {
  whisper_vad_reset_state(ctx_);
}

}  // namespace steno::engine
