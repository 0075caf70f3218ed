// PathPolicy: server-side paths are confined to the allowed roots — no `..`, no symlink out,
// nothing revealed about files elsewhere — and what is opened is exactly what was checked.
#include "api/path_policy.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "support/test_env.h"

namespace steno::api {
namespace {
namespace fs = std::filesystem;

class ApiPathPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(root_ + "/sub");
    fs::create_directories(outside_);
    Write(root_ + "/a.wav", "inside");
    Write(root_ + "/sub/b.wav", "nested");
    Write(outside_ + "/secret.wav", "outside");
    auto p = PathPolicy::Create({root_});
    ASSERT_TRUE(p.ok()) << p.error().message;
    policy_ = std::move(p.value());
  }
  static void Write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }
  static std::string ReadVia(const ConfinedFile& f) { return test::ReadFileText(f.proc_path()); }
  void ExpectRefused(const std::string& path, const char* code) {
    auto r = policy_.Open(path);
    ASSERT_FALSE(r.ok()) << path << " was accepted";
    EXPECT_EQ(r.error().code, code) << path << ": " << r.error().message;
  }

  test::ScopedTempDir tmp_{"steno-paths"};
  std::string root_ = tmp_.path + "/root";
  std::string outside_ = tmp_.path + "/outside";
  PathPolicy policy_;
};

TEST_F(ApiPathPolicyTest, FilesUnderTheRootOpenAndReadTheCheckedFile) {
  auto a = policy_.Open(root_ + "/a.wav");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(ReadVia(*a), "inside");
  EXPECT_EQ(a->real_path(), fs::canonical(root_ + "/a.wav").string());
  auto b = policy_.Open(root_ + "/./sub//b.wav");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(ReadVia(*b), "nested");
}

TEST_F(ApiPathPolicyTest, DotDotIsRefusedEvenWhenItWouldStayInside) {
  ExpectRefused(root_ + "/../outside/secret.wav", "path_not_allowed");
  ExpectRefused(root_ + "/sub/../a.wav", "path_not_allowed");
}

TEST_F(ApiPathPolicyTest, OutsidePathsAreRefusedAlikeWhetherOrNotTheyExist) {
  ExpectRefused(outside_ + "/secret.wav", "path_not_allowed");
  ExpectRefused(outside_ + "/does-not-exist.wav", "path_not_allowed");
  ExpectRefused("/etc/passwd", "path_not_allowed");
  // A sibling whose name merely starts with the root's name is not under it.
  fs::create_directories(root_ + "2");
  Write(root_ + "2/x.wav", "sibling");
  ExpectRefused(root_ + "2/x.wav", "path_not_allowed");
}

TEST_F(ApiPathPolicyTest, SymlinkLeadingOutOfTheRootIsRefused) {
  fs::create_symlink(outside_ + "/secret.wav", root_ + "/link.wav");
  ExpectRefused(root_ + "/link.wav", "path_not_allowed");
  fs::create_directory_symlink(outside_, root_ + "/escape");
  ExpectRefused(root_ + "/escape/secret.wav", "path_not_allowed");
}

TEST_F(ApiPathPolicyTest, SymlinkStayingInsideTheRootIsFollowed) {
  fs::create_symlink(root_ + "/sub/b.wav", root_ + "/alias.wav");
  auto r = policy_.Open(root_ + "/alias.wav");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ReadVia(*r), "nested");
}

TEST_F(ApiPathPolicyTest, RootGivenThroughASymlinkAcceptsBothSpellings) {
  fs::create_directory_symlink(root_, tmp_.path + "/root-link");
  auto p = PathPolicy::Create({tmp_.path + "/root-link"});
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_TRUE(p->Open(tmp_.path + "/root-link/a.wav").ok());
  EXPECT_TRUE(p->Open(root_ + "/a.wav").ok());
  EXPECT_FALSE(p->Open(outside_ + "/secret.wav").ok());
}

TEST_F(ApiPathPolicyTest, MissingDirectoriesAndMalformedPathsGetTheirOwnCodes) {
  ExpectRefused(root_ + "/missing.wav", "file_not_found");
  EXPECT_EQ(policy_.Open(root_ + "/missing.wav").error().kind, ErrorKind::kNotFound);
  ExpectRefused(root_ + "/sub", "not_a_file");
  ExpectRefused(root_, "not_a_file");
  ExpectRefused("relative/a.wav", "bad_path");
  ExpectRefused("", "bad_path");
  ExpectRefused(root_ + std::string("/a.wav\0x", 8), "bad_path");
  mkfifo((root_ + "/fifo").c_str(), 0644);
  ExpectRefused(root_ + "/fifo", "not_a_file");  // and did not hang opening it
}

TEST_F(ApiPathPolicyTest, NoRootsMeansNoServerPaths) {
  PathPolicy none;
  EXPECT_FALSE(none.enabled());
  auto r = none.Open(root_ + "/a.wav");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "path_not_allowed");
}

TEST_F(ApiPathPolicyTest, RootsMustBeExistingAbsoluteDirectories) {
  EXPECT_FALSE(PathPolicy::Create({"relative"}).ok());
  EXPECT_FALSE(PathPolicy::Create({tmp_.path + "/nope"}).ok());
  EXPECT_FALSE(PathPolicy::Create({root_ + "/a.wav"}).ok());
}

TEST_F(ApiPathPolicyTest, DescriptorClosesWithTheLastCopy) {
  int fd = -1;
  {
    auto r = policy_.Open(root_ + "/a.wav");
    ASSERT_TRUE(r.ok());
    fd = r->fd();
    ConfinedFile copy = *r;
    EXPECT_GE(fcntl(fd, F_GETFD), 0);
  }
  EXPECT_EQ(fcntl(fd, F_GETFD), -1);
}

TEST(ApiPathIsUnderTest, ComponentWise) {
  EXPECT_TRUE(PathIsUnder("/data/x", "/data"));
  EXPECT_TRUE(PathIsUnder("/data", "/data"));
  EXPECT_FALSE(PathIsUnder("/data2/x", "/data"));
  EXPECT_FALSE(PathIsUnder("/dat", "/data"));
  EXPECT_TRUE(PathIsUnder("/anything", "/"));
}

}  // namespace
}  // namespace steno::api
