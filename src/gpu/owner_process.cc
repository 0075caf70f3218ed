#include "gpu/owner_process.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "core/paths.h"

namespace steno::gpu {
namespace {

struct StatFields {
  char state = '?';
  int ppid = 0;
  uint64_t start_ticks = 0;
};

// Reads /proc/PID/stat. The command name (field 2) is in parentheses and may itself contain
// spaces and parentheses, so fields are counted from the last ')'.
std::optional<StatFields> ReadStat(int pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 1));
  StatFields f;
  rest >> f.state >> f.ppid;  // fields 3 and 4
  std::string skip;
  for (int field = 5; field < 22; ++field) rest >> skip;
  rest >> f.start_ticks;  // field 22
  if (!rest) return std::nullopt;
  return f;
}

bool Dead(char state) {
  return state == 'Z' || state == 'X' || state == 'x';
}

}  // namespace

std::optional<ProcessIdentity> IdentifyProcess(int pid) {
  auto stat = ReadStat(pid);
  if (!stat || Dead(stat->state)) return std::nullopt;
  return ProcessIdentity{pid, stat->start_ticks};
}

bool IsAlive(const ProcessIdentity& process) {
  auto stat = ReadStat(process.pid);
  return stat && !Dead(stat->state) && stat->start_ticks == process.start_ticks;
}

std::optional<int> ParentPid(int pid) {
  auto stat = ReadStat(pid);
  if (!stat || Dead(stat->state)) return std::nullopt;
  return stat->ppid;
}

bool IsStenoProcess(int pid) {
  if (pid == getpid()) return true;
  struct stat theirs {};
  if (stat(("/proc/" + std::to_string(pid) + "/exe").c_str(), &theirs) != 0) return false;
  static const std::string runner = RunnerProgram();  // fixed for the life of the process
  for (const std::string& program : {std::string("/proc/self/exe"), runner}) {
    struct stat ours {};
    if (stat(program.c_str(), &ours) == 0 && ours.st_dev == theirs.st_dev &&
        ours.st_ino == theirs.st_ino) {
      return true;
    }
  }
  return false;
}

}  // namespace steno::gpu
