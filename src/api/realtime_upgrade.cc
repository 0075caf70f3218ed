#include "api/realtime_upgrade.h"

#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"

namespace steno::api {
namespace {

// The numeric host and port of `addr` (as the HTTP library writes them: getnameinfo with
// NI_NUMERICHOST).
bool HostPort(const sockaddr_storage& addr, socklen_t len, std::string& host, int& port) {
  char name[NI_MAXHOST];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, name, sizeof name, nullptr, 0,
                  NI_NUMERICHOST) != 0) {
    return false;
  }
  host = name;
  if (addr.ss_family == AF_INET) {
    port = ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    port = ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  } else {
    return false;
  }
  return true;
}

bool IsConnection(int fd, const httplib::Request& req) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  std::string host;
  int port = 0;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      !HostPort(addr, len, host, port) || port != req.remote_port || host != req.remote_addr) {
    return false;
  }
  len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      !HostPort(addr, len, host, port) || port != req.local_port || host != req.local_addr) {
    return false;
  }
  return true;
}

int FindConnection(const httplib::Request& req) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  int found = -1;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == dirfd(dir)) continue;
    if (IsConnection(static_cast<int>(fd), req)) {
      found = static_cast<int>(fd);
      break;
    }
  }
  closedir(dir);
  return found;
}

Error Io(const char* what) {
  return Error(ErrorKind::kIo, "upgrade_failed", std::string(what) + ": " + std::strerror(errno));
}

}  // namespace

Result<int> TakeConnection(const httplib::Request& req) {
  const int fd = FindConnection(req);
  if (fd < 0) {
    return Error(ErrorKind::kNotFound, "connection_not_found",
                 "the upgrade request's connection was not found");
  }
  const int mine = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (mine < 0) return Io("dup");
  const int dead = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (dead < 0 || dup2(dead, fd) < 0) {
    Error e = Io("dup2");
    if (dead >= 0) close(dead);
    close(mine);
    return e;
  }
  close(dead);
  return mine;
}

}  // namespace steno::api
