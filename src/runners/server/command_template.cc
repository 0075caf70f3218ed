#include "runners/server/command_template.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

namespace steno::runners {
namespace {

constexpr const char* kPlaceholders[] = {"port",     "host",       "device", "cuda_index",
                                         "gpu_uuid", "models_dir", "name"};

std::optional<std::string> ValueOf(const std::string& key, const CommandValues* v) {
  bool known = false;
  for (const char* k : kPlaceholders) known = known || key == k;
  if (!known) return std::nullopt;
  if (!v) return std::string();
  if (key == "port") return std::to_string(v->port);
  if (key == "host") return v->host;
  if (key == "device") return v->device;
  if (key == "cuda_index") return v->cuda_index;
  if (key == "gpu_uuid") return v->gpu_uuid;
  if (key == "models_dir") return v->models_dir;
  return v->name;
}

Error BadPlaceholder(const std::string& what, const std::string& arg, const std::string& why) {
  return Error(ErrorKind::kBadInput, "bad_placeholder",
               what + " (\"" + arg + "\"): " + why +
                   "; known placeholders: {port} {host} {device} {cuda_index} {gpu_uuid} "
                   "{models_dir} {name}");
}

// One argument expanded; `values` null only checks it.
Result<std::string> ExpandArg(const std::string& what, const std::string& arg,
                              const CommandValues* values) {
  std::string out;
  for (size_t i = 0; i < arg.size(); ++i) {
    const char c = arg[i];
    if ((c == '{' || c == '}') && i + 1 < arg.size() && arg[i + 1] == c) {
      out += c;  // "{{" or "}}"
      ++i;
      continue;
    }
    if (c == '}') return BadPlaceholder(what, arg, "'}' without its '{' (write }} for one)");
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t close = arg.find('}', i + 1);
    if (close == std::string::npos) {
      return BadPlaceholder(what, arg, "'{' without its '}' (write {{ for one)");
    }
    const std::string key = arg.substr(i + 1, close - i - 1);
    auto value = ValueOf(key, values);
    if (!value) return BadPlaceholder(what, arg, "unknown placeholder {" + key + "}");
    out += *value;
    i = close;
  }
  return out;
}

std::string ArgName(size_t index) {
  return "command argument " + std::to_string(index);
}

}  // namespace

Result<std::string> ExpandText(const std::string& text, const CommandValues& values,
                               const std::string& what) {
  return ExpandArg(what, text, &values);
}

Status CheckCommandTemplate(const std::vector<std::string>& command) {
  if (command.empty() || command[0].empty()) {
    return Error(ErrorKind::kBadInput, "bad_command", "the command names no program");
  }
  for (size_t i = 0; i < command.size(); ++i) {
    if (auto r = ExpandArg(ArgName(i), command[i], nullptr); !r.ok()) return r.error();
  }
  return {};
}

Result<std::vector<std::string>> ExpandCommand(const std::vector<std::string>& command,
                                               const CommandValues& values) {
  if (auto st = CheckCommandTemplate(command); !st) return st.error();
  std::vector<std::string> argv;
  for (size_t i = 0; i < command.size(); ++i) {
    auto r = ExpandArg(ArgName(i), command[i], &values);
    if (!r.ok()) return r.error();
    argv.push_back(std::move(r).value());
  }
  return argv;
}

Result<int> PickFreePort(const std::string& host) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return Error(ErrorKind::kBadInput, "bad_host", "not an IPv4 address: " + host);
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(ErrorKind::kInternal, "socket", std::strerror(errno));
  socklen_t len = sizeof(addr);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int err = errno;
  close(fd);
  if (!ok) return Error(ErrorKind::kInternal, "free_port", std::strerror(err));
  return static_cast<int>(ntohs(addr.sin_port));
}

}  // namespace steno::runners
