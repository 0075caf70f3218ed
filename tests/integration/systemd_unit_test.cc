// packaging/steno.service passes `systemd-analyze verify` without a single warning (systemd
// only warns about a misspelt setting and then ignores it), and keeps the settings graceful
// shutdown relies on.
#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "support/process.h"
#include "support/test_env.h"

namespace steno {
namespace {

std::string Unit() {
  return test::ReadFileText(test::SourceDir() + "/packaging/steno.service");
}

TEST(SystemdUnitTest, VerifiesCleanlyWithTheBuiltBinary) {
  test::ScopedTempDir dir("steno-unit");
  // verify checks that ExecStart's program exists: point it at the binary under test.
  const std::string unit =
      std::regex_replace(Unit(), std::regex("/usr/local/bin/steno"), test::StenoBin());
  const std::string path = dir.path + "/steno.service";
  { std::ofstream(path) << unit; }
  auto r = test::RunProcess({"systemd-analyze", "verify", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "") << "systemd-analyze warned";
}

TEST(SystemdUnitTest, AMisspeltSettingIsCaught) {
  // The check above can fail: the same unit with a bad KillMode produces a warning.
  test::ScopedTempDir dir("steno-unit");
  std::string unit =
      std::regex_replace(Unit(), std::regex("/usr/local/bin/steno"), test::StenoBin());
  unit = std::regex_replace(unit, std::regex("KillMode=mixed"), "KillMode=gently");
  const std::string path = dir.path + "/steno.service";
  { std::ofstream(path) << unit; }
  auto r = test::RunProcess({"systemd-analyze", "verify", path});
  // The warning names the file, the line of the bad setting and its value; any other stderr
  // (systemd-analyze missing, an unrelated complaint) is not this check failing as it should.
  int line = 0;
  {
    std::istringstream in(unit);
    std::string text;
    for (int n = 1; std::getline(in, text); ++n) {
      if (text == "KillMode=gently") line = n;
    }
  }
  ASSERT_GT(line, 0);
  EXPECT_NE(r.err.find(path + ":" + std::to_string(line) + ": "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("kill mode"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("gently"), std::string::npos) << r.err;
}

TEST(SystemdUnitTest, StopSettingsLeaveRoomForTheGracePeriod) {
  const std::string unit = Unit();
  // SIGTERM to steno alone (it stops its runners itself), SIGKILL for anything left after.
  EXPECT_NE(unit.find("\nKillMode=mixed\n"), std::string::npos);
  std::smatch grace, timeout;
  ASSERT_TRUE(std::regex_search(unit, grace, std::regex("--shutdown-grace (\\d+)s")));
  ASSERT_TRUE(std::regex_search(unit, timeout, std::regex("\nTimeoutStopSec=(\\d+)\n")));
  EXPECT_GE(std::stoi(timeout[1]), std::stoi(grace[1]) + 15);
  EXPECT_NE(unit.find("ExecReload=/bin/kill -HUP $MAINPID"), std::string::npos);
}

}  // namespace
}  // namespace steno
