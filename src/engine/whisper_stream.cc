#include "engine/whisper_stream.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include <spdlog/spdlog.h>
#include <whisper.h>

#include "engine/chunk_plan.h"
#include "engine/speech_timeline.h"
#include "engine/vad.h"
#include "engine/whisper_log.h"
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
  double duration = 0;  // of the audio, in seconds: no segment ends after it
  // Of the whisper_full call in progress (one per speech group with VAD, else one):
  const SpeechTimeline* timeline = nullptr;     // with VAD: maps its decoded times back
  int first_id = 0;                             // its first segment's id in the transcript
  int emitted = 0;                              // its segments handed to on_segment so far
  double progress_from = 0, progress_span = 1;  // the share of the run before it, and its own
  bool aborted = false;
  int encodes = 0;  // encoder passes (30 s windows) of the run so far
  int steps = 0;    // decoder steps of the run so far (one per token per decoder)
};

double StartTime(const RunContext& rc, int64_t centiseconds) {
  const double t = static_cast<double>(centiseconds) / 100.0;
  return rc.timeline ? rc.timeline->StartToOriginal(t) : t;
}

double EndTime(const RunContext& rc, int64_t centiseconds) {
  const double t = static_cast<double>(centiseconds) / 100.0;
  return rc.timeline ? rc.timeline->EndToOriginal(t) : t;
}

struct TextToken {
  std::string piece;
  int64_t t0, t1, t_dtw;  // centiseconds in the decoded audio; t_dtw -1: not computed
  float p;
};

// Words from a segment's text tokens: a token that starts with a space begins a new word, others
// continue the current one. With DTW (the model's word_alignment()), a word starts at its first
// token's DTW time and ends where the next word starts (the last one at the segment's end), kept
// inside the segment and in order; otherwise it spans its tokens' timestamps.
std::vector<Word> ReadWords(const RunContext& rc, const std::vector<TextToken>& tokens,
                            const Segment& seg) {
  std::vector<Word> words;
  std::vector<size_t> first;  // each word's first token
  for (size_t k = 0; k < tokens.size(); ++k) {
    const TextToken& tk = tokens[k];
    if (words.empty() || (!tk.piece.empty() && tk.piece[0] == ' ')) {
      words.push_back(Word{tk.piece, StartTime(rc, tk.t0), EndTime(rc, tk.t1), tk.p});
      first.push_back(k);
    } else {
      words.back().text += tk.piece;
      words.back().end = EndTime(rc, tk.t1);
      words.back().probability = std::min(words.back().probability, tk.p);
    }
  }
  const bool dtw =
      !rc.model->word_alignment().empty() &&
      std::all_of(tokens.begin(), tokens.end(), [](const TextToken& t) { return t.t_dtw >= 0; });
  if (!dtw) return words;
  double floor = seg.start;
  for (size_t w = 0; w < words.size(); ++w) {
    const double start = StartTime(rc, tokens[first[w]].t_dtw);
    const double end = w + 1 < words.size() ? EndTime(rc, tokens[first[w + 1]].t_dtw) : seg.end;
    words[w].start = std::clamp(start, floor, seg.end);
    words[w].end = std::clamp(end, words[w].start, seg.end);
    floor = words[w].end;
  }
  return words;
}

// Reads segment i out of the state, with the per-segment statistics OpenAI reports.
Segment ReadSegment(const RunContext& rc, int i) {
  whisper_context* ctx = rc.model->ctx();
  whisper_state* st = rc.state;
  const whisper_token eot = whisper_token_eot(ctx);

  Segment seg;
  seg.id = rc.first_id + i;
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
  std::vector<TextToken> text_tokens;
  const int n_tokens = whisper_full_n_tokens_from_state(st, i);
  for (int j = 0; j < n_tokens; ++j) {
    whisper_token_data td = whisper_full_get_token_data_from_state(st, i, j);
    if (td.id >= eot) continue;  // special and timestamp tokens
    seg.tokens.push_back(td.id);
    logprob_sum += td.plog;
    if (!rc.params->word_timestamps) continue;
    text_tokens.push_back(TextToken{whisper_full_get_token_text_from_state(ctx, st, i, j), td.t0,
                                    td.t1, td.t_dtw, td.p});
  }
  const auto n_text = seg.tokens.size();
  seg.avg_logprob =
      n_text > 0 ? static_cast<float>(logprob_sum / static_cast<double>(n_text)) : 0.0f;
  if (rc.params->word_timestamps) seg.words = ReadWords(rc, text_tokens, seg);
  ClampToDuration(seg, rc.duration);
  return seg;
}

// Hands the segments decoded since the last call to on_segment. whisper.cpp's new-segment
// callback cannot be trusted for which ones are new: with DTW it passes a segment index as the
// count, and after the first window none at all. So the callback, each window's start and the
// end of the run all flush whatever was not handed out yet (each window's segments are final
// before the next window starts).
void FlushSegments(RunContext* rc) {
  if (!rc->callbacks->on_segment) return;
  const int n = whisper_full_n_segments_from_state(rc->state);
  for (; rc->emitted < n; ++rc->emitted) rc->callbacks->on_segment(ReadSegment(*rc, rc->emitted));
}

void OnNewSegment(whisper_context*, whisper_state*, int, void* user) {
  FlushSegments(static_cast<RunContext*>(user));
}

void OnProgress(whisper_context*, whisper_state*, int percent, void* user) {
  auto* rc = static_cast<RunContext*>(user);
  if (!rc->callbacks->on_progress) return;
  const double done = rc->progress_from + rc->progress_span * percent / 100.0;
  rc->callbacks->on_progress(std::clamp(static_cast<int>(done * 100.0), 0, 100));
}

bool ShouldAbort(RunContext* rc) {
  if (!rc->aborted && rc->callbacks->should_abort && rc->callbacks->should_abort()) {
    rc->aborted = true;
    AbortedRunLogs::MarkAborted();
  }
  return rc->aborted;
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
  return vad_->Detect(pcm, params.vad.value_or(VadSettings{}));
}

std::string WhisperStream::WordTiming() const {
  return model_->word_alignment().empty() ? "tokens" : "dtw";
}

namespace {

// whisper.cpp's parameters for one whisper_full call of `rc`'s run; `language` must outlive it.
whisper_full_params FullParams(RunContext& rc, const std::string& language) {
  const DecodeParams& params = *rc.params;
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
    auto* rc = static_cast<RunContext*>(user);
    FlushSegments(rc);
    if (ShouldAbort(rc)) return false;
    ++rc->encodes;
    return true;
  };
  wp.encoder_begin_callback_user_data = &rc;
  wp.logits_filter_callback = [](whisper_context*, whisper_state*, const whisper_token_data*, int,
                                 float*, void* user) { ++static_cast<RunContext*>(user)->steps; };
  wp.logits_filter_callback_user_data = &rc;
  return wp;
}

// One whisper_full call over `input` (decoded with `timeline`'s times when set), its segments
// appended to `out`; sets out.language from the first call. Errors: as WhisperStream::Run's.
Status DecodeInto(RunContext& rc, std::span<const float> input, const SpeechTimeline* timeline,
                  const std::string& language, Transcript& out) {
  rc.timeline = timeline;
  rc.first_id = static_cast<int>(out.segments.size());
  rc.emitted = 0;
  const whisper_full_params wp = FullParams(rc, language);
  // whisper_full_params.vad is not used: whisper.cpp 1.9.1 applies it in whisper_full only (on the
  // context's default state), never in whisper_full_with_state, so each stream does it itself.
  int rcode = 0;
  {
    AbortedRunLogs quiet_if_aborted;
    rcode = whisper_full_with_state(rc.model->ctx(), rc.state, wp, input.data(),
                                    static_cast<int>(input.size()));
  }
  if (rc.aborted) return Error(ErrorKind::kCancelled, "aborted", "transcription was stopped");
  if (rcode != 0) {
    return Error(ErrorKind::kInternal, "decode_failed",
                 "whisper.cpp failed to decode the audio (code " + std::to_string(rcode) + ")");
  }
  FlushSegments(&rc);
  if (out.language.empty()) {
    const int lang_id = whisper_full_lang_id_from_state(rc.state);
    out.language = lang_id >= 0 ? whisper_lang_str(lang_id) : language;
  }
  const int n = whisper_full_n_segments_from_state(rc.state);
  for (int i = 0; i < n; ++i) out.segments.push_back(ReadSegment(rc, i));
  return {};
}

}  // namespace

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
  const std::string language = multilingual ? params.language : "en";
  std::optional<std::vector<SpeechRegion>> speech = params.speech;
  if (!speech && params.vad) {
    auto regions = DetectSpeech(pcm, params);
    if (!regions.ok()) return regions.error();
    speech = std::move(regions).value();
  }
  Transcript t;
  t.task = params.translate ? "translate" : "transcribe";
  t.duration = duration;
  t.has_words = params.word_timestamps;
  if (t.has_words) t.word_timing = WordTiming();
  double decoded = 0;
  if (!speech) {
    if (auto st = DecodeInto(rc, pcm, nullptr, language, t); !st) return st.error();
    decoded = duration;
  } else {
    // Each group of speech that fits one window is decoded alone (as one chunk of a chunked job
    // is), so no window straddles a silence cut and a group costs one encoder pass, or a few
    // when whisper's timestamps stop short of its end.
    const std::vector<SpeechChunk> groups = PlanChunks(pcm, std::move(*speech), kWindowSeconds);
    double total = 0;  // seconds to decode, for the progress
    for (const SpeechChunk& g : groups) total += g.decoded_s;
    for (const SpeechChunk& g : groups) {
      const SpeechTimeline timeline(pcm, g.speech);
      rc.progress_span = g.decoded_s / total;
      if (auto st = DecodeInto(rc, timeline.samples(), &timeline, language, t); !st) {
        return st.error();
      }
      rc.progress_from += rc.progress_span;
      decoded += static_cast<double>(timeline.samples().size()) / 16000.0;
    }
    if (t.language.empty()) t.language = language == "auto" ? "en" : language;  // no speech
  }
  spdlog::debug("whisper: {:.2f} s of {:.2f} s decoded in {} encoder passes, {} decoder steps",
                decoded, duration, rc.encodes, rc.steps);
  return t;
}

}  // namespace steno::engine
