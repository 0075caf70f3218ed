// A model's variants: the same file loaded another way is, to the scheduler, another model with
// its own runners (placed, charged, kept alive and evicted like any model's), known by a key
// made of the model's name and a suffix. Today one variant exists: "NAME#dtw", the whisper
// model loaded to time words by DTW (whisper.cpp sets that at load and turns flash attention
// off with it, so it is not the runner that serves requests without words).
//
// `steno models pull` never names a model with '#', so no pulled model's name looks like a key
// (a file copied in by hand as ggml-NAME#dtw.bin would be read as NAME's variant).
// The key is internal: server::Runtime::SchedulerModel chooses it for a job and resolves it;
// everything shown to users (jobs, the store, events) names the model (ModelOfKey).
#pragma once

#include <string>
#include <string_view>

namespace steno::models {

struct ModelVariant {
  std::string model;       // the model's name as the user gave it
  bool dtw_words = false;  // loaded to time words by DTW
};

// "tiny.en" for {"tiny.en", false}, "tiny.en#dtw" for {"tiny.en", true}.
std::string VariantKey(const ModelVariant& variant);
// The inverse of VariantKey: a key without a variant's suffix is the model itself.
ModelVariant ParseVariantKey(std::string_view key);
// The model a scheduler key names (ParseVariantKey(key).model).
std::string ModelOfKey(std::string_view key);
// Whether `key` names a variant rather than a model itself.
bool IsVariantKey(std::string_view key);
// How a runner of `kind` loaded with `dtw_words` times words, as users are shown it (GET
// /v1/runners' "word_timing", /metrics' word_timing label): "dtw" or "tokens" for a whisper
// runner, "" for other kinds.
std::string_view WordTimingOf(std::string_view kind, bool dtw_words);

}  // namespace steno::models
