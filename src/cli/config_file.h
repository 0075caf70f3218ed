// The config file (`--config FILE`, TOML): one `[serve]` table whose keys are the long flag names
// without dashes (`port = 8080`, `keep-alive = "10m"`, `preload = ["base.en"]`,
// `allow-cpu = true`). Precedence is flags > environment (STENO_*) > config file > defaults:
// the file's settings become command-line tokens placed before the user's own flags (a later
// flag wins) and are skipped for settings whose environment variable is set. The file is real
// TOML (toml++); its `[[models]]` tables declare managed model servers and are read by
// runners/server/server_config.h, not here.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/result.h"

namespace steno::cli {

// Tokens for `cmd` from the file's [<cmd name>] table (top-level keys are accepted too).
// kBadInput for an unreadable or malformed file, or a key that is not one of cmd's options; the
// message names the file and the line ("steno.toml:3: unknown setting ...").
Result<std::vector<std::string>> ConfigFileArgs(const CLI::App& cmd, const std::string& path);

// This process's command line as the kernel holds it, without argv[0] (/proc/self/cmdline).
std::vector<std::string> ProcessArgs();

}  // namespace steno::cli
