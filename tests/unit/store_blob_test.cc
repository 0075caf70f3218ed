// BlobStore: content addressing, atomic durable commits, abandoned uploads, verification.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "store/blob_store.h"
#include "support/test_env.h"

namespace steno::store {
namespace {
namespace fs = std::filesystem;

// SHA-256("hello world"), from sha256sum.
const char kHelloDigest[] = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

size_t FilesIn(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

class StoreBlobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = BlobStore::Open(dir_.path + "/blobs");
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    blobs_.emplace(std::move(opened).value());
  }
  test::ScopedTempDir dir_{"steno-blobs"};
  std::optional<BlobStore> blobs_;
};

TEST_F(StoreBlobTest, PutStoresContentUnderItsSha256) {
  auto info = blobs_->Put("hello world");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->digest, kHelloDigest);
  EXPECT_EQ(info->size, 11);
  EXPECT_TRUE(blobs_->Contains(kHelloDigest));
  EXPECT_EQ(test::ReadFileText(blobs_->PathOf(kHelloDigest)), "hello world");
  EXPECT_TRUE(blobs_->Verify(kHelloDigest).ok());
  EXPECT_EQ(FilesIn(blobs_->dir() + "/tmp"), 0u) << "temp file left after commit";
}

TEST_F(StoreBlobTest, StreamedUploadMatchesOneShotAndIdenticalContentIsStoredOnce) {
  auto writer = blobs_->Begin();
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->Append("hello ").ok());
  ASSERT_TRUE(writer->Append("world").ok());
  EXPECT_EQ(writer->size(), 11);
  auto streamed = writer->Commit();
  ASSERT_TRUE(streamed.ok());
  EXPECT_EQ(streamed->digest, kHelloDigest);
  EXPECT_FALSE(writer->Append("more").ok()) << "a committed writer accepted more bytes";
  ASSERT_TRUE(blobs_->Put("hello world").ok());
  auto listed = blobs_->List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].digest, kHelloDigest);
  EXPECT_EQ((*listed)[0].size, 11);
}

TEST_F(StoreBlobTest, AbandonedUploadLeavesNothing) {
  {
    auto writer = blobs_->Begin();
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE(writer->Append(std::string(100000, 'x')).ok());
    EXPECT_EQ(FilesIn(blobs_->dir() + "/tmp"), 1u);
  }  // the client disconnected: the writer is dropped without Commit
  EXPECT_EQ(FilesIn(blobs_->dir() + "/tmp"), 0u);
  EXPECT_TRUE(blobs_->List()->empty());
}

TEST_F(StoreBlobTest, CrashLeftoverTempFilesAreRemoved) {
  // A .part file as a killed process leaves it (no destructor ran).
  std::ofstream(blobs_->dir() + "/tmp/deadbeef.part") << "half an upload";
  EXPECT_EQ(blobs_->RemoveTempFiles(NowMs() - 60'000).value(), 0) << "fresh temp file removed";
  EXPECT_EQ(blobs_->RemoveTempFiles(NowMs() + 1).value(), 1);
  EXPECT_EQ(FilesIn(blobs_->dir() + "/tmp"), 0u);
}

TEST_F(StoreBlobTest, VerifyDetectsDamageAndMissingBlobs) {
  auto info = blobs_->Put("hello world");
  ASSERT_TRUE(info.ok());
  {
    std::ofstream out(blobs_->PathOf(info->digest), std::ios::binary | std::ios::trunc);
    out << "hello w0rld";
  }
  auto damaged = blobs_->Verify(info->digest);
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.error().kind, ErrorKind::kIntegrity);
  ASSERT_TRUE(blobs_->Remove(info->digest).ok());
  EXPECT_EQ(blobs_->Verify(info->digest).error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(blobs_->Remove(info->digest).ok()) << "removing an absent blob is not an error";
}

TEST_F(StoreBlobTest, DigestsThatAreNotHexNeverBecomePaths) {
  EXPECT_TRUE(IsValidDigest(kHelloDigest));
  EXPECT_FALSE(IsValidDigest(std::string(64, 'A')));  // upper case is not how we name them
  EXPECT_FALSE(IsValidDigest("../" + std::string(61, 'a')));
  EXPECT_EQ(blobs_->PathOf("../../etc/passwd"), "");
  EXPECT_FALSE(blobs_->Contains("tmp"));
  EXPECT_FALSE(blobs_->Remove("../x").ok());
}

TEST_F(StoreBlobTest, RemoveIfOlderSparesARecentCommit) {
  auto info = blobs_->Put("recent");
  ASSERT_TRUE(info.ok());
  auto kept = blobs_->RemoveIfOlder(info->digest, NowMs() - 60'000);
  ASSERT_TRUE(kept.ok());
  EXPECT_FALSE(*kept);
  EXPECT_TRUE(blobs_->Contains(info->digest));
  auto removed = blobs_->RemoveIfOlder(info->digest, NowMs() + 1000);
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  EXPECT_FALSE(blobs_->Contains(info->digest));
}

}  // namespace
}  // namespace steno::store
