// Whether a job runs with voice activity detection: the request's chunking_strategy
// (core/job.h) against the server's default (`steno serve --vad auto|on|off`,
// `--vad-min-duration`), decided once when the job is accepted and stored with it
// (JobParams::vad), so a restart or another node runs it the same way.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/job.h"
#include "core/result.h"

namespace steno::server {

struct VadPolicy {
  enum class Mode {
    kOff,   // no VAD unless a request asks for it
    kAuto,  // VAD for audio at least min_duration_s long, when the model is installed
    kOn,    // VAD for every job, when the model is installed
  };
  Mode mode = Mode::kAuto;
  double min_duration_s = 30;
  std::string model_path;  // the VAD model's file (models dir); missing: not installed
};

// "off" | "auto" | "on".
std::optional<VadPolicy::Mode> ParseVadMode(std::string_view text);
const char* VadModeName(VadPolicy::Mode mode);

// The VAD settings the job runs with, nullopt for none:
//   chunking_strategy "server_vad"  the request's settings; the model must be installed, else
//                                   kBadInput "vad_model_missing" (the message says to run
//                                   `steno models pull silero-v6.2.0`)
//   "auto"                          whisper.cpp's defaults if the model is installed, else none
//   "" (not given)                  the policy: kOn, or kAuto with audio_seconds at least
//                                   min_duration_s, get the defaults if the model is installed
Result<std::optional<VadSettings>> DecideVad(const JobParams& params, double audio_seconds,
                                             const VadPolicy& policy);

}  // namespace steno::server
