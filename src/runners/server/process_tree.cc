#include "runners/server/process_tree.h"

#include <dirent.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

namespace steno::runners {
namespace {

struct ProcStat {
  int pid = 0;
  int ppid = 0;
  int pgrp = 0;
  uint64_t start_ticks = 0;
};

// /proc/PID/stat: the command (field 2) may hold spaces and parentheses, so fields are counted
// from the last ')'. Zombies and dead processes are skipped (nullopt-like: pid 0).
ProcStat ReadStat(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return {};
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 1));
  char state = '?';
  ProcStat s;
  rest >> state >> s.ppid >> s.pgrp;  // fields 3, 4, 5
  std::string skip;
  for (int field = 6; field < 22; ++field) rest >> skip;
  rest >> s.start_ticks;  // field 22
  if (!rest || state == 'Z' || state == 'X' || state == 'x') return {};
  s.pid = pid;
  return s;
}

std::vector<ProcStat> AllProcesses() {
  std::vector<ProcStat> out;
  DIR* dir = opendir("/proc");
  if (!dir) return out;
  while (const dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    if (ProcStat s = ReadStat(static_cast<int>(pid)); s.pid > 0) out.push_back(s);
  }
  closedir(dir);
  return out;
}

}  // namespace

std::vector<gpu::ProcessIdentity> ProcessTree(pid_t pgid) {
  const std::vector<ProcStat> all = AllProcesses();
  std::multimap<int, const ProcStat*> children;  // ppid → child
  for (const auto& p : all) children.emplace(p.ppid, &p);
  std::map<int, uint64_t> tree;
  std::vector<const ProcStat*> todo;
  for (const auto& p : all) {
    if (p.pgrp == pgid) todo.push_back(&p);
  }
  while (!todo.empty()) {
    const ProcStat* p = todo.back();
    todo.pop_back();
    if (!tree.emplace(p->pid, p->start_ticks).second) continue;
    auto [first, last] = children.equal_range(p->pid);
    for (auto it = first; it != last; ++it) todo.push_back(it->second);
  }
  std::vector<gpu::ProcessIdentity> out;
  for (const auto& [pid, ticks] : tree) out.push_back({pid, ticks});
  return out;
}

std::vector<int> PidsOf(const std::vector<gpu::ProcessIdentity>& tree) {
  std::vector<int> pids;
  for (const auto& p : tree) pids.push_back(p.pid);
  return pids;
}

bool TrackedTree::Refresh() {
  std::vector<gpu::ProcessIdentity> now = ProcessTree(pgid_);
  for (const auto& p : live_) {
    const bool listed =
        std::any_of(now.begin(), now.end(), [&](const gpu::ProcessIdentity& q) { return q == p; });
    if (!listed && gpu::IsAlive(p)) now.push_back(p);
  }
  std::sort(
      now.begin(), now.end(),
      [](const gpu::ProcessIdentity& a, const gpu::ProcessIdentity& b) { return a.pid < b.pid; });
  const bool changed = now != live_;
  live_ = std::move(now);
  return changed;
}

void TrackedTree::Signal(int sig) const {
  ::kill(-pgid_, sig);  // ESRCH once the group is empty: nothing to do
  for (const auto& p : live_) {
    if (gpu::IsAlive(p)) ::kill(p.pid, sig);
  }
}

}  // namespace steno::runners
