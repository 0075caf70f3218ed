// Free space on the filesystem under the data dir, and the margin uploads keep free.
//
// A full data dir must not take the server down with it: jobs already accepted still need room
// for their results (the job database), so new uploads are refused while the free space is
// below a margin (`steno serve --min-free-disk`), and a write that meets ENOSPC/EDQUOT anyway
// becomes a typed kNoSpace error (HTTP 507), never a bare I/O failure.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"

namespace steno::store {

struct DiskSpace {
  int64_t free_bytes = 0;   // what an unprivileged writer may still use (statvfs f_bavail)
  int64_t total_bytes = 0;  // the filesystem's size
};

// statvfs on `dir` (any path on the filesystem). kIo "statvfs_failed" when it cannot be read.
Result<DiskSpace> DiskSpaceOf(const std::string& dir);

// Whether writing `incoming_bytes` more (negative counts as 0) still leaves `margin_bytes` free.
// A margin of 0 or less switches the check off: always true. Saturates; never overflows.
bool LeavesMargin(int64_t free_bytes, int64_t incoming_bytes, int64_t margin_bytes);

// ENOSPC or EDQUOT: the filesystem (or the user's quota) is full.
bool IsNoSpaceErrno(int err);

}  // namespace steno::store
