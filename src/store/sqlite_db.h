// A thin C++ layer over one sqlite3 connection: prepared statements cached per SQL text, typed
// binding, transactions as scope objects, and SQLite result codes turned into steno Errors
// (corruption -> kIntegrity, busy -> kUnavailable, disk -> kIo). Not thread-safe: its owner
// serializes calls (SqliteJobStore holds a mutex for its writer; ReadPool lends each read-only
// connection to one thread at a time).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace steno::store::sqlite {

// An Error for SQLite result code `rc`, with `what` (the operation) and SQLite's message.
Error ErrorFromCode(int rc, std::string_view what, std::string_view detail);

class Db;

// A cached prepared statement borrowed for one use; it is reset and its bindings cleared when
// this goes out of scope. Bind indexes start at 1, column indexes at 0 (as in SQLite).
class Statement {
 public:
  Statement(sqlite3_stmt* stmt, Db* db) : stmt_(stmt), db_(db) {}
  ~Statement();
  Statement(Statement&& other) noexcept : stmt_(other.stmt_), db_(other.db_) {
    other.stmt_ = nullptr;
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view text);
  Statement& BindNull(int index);
  // Empty text binds NULL (optional TEXT columns such as an idempotency key).
  Statement& BindTextOrNull(int index, std::string_view text);

  // Advances: true when a row is ready to read, false when the statement is done.
  Result<bool> Step();
  // Steps to the end, for statements that return no rows.
  Status Run();

  int64_t Int(int column) const;
  std::string Text(int column) const;  // NULL reads as ""
  bool IsNull(int column) const;

 private:
  sqlite3_stmt* stmt_;
  Db* db_;
};

enum class OpenMode {
  kReadWrite,  // creates the file if missing
  kReadOnly,   // the file must exist; every write fails (SQLITE_READONLY -> kIo)
};

class Db {
 public:
  // Opens the database file. Opening is lazy in SQLite: a file that is not a database is only
  // noticed by the first statement, which then fails with kIntegrity.
  static Result<std::unique_ptr<Db>> Open(const std::string& path, int busy_timeout_ms,
                                          OpenMode mode = OpenMode::kReadWrite);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs one or more statements that return no rows.
  Status Exec(std::string_view sql);
  Result<Statement> Prepare(std::string_view sql);
  // Number of rows the last INSERT/UPDATE/DELETE changed.
  int Changes() const;
  // True while a transaction is open (BEGIN without its COMMIT/ROLLBACK yet).
  bool InTransaction() const;
  // An Error for `rc` carrying this connection's last message.
  Error LastError(int rc, std::string_view what) const;

  sqlite3* raw() { return db_; }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// BEGIN IMMEDIATE (takes the write lock up front, so a transaction that reads then writes never
// fails half-way on a lock upgrade); rolls back unless Commit() succeeded.
class Transaction {
 public:
  static Result<Transaction> Begin(Db& db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  Status Commit();

 private:
  explicit Transaction(Db* db) : db_(db) {}
  Db* db_;
};

// BEGIN (deferred) for reads only: every statement inside reads the same snapshot, the one the
// first of them finds (in WAL mode: the last transaction committed by then; later commits are
// invisible to it). Ends the transaction when it goes out of scope; there is nothing to undo.
class ReadTransaction {
 public:
  static Result<ReadTransaction> Begin(Db& db);
  ReadTransaction(ReadTransaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;
  ~ReadTransaction();

 private:
  explicit ReadTransaction(Db* db) : db_(db) {}
  Db* db_;
};

}  // namespace steno::store::sqlite
