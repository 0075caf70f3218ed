#include "store/pg_blob_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/unique_fd.h"
#include "store/pg_connection.h"
#include "store/pg_migrations.h"

namespace steno::store {
using pg::P;
using pg::Param;
using pg::Transaction;

namespace {

// The PostgreSQL server's clock in ms, or the caller's ($n) when one is given.
std::string NowSql(int param) {
  return "coalesce($" + std::to_string(param) +
         "::bigint, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)";
}

Error BadDigest(std::string_view digest) {
  return Error(ErrorKind::kBadInput, "bad_digest", "not a SHA-256 digest: " + std::string(digest));
}

Error NotFound(std::string_view digest, const std::string& where) {
  return Error(ErrorKind::kNotFound, "blob_not_found",
               "upload " + std::string(digest) + " is not in " + where);
}

Error Corrupt(std::string_view digest, const std::string& what) {
  return Error(ErrorKind::kIntegrity, "blob_corrupt",
               "upload " + std::string(digest) + ": " + what);
}

Error IoError(const std::string& what) {
  return Error(ErrorKind::kIo, "blob_io", what + ": " + std::strerror(errno));
}

const char kHexDigits[] = "0123456789abcdef";

// bytea input in hex format: \x followed by two hex digits per byte.
std::string ByteaHex(std::string_view bytes) {
  std::string out;
  out.resize(2 + bytes.size() * 2);
  out[0] = '\\';
  out[1] = 'x';
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto b = static_cast<unsigned char>(bytes[i]);
    out[2 + 2 * i] = kHexDigits[b >> 4];
    out[3 + 2 * i] = kHexDigits[b & 15];
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// bytea output in hex format (the server's default, bytea_output = hex); false if malformed.
bool DecodeByteaHex(const std::string& text, std::string* out) {
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) return false;
  out->resize((text.size() - 2) / 2);
  for (size_t i = 0; i < out->size(); ++i) {
    int hi = HexValue(text[2 + 2 * i]);
    int lo = HexValue(text[3 + 2 * i]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<char>(hi << 4 | lo);
  }
  return true;
}

// SHA-256 as lowercase hex.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(std::string_view bytes) { EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()); }
  std::string Hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    std::string out(len * 2, '0');
    for (unsigned i = 0; i < len; ++i) {
      out[2 * i] = kHexDigits[md[i] >> 4];
      out[2 * i + 1] = kHexDigits[md[i] & 15];
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

// Reads up to `want` bytes (fewer only at the end of the file).
Result<std::string> ReadChunk(int fd, int64_t want, const std::string& path) {
  std::string buf(static_cast<size_t>(want), '\0');
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = read(fd, buf.data() + got, buf.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot read " + path);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  buf.resize(got);
  return buf;
}

}  // namespace

struct PgBlobStore::Impl {
  std::mutex mu;  // guards conn
  std::unique_ptr<pg::Connection> conn;
  PgOptions options;

  Param Now() const { return options.clock ? P(options.clock()) : Param(); }
};

PgBlobStore::PgBlobStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PgBlobStore::~PgBlobStore() = default;

Result<std::unique_ptr<PgBlobStore>> PgBlobStore::Open(const PgOptions& options) {
  if (options.url.empty()) {
    return Error(ErrorKind::kBadInput, "bad_store", "no PostgreSQL URL given");
  }
  auto conn = pg::Connection::Open(options.url, options.connect_timeout_s);
  if (!conn.ok()) return conn.error();
  if (auto st = pg::Migrate(**conn); !st.ok()) return st.error();
  auto impl = std::make_unique<Impl>();
  impl->conn = std::move(conn).value();
  impl->options = options;
  return std::unique_ptr<PgBlobStore>(new PgBlobStore(std::move(impl)));
}

Result<BlobInfo> PgBlobStore::Push(const BlobStore& local, std::string_view digest) {
  if (!IsValidDigest(digest)) return BadDigest(digest);
  const std::string path = local.PathOf(digest);
  const UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return NotFound(digest, "the local blob store " + local.dir());
    return IoError("cannot open " + path);
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return IoError("cannot stat " + path);
  const int64_t size = st.st_size;
  const int64_t chunks = (size + kChunkBytes - 1) / kChunkBytes;
  const std::string id(digest);

  std::lock_guard lock(impl_->mu);
  pg::Connection& conn = *impl_->conn;
  auto tx = Transaction::Begin(conn);
  if (!tx.ok()) return tx.error();
  // Two nodes pushing the same content at once: the second waits on the first's row and then
  // finds it (no bytes written twice). xmax = 0 tells a fresh row from an updated one.
  auto row = conn.Query(
      "INSERT INTO blobs (digest, size, chunks, created_ms) VALUES ($1, $2, $3, " + NowSql(4) +
          ") ON CONFLICT (digest) DO UPDATE SET created_ms = "
          "greatest(blobs.created_ms, EXCLUDED.created_ms) RETURNING (xmax = 0), size",
      {P(id), P(size), P(chunks), impl_->Now()});
  if (!row.ok()) return row.error();
  if (row->Text(0, 0) != "t") {
    if (auto c = tx->Commit(); !c.ok()) return c.error();
    return BlobInfo{id, row->Int(0, 1)};
  }
  Sha256 hash;
  int64_t total = 0;
  for (int64_t seq = 0; seq < chunks; ++seq) {
    auto bytes = ReadChunk(fd.get(), kChunkBytes, path);
    if (!bytes.ok()) return bytes.error();
    if (bytes->empty()) break;  // shorter than it was a moment ago: caught below
    hash.Update(*bytes);
    total += static_cast<int64_t>(bytes->size());
    auto put = conn.Query("INSERT INTO blob_chunks (digest, seq, data) VALUES ($1, $2, $3)",
                          {P(id), P(seq), P(ByteaHex(*bytes))});
    if (!put.ok()) return put.error();
  }
  char extra;
  if (total != size || read(fd.get(), &extra, 1) != 0) {
    return Corrupt(digest, "the local file " + path + " changed size while it was stored");
  }
  if (hash.Hex() != digest) {
    return Corrupt(digest, "the local file " + path + " no longer matches its SHA-256");
  }
  if (auto c = tx->Commit(); !c.ok()) return c.error();
  return BlobInfo{id, size};
}

Result<std::string> PgBlobStore::Materialise(const BlobStore& local, std::string_view digest) {
  if (!IsValidDigest(digest)) return BadDigest(digest);
  if (local.Contains(digest)) return local.PathOf(digest);
  const std::string id(digest);
  auto writer = local.Begin();
  if (!writer.ok()) return writer.error();
  Sha256 hash;
  int64_t size = 0;
  {
    std::lock_guard lock(impl_->mu);
    pg::Connection& conn = *impl_->conn;
    // One snapshot: a blob removed meanwhile is read whole or not at all.
    auto tx = Transaction::Begin(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (!tx.ok()) return tx.error();
    auto row = conn.Query("SELECT size, chunks FROM blobs WHERE digest = $1", {P(id)});
    if (!row.ok()) return row.error();
    if (row->empty()) return NotFound(digest, "the PostgreSQL blob store");
    size = row->Int(0, 0);
    const int64_t chunks = row->Int(0, 1);
    std::string bytes;
    for (int64_t seq = 0; seq < chunks; ++seq) {
      auto chunk = conn.Query("SELECT data FROM blob_chunks WHERE digest = $1 AND seq = $2",
                              {P(id), P(seq)});
      if (!chunk.ok()) return chunk.error();
      if (chunk->empty()) {
        return Corrupt(digest, "chunk " + std::to_string(seq) + " is missing in PostgreSQL");
      }
      if (!DecodeByteaHex(chunk->Text(0, 0), &bytes)) {
        return Corrupt(digest, "chunk " + std::to_string(seq) + " is not hex bytea");
      }
      hash.Update(bytes);
      if (auto st = writer->Append(bytes); !st.ok()) return st.error();
    }
    if (auto c = tx->Commit(); !c.ok()) return c.error();
  }
  if (writer->size() != size) {
    return Corrupt(digest, "PostgreSQL holds " + std::to_string(writer->size()) +
                               " bytes, its row says " + std::to_string(size));
  }
  // Checked before the commit: a wrong file never gets a digest name (the writer's temp file
  // goes with it).
  if (hash.Hex() != digest) return Corrupt(digest, "the copy in PostgreSQL does not match");
  auto committed = writer->Commit();
  if (!committed.ok()) return committed.error();
  return local.PathOf(digest);
}

Result<bool> PgBlobStore::Contains(std::string_view digest) {
  if (!IsValidDigest(digest)) return false;
  std::lock_guard lock(impl_->mu);
  auto row = impl_->conn->Query("SELECT 1 FROM blobs WHERE digest = $1", {P(std::string(digest))});
  if (!row.ok()) return row.error();
  return !row->empty();
}

Result<std::vector<BlobEntry>> PgBlobStore::List() {
  std::lock_guard lock(impl_->mu);
  auto rows = impl_->conn->Query("SELECT digest, size, created_ms FROM blobs ORDER BY digest");
  if (!rows.ok()) return rows.error();
  std::vector<BlobEntry> out;
  out.reserve(static_cast<size_t>(rows->size()));
  for (int i = 0; i < rows->size(); ++i) {
    out.push_back({rows->Text(i, 0), rows->Int(i, 1), rows->Int(i, 2)});
  }
  return out;
}

Status PgBlobStore::Remove(std::string_view digest) {
  if (!IsValidDigest(digest)) return BadDigest(digest);
  std::lock_guard lock(impl_->mu);
  auto done = impl_->conn->Query("DELETE FROM blobs WHERE digest = $1", {P(std::string(digest))});
  if (!done.ok()) return done.error();
  return {};
}

Result<PgBlobSweep> PgBlobStore::RemoveUnreferenced(int64_t grace_ms) {
  std::lock_guard lock(impl_->mu);
  // One statement: a push refreshing a blob's time at this moment either commits first (and
  // the re-checked row is young) or finds the row gone and stores the blob afresh.
  auto rows = impl_->conn->Query(
      "DELETE FROM blobs b WHERE b.created_ms < " + NowSql(1) +
          " - $2 AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.blob_digest = b.digest) "
          "RETURNING b.size",
      {impl_->Now(), P(grace_ms)});
  if (!rows.ok()) return rows.error();
  PgBlobSweep sweep;
  sweep.removed = rows->size();
  for (int i = 0; i < rows->size(); ++i) sweep.bytes_freed += rows->Int(i, 0);
  return sweep;
}

}  // namespace steno::store
