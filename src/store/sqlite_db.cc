#include "store/sqlite_db.h"

#include <sqlite3.h>

#include "store/job_store.h"

namespace steno::store::sqlite {

Error ErrorFromCode(int rc, std::string_view what, std::string_view detail) {
  std::string message = std::string(what) + ": " + std::string(detail);
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Error(ErrorKind::kIntegrity, kErrStoreCorrupt,
                   message + " (the job database is damaged or is not a steno database)");
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Error(ErrorKind::kUnavailable, kErrStoreBusy, message);
    case SQLITE_FULL: return Error(ErrorKind::kNoSpace, kErrStoreFull, message);
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM: return Error(ErrorKind::kIo, kErrStoreIo, message);
    case SQLITE_CONSTRAINT: return Error(ErrorKind::kBadInput, kErrBadJob, message);
    default: return Error(ErrorKind::kInternal, "store_error", message);
  }
}

Statement::~Statement() {
  if (stmt_) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

Statement& Statement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Statement& Statement::Bind(int index, std::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::BindNull(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Statement& Statement::BindTextOrNull(int index, std::string_view text) {
  return text.empty() ? BindNull(index) : Bind(index, text);
}

Result<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->LastError(rc, "job database");
}

Status Statement::Run() {
  for (;;) {
    auto more = Step();
    if (!more.ok()) return more.error();
    if (!*more) return {};
  }
}

int64_t Statement::Int(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

std::string Statement::Text(int column) const {
  const auto* p = sqlite3_column_text(stmt_, column);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, int busy_timeout_ms, OpenMode mode) {
  sqlite3* raw = nullptr;
  // NOMUTEX: the owner serializes access, so SQLite's own per-call mutex is wasted work.
  int flags = SQLITE_OPEN_NOMUTEX |
              (mode == OpenMode::kReadOnly ? SQLITE_OPEN_READONLY
                                           : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string detail = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    sqlite3_close(raw);
    return ErrorFromCode(rc, "cannot open job database " + path, detail);
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, busy_timeout_ms);
  return std::unique_ptr<Db>(new Db(raw));
}

Db::~Db() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

Status Db::Exec(std::string_view sql) {
  char* err = nullptr;
  std::string text(sql);
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return {};
  std::string detail = err ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  return ErrorFromCode(rc, "job database", detail);
}

Result<Statement> Db::Prepare(std::string_view sql) {
  std::string key(sql);
  if (auto it = cache_.find(key); it != cache_.end()) return Statement(it->second, this);
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, key.data(), static_cast<int>(key.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return LastError(rc, "job database");
  cache_.emplace(std::move(key), stmt);
  return Statement(stmt, this);
}

int Db::Changes() const {
  return sqlite3_changes(db_);
}

bool Db::InTransaction() const {
  return sqlite3_get_autocommit(db_) == 0;
}

Error Db::LastError(int rc, std::string_view what) const {
  return ErrorFromCode(rc, what, sqlite3_errmsg(db_));
}

Result<Transaction> Transaction::Begin(Db& db) {
  auto st = db.Exec("BEGIN IMMEDIATE");
  if (!st.ok()) return st.error();
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_) (void)db_->Exec("ROLLBACK");
}

Status Transaction::Commit() {
  auto st = db_->Exec("COMMIT");
  if (st.ok()) db_ = nullptr;
  return st;
}

Result<ReadTransaction> ReadTransaction::Begin(Db& db) {
  auto st = db.Exec("BEGIN");
  if (!st.ok()) return st.error();
  return ReadTransaction(&db);
}

ReadTransaction::~ReadTransaction() {
  // A read transaction has nothing to keep, and a connection left inside one would go on reading
  // an old snapshot: whatever happens, it ends here.
  if (db_ && db_->InTransaction()) (void)db_->Exec("ROLLBACK");
}

}  // namespace steno::store::sqlite
