#include "store/blob_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "store/disk_space.h"

namespace steno::store {
namespace fs = std::filesystem;
namespace {

constexpr const char kTempSuffix[] = ".part";

// A full filesystem (or quota) is its own kind: the caller may answer 507 and retry later.
// Messages name the paths: they are for the server's log (the API does not show them).
Error IoError(const std::string& what) {
  const int err = errno;
  if (IsNoSpaceErrno(err)) {
    return Error(ErrorKind::kNoSpace, "insufficient_storage", what + ": " + std::strerror(err));
  }
  return Error(ErrorKind::kIo, "blob_io", what + ": " + std::strerror(err));
}

// A rename or unlink is durable only once its directory is synced.
Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open directory " + dir);
  int rc = fsync(fd);
  close(fd);
  if (rc != 0) return IoError("cannot sync directory " + dir);
  return {};
}

Status MakeDir(const std::string& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return {};
  fs::create_directories(dir, ec);
  if (ec) return Error(ErrorKind::kIo, "blob_io", "cannot create " + dir + ": " + ec.message());
  return SyncDir(fs::path(dir).parent_path().string());
}

std::string Hex(const unsigned char* bytes, unsigned n) {
  static const char kHex[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (unsigned i = 0; i < n; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 15];
  }
  return out;
}

std::string RandomName() {
  unsigned char r[12];
  if (RAND_bytes(r, sizeof r) != 1) {
    for (auto& b : r) b = static_cast<unsigned char>(std::rand());
  }
  return Hex(r, sizeof r);
}

int64_t MtimeMs(const struct stat& st) {
  return int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

}  // namespace

bool IsValidDigest(std::string_view digest) {
  if (digest.size() != 64) return false;
  for (char c : digest) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

struct BlobWriter::State {
  std::string dir;
  std::shared_ptr<std::mutex> mu;
  std::shared_ptr<GroupSync> dir_sync;
  std::string temp_path;
  int fd = -1;
  EVP_MD_CTX* md = nullptr;
  int64_t size = 0;

  ~State() {
    if (fd >= 0) close(fd);
    if (!temp_path.empty()) unlink(temp_path.c_str());  // abandoned: leave nothing behind
    EVP_MD_CTX_free(md);
  }
};

BlobWriter::BlobWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}
BlobWriter::BlobWriter(BlobWriter&&) noexcept = default;
BlobWriter& BlobWriter::operator=(BlobWriter&&) noexcept = default;
BlobWriter::~BlobWriter() = default;

int64_t BlobWriter::size() const {
  return state_ ? state_->size : 0;
}

const std::string& BlobWriter::temp_path() const {
  static const std::string kNone;
  return state_ && state_->fd >= 0 ? state_->temp_path : kNone;
}

Status BlobWriter::Append(std::string_view bytes) {
  if (!state_ || state_->fd < 0) {
    return Error(ErrorKind::kInternal, "blob_writer_spent", "blob writer used after commit");
  }
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = write(state_->fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot write upload to " + state_->temp_path);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  EVP_DigestUpdate(state_->md, bytes.data(), bytes.size());
  state_->size += static_cast<int64_t>(bytes.size());
  return {};
}

Result<BlobInfo> BlobWriter::Commit() {
  if (!state_ || state_->fd < 0) {
    return Error(ErrorKind::kInternal, "blob_writer_spent", "blob writer used after commit");
  }
  auto& s = *state_;
  if (fdatasync(s.fd) != 0) return IoError("cannot sync upload " + s.temp_path);
  int rc = close(s.fd);
  s.fd = -1;
  if (rc != 0) return IoError("cannot close upload " + s.temp_path);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned md_len = 0;
  EVP_DigestFinal_ex(s.md, md, &md_len);
  BlobInfo info{Hex(md, md_len), s.size};
  // Renaming over an existing blob of the same content is harmless and refreshes its mtime.
  std::string final_path = s.dir + "/" + info.digest;
  {
    std::lock_guard lock(*s.mu);
    if (rename(s.temp_path.c_str(), final_path.c_str()) != 0) {
      return IoError("cannot move upload into place at " + final_path);
    }
    s.temp_path.clear();
  }
  if (auto st = s.dir_sync->Sync(); !st.ok()) return st.error();
  state_.reset();
  return info;
}

Result<BlobStore> BlobStore::Open(const std::string& dir) {
  if (auto st = MakeDir(dir); !st.ok()) return st.error();
  if (auto st = MakeDir(dir + "/tmp"); !st.ok()) return st.error();
  return BlobStore(dir, std::make_shared<std::mutex>(),
                   std::make_shared<GroupSync>([dir] { return SyncDir(dir); }));
}

Result<BlobWriter> BlobStore::Begin() const {
  auto state = std::make_unique<BlobWriter::State>();
  state->dir = dir_;
  state->mu = mu_;
  state->dir_sync = dir_sync_;
  std::string path = dir_ + "/tmp/" + RandomName() + kTempSuffix;
  state->fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (state->fd < 0) return IoError("cannot create upload file " + path);
  state->temp_path = path;
  state->md = EVP_MD_CTX_new();
  if (!state->md || EVP_DigestInit_ex(state->md, EVP_sha256(), nullptr) != 1) {
    return Error(ErrorKind::kInternal, "blob_hash", "cannot initialise SHA-256");
  }
  return BlobWriter(std::move(state));
}

Result<BlobInfo> BlobStore::Put(std::string_view bytes) const {
  auto writer = Begin();
  if (!writer.ok()) return writer.error();
  if (auto st = writer->Append(bytes); !st.ok()) return st.error();
  return writer->Commit();
}

std::string BlobStore::PathOf(std::string_view digest) const {
  if (!IsValidDigest(digest)) return {};
  return dir_ + "/" + std::string(digest);
}

bool BlobStore::Contains(std::string_view digest) const {
  auto path = PathOf(digest);
  struct stat st;
  return !path.empty() && stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Status BlobStore::Verify(std::string_view digest) const {
  auto path = PathOf(digest);
  int fd = path.empty() ? -1 : open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error(ErrorKind::kNotFound, "blob_not_found",
                 "upload " + std::string(digest) + " is not in the blob store");
  }
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), nullptr);
  char buf[1 << 16];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) EVP_DigestUpdate(md, buf, static_cast<size_t>(n));
  close(fd);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(md, out, &len);
  EVP_MD_CTX_free(md);
  if (n < 0) return IoError("cannot read " + path);
  if (Hex(out, len) != digest) {
    return Error(ErrorKind::kIntegrity, "blob_corrupt",
                 "upload " + path + " no longer matches its SHA-256");
  }
  return {};
}

Status BlobStore::Remove(std::string_view digest) const {
  auto path = PathOf(digest);
  if (path.empty()) {
    return Error(ErrorKind::kBadInput, "bad_digest",
                 "not a SHA-256 digest: " + std::string(digest));
  }
  if (unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return {};
    return IoError("cannot remove " + path);
  }
  return SyncDir(dir_);
}

Result<bool> BlobStore::RemoveIfOlder(std::string_view digest, int64_t cutoff_ms) const {
  auto path = PathOf(digest);
  if (path.empty()) {
    return Error(ErrorKind::kBadInput, "bad_digest",
                 "not a SHA-256 digest: " + std::string(digest));
  }
  {
    std::lock_guard lock(*mu_);
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || MtimeMs(st) >= cutoff_ms) return false;
    if (unlink(path.c_str()) != 0) {
      if (errno == ENOENT) return false;
      return IoError("cannot remove " + path);
    }
  }
  if (auto st = SyncDir(dir_); !st.ok()) return st.error();
  return true;
}

Result<std::vector<BlobEntry>> BlobStore::List() const {
  std::vector<BlobEntry> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    auto name = entry.path().filename().string();
    if (!IsValidDigest(name)) continue;
    struct stat st;
    if (stat(entry.path().c_str(), &st) != 0) continue;  // removed meanwhile
    out.push_back({name, static_cast<int64_t>(st.st_size), MtimeMs(st)});
  }
  if (ec) return Error(ErrorKind::kIo, "blob_io", "cannot list " + dir_ + ": " + ec.message());
  return out;
}

Result<int> BlobStore::RemoveTempFiles(int64_t cutoff_ms) const {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_ + "/tmp", ec)) {
    if (entry.path().extension() != kTempSuffix) continue;
    struct stat st;
    if (stat(entry.path().c_str(), &st) != 0 || MtimeMs(st) >= cutoff_ms) continue;
    if (unlink(entry.path().c_str()) == 0) ++removed;
  }
  if (ec) return Error(ErrorKind::kIo, "blob_io", "cannot list " + dir_ + "/tmp: " + ec.message());
  return removed;
}

}  // namespace steno::store
