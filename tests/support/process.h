// Runs a real child process for integration tests and captures what it did.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace steno::test {

struct ProcessResult {
  int exit_code = -1;  // exit status, or 128 + signal number if it was killed
  std::string out;     // everything written to stdout
  std::string err;     // everything written to stderr
};

struct ProcessOptions {
  std::vector<std::pair<std::string, std::string>> env;  // added to (or overriding) the environment
  std::string cwd;                                       // empty: inherit
  int timeout_s = 300;                                   // killed with SIGKILL past this
};

// Runs argv[0] (looked up in PATH if it has no slash) with the given arguments, waits for it.
ProcessResult RunProcess(const std::vector<std::string>& argv, const ProcessOptions& options = {});

}  // namespace steno::test
