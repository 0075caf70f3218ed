#include "runner/chunk_steps.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <span>
#include <string>

#include "audio/decoder.h"
#include "engine/chunk_plan.h"

namespace steno::runner {
namespace {

Error WriteFailed(const std::string& path, const std::string& why) {
  return Error(ErrorKind::kIo, "pcm_write_failed", "cannot write " + path + ": " + why);
}

Status WritePcm(const std::string& path, const std::vector<float>& pcm) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return WriteFailed(tmp, "cannot create it");
  const size_t n = std::fwrite(pcm.data(), sizeof(float), pcm.size(), f);
  const bool closed = std::fclose(f) == 0;
  if (n != pcm.size() || !closed || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return WriteFailed(path, "short write");
  }
  return {};
}

// The decoded audio, mapped read-only: a chunk touches only the pages of its own speech.
class MappedPcm {
 public:
  static Result<MappedPcm> Open(const std::string& path) {
    auto failed = [&path](const std::string& why) {
      return Error(ErrorKind::kIo, "pcm_read_failed", "cannot read " + path + ": " + why);
    };
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return failed("cannot open it");
    struct stat st {};
    if (fstat(fd, &st) != 0 || st.st_size <= 0 || st.st_size % sizeof(float) != 0) {
      ::close(fd);
      return failed("not decoded audio");
    }
    void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) return failed("cannot map it");
    return MappedPcm(p, static_cast<size_t>(st.st_size));
  }
  MappedPcm(MappedPcm&& o) noexcept : data_(o.data_), bytes_(o.bytes_) { o.data_ = nullptr; }
  MappedPcm(const MappedPcm&) = delete;
  MappedPcm& operator=(const MappedPcm&) = delete;
  MappedPcm& operator=(MappedPcm&&) = delete;
  ~MappedPcm() {
    if (data_) munmap(data_, bytes_);
  }
  std::span<const float> samples() const {
    return {static_cast<const float*>(data_), bytes_ / sizeof(float)};
  }

 private:
  MappedPcm(void* data, size_t bytes) : data_(data), bytes_(bytes) {}
  void* data_;
  size_t bytes_;
};

}  // namespace

Result<nlohmann::json> RunPlan(engine::WhisperStream& stream, const audio::MediaFile& input,
                               const engine::DecodeParams& params, const ChunkWork& work,
                               const std::function<bool()>& should_abort) {
  const Error aborted(ErrorKind::kCancelled, "aborted", "the plan was stopped");
  auto pcm = audio::Decode(input);
  if (!pcm.ok()) return pcm.error();
  if (should_abort()) return aborted;
  auto speech = stream.DetectSpeech(*pcm, params);
  if (!speech.ok()) return speech.error();
  if (should_abort()) return aborted;
  const auto chunks = engine::PlanChunks(*pcm, std::move(speech).value(), work.max_chunk_s);
  if (auto st = WritePcm(work.pcm_path, *pcm); !st) return st.error();
  nlohmann::json out = {{"duration", static_cast<double>(pcm->size()) / audio::kSampleRate},
                        {"chunks", nlohmann::json::array()}};
  for (const engine::SpeechChunk& c : chunks) {
    nlohmann::json regions = nlohmann::json::array();
    for (const engine::SpeechRegion& r : c.speech) regions.push_back({r.start, r.end});
    out["chunks"].push_back({{"start", c.start}, {"end", c.end}, {"speech", std::move(regions)}});
  }
  return out;
}

Result<engine::Transcript> RunChunk(engine::WhisperStream& stream, const ChunkWork& work,
                                    engine::DecodeParams params,
                                    const engine::StreamCallbacks& callbacks) {
  auto pcm = MappedPcm::Open(work.pcm_path);
  if (!pcm.ok()) return pcm.error();
  std::vector<engine::SpeechRegion> speech;
  for (const auto& [start, end] : work.speech) speech.push_back({start, end});
  params.speech = std::move(speech);
  params.vad.reset();
  return stream.Run(pcm->samples(), params, callbacks);
}

}  // namespace steno::runner
