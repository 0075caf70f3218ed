// Walks a ggml Whisper file the way whisper.cpp's whisper_model_load reads it (magic, hparams,
// mel filters, vocab, then tensor headers), but seeks past the tensor data instead of loading it.
// Every count read from the file is bounded before it is used, so a corrupt or hostile file can
// make this fail but not allocate or loop without limit.
#include "engine/model_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <ggml.h>

namespace steno::engine {
namespace {

constexpr uint32_t kGgmlMagic = 0x67676d6c;  // "ggml"
constexpr int32_t kQntVersionFactor = 1000;  // GGML_QNT_VERSION_FACTOR: ftype = qntvr * 1000 + type

// The tensor type a file's ftype stores its big matrices in, as whisper.cpp maps it
// (ggml_ftype_to_ggml_type, which aborts instead of returning on unknown values);
// GGML_TYPE_COUNT for ftypes whisper.cpp cannot load.
ggml_type FtypeToType(int32_t ftype) {
  switch (ftype) {
    case 0: return GGML_TYPE_F32;
    case 1: return GGML_TYPE_F16;
    case 2: return GGML_TYPE_Q4_0;
    case 3: return GGML_TYPE_Q4_1;
    case 7: return GGML_TYPE_Q8_0;
    case 8: return GGML_TYPE_Q5_0;
    case 9: return GGML_TYPE_Q5_1;
    case 10: return GGML_TYPE_Q2_K;
    case 11: return GGML_TYPE_Q3_K;
    case 12: return GGML_TYPE_Q4_K;
    case 13: return GGML_TYPE_Q5_K;
    case 14: return GGML_TYPE_Q6_K;
    case 15: return GGML_TYPE_IQ2_XXS;
    case 16: return GGML_TYPE_IQ2_XS;
    case 17: return GGML_TYPE_IQ3_XXS;
    case 18: return GGML_TYPE_IQ1_S;
    case 19: return GGML_TYPE_IQ4_NL;
    case 20: return GGML_TYPE_IQ3_S;
    case 21: return GGML_TYPE_IQ2_S;
    case 22: return GGML_TYPE_IQ4_XS;
    case 23: return GGML_TYPE_IQ1_M;
    case 24: return GGML_TYPE_BF16;
    case 25: return GGML_TYPE_MXFP4;
    case 26: return GGML_TYPE_NVFP4;
    case 27: return GGML_TYPE_Q1_0;
    default: return GGML_TYPE_COUNT;
  }
}

std::string ModelType(int32_t n_audio_layer) {
  switch (n_audio_layer) {  // whisper.cpp's own classification (whisper_model_load)
    case 4: return "tiny";
    case 6: return "base";
    case 12: return "small";
    case 24: return "medium";
    case 32: return "large";
    default: return "custom";
  }
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

class Reader {
 public:
  Reader(std::FILE* f, std::string path) : file_(f), path_(std::move(path)) {}

  // False at end of file, or on a read error (which Truncated() then reports as kIo). Unlocked:
  // the file is this reader's alone, and most reads are a few bytes of the vocabulary.
  bool Read(void* dst, size_t n) { return fread_unlocked(dst, 1, n, file_.get()) == n; }
  template <class T>
  bool Get(T& v) {
    return Read(&v, sizeof v);
  }
  bool Skip(int64_t n) { return fseeko(file_.get(), static_cast<off_t>(n), SEEK_CUR) == 0; }
  int64_t Tell() const { return static_cast<int64_t>(ftello(file_.get())); }
  bool Failed() const { return std::ferror(file_.get()) != 0; }

  Error Truncated(const std::string& where) const {
    if (Failed()) {
      return Error(ErrorKind::kIo, "model_unreadable", "cannot read " + path_ + " (" + where + ")");
    }
    return Error(ErrorKind::kIntegrity, "model_truncated",
                 path_ + " is truncated: it ends inside its " + where +
                     " (an interrupted download? fetch it again)");
  }
  Error Bad(const std::string& why) const {
    return Error(ErrorKind::kBadInput, "not_a_model",
                 path_ + " is not a whisper.cpp ggml model: " + why);
  }

 private:
  std::unique_ptr<std::FILE, FileCloser> file_;
  std::string path_;
};

// Hyperparameters no Whisper model has; the bounds stop a corrupt header from driving
// allocations or loops below.
std::string ImpossibleHparams(const ModelHparams& h) {
  for (const auto& [name, value] : NamedDims(h)) {
    if (value <= 0 || value > (1 << 20)) return std::string(name) + " = " + std::to_string(value);
  }
  if (h.n_audio_layer > 4096 || h.n_text_layer > 4096) return "too many layers";
  if (h.ftype < 0 || FtypeToType(h.ftype % kQntVersionFactor) == GGML_TYPE_COUNT) {
    return "unsupported ftype " + std::to_string(h.ftype);
  }
  return "";
}

}  // namespace

std::array<std::pair<const char*, int32_t>, 10> NamedDims(const ModelHparams& h) {
  return {{{"n_vocab", h.n_vocab},
           {"n_audio_ctx", h.n_audio_ctx},
           {"n_audio_state", h.n_audio_state},
           {"n_audio_head", h.n_audio_head},
           {"n_audio_layer", h.n_audio_layer},
           {"n_text_ctx", h.n_text_ctx},
           {"n_text_state", h.n_text_state},
           {"n_text_head", h.n_text_head},
           {"n_text_layer", h.n_text_layer},
           {"n_mels", h.n_mels}}};
}

Result<ModelFileInfo> ReadModelFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return Error(ErrorKind::kNotFound, "model_not_found", "model file not found: " + path);
    }
    return Error(ErrorKind::kIo, "model_unreadable",
                 "cannot access " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return Error(ErrorKind::kBadInput, "not_a_model", path + " is not a regular file");
  }
  std::FILE* raw = std::fopen(path.c_str(), "rb");
  if (!raw) {
    return Error(ErrorKind::kIo, "model_unreadable",
                 "cannot open " + path + ": " + std::strerror(errno));
  }
  Reader in(raw, path);

  ModelFileInfo info;
  info.path = path;
  info.file_bytes = static_cast<int64_t>(st.st_size);

  uint32_t magic = 0;
  if (!in.Get(magic)) return in.Bad("too short to hold a header");
  if (magic != kGgmlMagic) {
    // GGUF is llama.cpp's format: a common mix-up worth naming.
    if (magic == 0x46554747) return in.Bad("it is a GGUF file, whisper.cpp needs the ggml format");
    return in.Bad("bad magic (expected \"ggml\")");
  }

  ModelHparams& h = info.hparams;
  for (int32_t* field :
       {&h.n_vocab, &h.n_audio_ctx, &h.n_audio_state, &h.n_audio_head, &h.n_audio_layer,
        &h.n_text_ctx, &h.n_text_state, &h.n_text_head, &h.n_text_layer, &h.n_mels, &h.ftype}) {
    if (!in.Get(*field)) return in.Truncated("header");
  }
  if (std::string why = ImpossibleHparams(h); !why.empty())
    return in.Bad("impossible hyperparameter " + why);
  info.type = ModelType(h.n_audio_layer);
  info.multilingual = h.n_vocab >= 51865;
  info.ftype_name = ggml_type_name(FtypeToType(h.ftype % kQntVersionFactor));

  int32_t n_mel = 0, n_fft = 0;
  if (!in.Get(n_mel) || !in.Get(n_fft)) return in.Truncated("mel filters");
  if (n_mel != h.n_mels || n_fft <= 0 || n_fft > 65536) {  // whisper.cpp would misread audio
    return in.Bad("mel filter bank of " + std::to_string(n_mel) + " x " + std::to_string(n_fft) +
                  " for n_mels " + std::to_string(h.n_mels));
  }
  if (!in.Skip(int64_t{n_mel} * n_fft * 4) || in.Tell() > info.file_bytes)
    return in.Truncated("mel filters");

  int32_t n_tokens = 0;
  if (!in.Get(n_tokens)) return in.Truncated("vocabulary");
  if (n_tokens < 0 || n_tokens > h.n_vocab) {
    return in.Bad("vocabulary of " + std::to_string(n_tokens) + " tokens for n_vocab " +
                  std::to_string(h.n_vocab));
  }
  std::vector<char> token(256);
  for (int32_t i = 0; i < n_tokens; ++i) {
    uint32_t len = 0;
    if (!in.Get(len)) return in.Truncated("vocabulary");
    if (len > (1u << 16))
      return in.Bad("token " + std::to_string(i) + " is " + std::to_string(len) + " bytes long");
    if (len > token.size()) token.resize(len);
    if (!in.Read(token.data(), len)) return in.Truncated("vocabulary");
  }

  // Tensors until the end of the file, as whisper.cpp's loader reads them.
  while (in.Tell() < info.file_bytes) {
    int32_t head[3];  // n_dims, name length, ggml type
    const std::string where = "tensor " + std::to_string(info.n_tensors);
    if (!in.Read(head, sizeof head)) return in.Truncated(where + " header");
    const int32_t n_dims = head[0], name_len = head[1], ttype = head[2];
    if (n_dims < 1 || n_dims > 4)
      return in.Bad(where + " has " + std::to_string(n_dims) + " dimensions");
    if (name_len <= 0 || name_len > 1024)
      return in.Bad(where + " has a name of " + std::to_string(name_len) + " bytes");
    if (ttype < 0 || ttype >= GGML_TYPE_COUNT ||
        ggml_blck_size(static_cast<ggml_type>(ttype)) <= 0 ||
        ggml_type_size(static_cast<ggml_type>(ttype)) == 0) {
      return in.Bad(where + " has unknown type " + std::to_string(ttype));
    }
    int64_t elements = 1;
    int32_t ne0 = 1;
    for (int d = 0; d < n_dims; ++d) {
      int32_t ne = 0;
      if (!in.Get(ne)) return in.Truncated(where + " header");
      if (ne <= 0) return in.Bad(where + " has dimension " + std::to_string(ne));
      if (d == 0) ne0 = ne;
      elements *= ne;
      if (elements > (int64_t{1} << 40)) return in.Bad(where + " is impossibly large");
    }
    const auto type = static_cast<ggml_type>(ttype);
    if (ne0 % ggml_blck_size(type) != 0)
      return in.Bad(where + " rows do not fill whole quantization blocks");
    if (!in.Skip(name_len)) return in.Truncated(where + " header");
    const int64_t data_bytes =
        elements / ggml_blck_size(type) * static_cast<int64_t>(ggml_type_size(type));
    if (in.Tell() + data_bytes > info.file_bytes || !in.Skip(data_bytes))
      return in.Truncated(where + " data");
    info.tensor_bytes += data_bytes;
    info.n_tensors++;
  }

  // whisper.cpp refuses a file that lacks any of its tensors; a file cut exactly between two
  // tensors is the usual way to get one.
  const int64_t expected = 11 + 15 * int64_t{h.n_audio_layer} + 24 * int64_t{h.n_text_layer};
  if (info.n_tensors < expected) {
    return Error(ErrorKind::kIntegrity, "model_truncated",
                 path + " is truncated: it holds " + std::to_string(info.n_tensors) + " of the " +
                     std::to_string(expected) + " tensors its header promises");
  }
  return info;
}

}  // namespace steno::engine
