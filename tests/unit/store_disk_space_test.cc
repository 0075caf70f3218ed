// The free-space margin uploads keep (store/disk_space.h): the arithmetic at its edges, and a
// reading of a real filesystem.
#include "store/disk_space.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <limits>

#include "support/test_env.h"

namespace steno::store {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

TEST(DiskSpaceMargin, FreeSpaceMustStayAtOrAboveTheMarginAfterTheUpload) {
  EXPECT_TRUE(LeavesMargin(10 * kMiB, 0, 10 * kMiB));  // exactly the margin left
  EXPECT_FALSE(LeavesMargin(10 * kMiB - 1, 0, 10 * kMiB));
  EXPECT_TRUE(LeavesMargin(15 * kMiB, 5 * kMiB, 10 * kMiB));
  EXPECT_FALSE(LeavesMargin(15 * kMiB, 5 * kMiB + 1, 10 * kMiB));  // the upload would cross it
}

TEST(DiskSpaceMargin, ZeroMarginIsOffAndUnknownSizesCountAsNothing) {
  EXPECT_TRUE(LeavesMargin(0, 100 * kMiB, 0));
  EXPECT_TRUE(LeavesMargin(0, 0, -1));
  EXPECT_TRUE(LeavesMargin(10 * kMiB, -5, 10 * kMiB));  // negative incoming: 0
  EXPECT_FALSE(LeavesMargin(-1, 0, 1));                 // nonsense free space never passes
}

TEST(DiskSpaceMargin, HugeValuesDoNotOverflow) {
  EXPECT_FALSE(LeavesMargin(kMax, kMax, 1));
  EXPECT_FALSE(LeavesMargin(kMax, 1, kMax));
  EXPECT_TRUE(LeavesMargin(kMax, kMax - 1, 1));
  EXPECT_TRUE(LeavesMargin(kMax, 0, kMax));
}

TEST(DiskSpaceMargin, NoSpaceErrnos) {
  EXPECT_TRUE(IsNoSpaceErrno(ENOSPC));
  EXPECT_TRUE(IsNoSpaceErrno(EDQUOT));
  EXPECT_FALSE(IsNoSpaceErrno(EIO));
  EXPECT_FALSE(IsNoSpaceErrno(0));
}

TEST(DiskSpaceOf, ReadsARealFilesystemAndNamesAMissingOne) {
  test::ScopedTempDir dir("steno-disk");
  auto space = DiskSpaceOf(dir.path);
  ASSERT_TRUE(space.ok()) << space.error().message;
  EXPECT_GT(space->total_bytes, 0);
  EXPECT_GE(space->free_bytes, 0);
  EXPECT_LE(space->free_bytes, space->total_bytes);
  auto missing = DiskSpaceOf(dir.path + "/no/such/dir");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kIo);
  EXPECT_EQ(missing.error().code, "statvfs_failed");
}

}  // namespace
}  // namespace steno::store
