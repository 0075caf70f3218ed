#include "engine/whisper_stream.h"

#include <zlib.h>

#include <cmath>
#include <optional>
#include <vector>

#include <whisper.h>

#include "engine/speech_timeline.h"
#include "engine/vad.h"
#include "engine/whisper_model.h"

namespace steno::engine {
namespace {

// OpenAI's compression_ratio: text bytes over zlib-compressed bytes. High values flag the
// repetitive output of a decoding loop.
float CompressionRatio(const std::string& text) {
  if (text.empty()) return 0;
  uLongf bound = compressBound(text.size());
  std::vector<Bytef> out(bound);
  if (compress2(out.data(), &bound, reinterpret_cast<const Bytef*>(text.data()), text.size(),
                Z_DEFAULT_COMPRESSION) != Z_OK ||
      bound == 0) {
    return 0;
  }
  return static_cast<float>(text.size()) / static_cast<float>(bound);
}

struct RunContext {
  const WhisperModel* model;
  whisper_state* state;
  const DecodeParams* params;
  const StreamCallbacks* callbacks;
  double duration = 0;                       // of the audio, in seconds: no segment ends after it
  const SpeechTimeline* timeline = nullptr;  // with VAD: maps decoded times back
  bool aborted = false;
};

double StartTime(const RunContext& rc, int64_t centiseconds) {
  const double t = static_cast<double>(centiseconds) / 100.0;
  return rc.timeline ? rc.timeline->StartToOriginal(t) : t;
}

double EndTime(const RunContext& rc, int64_t centiseconds) {
  const double t = static_cast<double>(centiseconds) / 100.0;
  return rc.timeline ? rc.timeline->EndToOriginal(t) : t;
}

// Reads segment i out of the state, with the per-segment statistics OpenAI reports.
Segment ReadSegment(const RunContext& rc, int i) {
  whisper_context* ctx = rc.model->ctx();
  whisper_state* st = rc.state;
  const whisper_token eot = whisper_token_eot(ctx);

  Segment seg;
  seg.id = i;
  int64_t t0 = whisper_full_get_segment_t0_from_state(st, i);
  int64_t t1 = whisper_full_get_segment_t1_from_state(st, i);
  seg.start = StartTime(rc, t0);
  seg.end = EndTime(rc, t1);
  // whisper.cpp does not expose the window offset; the segment's own start frame is the
  // closest thing it reports.
  seg.seek = static_cast<int>(t0);
  seg.text = whisper_full_get_segment_text_from_state(st, i);
  seg.temperature = rc.params->temperature;  // whisper.cpp does not report fallback temperatures
  seg.no_speech_prob = whisper_full_get_segment_no_speech_prob_from_state(st, i);
  seg.compression_ratio = CompressionRatio(seg.text);

  double logprob_sum = 0;
  int n_text = 0;
  Word* word = nullptr;
  const int n_tokens = whisper_full_n_tokens_from_state(st, i);
  for (int j = 0; j < n_tokens; ++j) {
    whisper_token_data td = whisper_full_get_token_data_from_state(st, i, j);
    if (td.id >= eot) continue;  // special and timestamp tokens
    seg.tokens.push_back(td.id);
    logprob_sum += td.plog;
    ++n_text;
    if (!rc.params->word_timestamps) continue;
    std::string piece = whisper_full_get_token_text_from_state(ctx, st, i, j);
    // A token that starts with a space begins a new word; others continue the current one.
    if (!word || (!piece.empty() && piece[0] == ' ')) {
      seg.words.push_back(Word{piece, StartTime(rc, td.t0), EndTime(rc, td.t1), td.p});
      word = &seg.words.back();
    } else {
      word->text += piece;
      word->end = EndTime(rc, td.t1);
      word->probability = std::min(word->probability, td.p);
    }
  }
  seg.avg_logprob = n_text > 0 ? static_cast<float>(logprob_sum / n_text) : 0.0f;
  ClampToDuration(seg, rc.duration);
  return seg;
}

void OnNewSegment(whisper_context*, whisper_state* state, int n_new, void* user) {
  auto* rc = static_cast<RunContext*>(user);
  if (!rc->callbacks->on_segment) return;
  const int n = whisper_full_n_segments_from_state(state);
  for (int i = n - n_new; i < n; ++i) rc->callbacks->on_segment(ReadSegment(*rc, i));
}

void OnProgress(whisper_context*, whisper_state*, int percent, void* user) {
  auto* rc = static_cast<RunContext*>(user);
  if (rc->callbacks->on_progress) rc->callbacks->on_progress(percent);
}

bool ShouldAbort(RunContext* rc) {
  if (!rc->aborted && rc->callbacks->should_abort && rc->callbacks->should_abort()) {
    rc->aborted = true;
  }
  return rc->aborted;
}

// The transcript of audio in which VAD found no speech: nothing decoded, nothing invented.
Transcript NoSpeech(const DecodeParams& params, double duration, const std::string& language) {
  Transcript t;
  t.task = params.translate ? "translate" : "transcribe";
  t.duration = duration;
  t.has_words = params.word_timestamps;
  t.language = language == "auto" ? "en" : language;
  return t;
}

}  // namespace

WhisperStream::WhisperStream(const WhisperModel* model, whisper_state* state, Footprint fp)
    : model_(model), state_(state), footprint_(fp) {}

WhisperStream::~WhisperStream() {
  if (state_) whisper_free_state(state_);
}

Result<std::vector<SpeechRegion>> WhisperStream::DetectSpeech(std::span<const float> pcm,
                                                              const DecodeParams& params) {
  if (!vad_ || vad_->path() != params.vad_model_path) {
    auto loaded = VadDetector::Load(params.vad_model_path);
    if (!loaded.ok()) return loaded.error();
    vad_ = std::move(loaded).value();
  }
  return vad_->Detect(pcm, *params.vad);
}

Result<Transcript> WhisperStream::Run(std::span<const float> pcm, const DecodeParams& params,
                                      const StreamCallbacks& callbacks) {
  if (auto st = ValidateDecodeParams(params); !st) return st.error();
  if (pcm.empty()) {
    return Error(ErrorKind::kBadInput, "empty_audio", "the audio contains no samples");
  }
  const bool multilingual = model_->multilingual();
  if (!multilingual && params.language != "auto" && params.language != "en") {
    return Error(ErrorKind::kBadInput, "language_unsupported",
                 "this model is English-only; language '" + params.language +
                     "' needs a multilingual model");
  }

  const double duration = static_cast<double>(pcm.size()) / 16000.0;
  RunContext rc{model_, state_, &params, &callbacks, duration};
  std::string language = multilingual ? params.language : "en";
  std::span<const float> input = pcm;
  std::optional<SpeechTimeline> timeline;
  if (params.vad) {
    auto regions = DetectSpeech(pcm, params);
    if (!regions.ok()) return regions.error();
    timeline.emplace(pcm, std::move(regions).value());
    if (timeline->samples().empty()) return NoSpeech(params, duration, language);
    input = timeline->samples();
    rc.timeline = &*timeline;
  }
  const auto strategy =
      params.beam_size > 1 ? WHISPER_SAMPLING_BEAM_SEARCH : WHISPER_SAMPLING_GREEDY;
  whisper_full_params wp = whisper_full_default_params(strategy);
  wp.n_threads = params.n_threads;
  wp.translate = params.translate;
  // English-only models always decode English; "auto" would waste a language-detection pass.
  wp.language = language.c_str();
  wp.detect_language = false;
  wp.initial_prompt = params.initial_prompt.empty() ? nullptr : params.initial_prompt.c_str();
  wp.temperature = params.temperature;
  wp.temperature_inc = params.temperature_inc;
  wp.greedy.best_of = params.best_of;
  wp.beam_search.beam_size = params.beam_size;
  wp.entropy_thold = params.entropy_thold;
  wp.logprob_thold = params.logprob_thold;
  wp.no_speech_thold = params.no_speech_thold;
  wp.token_timestamps = params.word_timestamps;
  wp.print_progress = false;
  wp.print_realtime = false;
  wp.print_special = false;
  wp.print_timestamps = false;
  wp.new_segment_callback = OnNewSegment;
  wp.new_segment_callback_user_data = &rc;
  wp.progress_callback = OnProgress;
  wp.progress_callback_user_data = &rc;
  wp.abort_callback = [](void* user) { return ShouldAbort(static_cast<RunContext*>(user)); };
  wp.abort_callback_user_data = &rc;
  wp.encoder_begin_callback = [](whisper_context*, whisper_state*, void* user) {
    return !ShouldAbort(static_cast<RunContext*>(user));
  };
  wp.encoder_begin_callback_user_data = &rc;

  // whisper_full_params.vad is not used: whisper.cpp 1.9.1 applies it in whisper_full only (on the
  // context's default state), never in whisper_full_with_state, so each stream does it itself.
  int rcode = whisper_full_with_state(model_->ctx(), state_, wp, input.data(),
                                      static_cast<int>(input.size()));
  if (rc.aborted) return Error(ErrorKind::kCancelled, "aborted", "transcription was stopped");
  if (rcode != 0) {
    return Error(ErrorKind::kInternal, "decode_failed",
                 "whisper.cpp failed to decode the audio (code " + std::to_string(rcode) + ")");
  }

  Transcript t;
  t.task = params.translate ? "translate" : "transcribe";
  t.duration = duration;
  t.has_words = params.word_timestamps;
  int lang_id = whisper_full_lang_id_from_state(state_);
  t.language = lang_id >= 0 ? whisper_lang_str(lang_id) : language;
  const int n = whisper_full_n_segments_from_state(state_);
  t.segments.reserve(n);
  for (int i = 0; i < n; ++i) t.segments.push_back(ReadSegment(rc, i));
  return t;
}

}  // namespace steno::engine
