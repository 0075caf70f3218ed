// whisper.cpp's whisper-server declared as a `whisper-server` server model of a real
// `steno serve` (--models-config): OpenAI's synchronous /v1/audio/transcriptions and an async
// job both answer whisper-server's own transcript of the same file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "api_test_server.h"
#include "runners/server/server_transcript.h"
#include "support/process.h"
#include "support/server_events.h"

namespace steno {
namespace {

bool ServeTakesModelsConfig() {
  return test::RunProcess({test::StenoBin(), "serve", "--help"}).out.find("--models-config") !=
         std::string::npos;
}

std::string Quoted(const std::string& s) {
  return nlohmann::json(s).dump();
}

TEST(ServerKindServe, SyncAndJobTranscriptsEqualWhisperServersOwnAnswer) {
  if (access(test::WhisperServerBin().c_str(), X_OK) != 0) {
    GTEST_SKIP() << "no whisper-server at " << test::WhisperServerBin();
  }
  if (!ServeTakesModelsConfig()) GTEST_SKIP() << "steno serve has no --models-config yet";
  const nlohmann::json direct = test::AskWhisperServerDirectly(test::MediaPath("speech.wav"));
  ASSERT_TRUE(direct.is_object() && direct.contains("segments")) << direct.dump();
  auto expected = runners::TranscriptFromServerAnswer(direct, {"transcribe", false});
  ASSERT_TRUE(expected.ok()) << expected.error().message;

  test::ScopedTempDir dir;
  const std::string config = dir.path + "/models.toml";
  {
    std::ofstream out(config);
    out << "[[models]]\nname = \"ws\"\nkind = \"server\"\nprotocol = \"whisper-server\"\n"
        << "ready_timeout = 120\ncommand = [";
    const auto command = test::WhisperServerCommand("{port}", "{host}");
    for (size_t i = 0; i < command.size(); ++i) out << (i ? ", " : "") << Quoted(command[i]);
    out << "]\n";
  }
  test::ApiTestServer server({"--models-config", config});
  httplib::Client c(server.Url());
  c.set_read_timeout(300, 0);

  auto sync = c.Post(
      "/v1/audio/transcriptions",
      httplib::MultipartFormDataItems{test::FilePart("speech.wav"), test::Field("model", "ws"),
                                      test::Field("response_format", "verbose_json")});
  ASSERT_EQ(test::StatusOf(sync), 200) << (sync ? sync->body : "");
  const nlohmann::json answer = test::JsonOf(sync);
  ASSERT_EQ(answer["segments"].size(), (*expected)["segments"].size()) << answer.dump();
  for (size_t i = 0; i < answer["segments"].size(); ++i) {
    EXPECT_EQ(answer["segments"][i]["text"], (*expected)["segments"][i]["text"]) << i;
  }
  EXPECT_EQ(answer["text"], (*expected)["text"]);

  auto posted = c.Post("/v1/jobs", httplib::MultipartFormDataItems{test::FilePart("speech.wav"),
                                                                   test::Field("model", "ws")});
  ASSERT_EQ(test::StatusOf(posted), 202) << (posted ? posted->body : "");
  const std::string id = test::JsonOf(posted)["id"];
  EXPECT_EQ(test::WaitForJob(c, id)["state"], "completed");
  const nlohmann::json result =
      test::JsonOf(c.Get("/v1/jobs/" + id + "/result?format=verbose_json"));
  EXPECT_EQ(result["text"], (*expected)["text"]);
  EXPECT_EQ(result["segments"].size(), (*expected)["segments"].size());
}

}  // namespace
}  // namespace steno
