// Receiving a multipart/form-data request (OpenAI's transcription upload, `POST /v1/jobs`):
// text fields are kept in memory under limits, and the one file part is streamed straight into
// the blob store, never buffered whole. The HTTP library's streaming parser calls OnPart for each
// part's headers and OnData for its bytes; either returns false to stop reading the body at once
// (a file over the limit is refused after max_file_bytes, not after the client sent a GiB).
//
// The upload becomes a blob only when CommitFile() is called, after the caller has validated
// every field: an upload refused for a bad field, a size limit, a full disk (507, see
// FromUploadError) or a cut connection leaves no blob behind (the uncommitted temp file is
// removed with the writer). An upload that needs no durability (a synchronous request's audio)
// is never committed: TakeTempFile hands its unsynced temp file over instead.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "api/api_errors.h"
#include "core/result.h"
#include "store/blob_store.h"

namespace steno::api {

struct UploadLimits {
  int64_t max_file_bytes = int64_t{1} << 30;  // the file part (413 file_too_large)
  size_t max_field_bytes = 256 << 10;         // one text field, e.g. a prompt (413 field_too_large)
  size_t max_fields_bytes = 1 << 20;          // all text fields together
  int max_parts = 64;                         // parts of any kind (400 too_many_parts)
};

// A client's file name for display: the last path component, printable bytes, at most 255.
std::string CleanFilename(const std::string& name);

class MultipartUpload {
 public:
  MultipartUpload(const store::BlobStore* blobs, UploadLimits limits,
                  std::string file_field = "file");

  // Streaming callbacks; false stops reading and error() says why.
  bool OnPart(const std::string& name, const std::string& filename, const std::string& type);
  bool OnData(const char* data, size_t size);

  const std::optional<ApiError>& error() const { return error_; }

  bool has_file() const { return writer_.has_value() || committed_.has_value(); }
  const std::string& filename() const { return filename_; }
  const std::string& file_content_type() const { return file_type_; }
  int64_t file_bytes() const { return file_bytes_; }

  // The last value of a text field, or nullopt when the request has none.
  std::optional<std::string> Field(const std::string& name) const;
  // Every value of a field, in order (array fields such as "timestamp_granularities[]").
  std::vector<std::string> Fields(const std::string& name) const;
  // Field names present, each once (to reject or ignore unknown ones).
  std::vector<std::string> FieldNames() const;

  // fsync + rename into the blob store. Only once, after validation.
  Result<store::BlobInfo> CommitFile();
  // Instead of CommitFile: the writer still holding the file part in its temp file
  // (BlobWriter::temp_path; never synced), which is removed when the writer is destroyed.
  // kBadInput "missing_file" when the form had no file (or it was taken or committed already).
  Result<store::BlobWriter> TakeTempFile();

 private:
  bool Fail(ApiError error);

  const store::BlobStore* blobs_;
  UploadLimits limits_;
  std::string file_field_;
  std::optional<ApiError> error_;
  int parts_ = 0;
  enum class Target { kNone, kFile, kField } target_ = Target::kNone;
  std::optional<store::BlobWriter> writer_;
  std::optional<store::BlobInfo> committed_;
  std::string filename_, file_type_;
  int64_t file_bytes_ = 0;
  std::vector<std::pair<std::string, std::string>> fields_;  // in arrival order
  size_t fields_bytes_ = 0;
};

}  // namespace steno::api
