#include "runners/server/server_config.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <iterator>

#define TOML_HEADER_ONLY 1  // Debian's toml++, header-only: no shared library to ship
#include <toml++/toml.h>

#include "core/duration.h"
#include "gpu/size.h"
#include "models/resolve.h"

namespace steno::runners {
namespace {

constexpr std::array<std::string_view, 7> kPlaceholders = {
    "port", "host", "device", "cuda_index", "gpu_uuid", "models_dir", "name"};
constexpr std::array<std::string_view, 15> kKeys = {
    "name", "kind",         "command",    "env", "workdir", "protocol", "health", "ready_timeout",
    "vram", "stop_timeout", "keep_alive", "ram", "streams", "devices",  "preload"};
constexpr int kMaxStreams = 64;

// Where a message points: "FILE:LINE: models[I].KEY".
struct Where {
  const std::string& source;
  size_t index;

  Error Fail(const toml::source_region& at, const std::string& key, const std::string& what) const {
    std::string message = source;
    if (at.begin.line > 0) message += ":" + std::to_string(at.begin.line);
    message += ": models[" + std::to_string(index) + "]";
    if (!key.empty()) message += "." + key;
    return Error(ErrorKind::kBadInput, "bad_models_config", message + ": " + what);
  }
};

std::string TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
  }
}

std::string Joined(const auto& names, const std::string& between = ", ") {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : between) + std::string(n);
  return out;
}

// A model name as requests give it: no path, nothing a URL segment would need to escape.
bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 128 || name.front() == '.' || models::IsPathLike(name)) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == ':';
  });
}

// What is wrong with the placeholders of `text` ("" if nothing): the grammar the server kind
// expands them with ("{name}"; "{{" and "}}" stand for one brace).
std::string PlaceholderProblem(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
      ++i;
      continue;
    }
    if (c == '}') return "'}' without its '{' (write }} for one)";
    if (c != '{') continue;
    const size_t close = text.find('}', i + 1);
    if (close == std::string::npos) return "'{' without its '}' (write {{ for one)";
    const std::string id = text.substr(i + 1, close - i - 1);
    if (std::find(kPlaceholders.begin(), kPlaceholders.end(), id) == kPlaceholders.end()) {
      return "unknown placeholder {" + id + "} (known: {" + Joined(kPlaceholders, "} {") + "})";
    }
    i = close;
  }
  return "";
}

// A device a model may be allowed on: "cpu" or "cuda:N".
bool ValidDevice(const std::string& d) {
  if (d == "cpu") return true;
  if (!d.starts_with("cuda:") || d.size() == 5 || d.size() > 9) return false;
  return std::all_of(d.begin() + 5, d.end(), [](unsigned char c) { return std::isdigit(c); });
}

// Reads one model's table; each key's value is checked where it is read.
class ModelReader {
 public:
  ModelReader(Where where, const toml::table& table, ServerModel& out)
      : w_(where), t_(table), m_(out) {}

  Status Read() {
    for (auto&& [key, node] : t_) {
      const std::string k(key.str());
      if (std::find(kKeys.begin(), kKeys.end(), k) == kKeys.end()) {
        return w_.Fail(key.source(), k, "unknown key (known: " + Joined(kKeys) + ")");
      }
      if (auto st = ReadKey(k, node); !st) return st;
    }
    for (const char* required : {"name", "kind", "command"}) {
      if (!t_.contains(required)) {
        return w_.Fail(
            t_.source(), required,
            std::string("missing (every model needs ") + "name, kind = \"server\" and command)");
      }
    }
    return {};
  }

 private:
  Status ReadKey(const std::string& k, const toml::node& n) {
    if (k == "name") return ReadName(n);
    if (k == "kind") return ReadKind(n);
    if (k == "command") return ReadCommand(n);
    if (k == "env") return ReadEnv(n);
    if (k == "workdir") return ReadTemplate(k, n, m_.workdir);
    if (k == "protocol") return ReadProtocol(n);
    if (k == "health") return ReadHealth(n);
    if (k == "ready_timeout") return ReadSeconds(k, n, 1, m_.ready_timeout);
    if (k == "stop_timeout") return ReadSeconds(k, n, 0, m_.stop_timeout);
    if (k == "keep_alive") return ReadKeepAlive(n);
    if (k == "vram") return ReadSize(k, n, m_.vram_bytes);
    if (k == "ram") return ReadSize(k, n, m_.ram_bytes);
    if (k == "streams") return ReadStreams(n);
    if (k == "devices") return ReadDevices(n);
    auto b = n.as_boolean();  // preload
    if (!b) return WrongType(k, n, "true or false");
    m_.preload = b->get();
    return {};
  }

  Error WrongType(const std::string& k, const toml::node& n, const std::string& want) {
    return w_.Fail(n.source(), k, "must be " + want + ", not " + TypeName(n));
  }

  Status ReadString(const std::string& k, const toml::node& n, std::string& out) {
    auto s = n.as_string();
    if (!s) return WrongType(k, n, "a string");
    out = s->get();
    return {};
  }

  Status ReadTemplate(const std::string& k, const toml::node& n, std::string& out) {
    if (auto st = ReadString(k, n, out); !st) return st;
    if (auto problem = PlaceholderProblem(out); !problem.empty()) {
      return w_.Fail(n.source(), k, problem);
    }
    return {};
  }

  Status ReadName(const toml::node& n) {
    if (auto st = ReadString("name", n, m_.name); !st) return st;
    if (!ValidName(m_.name)) {
      return w_.Fail(n.source(), "name",
                     "\"" + m_.name +
                         "\" must be a model name (letters, digits and . _ - :, not starting "
                         "with a dot), not a path");
    }
    return {};
  }

  Status ReadKind(const toml::node& n) {
    std::string kind;
    if (auto st = ReadString("kind", n, kind); !st) return st;
    if (kind != kServerKind) {
      return w_.Fail(n.source(), "kind",
                     "unknown kind \"" + kind + "\" ([[models]] tables declare kind = \"server\")");
    }
    return {};
  }

  Status ReadCommand(const toml::node& n) {
    auto a = n.as_array();
    if (!a) return WrongType("command", n, "an array of strings");
    if (a->empty()) return w_.Fail(n.source(), "command", "is empty (the program to run first)");
    for (size_t i = 0; i < a->size(); ++i) {
      const std::string key = "command[" + std::to_string(i) + "]";
      std::string arg;
      if (auto st = ReadTemplate(key, *a->get(i), arg); !st) return st;
      m_.command.push_back(std::move(arg));
    }
    if (m_.command.front().empty()) {
      return w_.Fail(n.source(), "command[0]", "is empty (the program to run)");
    }
    return {};
  }

  Status ReadEnv(const toml::node& n) {
    auto t = n.as_table();
    if (!t) return WrongType("env", n, "a table such as {NAME = \"value\"}");
    for (auto&& [key, value] : *t) {
      const std::string name(key.str());
      if (name.empty() || name.find('=') != std::string::npos) {
        return w_.Fail(key.source(), "env", "\"" + name + "\" is no environment variable name");
      }
      std::string text;
      if (auto st = ReadTemplate("env." + name, value, text); !st) return st;
      m_.env.emplace_back(name, std::move(text));
    }
    return {};
  }

  Status ReadProtocol(const toml::node& n) {
    std::string name;
    if (auto st = ReadString("protocol", n, name); !st) return st;
    auto p = ParseServerProtocol(name);
    if (!p) {
      return w_.Fail(n.source(), "protocol",
                     "unknown protocol \"" + name +
                         "\" (one of openai-transcription, whisper-server, openai-speech, http)");
    }
    m_.protocol = *p;
    return {};
  }

  Status ReadHealthPath(const std::string& k, const toml::node& n) {
    if (auto st = ReadString(k, n, m_.health.path); !st) return st;
    if (!m_.health.path.starts_with("/")) {
      return w_.Fail(n.source(), k, "\"" + m_.health.path + "\" must be a path starting with /");
    }
    return {};
  }

  Status ReadHealth(const toml::node& n) {
    if (n.is_string()) return ReadHealthPath("health", n);
    auto t = n.as_table();
    if (!t) return WrongType("health", n, "a path or a table {path = \"/health\", status = 200}");
    for (auto&& [key, value] : *t) {
      const std::string k = "health." + std::string(key.str());
      if (key.str() == "path") {
        if (auto st = ReadHealthPath(k, value); !st) return st;
      } else if (key.str() == "status") {
        auto s = value.as_integer();
        if (!s) return WrongType(k, value, "an HTTP status");
        if (s->get() < 100 || s->get() > 599) {
          return w_.Fail(value.source(), k, "must be an HTTP status from 100 to 599");
        }
        m_.health.status = static_cast<int>(s->get());
      } else {
        return w_.Fail(key.source(), k, "unknown key (known: path, status)");
      }
    }
    return {};
  }

  // A duration as text ("30s", "10m") or a number of seconds; nullopt with `error` set if bad.
  std::optional<int> Duration(const std::string& k, const toml::node& n, Status& error) {
    std::string text;
    if (auto i = n.as_integer()) {
      text = std::to_string(i->get());
    } else if (auto s = n.as_string()) {
      text = s->get();
    } else {
      error = WrongType(k, n, "a duration such as \"30s\" or \"10m\"");
      return std::nullopt;
    }
    if (text == "-1" && k == "keep_alive") return -1;
    auto seconds = ParseDurationSeconds(text);
    if (!seconds) {
      error = w_.Fail(n.source(), k,
                      "\"" + text + "\" is no duration (seconds, or 30s, 10m, 1h; at most a year)" +
                          (k == "keep_alive" ? "; 0 unloads when idle, -1 never" : ""));
    }
    return seconds;
  }

  Status ReadSeconds(const std::string& k, const toml::node& n, int min,
                     std::chrono::seconds& out) {
    Status error;
    auto s = Duration(k, n, error);
    if (!s) return error;
    if (*s < min) return w_.Fail(n.source(), k, "must be at least " + std::to_string(min) + " s");
    out = std::chrono::seconds(*s);
    return {};
  }

  Status ReadKeepAlive(const toml::node& n) {
    Status error;
    auto s = Duration("keep_alive", n, error);
    if (!s) return error;
    m_.keep_alive_s = *s;
    return {};
  }

  Status ReadSize(const std::string& k, const toml::node& n, int64_t& out) {
    if (auto i = n.as_integer()) {
      if (i->get() < 0) return w_.Fail(n.source(), k, "must not be negative");
      out = i->get();
      return {};
    }
    auto s = n.as_string();
    if (!s) return WrongType(k, n, "a size such as \"5GiB\"");
    auto bytes = gpu::ParseSize(s->get());
    if (!bytes.ok()) return w_.Fail(n.source(), k, bytes.error().message);
    out = *bytes;
    return {};
  }

  Status ReadStreams(const toml::node& n) {
    auto i = n.as_integer();
    if (!i) return WrongType("streams", n, "an integer");
    if (i->get() < 1 || i->get() > kMaxStreams) {
      return w_.Fail(
          n.source(), "streams",
          "must be from 1 to " + std::to_string(kMaxStreams) + ", not " + std::to_string(i->get()));
    }
    m_.streams = static_cast<int>(i->get());
    return {};
  }

  Status ReadDevices(const toml::node& n) {
    auto a = n.as_array();
    if (!a) return WrongType("devices", n, "an array such as [\"cuda:0\", \"cpu\"]");
    for (size_t i = 0; i < a->size(); ++i) {
      const std::string key = "devices[" + std::to_string(i) + "]";
      std::string d;
      if (auto st = ReadString(key, *a->get(i), d); !st) return st;
      if (!ValidDevice(d)) {
        return w_.Fail(a->get(i)->source(), key, "\"" + d + "\" is no device (cpu or cuda:N)");
      }
      if (std::find(m_.devices.begin(), m_.devices.end(), d) != m_.devices.end()) {
        return w_.Fail(a->get(i)->source(), key, "\"" + d + "\" is listed twice");
      }
      m_.devices.push_back(std::move(d));
    }
    return {};
  }

  Where w_;
  const toml::table& t_;
  ServerModel& m_;
};

// The top-level keys other than `models` that `scope` refuses.
Status CheckTopLevel(const toml::table& root, const std::string& source, ModelsFileScope scope) {
  if (scope != ModelsFileScope::kModelsOnly) return {};
  for (auto&& [key, node] : root) {
    if (key.str() == "models") continue;
    return Error(ErrorKind::kBadInput, "bad_models_config",
                 source + ":" + std::to_string(key.source().begin.line) + ": " +
                     std::string(key.str()) +
                     ": unknown key (a models config holds only [[models]] tables)");
  }
  return {};
}

}  // namespace

Result<std::vector<ServerModel>> ParseServerModels(std::string_view text, const std::string& source,
                                                   ModelsFileScope scope,
                                                   const std::vector<ServerModel>& earlier) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return Error(
        ErrorKind::kBadInput, "bad_models_config",
        source + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  if (auto st = CheckTopLevel(root, source, scope); !st) return st.error();
  std::vector<ServerModel> out;
  const toml::node* models = root.get("models");
  if (!models) return out;
  const toml::array* tables = models->as_array();
  if (!tables || !tables->is_array_of_tables()) {
    return Error(ErrorKind::kBadInput, "bad_models_config",
                 source + ":" + std::to_string(models->source().begin.line) +
                     ": models: must be [[models]] tables, not " + TypeName(*models));
  }
  for (size_t i = 0; i < tables->size(); ++i) {
    const toml::table& table = *tables->get(i)->as_table();
    ServerModel m;
    m.source = source;
    if (auto st = ModelReader(Where{source, i}, table, m).Read(); !st) return st.error();
    auto same = [&](const ServerModel& o) { return o.name == m.name; };
    std::string also;  // where the name was declared before
    if (std::any_of(out.begin(), out.end(), same)) {
      also = source;
    } else if (auto e = std::find_if(earlier.begin(), earlier.end(), same); e != earlier.end()) {
      also = e->source;
    }
    if (!also.empty()) {
      return Where{source, i}.Fail(table.get("name")->source(), "name",
                                   "\"" + m.name + "\" is declared twice (also in " + also + ")");
    }
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<ServerModel>> ReadServerModels(const std::string& path, ModelsFileScope scope,
                                                  const std::vector<ServerModel>& earlier) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error(ErrorKind::kBadInput, "bad_models_config", "cannot read models config " + path);
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return Error(ErrorKind::kBadInput, "bad_models_config", "cannot read models config " + path);
  }
  return ParseServerModels(text, path, scope, earlier);
}

}  // namespace steno::runners
