// The server kind's parts that need no server: command templates, the conversion of a server's
// transcription answer, a process tree read from /proc, and the catalog entry of a server model.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "runners/server/command_template.h"
#include "runners/server/process_tree.h"
#include "runners/server/server_kind.h"
#include "runners/server/server_transcript.h"
#include "support/child_process.h"

namespace steno::runners {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

TEST(ServerCommandTemplate, ExpandsEveryPlaceholderAndLiteralBraces) {
  CommandValues v;
  v.port = 8123;
  v.host = "127.0.0.1";
  v.device = "cuda:1";
  v.cuda_index = "0";
  v.gpu_uuid = "GPU-abc";
  v.models_dir = "/m";
  v.name = "sense";
  auto argv = ExpandCommand({"srv", "--listen={host}:{port}", "{device}/{cuda_index}/{gpu_uuid}",
                             "{models_dir}/{name}.bin", "{{json}}"},
                            v);
  ASSERT_TRUE(argv.ok()) << argv.error().message;
  EXPECT_EQ(*argv, (std::vector<std::string>{"srv", "--listen=127.0.0.1:8123", "cuda:1/0/GPU-abc",
                                             "/m/sense.bin", "{json}"}));
}

TEST(ServerCommandTemplate, RefusesUnknownAndUnclosedPlaceholdersNamingThem) {
  auto unknown = CheckCommandTemplate({"srv", "--gpu={gpu}"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, "bad_placeholder");
  EXPECT_NE(unknown.error().message.find("{gpu}"), std::string::npos) << unknown.error().message;
  EXPECT_NE(unknown.error().message.find("argument 1"), std::string::npos);
  EXPECT_EQ(CheckCommandTemplate({"srv", "{port"}).error().code, "bad_placeholder");
  EXPECT_EQ(CheckCommandTemplate({"srv", "port}"}).error().code, "bad_placeholder");
  EXPECT_EQ(CheckCommandTemplate({}).error().code, "bad_command");
  EXPECT_TRUE(CheckCommandTemplate({"srv", "--port", "{port}"}).ok());
}

TEST(ServerCommandTemplate, PicksAPortNothingListensOn) {
  auto port = PickFreePort("127.0.0.1");
  ASSERT_TRUE(port.ok()) << port.error().message;
  EXPECT_GT(*port, 0);
  EXPECT_FALSE(PickFreePort("localhost").ok()) << "an IPv4 literal is required";
}

TEST(ServerTranscript, VerboseJsonBecomesTheRunnersTranscript) {
  const json answer = {
      {"task", "transcribe"},
      {"language", "english"},
      {"duration", 3.0},
      {"text", " one two"},
      {"segments",
       {{{"id", 7},
         {"start", 0.0},
         {"end", 1.5},
         {"text", " one"},
         {"tokens", {5, 6}},
         {"speaker", "A"},
         {"words", {{{"word", " one"}, {"probability", 0.9}}}}},
        {{"id", 9}, {"start", 1.5}, {"end", 9.0}, {"text", " two"}, {"avg_logprob", nullptr}}}}};
  auto t = TranscriptFromServerAnswer(answer, {"transcribe", false});
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ((*t)["language"], "en") << "whisper's full name becomes the code";
  EXPECT_EQ((*t)["text"], "one two");
  ASSERT_EQ((*t)["segments"].size(), 2u);
  EXPECT_EQ((*t)["segments"][0]["id"], 0) << "renumbered in order";
  EXPECT_EQ((*t)["segments"][1]["id"], 1);
  EXPECT_EQ((*t)["segments"][0]["tokens"], json({5, 6}));
  EXPECT_FALSE((*t)["segments"][0].contains("speaker"));
  EXPECT_FALSE((*t)["segments"][0].contains("words")) << "words only when asked for and timed";
  EXPECT_DOUBLE_EQ((*t)["segments"][1]["end"].get<double>(), 3.0) << "kept inside the audio";
}

TEST(ServerTranscript, PlainJsonBecomesOneSegmentAndTheTaskIsTheRequests) {
  auto t = TranscriptFromServerAnswer({{"text", "hello there"}}, {"translate", false});
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ((*t)["task"], "translate");
  EXPECT_EQ((*t)["text"], "hello there");
  ASSERT_EQ((*t)["segments"].size(), 1u);
  EXPECT_EQ((*t)["segments"][0]["text"], " hello there");
  auto bad = TranscriptFromServerAnswer({{"status", "ok"}}, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "bad_server_answer");
}

TEST(ServerProcessTree, HoldsTheGroupAndDescendantsThatLeftIt) {
  // A shell (the group's leader) with a child in its group and a grandchild in a new session:
  // all three are the tree; after the leader dies, the tracked tree still has the escaped one.
  const pid_t leader = fork();
  ASSERT_GE(leader, 0);
  if (leader == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", "sleep 60 & setsid sleep 61 & wait", nullptr);
    _exit(127);
  }
  setpgid(leader, leader);
  TrackedTree tree(leader);
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        tree.Refresh();
        return tree.live().size() == 3;
      },
      30s))
      << "processes: " << tree.live().size();
  const std::vector<int> pids = PidsOf(tree.live());
  EXPECT_TRUE(std::is_sorted(pids.begin(), pids.end()));
  EXPECT_NE(std::find(pids.begin(), pids.end(), leader), pids.end());

  kill(leader, SIGKILL);
  waitpid(leader, nullptr, 0);
  tree.Refresh();
  EXPECT_EQ(tree.live().size(), 2u) << "the grandchild in its own session is still tracked";
  tree.Signal(SIGKILL);
  EXPECT_TRUE(test::WaitUntil(
      [&] {
        tree.Refresh();
        return tree.empty();
      },
      30s));
  EXPECT_TRUE(ProcessTree(leader).empty());
}

TEST(ServerCatalogEntry, DeclaresTheFootprintCapabilitiesAndSettings) {
  ServerModel m;
  m.name = "sense";
  m.protocol = ServerProtocol::kWhisperServer;
  m.vram_bytes = 5ll << 30;
  m.ram_bytes = 1ll << 30;
  m.streams = 3;
  m.keep_alive_s = 30;
  m.devices = {"cuda:0", "cuda:2"};
  models::DeclaredModel d = CatalogEntryOf(m);
  EXPECT_EQ(d.kind, "server");
  EXPECT_EQ(d.weights_bytes, 5ll << 30);
  EXPECT_EQ(d.stream_bytes, 0);
  EXPECT_TRUE(d.capabilities.Has(models::Capability::kTranscribe));
  EXPECT_TRUE(d.capabilities.Has(models::Capability::kTranslate));
  EXPECT_FALSE(d.capabilities.Has(models::Capability::kSpeech));
  EXPECT_EQ(d.allowed_devices, m.devices);
  EXPECT_EQ(d.max_streams, 3);
  EXPECT_EQ(d.keep_alive_s, 30);
  m.protocol = ServerProtocol::kOpenAiSpeech;
  m.devices = {"cpu"};
  d = CatalogEntryOf(m);
  EXPECT_EQ(d.capabilities.Names(), std::vector<std::string>{"speech"});
  EXPECT_EQ(d.weights_bytes, 1ll << 30) << "a CPU-only server holds host memory";
  m.protocol = ServerProtocol::kHttp;
  EXPECT_TRUE(CatalogEntryOf(m).capabilities.Names().empty());
}

}  // namespace
}  // namespace steno::runners
