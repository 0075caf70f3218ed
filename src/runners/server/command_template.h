// A server model's command line as declared (ServerModel::command) turned into the argv of one
// start (and its environment values and workdir likewise): each placeholder replaced by what
// this start was given. Placeholders:
//   {port}        the port the server must listen on (a free one, picked per start)
//   {host}        the address it must listen on and steno reaches it at ("127.0.0.1")
//   {device}      "cuda:N" (steno's name of the card) or "cpu"
//   {cuda_index}  the index the server should use: "0" on a GPU (CUDA_VISIBLE_DEVICES narrows
//                 it to its one card), "" on the CPU
//   {gpu_uuid}    the card's UUID ("GPU-…"), "" on the CPU
//   {models_dir}  steno's models directory
//   {name}        the model's name
// "{{" and "}}" stand for literal braces.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

namespace steno::runners {

struct CommandValues {
  int port = 0;
  std::string host = "127.0.0.1";
  std::string device = "cpu";
  std::string cuda_index;
  std::string gpu_uuid;
  std::string models_dir;
  std::string name;
};

// kBadInput "bad_placeholder" naming the argument and the placeholder when one is unknown or
// unclosed; "bad_command" when the command is empty. For the config's checks at load time.
Status CheckCommandTemplate(const std::vector<std::string>& command);

// The argv with every placeholder replaced (CheckCommandTemplate's errors otherwise).
Result<std::vector<std::string>> ExpandCommand(const std::vector<std::string>& command,
                                               const CommandValues& values);

// One text (an environment value, the workdir) with its placeholders replaced; `what` names it
// in the error ("bad_placeholder").
Result<std::string> ExpandText(const std::string& text, const CommandValues& values,
                               const std::string& what);

// A TCP port on `host` that nothing listens on now (the kernel's choice of an ephemeral port).
// The server binds it a moment later; another process could take it in between, in which case
// that server fails to start and the load fails like any other.
Result<int> PickFreePort(const std::string& host);

}  // namespace steno::runners
