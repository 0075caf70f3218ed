// `steno ps`: the models a running `steno serve` has loaded, like `ollama ps` (GET /v1/runners):
// model, runner kind, device, memory, streams busy/total, jobs done, and when an idle one will be
// unloaded.
// `--json` prints the server's list as it came. A server that cannot be reached is a clear
// message and exit 1.
#include <cstdio>
#include <memory>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "gpu/size.h"

namespace steno::cli {
namespace {

struct PsOptions {
  std::string url = "http://127.0.0.1:8080";
  std::string api_key;
  bool json = false;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "steno ps: %s\n", message.c_str());
  return kExitFailed;
}

std::string Until(const nlohmann::json& r) {
  if (r.value("busy_streams", 0) > 0) return "busy";
  if (!r.contains("expires_in_s") || r["expires_in_s"].is_null()) {
    return r.value("state", "") == "loading" ? "loading" : "forever";
  }
  int64_t s = r["expires_in_s"].get<int64_t>();
  if (s < 60) return "in " + std::to_string(s) + " s";
  if (s < 3600) return "in " + std::to_string(s / 60) + " min " + std::to_string(s % 60) + " s";
  return "in " + std::to_string(s / 3600) + " h " + std::to_string(s / 60 % 60) + " min";
}

int Run(const PsOptions& o) {
  if (o.url.rfind("http://", 0) != 0 && o.url.rfind("https://", 0) != 0) {
    std::fprintf(stderr, "steno ps: --url must start with http:// or https://\n");
    return kExitUsage;
  }
  httplib::Client cli(o.url);
  if (!cli.is_valid()) {
    std::fprintf(stderr, "steno ps: not a usable URL: %s\n", o.url.c_str());
    return kExitUsage;
  }
  cli.set_connection_timeout(3, 0);
  cli.set_read_timeout(10, 0);
  httplib::Headers headers;
  if (!o.api_key.empty()) headers.emplace("Authorization", "Bearer " + o.api_key);
  auto res = cli.Get("/v1/runners", headers);
  if (!res) {
    return Fail("cannot reach a steno server at " + o.url + " (" + httplib::to_string(res.error()) +
                "); is `steno serve` running? (--url to name another)");
  }
  if (res->status == 401) {
    return Fail("the server at " + o.url + " wants an API key (--api-key or STENO_API_KEY)");
  }
  auto body = nlohmann::json::parse(res->body, nullptr, false);
  if (res->status != 200 || body.is_discarded() || !body.contains("data") ||
      !body["data"].is_array()) {
    std::string why = "HTTP " + std::to_string(res->status);
    if (!body.is_discarded() && body.contains("error")) {
      why += ": " + body["error"].value("message", std::string());
    }
    return Fail("unexpected answer from " + o.url + "/v1/runners (" + why + ")");
  }
  const auto& runners = body["data"];
  if (o.json) {
    std::printf("%s\n", runners.dump(2).c_str());
    return kExitOk;
  }
  if (runners.empty()) {
    std::printf("No models loaded.\n");
    return kExitOk;
  }
  // WORDS: how a whisper runner times words (dtw or tokens), why one model may have two runners.
  const char* kRow = "%-24.24s %-8.8s %-6s %-7s %-8s %10s %8s %6s  %s\n";
  std::printf(kRow, "MODEL", "KIND", "WORDS", "DEVICE", "STATE", "MEMORY", "STREAMS", "JOBS",
              "UNTIL");
  for (const auto& r : runners) {
    const std::string streams =
        std::to_string(r.value("busy_streams", 0)) + "/" + std::to_string(r.value("streams", 0));
    std::printf(kRow, r.value("model", "").c_str(), r.value("kind", "").c_str(),
                r.value("word_timing", "-").c_str(), r.value("device", "").c_str(),
                r.value("state", "").c_str(), gpu::FormatSize(r.value("bytes", int64_t{0})).c_str(),
                streams.c_str(), std::to_string(r.value("jobs_done", int64_t{0})).c_str(),
                Until(r).c_str());
  }
  return kExitOk;
}

}  // namespace

void AddPs(CLI::App& app, const GlobalOptions& /*global*/, Action& action) {
  auto o = std::make_shared<PsOptions>();
  auto* cmd = app.add_subcommand("ps", "Show the models a running server has loaded");
  cmd->add_option("--url", o->url, "The server")->envname("STENO_URL")->capture_default_str();
  cmd->add_option("--api-key", o->api_key, "API key, if the server wants one")
      ->envname("STENO_API_KEY");
  cmd->add_flag("--json", o->json, "Print JSON instead of a table");
  cmd->callback([o, &action] { action = [o] { return Run(*o); }; });
}

}  // namespace steno::cli
