// The whisper kind: whisper.cpp models (ggml files) served by `steno runner` child processes
// (process_backend.h). Its models are files in the models dir, sized before a load from the
// file's header (sched/estimator.h) and measured by the runner at load.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "engine/decode_params.h"
#include "runners/kind_registry.h"

namespace steno::runners {

inline constexpr const char* kWhisperKind = "whisper";

struct WhisperKindOptions {
  std::string exe;                       // the runner program; empty: RunnerProgram()
  engine::DecodeParams decode_defaults;  // beam size, threads, thresholds, ...
  bool warmup = true;                    // runners run one encoder pass before `ready`
  // Inputs (path, name) runners decode while their model loads (ProcessBackendOptions::prefetch).
  std::vector<std::pair<std::string, std::string>> prefetch;
  // Runners scheduled below this process (ProcessBackendOptions::runners_lower_priority).
  bool runners_lower_priority = true;
};

// The factory that builds the whisper kind's backend from the Runtime's context.
KindFactory WhisperKind(WhisperKindOptions options);

}  // namespace steno::runners
