// Server-side files a client may name (`POST /v1/jobs {"path": ...}`), confined to the roots the
// operator allowed with `--allow-path ROOT` (repeatable). With no root, no server path is
// accepted at all.
//
// A path is accepted only if all of these hold:
//   - it is absolute, has no NUL byte and no `..` component (refused before touching the disk);
//   - lexically, it lies under an allowed root (so nothing about files elsewhere is revealed:
//     an outside path is refused the same way whether or not it exists);
//   - after resolving every symlink (realpath), it still lies under that root's real path;
//   - it is opened beneath the root with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so a
//     directory swapped for a symlink between the check and the open cannot escape either;
//   - what was opened is a regular file.
// The caller reads the file through the returned descriptor's /proc/self/fd path, which names
// exactly the file that was checked.
//
// Errors: kBadInput "bad_path" (empty, relative, NUL byte); kBadInput "path_not_allowed" (no
// roots configured, outside every root, a `..` component, a symlink leading out; HTTP 403);
// kNotFound "file_not_found" (inside a root but absent); kBadInput "not_a_file" (a directory,
// FIFO or device).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/result.h"

namespace steno::api {

// An opened, confined file. Closing happens when the last copy goes away.
class ConfinedFile {
 public:
  ConfinedFile() = default;
  ConfinedFile(int fd, std::string real_path);
  int fd() const { return fd_ ? *fd_ : -1; }
  const std::string& real_path() const { return real_path_; }
  // "/proc/self/fd/N": opening it opens the very file that was checked.
  std::string proc_path() const;

 private:
  std::shared_ptr<int> fd_;  // closes on destruction
  std::string real_path_;
};

class PathPolicy {
 public:
  PathPolicy() = default;  // no roots: every server path is refused

  // Each root must exist and be a directory; it is resolved with realpath once, at start.
  // kBadInput "bad_allow_path" otherwise.
  static Result<PathPolicy> Create(const std::vector<std::string>& roots);

  bool enabled() const { return !roots_.empty(); }
  const std::vector<std::string>& roots() const { return real_roots_; }

  Result<ConfinedFile> Open(const std::string& path) const;

 private:
  std::vector<std::string> roots_;       // as given, normalized lexically
  std::vector<std::string> real_roots_;  // realpath of each
};

// Whether `path` equals `root` or lies below it, component-wise ("/data2" is not under "/data").
bool PathIsUnder(const std::string& path, const std::string& root);

}  // namespace steno::api
