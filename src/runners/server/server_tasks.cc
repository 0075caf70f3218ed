#include "runners/server/server_tasks.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "runners/server/server_speech.h"
#include "runners/server/server_transcript.h"

namespace steno::runners {
namespace {

using nlohmann::json;
using runner::RunnerErrorKind;

Result<std::string> ReadInput(const sched::BlobRef& input) {
  if (input.path.empty()) {
    return Error(ErrorKind::kBadInput, "no_local_input", "the work item names no local file");
  }
  std::ifstream in(input.path, std::ios::binary);
  if (!in) return Error(ErrorKind::kBadInput, "unreadable_input", "cannot read " + input.path);
  std::ostringstream data;
  data << in.rdbuf();
  return data.str();
}

std::string UploadName(const sched::BlobRef& input) {
  if (!input.name.empty()) return input.name;
  const size_t slash = input.path.rfind('/');
  return slash == std::string::npos ? input.path : input.path.substr(slash + 1);
}

std::string Number(float v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

// The decoded answer of a request that returned 200; else why not.
WorkOutcome Transcript(const WorkItem& item, const std::string& what, const httplib::Result& r) {
  if (!r || r->status != 200) return FailedRequest(item.model, what, r);
  json answer = json::parse(r->body, nullptr, false);
  if (answer.is_discarded()) {
    return WorkOutcome::Fail(
        RunnerErrorKind::kInternal,
        "server model " + item.model.name + ": " + what +
            " answered with something that is not JSON: " + ServerErrorMessage(r->body));
  }
  TranscriptRequest request;
  request.task = item.job.params.value("task", std::string("transcribe"));
  request.word_timestamps = item.job.params.value("word_timestamps", false);
  auto transcript = TranscriptFromServerAnswer(answer, request);
  if (!transcript.ok()) {
    return WorkOutcome::Fail(RunnerErrorKind::kInternal,
                             "server model " + item.model.name + ": " + transcript.error().message);
  }
  return WorkOutcome::Done(std::move(transcript).value());
}

// OpenAI's /v1/audio/transcriptions or /translations, forwarded as the request asked; verbose_json
// is asked for (segments and times), json if the server refuses it.
WorkOutcome OpenAiTranscription(const WorkItem& item) {
  auto data = ReadInput(item.job.input);
  if (!data.ok()) return WorkOutcome::Fail(RunnerErrorKind::kBadInput, data.error().message);
  const json& p = item.job.params;
  const bool translate = p.value("task", std::string("transcribe")) == "translate";
  const std::string path = translate ? "/v1/audio/translations" : "/v1/audio/transcriptions";
  httplib::MultipartFormDataItems form = {
      {"file", *data, UploadName(item.job.input), "application/octet-stream"},
      {"model", item.model.name, "", ""},
      {"temperature", Number(p.value("temperature", 0.0f)), "", ""},
  };
  const std::string language = p.value("language", std::string("auto"));
  if (!translate && !language.empty() && language != "auto") {
    form.push_back({"language", language, "", ""});
  }
  if (const std::string prompt = p.value("prompt", std::string()); !prompt.empty()) {
    form.push_back({"prompt", prompt, "", ""});
  }
  const std::string what = "POST " + path;
  form.push_back({"response_format", "verbose_json", "", ""});
  httplib::Result r = item.client.Post(path, form);
  if (r && (r->status == 400 || r->status == 422)) {
    form.back().content = "json";  // a server that knows only json
    httplib::Result plain = item.client.Post(path, form);
    if (plain && plain->status == 200) return Transcript(item, what, plain);
  }
  return Transcript(item, what, r);
}

// whisper.cpp's whisper-server: POST /inference.
WorkOutcome WhisperServerInference(const WorkItem& item) {
  auto data = ReadInput(item.job.input);
  if (!data.ok()) return WorkOutcome::Fail(RunnerErrorKind::kBadInput, data.error().message);
  const json& p = item.job.params;
  const bool translate = p.value("task", std::string("transcribe")) == "translate";
  std::string language = p.value("language", std::string("auto"));
  if (language.empty()) language = "auto";
  httplib::MultipartFormDataItems form = {
      {"file", *data, UploadName(item.job.input), "application/octet-stream"},
      {"response_format", "verbose_json", "", ""},
      {"language", language, "", ""},
      {"temperature", Number(p.value("temperature", 0.0f)), "", ""},
      {"translate", translate ? "true" : "false", "", ""},
      // Its verbose_json otherwise runs one more language detection pass per request (the
      // transcript does not carry those probabilities).
      {"no_language_probabilities", "true", "", ""},
  };
  if (const std::string prompt = p.value("prompt", std::string()); !prompt.empty()) {
    form.push_back({"prompt", prompt, "", ""});
  }
  return Transcript(item, "POST /inference", item.client.Post("/inference", form));
}

struct TaskRow {
  ServerProtocol protocol;
  std::string_view task;
  TaskFn fn;
};

const std::vector<TaskRow>& Table() {
  static const std::vector<TaskRow> rows = {
      {ServerProtocol::kOpenAiTranscription, "transcribe", OpenAiTranscription},
      {ServerProtocol::kOpenAiTranscription, "translate", OpenAiTranscription},
      {ServerProtocol::kWhisperServer, "transcribe", WhisperServerInference},
      {ServerProtocol::kWhisperServer, "translate", WhisperServerInference},
      {ServerProtocol::kOpenAiSpeech, "speech", RunSpeech},
  };
  return rows;
}

}  // namespace

WorkOutcome WorkOutcome::Done(json payload) {
  WorkOutcome o;
  o.ok = true;
  o.payload = std::move(payload);
  return o;
}

WorkOutcome WorkOutcome::Fail(RunnerErrorKind kind, std::string message) {
  WorkOutcome o;
  o.error_kind = kind;
  o.message = std::move(message);
  return o;
}

const TaskFn* FindTask(ServerProtocol protocol, std::string_view task) {
  for (const auto& row : Table()) {
    if (row.protocol == protocol && row.task == task) return &row.fn;
  }
  return nullptr;
}

std::string ServerErrorMessage(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_object()) {
    if (auto e = j.find("error"); e != j.end()) {
      if (e->is_string()) return e->get<std::string>();
      if (e->is_object() && e->contains("message") && (*e)["message"].is_string()) {
        return (*e)["message"].get<std::string>();
      }
    }
    if (auto d = j.find("detail"); d != j.end()) {
      return d->is_string() ? d->get<std::string>() : d->dump();
    }
  }
  constexpr size_t kShown = 300;
  return body.size() > kShown ? body.substr(0, kShown) + "..." : body;
}

WorkOutcome FailedRequest(const ServerModel& model, const std::string& what,
                          const httplib::Result& result) {
  const std::string prefix = "server model " + model.name + ": " + what;
  if (!result) {
    return WorkOutcome::Fail(RunnerErrorKind::kCrash, prefix + " got no answer (" +
                                                          httplib::to_string(result.error()) + ")");
  }
  const int status = result->status;
  const std::string message =
      prefix + " answered " + std::to_string(status) + ": " + ServerErrorMessage(result->body);
  if (status >= 400 && status < 500) return WorkOutcome::Fail(RunnerErrorKind::kBadInput, message);
  if (status == 503) return WorkOutcome::Fail(RunnerErrorKind::kCrash, message);
  return WorkOutcome::Fail(RunnerErrorKind::kInternal, message);
}

}  // namespace steno::runners
