// `steno serve`'s managed model servers as configured, with the real binary: a bad [[models]]
// table stops the start with exit 2 and a message naming the file, the line and the key (in
// --models-config or beside [serve] in --config); good ones are listed by GET /v1/models with
// their kind; SIGHUP adds and removes them, and a bad file on SIGHUP changes nothing.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "api_test_server.h"
#include "support/child_process.h"
#include "support/process.h"

namespace steno {
namespace {

using namespace std::chrono_literals;
using test::ApiTestServer;
using test::JsonOf;

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// One [[models]] table of a fake server named `name` (5 lines).
std::string ModelTable(const std::string& name) {
  return "[[models]]\nname = \"" + name + "\"\nkind = \"server\"\ncommand = [\"" +
         test::HelperBin("fake_model_server") +
         "\", \"--port\", \"{port}\"]\nprotocol = \"openai-transcription\"\n";
}

// `steno serve` with `flags` that must refuse to start; returns what it said.
test::ProcessResult RefusedStart(const test::ScopedTempDir& dir,
                                 const std::vector<std::string>& flags) {
  std::vector<std::string> argv = {test::StenoBin(), "serve", "--port",     "0",
                                   "--device",       "cpu",   "--data-dir", dir.path + "/data"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return test::RunProcess(argv);
}

TEST(ServeModelsConfigTest, ABadModelsConfigStopsTheStartWithExit2NamingFileLineAndKey) {
  test::ScopedTempDir dir("steno-models-config");
  const std::string bad = dir.path + "/bad.toml";
  WriteFile(bad,
            "[[models]]\nname = \"sv\"\nkind = \"server\"\nprotocol = \"grpc\"\n"
            "command = [\"srv\"]\n");
  auto r = RefusedStart(dir, {"--models-config", bad});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(bad + ":4: models[0].protocol: unknown protocol \"grpc\""),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out.find("listening"), std::string::npos) << "nothing may start: " << r.out;

  WriteFile(bad, "[[models]]\nname = \"sv\"\nkind = \"server\"\n");
  auto missing = RefusedStart(dir, {"--models-config", bad});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_NE(missing.err.find(bad + ":1: models[0].command: missing"), std::string::npos)
      << missing.err;
}

TEST(ServeModelsConfigTest, ModelsTablesBesideServeInTheConfigFileAreChecked) {
  test::ScopedTempDir dir("steno-models-config");
  const std::string config = dir.path + "/steno.toml";
  WriteFile(config, "[serve]\nmax-queue = 5\n\n" + ModelTable("sv") + "vram = \"5 GB of it\"\n");
  auto r = RefusedStart(dir, {"--config", config});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(config + ":9: models[0].vram: "), std::string::npos) << r.err;

  // A name in --config and in --models-config is declared twice.
  const std::string models = dir.path + "/models.toml";
  WriteFile(config, "[serve]\nmax-queue = 5\n\n" + ModelTable("sv"));
  WriteFile(models, ModelTable("sv"));
  auto twice = RefusedStart(dir, {"--config", config, "--models-config", models});
  EXPECT_EQ(twice.exit_code, 2) << twice.err;
  EXPECT_NE(twice.err.find(models + ":2: models[0].name: \"sv\" is declared twice (also in " +
                           config + ")"),
            std::string::npos)
      << twice.err;
}

// The server models GET /v1/models lists (kind "server"), by name.
std::set<std::string> ServerModels(ApiTestServer& s) {
  std::set<std::string> names;
  auto c = s.Client();
  auto j = JsonOf(c.Get("/v1/models"));
  if (j.is_null()) return names;
  for (const auto& m : j["data"]) {
    if (m.value("kind", "") == "server") names.insert(m.value("id", ""));
  }
  return names;
}

// Rewrites `file`, sends SIGHUP and waits (up to a minute) for the server to log `line`.
void Reload(ApiTestServer& s, const std::string& file, const std::string& text,
            const std::string& line) {
  const auto before = test::ReadFileText(s.log).size();
  WriteFile(file, text);
  s.Signal(SIGHUP);
  ASSERT_TRUE(test::WaitUntil(
      [&] { return test::ReadFileText(s.log).find(line, before) != std::string::npos; }, 60s))
      << test::ReadFileText(s.log);
}

TEST(ServeModelsConfigTest, ConfigFileModelsAreListedAndSighupAddsAndRemovesThem) {
  test::ScopedTempDir dir("steno-models-config");
  const std::string config = dir.path + "/steno.toml";
  WriteFile(config, "[serve]\nmax-queue = 50\n\n" + ModelTable("first"));
  ApiTestServer s({"--config", config});
  using Names = std::set<std::string>;
  ASSERT_EQ(ServerModels(s), Names{"first"});

  Reload(s, config,
         "[serve]\nmax-queue = 50\n\n" + ModelTable("second") + "\n" + ModelTable("third"),
         "server models: added second, third; removed first");
  EXPECT_EQ(ServerModels(s), (Names{"second", "third"}));

  // A bad file changes nothing.
  Reload(s, config, "[serve]\nmax-queue = 50\n\n" + ModelTable("fourth") + "streams = 0\n",
         "config reload rejected");
  EXPECT_NE(test::ReadFileText(s.log).find("models[0].streams"), std::string::npos);
  EXPECT_EQ(ServerModels(s), (Names{"second", "third"}));
}

TEST(ServeModelsConfigTest, SighupReReadsTheModelsConfigWithoutAConfigFile) {
  test::ScopedTempDir dir("steno-models-config");
  const std::string models = dir.path + "/models.toml";
  WriteFile(models, ModelTable("first"));
  ApiTestServer s({"--models-config", models});
  using Names = std::set<std::string>;
  ASSERT_EQ(ServerModels(s), Names{"first"});
  Reload(s, models, "", "server models: removed first");
  EXPECT_EQ(ServerModels(s), Names{});
}

// A job waiting for a model that SIGHUP removes fails with model_removed, durably (the API
// reads it from the store).
TEST(ServeModelsConfigTest, ARemovedModelsQueuedJobFailsWithModelRemoved) {
  test::ScopedTempDir dir("steno-models-config");
  const std::string models = dir.path + "/models.toml";
  // 100 GiB never fits the simulated 8 GiB card: its job waits.
  WriteFile(models, ModelTable("huge") + "vram = \"100GiB\"\n");
  ApiTestServer s({"--models-config", models, "--device", "auto", "--simulate-gpus", "1x8GiB"});
  auto c = s.Client();
  auto r = c.Post("/v1/jobs", httplib::MultipartFormDataItems{test::FilePart("speech.wav"),
                                                              test::Field("model", "huge")});
  ASSERT_EQ(test::StatusOf(r), 202) << (r ? r->body : "");
  const std::string id = JsonOf(r).value("id", "");
  auto job = [&] { return JsonOf(c.Get("/v1/jobs/" + id)); };
  ASSERT_EQ(job().value("state", ""), "pending");

  Reload(s, models, "", "server models: removed huge");
  ASSERT_TRUE(test::WaitUntil([&] { return job().value("state", "") == "failed"; }, 60s))
      << job().dump();
  EXPECT_EQ(job()["error"].value("code", ""), "model_removed") << job().dump();
}

}  // namespace
}  // namespace steno
