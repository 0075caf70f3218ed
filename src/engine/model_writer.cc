// How the random model is made (the format itself is whisper.cpp's whisper_model_load and
// models/convert-pt-to-ggml.py):
//
//   magic "ggml" | 11 x int32 hparams | mel filters: int32 n_mel, int32 n_fft, float[n_mel*n_fft]
//   | vocab: int32 count, then per token uint32 len + bytes
//   | tensors: int32 n_dims, int32 name_len, int32 ttype, int32 ne[n_dims], name, data (no padding)
//
// - Vocab: the official files hold 50256 (English) or 50257 (multilingual) tokens; whisper.cpp
//   adds the special tokens (eot, sot, languages, timestamps) after them itself, so the ids of
//   those line up only with these counts. Every token written is printable ASCII, so whatever a
//   random model decodes is valid UTF-8; the first 95 are the single characters ' '..'~' (" " must
//   exist: whisper.cpp looks it up to suppress blanks) and the rest are unique pseudo-words.
// - Mel filters: the real Slaney-normalised filter bank (librosa.filters.mel, sr 16000, n_fft
//   400), so the spectrogram the encoder sees is the one a real model would see.
// - Weights: PyTorch's default initialisation (uniform +-1/sqrt(fan_in) for linear and conv
//   weights and biases, layer norms 1 and 0) and Whisper's fixed sinusoids for the encoder
//   position embedding. The decoder is shaped so that greedy decoding behaves like a real model's
//   (a few words, a timestamp, more words, end of text) instead of the two failure modes of naive
//   random weights, which both make every window decode its maximum of ~220 tokens (slow, and
//   whisper.cpp then retries at higher temperatures):
//   * Repetition ("dusi dusi dusi ..."): the output layer is the (tied) token embedding, so the
//     token just fed in scores highest against itself, and pairs of tokens score each other
//     symmetrically. A unit-variance decoder position embedding changes the hidden state at
//     every step and random signs in decoder.ln's gain break the symmetry: the decoded tokens
//     form a pseudo-random walk through the vocabulary.
//   * Never ending: with ~50k text tokens, the end-of-text and timestamp tokens would win only by
//     chance. Channel 0 of the final layer norm is a constant 1 (gain 0, bias 1), so channel 0 of
//     each token's embedding row is a fixed logit bias for that token: end-of-text gets a large
//     one (and nothing else, so its logit is exactly that), timestamps a small one. In units of
//     the spread of the random logits (sqrt(n_text_state)), the values below give a few segments
//     of a few words per 30 s window; whisper.cpp's timestamp rules do the rest.
// - Randomness: each tensor has its own xoshiro256** stream seeded from (seed, tensor name), so a
//   tensor's bytes do not depend on the others. f16 values come from a 65536-entry table per
//   tensor (16 random bits -> one f16), which keeps a 3 GB large-v3 at disk speed.
#include "engine/model_writer.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <ggml.h>

namespace steno::engine {
namespace {

constexpr uint32_t kGgmlMagic = 0x67676d6c;  // "ggml"
constexpr int kNFft = 201;                   // WHISPER_N_FFT / 2 + 1
constexpr int kEnglishVocab = 51864;
constexpr int kFirstPseudoWord = 95;  // ids below are the printable ASCII characters

// ---- Randomness --------------------------------------------------------------------------------

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed) {
    for (auto& word : s_) word = SplitMix64(seed);
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<uint64_t, 4> s_;
};

uint64_t TensorSeed(uint64_t seed, const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ULL;
  uint64_t state = seed;
  return SplitMix64(state) ^ h;
}

// ---- Presets -----------------------------------------------------------------------------------

ModelHparams Dims(int32_t vocab, int32_t state, int32_t heads, int32_t audio_layers,
                  int32_t text_layers, int32_t mels) {
  ModelHparams h;
  h.n_vocab = vocab;
  h.n_audio_ctx = 1500;
  h.n_audio_state = state;
  h.n_audio_head = heads;
  h.n_audio_layer = audio_layers;
  h.n_text_ctx = 448;
  h.n_text_state = state;
  h.n_text_head = heads;
  h.n_text_layer = text_layers;
  h.n_mels = mels;
  h.ftype = 1;
  return h;
}

const std::vector<std::pair<std::string, ModelHparams>>& Presets() {
  static const std::vector<std::pair<std::string, ModelHparams>> presets = {
      // 3 text layers, not 2: whisper.cpp takes a 2-text-layer model with n_vocab != 51866 for
      // distil-whisper and forces no_timestamps, which gives garbage segment start times.
      {"tiny-test", Dims(51864, 64, 2, 2, 3, 80)},
      {"tiny", Dims(51865, 384, 6, 4, 4, 80)},
      {"tiny.en", Dims(51864, 384, 6, 4, 4, 80)},
      {"base", Dims(51865, 512, 8, 6, 6, 80)},
      {"base.en", Dims(51864, 512, 8, 6, 6, 80)},
      {"small", Dims(51865, 768, 12, 12, 12, 80)},
      {"medium", Dims(51865, 1024, 16, 24, 24, 80)},
      {"large-v3", Dims(51866, 1280, 20, 32, 32, 128)},
      {"large-v3-turbo", Dims(51866, 1280, 20, 32, 4, 128)},
  };
  return presets;
}

// ---- Tensors -----------------------------------------------------------------------------------

// kOutputGain / kOutputBias are decoder.ln's weight and bias, kTokenEmbedding the token
// embedding: together they shape the logits (see PlanTensors).
enum class Init { kUniform, kOnes, kZeros, kSinusoids, kOutputGain, kOutputBias, kTokenEmbedding };

struct PlannedTensor {
  TensorSpec spec;
  Init init = Init::kUniform;
  float bound = 0;  // kUniform: values in [-bound, bound)
};

std::vector<PlannedTensor> PlanTensors(const ModelHparams& h) {
  std::vector<PlannedTensor> out;
  auto add = [&out](std::string name, std::initializer_list<int64_t> ne, bool f16, Init init,
                    float bound = 0) {
    PlannedTensor t;
    t.spec.name = std::move(name);
    t.spec.n_dims = static_cast<int>(ne.size());
    std::copy(ne.begin(), ne.end(), t.spec.ne);
    t.spec.f16 = f16;
    t.init = init;
    t.bound = bound;
    out.push_back(std::move(t));
  };
  auto fan_in = [](int64_t n) {
    return static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)));
  };
  // Linear layer: weight [in -> out] f16, bias f32 (key projections have no bias in Whisper).
  auto linear = [&](const std::string& prefix, int64_t in, int64_t out_dim, bool bias) {
    add(prefix + ".weight", {in, out_dim}, true, Init::kUniform, fan_in(in));
    if (bias) add(prefix + ".bias", {out_dim}, false, Init::kUniform, fan_in(in));
  };
  auto layer_norm = [&](const std::string& prefix, int64_t n) {
    add(prefix + ".weight", {n}, false, Init::kOnes);
    add(prefix + ".bias", {n}, false, Init::kZeros);
  };
  auto attention = [&](const std::string& prefix, int64_t n) {
    linear(prefix + ".query", n, n, true);
    linear(prefix + ".key", n, n, false);
    linear(prefix + ".value", n, n, true);
    linear(prefix + ".out", n, n, true);
  };
  auto mlp = [&](const std::string& prefix, int64_t n) {
    linear(prefix + ".0", n, 4 * n, true);
    linear(prefix + ".2", 4 * n, n, true);
  };

  const int64_t na = h.n_audio_state;
  add("encoder.positional_embedding", {na, h.n_audio_ctx}, false, Init::kSinusoids);
  // Conv biases are [1, n] (convert-pt-to-ggml.py reshapes them); the loader checks the shape.
  add("encoder.conv1.weight", {3, h.n_mels, na}, true, Init::kUniform, fan_in(3 * h.n_mels));
  add("encoder.conv1.bias", {1, na}, false, Init::kUniform, fan_in(3 * h.n_mels));
  add("encoder.conv2.weight", {3, na, na}, true, Init::kUniform, fan_in(3 * na));
  add("encoder.conv2.bias", {1, na}, false, Init::kUniform, fan_in(3 * na));
  for (int i = 0; i < h.n_audio_layer; ++i) {
    const std::string b = "encoder.blocks." + std::to_string(i);
    attention(b + ".attn", na);
    layer_norm(b + ".attn_ln", na);
    mlp(b + ".mlp", na);
    layer_norm(b + ".mlp_ln", na);
  }
  layer_norm("encoder.ln_post", na);

  const int64_t nt = h.n_text_state;
  add("decoder.positional_embedding", {nt, h.n_text_ctx}, false, Init::kUniform, 1.7320508f);
  add("decoder.token_embedding.weight", {nt, h.n_vocab}, true, Init::kTokenEmbedding, 1.7320508f);
  for (int i = 0; i < h.n_text_layer; ++i) {
    const std::string b = "decoder.blocks." + std::to_string(i);
    attention(b + ".attn", nt);
    layer_norm(b + ".attn_ln", nt);
    attention(b + ".cross_attn", nt);
    layer_norm(b + ".cross_attn_ln", nt);
    mlp(b + ".mlp", nt);
    layer_norm(b + ".mlp_ln", nt);
  }
  add("decoder.ln.weight", {nt}, false, Init::kOutputGain);
  add("decoder.ln.bias", {nt}, false, Init::kOutputBias);
  return out;
}

// ---- Mel filters and vocab ---------------------------------------------------------------------

double HzToMelSlaney(double hz) {
  constexpr double kFSp = 200.0 / 3, kMinLogHz = 1000.0, kMinLogMel = kMinLogHz / kFSp;
  const double logstep = std::log(6.4) / 27.0;
  return hz < kMinLogHz ? hz / kFSp : kMinLogMel + std::log(hz / kMinLogHz) / logstep;
}

double MelToHzSlaney(double mel) {
  constexpr double kFSp = 200.0 / 3, kMinLogHz = 1000.0, kMinLogMel = kMinLogHz / kFSp;
  const double logstep = std::log(6.4) / 27.0;
  return mel < kMinLogMel ? mel * kFSp : kMinLogHz * std::exp(logstep * (mel - kMinLogMel));
}

// librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels) (htk=False, norm="slaney"), row-major.
std::vector<float> MelFilters(int n_mels) {
  const double max_mel = HzToMelSlaney(8000.0);
  std::vector<double> mel_hz(n_mels + 2);
  for (int i = 0; i < n_mels + 2; ++i) mel_hz[i] = MelToHzSlaney(max_mel * i / (n_mels + 1));
  std::vector<float> out(static_cast<size_t>(n_mels) * kNFft);
  for (int m = 0; m < n_mels; ++m) {
    const double enorm = 2.0 / (mel_hz[m + 2] - mel_hz[m]);
    for (int k = 0; k < kNFft; ++k) {
      const double f = 8000.0 * k / (kNFft - 1);
      const double lower = (f - mel_hz[m]) / (mel_hz[m + 1] - mel_hz[m]);
      const double upper = (mel_hz[m + 2] - f) / (mel_hz[m + 2] - mel_hz[m + 1]);
      out[static_cast<size_t>(m) * kNFft + k] =
          static_cast<float>(std::max(0.0, std::min(lower, upper)) * enorm);
    }
  }
  return out;
}

// Token `id` of the written vocab: printable ASCII, unique, never empty.
std::string TokenText(int id) {
  if (id < kFirstPseudoWord) return std::string(1, static_cast<char>(' ' + id));
  static constexpr std::string_view kConsonants = "bdfgklmnprstvz";
  static constexpr std::string_view kVowels = "aeiou";
  const int k = id - kFirstPseudoWord;
  std::string word = (k % 4 != 0) ? " " : "";  // most words start a new word, like GPT-2's
  // Bijective base-70 numeral of k/4 + 1 in consonant-vowel syllables: distinct numbers give
  // distinct words.
  const int kSyllables = static_cast<int>(kConsonants.size() * kVowels.size());
  for (int m = k / 4 + 1; m > 0; m = (m - 1) / kSyllables) {
    const int digit = (m - 1) % kSyllables;
    word += kConsonants[digit / kVowels.size()];
    word += kVowels[digit % kVowels.size()];
  }
  return word;
}

// ---- Output ------------------------------------------------------------------------------------

// A file being written; remembers the first error so call sites need not check each write.
class Output {
 public:
  explicit Output(const std::string& path) : file_(std::fopen(path.c_str(), "wb")) {
    if (!file_) err_ = errno;
  }
  ~Output() {
    if (file_) std::fclose(file_);
  }
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  void Write(const void* data, size_t n) {
    if (err_ || n == 0) return;
    if (std::fwrite(data, 1, n, file_) != n) err_ = errno ? errno : EIO;
    bytes_ += static_cast<int64_t>(n);
  }
  void I32(int32_t v) { Write(&v, sizeof v); }
  void Str(const std::string& s) { Write(s.data(), s.size()); }

  // Flushes, syncs and closes; returns 0 or the first errno.
  int Finish() {
    if (file_) {
      if (!err_ && std::fflush(file_) != 0) err_ = errno;
      if (!err_ && ::fsync(::fileno(file_)) != 0) err_ = errno;
      if (std::fclose(file_) != 0 && !err_) err_ = errno;
      file_ = nullptr;
    }
    return err_;
  }
  int error() const { return err_; }
  int64_t bytes() const { return bytes_; }

 private:
  std::FILE* file_;
  int err_ = 0;
  int64_t bytes_ = 0;
};

// The logit bias of token `id` in units of the spread of the random logits (see PlanTensors).
float LogitBias(int64_t id, int64_t n_vocab) {
  // End of text: above the typical best text logit (~4.2 sd of 50k draws) only rarely, so it
  // mostly wins right after a closing timestamp, where whisper.cpp masks the text tokens.
  constexpr float eot = 3.3f;
  // Timestamps: whisper.cpp forces one when their summed probability beats the best text token;
  // 0.4 sd makes that happen every ~5-15 tokens.
  constexpr float ts = 0.4f;
  const int64_t eot_id = n_vocab > kEnglishVocab ? 50257 : 50256;
  const int64_t beg_id = n_vocab - 1501;  // <|0.00|>; 1501 timestamps up to <|30.00|>
  if (id == eot_id) return eot;
  if (id >= beg_id) return ts;
  return 0.0f;
}

// Sets channel 0 of each token's embedding row to its logit bias, and EOT's other channels to 0
// so its logit is exactly its bias. `first` is the element index of buf[0] in the tensor.
void PatchTokenEmbedding(const TensorSpec& spec, int64_t first, ggml_fp16_t* buf, int64_t count) {
  const int64_t n = spec.ne[0], n_vocab = spec.ne[1];
  const float sigma = std::sqrt(static_cast<float>(std::max<int64_t>(1, n - 1)));
  const int64_t eot_id = n_vocab > kEnglishVocab ? 50257 : 50256;
  const ggml_fp16_t zero = ggml_fp32_to_fp16(0.0f);
  for (int64_t e = std::max(first, eot_id * n); e < std::min(first + count, (eot_id + 1) * n);
       ++e) {
    buf[e - first] = zero;
  }
  for (int64_t row = (first + n - 1) / n; row * n < first + count; ++row) {
    buf[row * n - first] = ggml_fp32_to_fp16(LogitBias(row, n_vocab) * sigma);
  }
}

void WriteTensorData(Output& out, const PlannedTensor& t, uint64_t seed) {
  constexpr size_t kChunkBytes = 1 << 20;
  Xoshiro256 rng(TensorSeed(seed, t.spec.name));
  const int64_t n = t.spec.Elements();

  if (t.spec.f16) {  // every f16 tensor is uniform (the token embedding then patched)
    std::vector<ggml_fp16_t> table(65536);
    for (int k = 0; k < 65536; ++k) {
      table[k] = ggml_fp32_to_fp16(static_cast<float>(k - 32768) * (t.bound / 32768.0f));
    }
    std::vector<ggml_fp16_t> buf(kChunkBytes / sizeof(ggml_fp16_t));
    for (int64_t done = 0; done < n && !out.error();) {
      const int64_t count = std::min<int64_t>(n - done, static_cast<int64_t>(buf.size()));
      for (int64_t i = 0; i < count; i += 4) {
        const uint64_t bits = rng.Next();
        for (int64_t j = 0; j < 4 && i + j < count; ++j)
          buf[i + j] = table[(bits >> (16 * j)) & 0xffff];
      }
      if (t.init == Init::kTokenEmbedding) PatchTokenEmbedding(t.spec, done, buf.data(), count);
      out.Write(buf.data(), static_cast<size_t>(count) * sizeof(ggml_fp16_t));
      done += count;
    }
    return;
  }

  // f32 tensors are small (at most a position embedding): build them whole.
  std::vector<float> data(static_cast<size_t>(n));
  switch (t.init) {
    case Init::kOnes: std::fill(data.begin(), data.end(), 1.0f); break;
    case Init::kZeros: std::fill(data.begin(), data.end(), 0.0f); break;
    case Init::kOutputGain:  // channel 0 carries the logit bias alone; random signs elsewhere
      for (auto& v : data) v = (rng.Next() >> 63) ? 1.0f : -1.0f;
      data[0] = 0.0f;
      break;
    case Init::kOutputBias:
      std::fill(data.begin(), data.end(), 0.0f);
      data[0] = 1.0f;
      break;
    case Init::kTokenEmbedding: break;  // f16, handled above
    case Init::kUniform:
      for (auto& v : data) {
        const int64_t r = static_cast<int64_t>(rng.Next() >> 40) - (1 << 23);  // 24 random bits
        v = static_cast<float>(r) * (t.bound / static_cast<float>(1 << 23));
      }
      break;
    case Init::kSinusoids: {  // whisper/model.py sinusoids(length, channels): [sin | cos] per row
      const int64_t channels = t.spec.ne[0], length = t.spec.ne[1], half = channels / 2;
      const double step = std::log(10000.0) / static_cast<double>(std::max<int64_t>(1, half - 1));
      for (int64_t pos = 0; pos < length; ++pos) {
        float* row = data.data() + pos * channels;
        for (int64_t c = 0; c < half; ++c) {
          const double angle = static_cast<double>(pos) * std::exp(-step * static_cast<double>(c));
          row[c] = static_cast<float>(std::sin(angle));
          row[half + c] = static_cast<float>(std::cos(angle));
        }
        if (channels % 2) row[channels - 1] = 0.0f;
      }
      break;
    }
  }
  out.Write(data.data(), data.size() * sizeof(float));
}

Error DimsError(const std::string& message) {
  return Error(ErrorKind::kBadInput, "bad_model_dims", message);
}

}  // namespace

const std::vector<std::string>& ModelPresetNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& [name, dims] : Presets()) v.push_back(name);
    return v;
  }();
  return names;
}

Result<ModelHparams> ModelPreset(std::string_view name) {
  for (const auto& [preset, dims] : Presets()) {
    if (preset == name) return dims;
  }
  std::string valid;
  for (const auto& n : ModelPresetNames()) valid += (valid.empty() ? "" : ", ") + n;
  return Error(ErrorKind::kBadInput, "unknown_preset",
               "unknown model preset '" + std::string(name) + "' (valid: " + valid + ")");
}

Status CheckWritableHparams(const ModelHparams& h) {
  for (const auto& [field, value] : NamedDims(h)) {
    if (value <= 0)
      return DimsError(std::string(field) + " must be positive, got " + std::to_string(value));
  }
  if (h.n_vocab < kEnglishVocab || h.n_vocab > kEnglishVocab + 2) {
    return DimsError("n_vocab must be 51864 (English-only), 51865 or 51866 (multilingual), got " +
                     std::to_string(h.n_vocab));
  }
  if (h.n_audio_ctx < 1500) {
    return DimsError(
        "n_audio_ctx must be at least 1500 (a 30 s window is 3000 mel frames, halved "
        "by the encoder's conv stride), got " +
        std::to_string(h.n_audio_ctx));
  }
  if (h.n_text_ctx < 8)
    return DimsError("n_text_ctx must be at least 8, got " + std::to_string(h.n_text_ctx));
  if (h.n_audio_state != h.n_text_state) {
    return DimsError("n_audio_state (" + std::to_string(h.n_audio_state) + ") and n_text_state (" +
                     std::to_string(h.n_text_state) + ") must be equal: whisper.cpp requires it");
  }
  if (h.n_audio_state % h.n_audio_head != 0) {
    return DimsError("n_audio_state " + std::to_string(h.n_audio_state) +
                     " is not divisible by n_audio_head " + std::to_string(h.n_audio_head));
  }
  if (h.n_text_state % h.n_text_head != 0) {
    return DimsError("n_text_state " + std::to_string(h.n_text_state) +
                     " is not divisible by n_text_head " + std::to_string(h.n_text_head));
  }
  if (h.n_audio_layer > 1024 || h.n_text_layer > 1024)
    return DimsError("at most 1024 layers are supported");
  if (h.n_mels > 1024)
    return DimsError("n_mels must be at most 1024, got " + std::to_string(h.n_mels));
  if (h.ftype != 1) {
    return DimsError(
        "only ftype 1 (f16) can be written: whisper.cpp crashes on f32 (ftype 0) "
        "random models, got " +
        std::to_string(h.ftype));
  }
  // 4 * n_state^2 (the MLP) and n_state * n_vocab (the token embedding) are the largest tensors.
  const int64_t s = h.n_audio_state;
  const int64_t largest = std::max({4 * s * s, s * h.n_vocab, s * h.n_audio_ctx, s * h.n_text_ctx});
  if (largest > INT32_MAX) {
    return DimsError("a tensor would have " + std::to_string(largest) +
                     " elements; whisper.cpp supports at most 2^31 - 1");
  }
  return {};
}

std::vector<TensorSpec> WhisperTensorSpecs(const ModelHparams& hparams) {
  std::vector<TensorSpec> specs;
  for (auto& t : PlanTensors(hparams)) specs.push_back(std::move(t.spec));
  return specs;
}

int64_t RandomModelFileBytes(const ModelHparams& h) {
  int64_t bytes = 4 + 11 * 4;                                      // magic + hparams
  bytes += 8 + static_cast<int64_t>(h.n_mels) * kNFft * 4;         // mel filters
  const int n_tokens = h.n_vocab > kEnglishVocab ? 50257 : 50256;  // vocab
  bytes += 4;
  for (int i = 0; i < n_tokens; ++i) bytes += 4 + static_cast<int64_t>(TokenText(i).size());
  for (const auto& t : WhisperTensorSpecs(h)) {
    bytes += 12 + 4 * t.n_dims + static_cast<int64_t>(t.name.size()) + t.Bytes();
  }
  return bytes;
}

Result<int64_t> WriteRandomModel(const std::string& path, const ModelHparams& h, uint64_t seed) {
  if (auto ok = CheckWritableHparams(h); !ok) return ok.error();

  // Same directory as the target so the final rename is atomic (same filesystem).
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  int err = 0;
  int64_t bytes = 0;
  {
    Output out(tmp);
    out.I32(static_cast<int32_t>(kGgmlMagic));
    for (int32_t v :
         {h.n_vocab, h.n_audio_ctx, h.n_audio_state, h.n_audio_head, h.n_audio_layer, h.n_text_ctx,
          h.n_text_state, h.n_text_head, h.n_text_layer, h.n_mels, h.ftype}) {
      out.I32(v);
    }

    const std::vector<float> filters = MelFilters(h.n_mels);
    out.I32(h.n_mels);
    out.I32(kNFft);
    out.Write(filters.data(), filters.size() * sizeof(float));

    const int n_tokens = h.n_vocab > kEnglishVocab ? 50257 : 50256;
    out.I32(n_tokens);
    for (int i = 0; i < n_tokens; ++i) {
      const std::string token = TokenText(i);
      out.I32(static_cast<int32_t>(token.size()));
      out.Str(token);
    }

    for (const auto& t : PlanTensors(h)) {
      out.I32(t.spec.n_dims);
      out.I32(static_cast<int32_t>(t.spec.name.size()));
      out.I32(t.spec.f16 ? GGML_TYPE_F16 : GGML_TYPE_F32);
      for (int d = 0; d < t.spec.n_dims; ++d) out.I32(static_cast<int32_t>(t.spec.ne[d]));
      out.Str(t.spec.name);
      WriteTensorData(out, t, seed);
      if (out.error()) break;
    }
    bytes = out.bytes();
    err = out.Finish();
  }

  std::error_code ec;
  if (!err) {
    std::filesystem::rename(tmp, path, ec);
    if (ec) err = ec.value();
  }
  if (err) {
    std::filesystem::remove(tmp, ec);
    return Error(ErrorKind::kIo, "write_failed",
                 "cannot write model to " + path + ": " + std::strerror(err));
  }
  return bytes;
}

}  // namespace steno::engine
