// MultipartUpload: text fields in memory under limits, the file streamed into the blob store,
// and nothing left behind when an upload is refused or never committed.
#include "api/upload.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "support/test_env.h"

namespace steno::api {
namespace {
namespace fs = std::filesystem;

size_t FilesIn(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

class ApiUploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = store::BlobStore::Open(dir_.path + "/blobs");
    ASSERT_TRUE(b.ok());
    blobs_.emplace(std::move(b.value()));
  }
  size_t Blobs() const { return FilesIn(blobs_->dir()); }
  size_t Temps() const { return FilesIn(blobs_->dir() + "/tmp"); }
  bool Field(MultipartUpload& u, const std::string& name, const std::string& value) {
    return u.OnPart(name, "", "") && u.OnData(value.data(), value.size());
  }

  test::ScopedTempDir dir_{"steno-upload"};
  std::optional<store::BlobStore> blobs_;
};

TEST_F(ApiUploadTest, FieldsAndStreamedFileBecomeOneBlobOnlyOnCommit) {
  MultipartUpload u(&*blobs_, {});
  ASSERT_TRUE(Field(u, "model", "tiny"));
  ASSERT_TRUE(u.OnPart("file", "speech.wav", "audio/wav"));
  ASSERT_TRUE(u.OnData("hello ", 6));
  ASSERT_TRUE(u.OnData("world", 5));
  ASSERT_TRUE(Field(u, "timestamp_granularities[]", "word"));
  ASSERT_TRUE(Field(u, "timestamp_granularities[]", "segment"));
  EXPECT_FALSE(u.error().has_value());
  EXPECT_EQ(u.Field("model"), "tiny");
  EXPECT_EQ(u.Fields("timestamp_granularities[]"), (std::vector<std::string>{"word", "segment"}));
  EXPECT_FALSE(u.Field("language").has_value());
  EXPECT_EQ(u.filename(), "speech.wav");
  EXPECT_EQ(u.file_bytes(), 11);
  EXPECT_EQ(Blobs(), 0u) << "no blob before commit";
  EXPECT_EQ(Temps(), 1u);
  auto info = u.CommitFile();
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->size, 11);
  EXPECT_EQ(test::ReadFileText(blobs_->PathOf(info->digest)), "hello world");
  EXPECT_EQ(Blobs(), 1u);
  EXPECT_EQ(Temps(), 0u);
}

TEST_F(ApiUploadTest, UncommittedUploadLeavesNothing) {
  {
    MultipartUpload u(&*blobs_, {});
    ASSERT_TRUE(u.OnPart("file", "a.wav", ""));
    ASSERT_TRUE(u.OnData("abc", 3));
    EXPECT_EQ(Temps(), 1u);
  }
  EXPECT_EQ(Temps(), 0u);
  EXPECT_EQ(Blobs(), 0u);
}

TEST_F(ApiUploadTest, FileOverTheLimitStopsReadingWith413AndRemovesTheTempFile) {
  UploadLimits limits;
  limits.max_file_bytes = 10;
  MultipartUpload u(&*blobs_, limits);
  ASSERT_TRUE(u.OnPart("file", "a.wav", ""));
  ASSERT_TRUE(u.OnData("0123456789", 10));  // exactly the limit is fine
  EXPECT_FALSE(u.OnData("x", 1));
  ASSERT_TRUE(u.error().has_value());
  EXPECT_EQ(u.error()->status, 413);
  EXPECT_EQ(u.error()->code, "file_too_large");
  EXPECT_EQ(Temps(), 0u) << "the partial upload is removed at once";
  EXPECT_FALSE(u.OnData("y", 1)) << "stays refused";
  EXPECT_FALSE(u.CommitFile().ok());
  EXPECT_EQ(Blobs(), 0u);
}

TEST_F(ApiUploadTest, FieldLimitsAndPartCounts) {
  UploadLimits limits;
  limits.max_field_bytes = 8;
  limits.max_fields_bytes = 12;
  limits.max_parts = 3;
  {
    MultipartUpload u(&*blobs_, limits);
    EXPECT_FALSE(Field(u, "prompt", "123456789"));
    EXPECT_EQ(u.error()->status, 413);
    EXPECT_EQ(u.error()->code, "field_too_large");
    EXPECT_EQ(u.error()->param, "prompt");
  }
  {
    MultipartUpload u(&*blobs_, limits);
    EXPECT_TRUE(Field(u, "a", "12345678"));
    EXPECT_FALSE(Field(u, "b", "12345")) << "all fields together over 12 bytes";
    EXPECT_EQ(u.error()->code, "field_too_large");
  }
  {
    MultipartUpload u(&*blobs_, limits);
    EXPECT_TRUE(Field(u, "a", "1"));
    EXPECT_TRUE(Field(u, "b", "1"));
    EXPECT_TRUE(Field(u, "c", "1"));
    EXPECT_FALSE(u.OnPart("d", "", ""));
    EXPECT_EQ(u.error()->status, 400);
    EXPECT_EQ(u.error()->code, "too_many_parts");
  }
}

TEST_F(ApiUploadTest, SecondFileOrFileInAnotherFieldIsRefused) {
  {
    MultipartUpload u(&*blobs_, {});
    ASSERT_TRUE(u.OnPart("file", "a.wav", ""));
    ASSERT_TRUE(u.OnData("a", 1));
    EXPECT_FALSE(u.OnPart("file", "b.wav", ""));
    EXPECT_EQ(u.error()->code, "duplicate_file");
    EXPECT_EQ(Temps(), 0u);
  }
  {
    MultipartUpload u(&*blobs_, {});
    EXPECT_FALSE(u.OnPart("audio", "a.wav", "audio/wav"));
    EXPECT_EQ(u.error()->code, "unexpected_file");
    EXPECT_EQ(u.error()->param, "audio");
  }
  {
    MultipartUpload u(&*blobs_, {});
    EXPECT_FALSE(u.OnPart("", "", ""));
    EXPECT_EQ(u.error()->code, "bad_multipart");
  }
}

TEST_F(ApiUploadTest, CommitWithoutFileIsMissingFile) {
  MultipartUpload u(&*blobs_, {});
  ASSERT_TRUE(Field(u, "model", "tiny"));
  EXPECT_FALSE(u.has_file());
  auto r = u.CommitFile();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "missing_file");
}

}  // namespace
}  // namespace steno::api
