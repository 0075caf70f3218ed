#include "models/download.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/log.h"
#include "core/unique_fd.h"
#include "models/catalog.h"

namespace steno::models {
namespace {

namespace fs = std::filesystem;

// ---- small helpers -------------------------------------------------------------------------

std::string Errno(int e) {
  return std::strerror(e);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool IsHex40(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool ValidName(const std::string& n) {
  if (n.empty() || n.size() > 100 || n[0] == '.' || n[0] == '-') return false;
  for (char c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_')
      return false;
  }
  return true;
}

// "https://host:443/x" -> "host"; good enough for messages.
std::string HostOf(const std::string& url) {
  auto start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  auto end = url.find_first_of(":/?#", start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::string Mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// ---- SHA-1 ---------------------------------------------------------------------------------

class Sha1 {
 public:
  Sha1() : ctx_(EVP_MD_CTX_new()) { Reset(); }
  void Reset() { EVP_DigestInit_ex(ctx_.get(), EVP_sha1(), nullptr); }
  void Update(const void* data, size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  std::string HexDigest() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &len);
    static const char* kHex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out += kHex[md[i] >> 4];
      out += kHex[md[i] & 15];
    }
    return out;
  }

 private:
  struct Free {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

// Feeds bytes [0, length) of fd into the hash. False on a read error (errno set).
bool HashPrefix(int fd, int64_t length, Sha1& sha) {
  std::vector<char> buf(1 << 20);
  int64_t off = 0;
  while (off < length) {
    size_t want = static_cast<size_t>(std::min<int64_t>(length - off, buf.size()));
    ssize_t n = pread(fd, buf.data(), want, off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return false;
    }
    sha.Update(buf.data(), static_cast<size_t>(n));
    off += n;
  }
  return true;
}

// ---- one HTTP transfer ---------------------------------------------------------------------

struct Transfer {
  CURL* curl = nullptr;
  int fd = -1;
  Sha1* sha = nullptr;
  const PullProgress* progress = nullptr;

  int64_t requested_from = 0;  // the Range start asked for (0: no Range header)
  int64_t file_bytes = 0;      // bytes in the .part now
  int64_t received = 0;        // body bytes written by this transfer

  // From the headers of the current (last) response.
  int64_t content_length = -1;
  int64_t range_start = -1;
  int64_t range_total = -1;

  bool decided = false;  // first body chunk seen: status known, file mode chosen
  long status = 0;
  int64_t total = -1;
  bool restarted = false;    // the server ignored Range; the .part was truncated
  bool wrong_range = false;  // 206 for a different offset than asked
  int write_errno = 0;
  std::string error_body;  // start of a 4xx/5xx body, for the message
};

bool IStartsWith(const char* s, size_t n, std::string_view prefix) {
  if (n < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  std::string line(data, len);
  if (IStartsWith(data, len, "http/")) {  // a new response (redirects each start one)
    t->content_length = t->range_start = t->range_total = -1;
  } else if (IStartsWith(data, len, "content-length:")) {
    t->content_length = std::strtoll(line.c_str() + 15, nullptr, 10);
  } else if (IStartsWith(data, len, "content-range:")) {
    // "Content-Range: bytes START-END/TOTAL" (TOTAL may be "*")
    auto bytes = Lower(line).find("bytes");
    if (bytes != std::string::npos) {
      const char* p = line.c_str() + bytes + 5;
      char* end = nullptr;
      t->range_start = std::strtoll(p, &end, 10);
      if (const char* slash = std::strchr(p, '/'); slash && slash[1] != '*') {
        t->range_total = std::strtoll(slash + 1, nullptr, 10);
      }
    }
  }
  return len;
}

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (!t->decided) {
    t->decided = true;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->status);
    if (t->status == 206) {
      if (t->range_start != t->requested_from) {
        t->wrong_range = true;
        return 0;  // aborts the transfer; the caller restarts from scratch
      }
      t->total = t->range_total;
    } else if (t->status == 200) {
      if (t->file_bytes > 0) {  // the server ignored Range: start over
        if (ftruncate(t->fd, 0) != 0 || lseek(t->fd, 0, SEEK_SET) != 0) {
          t->write_errno = errno;
          return 0;
        }
        t->sha->Reset();
        t->file_bytes = 0;
        t->restarted = true;
      }
      t->total = t->content_length;
    }
  }
  if (t->status != 200 && t->status != 206) {
    if (t->error_body.size() < 300) t->error_body.append(data, std::min<size_t>(len, 300));
    return len;
  }
  if (!WriteAll(t->fd, data, len)) {
    t->write_errno = errno ? errno : EIO;
    return 0;
  }
  t->sha->Update(data, len);
  t->file_bytes += static_cast<int64_t>(len);
  t->received += static_cast<int64_t>(len);
  if (t->progress && *t->progress) (*t->progress)(t->file_bytes, t->total);
  return len;
}

struct CurlFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};

// Runs one GET of `url` appending to t.fd from t.file_bytes. Returns curl's code; t says the rest.
CURLcode RunTransfer(const std::string& url, const PullOptions& o, Transfer& t,
                     std::string& errbuf) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });

  std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
  if (!curl) return CURLE_FAILED_INIT;
  CURL* c = curl.get();
  t.curl = c;
  errbuf.assign(CURL_ERROR_SIZE + 1, '\0');
  std::string range = std::to_string(t.file_bytes) + "-";
  t.requested_from = t.file_bytes;

  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf.data());
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);  // Hugging Face redirects to its CDN
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_USERAGENT, "steno/" STENO_VERSION);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(o.connect_timeout_s));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(o.stall_timeout_s));
  if (t.file_bytes > 0) curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  CURLcode rc = curl_easy_perform(c);
  if (!t.decided) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.status);
  errbuf.resize(std::strlen(errbuf.c_str()));
  return rc;
}

// Errors worth another try from where the bytes stopped (the connection broke mid-body).
bool Transient(CURLcode rc) {
  switch (rc) {
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return true;
    default: return false;
  }
}

std::string DescribeCurlError(CURLcode rc, const std::string& host, const std::string& errbuf) {
  std::string detail = errbuf.empty() ? curl_easy_strerror(rc) : errbuf;
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return "could not resolve " + host + " (" + detail + ")";
    case CURLE_COULDNT_CONNECT: return "could not reach " + host + ": " + detail;
    case CURLE_OPERATION_TIMEDOUT: return host + " stopped answering (" + detail + ")";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CACERT_BADFILE: return "the secure connection to " + host + " failed: " + detail;
    default: return "the download from " + host + " failed: " + detail;
  }
}

// ---- the .part file ------------------------------------------------------------------------

// Opens and exclusively locks the .part, making sure the locked file is still the one at
// `part` (a process that held the lock may have removed or renamed it meanwhile).
Result<int> OpenLockedPart(const std::string& part, const std::string& name) {
  for (int tries = 0; tries < 5; ++tries) {
    int fd = open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      return Error(ErrorKind::kIo, "write_failed",
                   "Cannot create " + part + ": " + Errno(errno) + ".");
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int e = errno;
      close(fd);
      if (e == EWOULDBLOCK) {
        return Error(ErrorKind::kUnavailable, "pull_in_progress",
                     "Another process is already downloading " + name + " (" + part +
                         " is locked); wait for it to finish.");
      }
      return Error(ErrorKind::kIo, "write_failed", "Cannot lock " + part + ": " + Errno(e) + ".");
    }
    struct stat by_fd {
    }, by_path{};
    if (fstat(fd, &by_fd) == 0 && stat(part.c_str(), &by_path) == 0 &&
        by_fd.st_ino == by_path.st_ino && by_fd.st_dev == by_path.st_dev) {
      return fd;
    }
    close(fd);
  }
  return Error(ErrorKind::kUnavailable, "pull_in_progress",
               "Another process keeps replacing " + part + "; try again later.");
}

int64_t FileSize(int fd) {
  struct stat st {};
  return fstat(fd, &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

Status SyncDir(const std::string& dir) {
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return Error(ErrorKind::kIo, "write_failed", "Cannot open " + dir + ": " + Errno(errno));
  int rc = fsync(dfd);
  int e = errno;
  close(dfd);
  if (rc != 0) return Error(ErrorKind::kIo, "write_failed", "Cannot sync " + dir + ": " + Errno(e));
  return {};
}

}  // namespace

Result<std::string> Sha1OfFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Error(ErrorKind::kIo, "read_failed", "Cannot read " + path + ": " + Errno(errno));
  const UniqueFd closer(fd);
  Sha1 sha;
  if (!HashPrefix(fd, FileSize(fd), sha)) {
    return Error(ErrorKind::kIo, "read_failed", "Cannot read " + path + ": " + Errno(errno));
  }
  return sha.HexDigest();
}

Result<PullResult> PullModel(const PullOptions& o) {
  const CatalogEntry* entry = FindCatalogEntry(o.name);
  std::string expected = Lower(o.expected_sha1);
  if (!expected.empty() && !IsHex40(expected)) {
    return Error(ErrorKind::kBadInput, "bad_sha1",
                 "--sha1 must be 40 hexadecimal digits, got '" + o.expected_sha1 + "'.");
  }
  if (!ValidName(o.name)) {
    return Error(ErrorKind::kBadInput, "bad_model_name",
                 "'" + o.name +
                     "' is not a model name (letters, digits, '.', '-', '_'). Known "
                     "models: " +
                     KnownModelNames() + ".");
  }
  if (!entry && expected.empty()) {
    return Error(ErrorKind::kBadInput, "unknown_model",
                 "Unknown model '" + o.name + "'. Known models: " + KnownModelNames() +
                     ". For another file, give its hash with --sha1 (and a --base-url serving "
                     "ggml-" +
                     o.name + ".bin).");
  }
  if (expected.empty()) expected = std::string(entry->sha1);

  std::string base = o.base_url.empty() ? EnvOr(kBaseUrlEnv, "") : o.base_url;
  if (base.empty()) base = entry ? std::string(entry->base_url) : std::string(kDefaultBaseUrl);
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (base.rfind("https://", 0) != 0 && base.rfind("http://", 0) != 0) {
    return Error(ErrorKind::kBadInput, "bad_base_url",
                 "The base URL must start with https:// or http://, got '" + base + "'.");
  }

  const std::string file = ModelFileName(o.name);
  PullResult result;
  result.path = (fs::path(o.models_dir) / file).string();
  result.url = base + "/" + file;
  const std::string part = result.path + ".part";
  const std::string host = HostOf(result.url);

  std::error_code ec;
  fs::create_directories(o.models_dir, ec);
  if (ec) {
    return Error(ErrorKind::kIo, "write_failed",
                 "Cannot create the models dir " + o.models_dir + ": " + ec.message() + ".");
  }

  if (fs::exists(result.path, ec) && !o.force) {
    auto have = Sha1OfFile(result.path);
    if (!have.ok()) return have.error();
    if (*have == expected) {
      result.sha1 = *have;
      result.file_bytes = static_cast<int64_t>(fs::file_size(result.path, ec));
      result.downloaded = false;
      return result;
    }
    return Error(ErrorKind::kIntegrity, "existing_file_mismatch",
                 result.path + " already exists but its SHA-1 is " + *have + ", not " + expected +
                     " as expected for " + o.name +
                     ". It was left untouched; run again with "
                     "--force to replace it.");
  }

  auto locked = OpenLockedPart(part, o.name);
  if (!locked.ok()) return locked.error();
  const UniqueFd closer(*locked);
  const int fd = *locked;

  const std::string offline_hint =
      ". Is this machine offline? Download " + result.url + " elsewhere and copy it to " +
      result.path + " by hand instead, or point --base-url (or " + kBaseUrlEnv + ") at a mirror.";
  auto keep_or_remove_part = [&]() -> std::string {
    int64_t kept = FileSize(fd);
    if (kept == 0) {
      unlink(part.c_str());
      return "";
    }
    return " The partial download (" + Mib(kept) + ") is kept in " + part +
           "; run the same command again to resume.";
  };

  bool from_scratch_retried = false;
  int transient_retries = 0;
  for (;;) {
    Sha1 sha;
    Transfer t;
    t.fd = fd;
    t.sha = &sha;
    t.progress = &o.progress;
    t.file_bytes = FileSize(fd);
    if (lseek(fd, t.file_bytes, SEEK_SET) < 0 || !HashPrefix(fd, t.file_bytes, sha)) {
      return Error(ErrorKind::kIo, "read_failed",
                   "Cannot read " + part + ": " + Errno(errno) + ".");
    }
    const int64_t resumed_from = t.file_bytes;
    if (resumed_from > 0) spdlog::info("resuming {} from byte {}", file, resumed_from);

    std::string errbuf;
    CURLcode rc = RunTransfer(result.url, o, t, errbuf);

    if (t.write_errno != 0) {
      return Error(
          ErrorKind::kIo, "write_failed",
          "Cannot write " + part + ": " + Errno(t.write_errno) + "." + keep_or_remove_part());
    }
    if (t.wrong_range && !from_scratch_retried) {
      spdlog::warn("{} answered a Range request with other bytes; restarting {}", host, file);
      from_scratch_retried = true;
      if (ftruncate(fd, 0) != 0) {
        return Error(ErrorKind::kIo, "write_failed",
                     "Cannot truncate " + part + ": " + Errno(errno));
      }
      continue;
    }
    // 416: the .part already holds every byte the server has; verify it as it is.
    const bool complete_already = t.status == 416 && resumed_from > 0;
    if (!complete_already && t.status >= 400) {
      std::string msg = "Could not download " + o.name + ": " + host + " answered HTTP " +
                        std::to_string(t.status) + " for " + result.url;
      if (t.status == 404) msg += " (no such file there: check the name and the base URL)";
      return Error(ErrorKind::kUnavailable, "download_failed",
                   msg + offline_hint + keep_or_remove_part());
    }
    if (!complete_already && rc != CURLE_OK) {
      if (Transient(rc) && t.received > 0 && transient_retries < 3) {
        ++transient_retries;
        spdlog::warn("download of {} interrupted ({}); resuming", file, curl_easy_strerror(rc));
        std::this_thread::sleep_for(std::chrono::seconds(transient_retries));
        continue;
      }
      return Error(ErrorKind::kUnavailable, "download_failed",
                   "Could not download " + o.name + ": " + DescribeCurlError(rc, host, errbuf) +
                       offline_hint + keep_or_remove_part());
    }
    if (!complete_already && t.status != 200 && t.status != 206) {
      return Error(ErrorKind::kUnavailable, "download_failed",
                   "Could not download " + o.name + ": " + host + " answered HTTP " +
                       std::to_string(t.status) + " instead of the file" + offline_hint +
                       keep_or_remove_part());
    }

    std::string got = sha.HexDigest();
    if (got != expected) {
      if (resumed_from > 0 && !t.restarted && !from_scratch_retried) {
        // The kept bytes may belong to another version of the file: try once from byte 0.
        spdlog::warn("{}: checksum mismatch after resuming; downloading it again from the start",
                     file);
        from_scratch_retried = true;
        if (ftruncate(fd, 0) != 0) {
          return Error(ErrorKind::kIo, "write_failed",
                       "Cannot truncate " + part + ": " + Errno(errno));
        }
        continue;
      }
      unlink(part.c_str());
      return Error(ErrorKind::kIntegrity, "checksum_mismatch",
                   "Checksum mismatch for " + o.name + ": the downloaded file's SHA-1 is " + got +
                       ", expected " + expected +
                       ". The download was deleted; try again, or "
                       "check the --base-url mirror and --sha1.");
    }

    if (fsync(fd) != 0) {
      return Error(ErrorKind::kIo, "write_failed", "Cannot sync " + part + ": " + Errno(errno));
    }
    if (rename(part.c_str(), result.path.c_str()) != 0) {
      return Error(ErrorKind::kIo, "write_failed",
                   "Cannot rename " + part + " to " + result.path + ": " + Errno(errno));
    }
    if (auto s = SyncDir(o.models_dir); !s.ok()) return s.error();
    result.sha1 = got;
    result.file_bytes = FileSize(fd);
    result.downloaded = true;
    result.resumed_from = t.restarted ? 0 : resumed_from;
    return result;
  }
}

}  // namespace steno::models
