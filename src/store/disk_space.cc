#include "store/disk_space.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

namespace steno::store {
namespace {

int64_t Clamp(unsigned long long v) {
  constexpr auto kMax = static_cast<unsigned long long>(std::numeric_limits<int64_t>::max());
  return static_cast<int64_t>(std::min(v, kMax));
}

}  // namespace

Result<DiskSpace> DiskSpaceOf(const std::string& dir) {
  struct statvfs st {};
  if (statvfs(dir.c_str(), &st) != 0) {
    return Error(ErrorKind::kIo, "statvfs_failed",
                 "cannot read the free space of " + dir + ": " + std::strerror(errno));
  }
  const unsigned long long unit = st.f_frsize ? st.f_frsize : st.f_bsize;
  const auto mul = [unit](unsigned long long blocks) {
    if (unit != 0 && blocks > std::numeric_limits<unsigned long long>::max() / unit) {
      return std::numeric_limits<unsigned long long>::max();
    }
    return blocks * unit;
  };
  return DiskSpace{Clamp(mul(st.f_bavail)), Clamp(mul(st.f_blocks))};
}

bool LeavesMargin(int64_t free_bytes, int64_t incoming_bytes, int64_t margin_bytes) {
  if (margin_bytes <= 0) return true;
  const int64_t incoming = std::max<int64_t>(incoming_bytes, 0);
  // free - incoming >= margin, without overflow: free >= margin + incoming.
  if (incoming > std::numeric_limits<int64_t>::max() - margin_bytes) return false;
  return free_bytes >= margin_bytes + incoming;
}

bool IsNoSpaceErrno(int err) {
  return err == ENOSPC || err == EDQUOT;
}

}  // namespace steno::store
