#include "gpu/simulated_state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace steno::gpu::sim {
namespace {

using nlohmann::json;

Error IoError(const std::string& what, const std::string& path) {
  return Error(ErrorKind::kIo, "simulated_gpus_io",
               what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

Result<Lock> Lock::Acquire(const std::string& lock_path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(lock_path).parent_path(), ec);
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot open", lock_path);
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    Error e = IoError("cannot lock", lock_path);
    ::close(fd);
    return e;
  }
  return Lock(fd);
}

Lock::~Lock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

Result<State> Load(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return Error(ErrorKind::kNotFound, "no_simulated_gpus", "no simulated GPUs at " + path);
  }
  std::ifstream in(path);
  if (!in) return IoError("cannot read", path);
  std::stringstream text;
  text << in.rdbuf();
  try {
    json j = json::parse(text.str());
    State s;
    for (const auto& d : j.at("devices")) {
      DeviceState ds;
      ds.total_bytes = d.at("total_bytes").get<int64_t>();
      ds.external_bytes = d.at("external_bytes").get<int64_t>();
      ds.gpu_utilization_percent = d.at("gpu_utilization_percent").get<int>();
      ds.memory_utilization_percent = d.at("memory_utilization_percent").get<int>();
      ds.temperature_c = d.at("temperature_c").get<int>();
      ds.power_watts = d.at("power_watts").get<double>();
      ds.power_limit_watts = d.at("power_limit_watts").get<double>();
      s.devices.push_back(ds);
    }
    for (const auto& c : j.at("charges")) {
      Charge ch;
      ch.device = c.at("device").get<int>();
      ch.owner.pid = c.at("pid").get<int>();
      ch.owner.start_ticks = c.at("start_ticks").get<uint64_t>();
      ch.bytes = c.at("bytes").get<int64_t>();
      if (ch.device < 0 || ch.device >= static_cast<int>(s.devices.size())) {
        throw std::out_of_range("charge on device " + std::to_string(ch.device));
      }
      s.charges.push_back(ch);
    }
    return s;
  } catch (const std::exception& e) {
    return Error(ErrorKind::kIntegrity, "simulated_gpus_corrupt",
                 "the simulated GPU state " + path + " is unreadable (" + e.what() +
                     "); delete it to start the simulation afresh");
  }
}

Status Save(const std::string& path, const State& state) {
  json devices = json::array();
  for (const auto& d : state.devices) {
    devices.push_back({{"total_bytes", d.total_bytes},
                       {"external_bytes", d.external_bytes},
                       {"gpu_utilization_percent", d.gpu_utilization_percent},
                       {"memory_utilization_percent", d.memory_utilization_percent},
                       {"temperature_c", d.temperature_c},
                       {"power_watts", d.power_watts},
                       {"power_limit_watts", d.power_limit_watts}});
  }
  json charges = json::array();
  for (const auto& c : state.charges) {
    charges.push_back({{"device", c.device},
                       {"pid", c.owner.pid},
                       {"start_ticks", c.owner.start_ticks},
                       {"bytes", c.bytes}});
  }
  json j = {{"version", 1}, {"devices", devices}, {"charges", charges}};

  const std::string tmp = path + ".tmp";  // one writer at a time: the caller holds the lock
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return IoError("cannot write", tmp);
    out << j.dump(1) << '\n';
    out.flush();
    if (!out) return IoError("cannot write", tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return IoError("cannot replace", path);
  return {};
}

}  // namespace steno::gpu::sim
