// The [[models]] tables of a config file (runners/server/server_config.h): a full declaration
// reads into the expected ServerModel, defaults fill what is left out, and every refusal names
// the file, the line and the key.
#include "runners/server/server_config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/test_env.h"

namespace steno::runners {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kGiB = int64_t{1} << 30;
constexpr int64_t kMiB = int64_t{1} << 20;

Result<std::vector<ServerModel>> Parse(const std::string& text,
                                       ModelsFileScope scope = ModelsFileScope::kModelsOnly) {
  return ParseServerModels(text, "models.toml", scope);
}

TEST(ServerConfigTest, AFullDeclarationReadsIntoItsServerModel) {
  auto got = Parse(R"(
[[models]]
name = "sensevoice"
kind = "server"
command = ["python", "server.py", "--port", "{port}", "--device", "{device}", '--opts={{"beam":5}}']
env = { HF_HOME = "{models_dir}/hf", CUDA_DEVICE_ORDER = "PCI_BUS_ID" }
workdir = "/opt/{name}"
protocol = "openai-transcription"
health = { path = "/v1/models", status = 204 }
ready_timeout = "10m"
stop_timeout = 30
keep_alive = "-1"
vram = "5GiB"
ram = "512MiB"
streams = 4
devices = ["cuda:1", "cpu"]
preload = true

[[models]]
name = "tts"
kind = "server"
command = ["tts-server", "{host}:{port}"]
protocol = "openai-speech"
health = "/ready"
keep_alive = "90s"
vram = 1073741824
)");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_EQ(got->size(), 2u);
  ServerModel want;
  want.name = "sensevoice";
  want.command = {"python",
                  "server.py",
                  "--port",
                  "{port}",
                  "--device",
                  "{device}",
                  "--opts={{\"beam\":5}}"};  // braces kept for the expander
  want.env = {{"HF_HOME", "{models_dir}/hf"}, {"CUDA_DEVICE_ORDER", "PCI_BUS_ID"}};
  want.workdir = "/opt/{name}";
  want.protocol = ServerProtocol::kOpenAiTranscription;
  want.health = {"/v1/models", 204};
  want.ready_timeout = 600s;
  want.stop_timeout = 30s;
  want.keep_alive_s = -1;
  want.vram_bytes = 5 * kGiB;
  want.ram_bytes = 512 * kMiB;
  want.streams = 4;
  want.devices = {"cuda:1", "cpu"};
  want.preload = true;
  want.source = "models.toml";
  // env is a TOML table: its order is the table's (by name), not the file's.
  std::sort(want.env.begin(), want.env.end());
  ServerModel first = (*got)[0];
  std::sort(first.env.begin(), first.env.end());
  EXPECT_EQ(first, want);

  const ServerModel& tts = (*got)[1];
  EXPECT_EQ(tts.name, "tts");
  EXPECT_EQ(tts.protocol, ServerProtocol::kOpenAiSpeech);
  EXPECT_EQ(tts.health.path, "/ready");
  EXPECT_EQ(tts.health.status, 200);
  EXPECT_EQ(tts.keep_alive_s, std::optional<int>(90));
  EXPECT_EQ(tts.vram_bytes, kGiB);
}

TEST(ServerConfigTest, LeftOutKeysTakeTheDocumentedDefaults) {
  auto got = Parse("[[models]]\nname = \"x\"\nkind = \"server\"\ncommand = [\"srv\"]\n");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ServerModel want;
  want.name = "x";
  want.command = {"srv"};
  want.source = "models.toml";
  EXPECT_EQ(got->at(0), want);
  EXPECT_EQ(want.protocol, ServerProtocol::kHttp);
  EXPECT_EQ(want.health.path, "/health");
  EXPECT_EQ(want.ready_timeout, 120s);
  EXPECT_FALSE(want.keep_alive_s.has_value());
}

TEST(ServerConfigTest, AFileWithoutModelsDeclaresNone) {
  auto got = Parse("", ModelsFileScope::kModelsOnly);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_TRUE(got->empty());
  auto beside = Parse("[serve]\nport = 9000\n", ModelsFileScope::kBesideSettings);
  ASSERT_TRUE(beside.ok()) << beside.error().message;
  EXPECT_TRUE(beside->empty());
}

// A valid model with one bad line: what it is refused with.
struct BadCase {
  std::string line;      // line 5 of the file (ModelWith)
  std::string expected;  // the message's start: "models.toml:5: models[0].<key>: ..."
};

// The valid model of lines 2-4 (a leading empty line, then [[models]], name, kind, command) with
// `line` on line 5: a key of those three is left out and `line` replaces it.
std::string ModelWith(const std::string& line) {
  const std::string key = line.substr(0, line.find(' '));
  const bool replaces = key == "name" || key == "kind" || key == "command";
  std::string out = replaces ? "\n[[models]]\n" : "[[models]]\n";
  if (key != "name") out += "name = \"m\"\n";
  if (key != "kind") out += "kind = \"server\"\n";
  if (key != "command") out += "command = [\"srv\", \"{port}\"]\n";
  return out + line + "\n";
}

TEST(ServerConfigTest, EveryRefusalNamesTheFileTheLineAndTheKey) {
  const std::vector<BadCase> cases = {
      {"protocol = \"grpc\"",
       "models.toml:5: models[0].protocol: unknown protocol \"grpc\" (one of "
       "openai-transcription, whisper-server, openai-speech, http)"},
      {"command = [\"srv\", \"--port\", \"{prot}\"]",
       "models.toml:5: models[0].command[2]: unknown placeholder {prot}"},
      {"env = { A = \"{gpu}\" }", "models.toml:5: models[0].env.A: unknown placeholder {gpu}"},
      {"workdir = \"/x/{dir}\"", "models.toml:5: models[0].workdir: unknown placeholder {dir}"},
      {"command = [\"srv\", \"{port\"]", "models.toml:5: models[0].command[1]: '{' without"},
      {"command = [\"srv\", \"a}b\"]", "models.toml:5: models[0].command[1]: '}' without"},
      {"vram = \"5 GiBs\"", "models.toml:5: models[0].vram: "},
      {"ram = -1", "models.toml:5: models[0].ram: must not be negative"},
      {"ready_timeout = \"2 weeks\"", "models.toml:5: models[0].ready_timeout: \"2 weeks\" is no"},
      {"ready_timeout = 0", "models.toml:5: models[0].ready_timeout: must be at least 1 s"},
      {"stop_timeout = true", "models.toml:5: models[0].stop_timeout: must be a duration"},
      {"keep_alive = \"-2\"", "models.toml:5: models[0].keep_alive: \"-2\" is no duration"},
      {"streams = 0", "models.toml:5: models[0].streams: must be from 1 to 64"},
      {"devices = [\"gpu0\"]", "models.toml:5: models[0].devices[0]: \"gpu0\" is no device"},
      {"devices = [\"cpu\", \"cpu\"]", "models.toml:5: models[0].devices[1]: \"cpu\" is listed"},
      {"health = \"health\"", "models.toml:5: models[0].health: \"health\" must be a path"},
      {"health = { path = \"/h\", code = 200 }", "models.toml:5: models[0].health.code: unknown"},
      {"health = { status = 99 }", "models.toml:5: models[0].health.status: must be an HTTP"},
      {"preload = \"yes\"", "models.toml:5: models[0].preload: must be true or false"},
      {"gpus = 2", "models.toml:5: models[0].gpus: unknown key"},
      {"kind = \"whisper\"", "models.toml:5: models[0].kind: unknown kind \"whisper\""},
      {"name = \"../m\"", "models.toml:5: models[0].name: \"../m\" must be a model name"},
      {"name = \"m.bin\"", "models.toml:5: models[0].name: \"m.bin\" must be a model name"},
      {"name = \".hidden\"", "models.toml:5: models[0].name: \".hidden\" must be a model name"},
      {"command = []", "models.toml:5: models[0].command: is empty"},
      {"command = \"srv --port {port}\"", "models.toml:5: models[0].command: must be an array"},
      {"command = [\"srv\", 8080]", "models.toml:5: models[0].command[1]: must be a string"},
  };
  for (const auto& c : cases) {
    auto got = Parse(ModelWith(c.line));
    ASSERT_FALSE(got.ok()) << c.line << " was accepted";
    EXPECT_EQ(got.error().kind, ErrorKind::kBadInput);
    EXPECT_EQ(got.error().code, "bad_models_config");
    EXPECT_EQ(got.error().message.rfind(c.expected, 0), 0u)
        << c.line << "\n  got: " << got.error().message << "\n want: " << c.expected;
  }
}

TEST(ServerConfigTest, AMissingCommandNameOrKindNamesTheTablesLine) {
  for (const std::string key : {"command", "name", "kind"}) {
    // ModelWith leaves the key out to replace it; an empty line replaces it with nothing.
    std::string text = ModelWith(key + " = 1");
    text.erase(text.rfind(key));
    auto got = Parse(text);
    ASSERT_FALSE(got.ok()) << key;
    EXPECT_EQ(got.error().message.rfind("models.toml:2: models[0]." + key + ": missing", 0), 0u)
        << got.error().message;
  }
}

TEST(ServerConfigTest, ADuplicateNameNamesTheSecondDeclaration) {
  const std::string one = "[[models]]\nname = \"a\"\nkind = \"server\"\ncommand = [\"x\"]\n";
  auto got = Parse(one + "\n" + one);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().message,
            "models.toml:7: models[1].name: \"a\" is declared twice (also in models.toml)");

  // Across files: the --config file's models, then the --models-config file's.
  auto first = ParseServerModels(one, "steno.toml", ModelsFileScope::kBesideSettings);
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = ParseServerModels(one, "models.toml", ModelsFileScope::kModelsOnly, *first);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().message,
            "models.toml:2: models[0].name: \"a\" is declared twice (also in steno.toml)");
}

TEST(ServerConfigTest, SyntaxErrorsAndStrayTablesNameTheirLine) {
  auto syntax = Parse("[[models]]\nname = \"a\"\ncommand = [\"x\",\n");
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.error().message.rfind("models.toml:", 0), 0u) << syntax.error().message;
  EXPECT_EQ(syntax.error().code, "bad_models_config");

  auto stray = Parse("[serve]\nport = 1\n", ModelsFileScope::kModelsOnly);
  ASSERT_FALSE(stray.ok());
  EXPECT_EQ(stray.error().message.rfind("models.toml:1: serve: unknown key", 0), 0u)
      << stray.error().message;

  auto not_tables = Parse("models = [\"a\"]\n");
  ASSERT_FALSE(not_tables.ok());
  EXPECT_EQ(not_tables.error().message.rfind("models.toml:1: models: must be [[models]]", 0), 0u)
      << not_tables.error().message;
}

TEST(ServerConfigTest, AFileIsReadAndNamedByItsPath) {
  test::ScopedTempDir dir("steno-models-config");
  const std::string path = dir.path + "/m.toml";
  std::ofstream(path) << "[[models]]\nname = \"a\"\nkind = \"server\"\nprotocol = \"ftp\"\n"
                         "command = [\"x\"]\n";
  auto got = ReadServerModels(path, ModelsFileScope::kModelsOnly);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().message.rfind(path + ":4: models[0].protocol: unknown protocol", 0), 0u)
      << got.error().message;
  auto missing = ReadServerModels(dir.path + "/none.toml", ModelsFileScope::kModelsOnly);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("none.toml"), std::string::npos);
}

}  // namespace
}  // namespace steno::runners
