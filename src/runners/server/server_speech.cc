#include "runners/server/server_speech.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/speech_format.h"
#include "runners/server/speech_stream.h"

namespace steno::runners {
namespace {

using nlohmann::json;
using runner::RunnerErrorKind;

constexpr size_t kMaxErrorBody = 64 * 1024;

// The audio file being written: `<path>.part`, renamed to `path` once complete and synced, so a
// reader of the results never sees half a file; removed if the request fails. Opened for reading
// too: a synchronous request's watcher (speech_stream.h) reads it as it grows.
class AudioFile {
 public:
  explicit AudioFile(std::string path) : path_(std::move(path)), part_(path_ + ".part") {}
  ~AudioFile() {
    if (fd_ >= 0) close(fd_);
    if (!committed_) unlink(part_.c_str());
  }
  bool Open() {
    fd_ = open(part_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
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
  int fd() const { return fd_; }

 private:
  std::string path_, part_;
  int fd_ = -1;
  int64_t bytes_ = 0;
  bool committed_ = false;
};

// This run's report to the job's watcher (speech_stream.h), if it has one: looked up at each write
// and once more before the file is committed (a synchronous request starts watching just after
// its job is submitted, maybe after the run began). The run ends broken unless Finish(true).
class RunReport {
 public:
  RunReport(const std::string& job_id, std::string content_type)
      : job_id_(job_id), content_type_(std::move(content_type)) {}
  ~RunReport() { Finish(false); }
  RunReport(const RunReport&) = delete;
  RunReport& operator=(const RunReport&) = delete;

  // `file` holds more audio (and is open: a watcher found now gets its descriptor).
  void Wrote(const AudioFile& file) {
    if (stream_ || Find(file)) stream_->Wrote(file.bytes());
  }
  void Finish(bool complete) {
    if (finished_) return;
    finished_ = true;
    if (stream_) stream_->End(complete);
  }

 private:
  bool Find(const AudioFile& file) {
    stream_ = SpeechStreams::Process().Find(job_id_);
    if (stream_) stream_->Begin(file.fd(), content_type_);
    return stream_ != nullptr;
  }

  const std::string& job_id_;
  const std::string content_type_;
  std::shared_ptr<SpeechStream> stream_;
  bool finished_ = false;
};

// OpenAI's speech request for the work item's params.
json SpeechRequest(const WorkItem& item, const std::string& format) {
  const json& p = item.job.params;
  json body = {{"model", item.model.name},
               {"input", p.value("input", std::string())},
               {"voice", p.value("voice", std::string())},
               {"response_format", format},
               {"speed", p.value("speed", 1.0)}};
  if (auto it = p.find("instructions"); it != p.end() && it->is_string() && !it->empty()) {
    body["instructions"] = *it;
  }
  return body;
}

}  // namespace

// OpenAI's POST /v1/audio/speech with the work item's params; the answer's body goes straight
// to `<results_dir>/<job id>.<format>` as it arrives, and to the job's watcher if it has one.
WorkOutcome RunSpeech(const WorkItem& item) {
  const std::string format =
      item.job.params.value("response_format", std::string(kDefaultSpeechFormat));
  if (!IsSpeechFormat(format)) {
    return WorkOutcome::Fail(RunnerErrorKind::kBadInput,
                             "response_format must be " + SpeechFormatList() + " for speech");
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
  req.body = SpeechRequest(item, format).dump(-1, ' ', false, json::error_handler_t::replace);
  req.set_header("Content-Type", "application/json");
  auto answer = std::make_unique<httplib::Response>();
  bool write_failed = false;
  RunReport report(item.job.job_id, SpeechContentType(format));
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
    if (!write_failed) report.Wrote(file);
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
  report.Wrote(file);  // a watcher that came late gets the descriptor while it is open
  if (file.bytes() == 0 || !file.Commit()) {
    return WorkOutcome::Fail(
        RunnerErrorKind::kInternal,
        "server model " + item.model.name + ": " + what +
            (file.bytes() == 0 ? " answered with no audio" : " could not be stored"));
  }
  report.Finish(true);
  return WorkOutcome::Done({{"audio_file", file.path()},
                            {"content_type", SpeechContentType(format)},
                            {"bytes", file.bytes()}});
}

}  // namespace steno::runners
