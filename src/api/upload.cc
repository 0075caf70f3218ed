#include "api/upload.h"

#include <algorithm>

namespace steno::api {

std::string CleanFilename(const std::string& name) {
  const auto slash = name.find_last_of("/\\");
  std::string out;
  for (unsigned char c : name.substr(slash == std::string::npos ? 0 : slash + 1)) {
    if (c >= 0x20 && c != 0x7f) out += static_cast<char>(c);
    if (out.size() >= 255) break;
  }
  return out;
}

MultipartUpload::MultipartUpload(const store::BlobStore* blobs, UploadLimits limits,
                                 std::string file_field)
    : blobs_(blobs), limits_(limits), file_field_(std::move(file_field)) {}

bool MultipartUpload::Fail(ApiError error) {
  if (!error_) error_ = std::move(error);
  writer_.reset();  // removes the temp file now, not when the request object goes away
  target_ = Target::kNone;
  return false;
}

bool MultipartUpload::OnPart(const std::string& name, const std::string& filename,
                             const std::string& type) {
  if (error_) return false;
  if (++parts_ > limits_.max_parts) {
    return Fail(
        MakeApiError(400, "too_many_parts",
                     "the form has more than " + std::to_string(limits_.max_parts) + " parts"));
  }
  if (name.empty()) {
    return Fail(MakeApiError(400, "bad_multipart", "a form part has no name"));
  }
  if (name == file_field_) {
    if (has_file()) {
      return Fail(
          MakeApiError(400, "duplicate_file", "the form holds more than one file", file_field_));
    }
    if (!blobs_) return Fail(MakeApiError(500, "internal_error", "no blob store"));
    auto w = blobs_->Begin();
    if (!w.ok()) return Fail(FromUploadError(w.error(), CleanFilename(filename)));
    writer_.emplace(std::move(w.value()));
    filename_ = filename;
    file_type_ = type;
    target_ = Target::kFile;
    return true;
  }
  if (!filename.empty()) {
    return Fail(MakeApiError(
        400, "unexpected_file",
        "the audio must be sent in the '" + file_field_ + "' field, not in '" + name + "'", name));
  }
  fields_.emplace_back(name, std::string());
  target_ = Target::kField;
  return true;
}

bool MultipartUpload::OnData(const char* data, size_t size) {
  if (error_) return false;
  switch (target_) {
    case Target::kNone:
      return Fail(MakeApiError(400, "bad_multipart", "form data outside any part"));
    case Target::kFile: {
      if (file_bytes_ + static_cast<int64_t>(size) > limits_.max_file_bytes) {
        return Fail(MakeApiError(413, "file_too_large",
                                 "the file is larger than this server accepts (" +
                                     std::to_string(limits_.max_file_bytes) + " bytes)",
                                 file_field_));
      }
      if (auto st = writer_->Append(std::string_view(data, size)); !st.ok()) {
        return Fail(FromUploadError(st.error(), CleanFilename(filename_)));
      }
      file_bytes_ += static_cast<int64_t>(size);
      return true;
    }
    case Target::kField: {
      auto& value = fields_.back().second;
      if (value.size() + size > limits_.max_field_bytes ||
          fields_bytes_ + size > limits_.max_fields_bytes) {
        return Fail(MakeApiError(413, "field_too_large",
                                 "form field '" + fields_.back().first + "' is too large",
                                 fields_.back().first));
      }
      value.append(data, size);
      fields_bytes_ += size;
      return true;
    }
  }
  return false;
}

std::optional<std::string> MultipartUpload::Field(const std::string& name) const {
  for (auto it = fields_.rbegin(); it != fields_.rend(); ++it) {
    if (it->first == name) return it->second;
  }
  return std::nullopt;
}

std::vector<std::string> MultipartUpload::Fields(const std::string& name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : fields_) {
    if (k == name) out.push_back(v);
  }
  return out;
}

std::vector<std::string> MultipartUpload::FieldNames() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : fields_) {
    if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
  }
  return out;
}

Result<store::BlobInfo> MultipartUpload::CommitFile() {
  if (committed_) return *committed_;
  if (!writer_) {
    return Error(ErrorKind::kBadInput, "missing_file", "the form has no '" + file_field_ + "'");
  }
  auto info = writer_->Commit();
  writer_.reset();
  if (!info.ok()) return info.error();
  committed_ = *info;
  return *committed_;
}

Result<store::BlobWriter> MultipartUpload::TakeTempFile() {
  if (!writer_) {
    return Error(ErrorKind::kBadInput, "missing_file", "the form has no '" + file_field_ + "'");
  }
  store::BlobWriter w = std::move(*writer_);
  writer_.reset();
  return w;
}

}  // namespace steno::api
