#include "runners/server/server_speech.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/speech_format.h"

namespace steno::runners {
namespace {

using nlohmann::json;
using runner::RunnerErrorKind;

constexpr size_t kMaxErrorBody = 64 * 1024;

// The audio file being written: `<path>.part`, renamed to `path` once complete and synced, so a
// reader never sees half a file; removed if the request fails.
class AudioFile {
 public:
  explicit AudioFile(std::string path) : path_(std::move(path)), part_(path_ + ".part") {}
  ~AudioFile() {
    if (fd_ >= 0) close(fd_);
    if (!committed_) unlink(part_.c_str());
  }
  bool Open() {
    fd_ = open(part_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    return fd_ >= 0;
  }
  bool Write(const char* data, size_t n) {
    while (n > 0) {
      const ssize_t w = write(fd_, data, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      data += w;
      n -= static_cast<size_t>(w);
      bytes_ += w;
    }
    return true;
  }
  // fsync, close, rename over `path`: the result survives a crash once the job completes.
  bool Commit() {
    if (fsync(fd_) != 0 || close(fd_) != 0) return false;
    fd_ = -1;
    if (rename(part_.c_str(), path_.c_str()) != 0) return false;
    committed_ = true;
    return true;
  }
  int64_t bytes() const { return bytes_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_, part_;
  int fd_ = -1;
  int64_t bytes_ = 0;
  bool committed_ = false;
};

}  // namespace

// OpenAI's POST /v1/audio/speech with the work item's params; the answer's body goes straight
// to `<results_dir>/<job id>.<format>` as it arrives.
WorkOutcome RunSpeech(const WorkItem& item) {
  const json& p = item.job.params;
  const std::string format = p.value("response_format", std::string(kDefaultSpeechFormat));
  if (!IsSpeechFormat(format)) {
    return WorkOutcome::Fail(RunnerErrorKind::kBadInput,
                             "response_format must be " + SpeechFormatList() + " for speech");
  }
  json body = {{"model", item.model.name},
               {"input", p.value("input", std::string())},
               {"voice", p.value("voice", std::string())},
               {"response_format", format},
               {"speed", p.value("speed", 1.0)}};
  if (auto it = p.find("instructions"); it != p.end() && it->is_string() && !it->empty()) {
    body["instructions"] = *it;
  }
  std::error_code ec;
  std::filesystem::create_directories(item.results_dir, ec);
  AudioFile file(item.results_dir + "/" + item.job.job_id + "." + format);
  if (!file.Open()) {
    return WorkOutcome::Fail(RunnerErrorKind::kInternal,
                             "cannot write the audio of job " + item.job.job_id + " under " +
                                 item.results_dir + ": " + std::strerror(errno));
  }
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/audio/speech";
  req.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  req.set_header("Content-Type", "application/json");
  auto answer = std::make_unique<httplib::Response>();
  bool write_failed = false;
  req.response_handler = [&answer](const httplib::Response& r) {
    answer->status = r.status;
    answer->headers = r.headers;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (answer->status / 100 != 2) {  // an error's body: kept (bounded) for its message
      if (answer->body.size() < kMaxErrorBody) answer->body.append(data, n);
      return true;
    }
    if (!file.Write(data, n)) write_failed = true;
    return !write_failed;
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  const bool sent = item.client.send(req, res, error);
  const std::string what = "POST /v1/audio/speech";
  if (write_failed) {
    return WorkOutcome::Fail(
        RunnerErrorKind::kInternal,
        "cannot write the audio of job " + item.job.job_id + ": " + std::strerror(errno));
  }
  if (!sent || answer->status != 200) {
    httplib::Result result(sent ? std::move(answer) : nullptr, error);
    return FailedRequest(item.model, what, result);
  }
  if (file.bytes() == 0 || !file.Commit()) {
    return WorkOutcome::Fail(
        RunnerErrorKind::kInternal,
        "server model " + item.model.name + ": " + what +
            (file.bytes() == 0 ? " answered with no audio" : " could not be stored"));
  }
  return WorkOutcome::Done({{"audio_file", file.path()},
                            {"content_type", SpeechContentType(format)},
                            {"bytes", file.bytes()}});
}

}  // namespace steno::runners
