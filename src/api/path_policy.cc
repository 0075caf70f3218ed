#include "api/path_policy.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace steno::api {
namespace {

Error NotAllowed(const std::string& why) {
  return Error(ErrorKind::kBadInput, "path_not_allowed", why);
}

// Splits on '/', dropping empty and "." components; sets `dotdot` if a ".." is present.
std::vector<std::string> Components(const std::string& path, bool& dotdot) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string part = path.substr(i, j - i);
    if (part == "..") dotdot = true;
    if (!part.empty() && part != ".") out.push_back(std::move(part));
    i = j + 1;
  }
  return out;
}

std::string Join(const std::vector<std::string>& parts) {
  if (parts.empty()) return "/";
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out;
}

std::string RealPath(const std::string& path, int& err) {
  char buf[PATH_MAX];
  if (!realpath(path.c_str(), buf)) {
    err = errno;
    return {};
  }
  err = 0;
  return buf;
}

int OpenBeneath(const std::string& root, const std::string& relative) {
  int dir = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return -1;
  open_how how{};
  // O_NONBLOCK: opening a FIFO must not hang the request; cleared once it is known a file.
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(syscall(SYS_openat2, dir, relative.c_str(), &how, sizeof how));
  int saved = errno;
  if (fd < 0 && saved == ENOSYS) {
    // Kernels before 5.6: the realpath check above already holds; refuse a final symlink.
    fd = openat(dir, relative.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
    saved = errno;
  }
  close(dir);
  errno = saved;
  return fd;
}

}  // namespace

bool PathIsUnder(const std::string& path, const std::string& root) {
  if (root == "/") return !path.empty() && path[0] == '/';
  if (path.size() < root.size() || path.compare(0, root.size(), root) != 0) return false;
  return path.size() == root.size() || path[root.size()] == '/';
}

ConfinedFile::ConfinedFile(int fd, std::string real_path)
    : fd_(new int(fd),
          [](int* p) {
            if (*p >= 0) close(*p);
            delete p;
          }),
      real_path_(std::move(real_path)) {}

std::string ConfinedFile::proc_path() const {
  return "/proc/self/fd/" + std::to_string(fd());
}

Result<PathPolicy> PathPolicy::Create(const std::vector<std::string>& roots) {
  PathPolicy p;
  for (const auto& root : roots) {
    bool dotdot = false;
    if (root.empty() || root[0] != '/') {
      return Error(ErrorKind::kBadInput, "bad_allow_path",
                   "--allow-path needs an absolute directory, not '" + root + "'");
    }
    auto parts = Components(root, dotdot);
    int err = 0;
    std::string real = RealPath(root, err);
    struct stat st;
    if (real.empty() || stat(real.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Error(ErrorKind::kBadInput, "bad_allow_path",
                   "--allow-path " + root + " is not an existing directory");
    }
    p.roots_.push_back(dotdot ? real : Join(parts));
    p.real_roots_.push_back(real);
  }
  return p;
}

Result<ConfinedFile> PathPolicy::Open(const std::string& path) const {
  if (roots_.empty()) {
    return NotAllowed("server-side paths are disabled on this server (start it with --allow-path)");
  }
  if (path.empty() || path[0] != '/' || path.find('\0') != std::string::npos ||
      path.size() > PATH_MAX) {
    return Error(ErrorKind::kBadInput, "bad_path", "path must be an absolute file path");
  }
  bool dotdot = false;
  const std::string lexical = Join(Components(path, dotdot));
  if (dotdot) return NotAllowed("path must not contain '..'");
  bool inside = false;
  for (size_t i = 0; i < roots_.size(); ++i) {
    inside = inside || PathIsUnder(lexical, roots_[i]) || PathIsUnder(lexical, real_roots_[i]);
  }
  if (!inside) return NotAllowed("path is outside the directories this server allows");

  int err = 0;
  const std::string real = RealPath(lexical, err);
  if (real.empty()) {
    if (err == ENOENT || err == ENOTDIR) {
      return Error(ErrorKind::kNotFound, "file_not_found", "no such file: " + path);
    }
    if (err == EACCES || err == ELOOP) return NotAllowed("path cannot be resolved");
    return Error(ErrorKind::kIo, "path_io", "cannot resolve " + path + ": " + std::strerror(err));
  }
  const std::string* root = nullptr;
  for (const auto& r : real_roots_) {
    if (PathIsUnder(real, r) && (!root || r.size() > root->size())) root = &r;
  }
  if (!root) return NotAllowed("path leads outside the directories this server allows");
  if (real == *root) return Error(ErrorKind::kBadInput, "not_a_file", path + " is a directory");

  const std::string relative = *root == "/" ? real.substr(1) : real.substr(root->size() + 1);
  int fd = OpenBeneath(*root, relative);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOENT) return Error(ErrorKind::kNotFound, "file_not_found", "no such file: " + path);
    if (e == EXDEV || e == ELOOP || e == EACCES || e == EPERM) {
      return NotAllowed("path leads outside the directories this server allows");
    }
    return Error(ErrorKind::kIo, "path_io", "cannot open " + path + ": " + std::strerror(e));
  }
  ConfinedFile file(fd, real);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return Error(ErrorKind::kBadInput, "not_a_file", path + " is not a regular file");
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return file;
}

}  // namespace steno::api
