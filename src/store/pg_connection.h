// A thin C++ layer over one libpq connection (PostgreSQL): parameterized statements (values are
// always sent as parameters, never spliced into SQL text), results read by row and column,
// transactions as scope objects, and SQLSTATEs turned into steno Errors:
//   connection failures, server shutdown, too many clients -> kUnavailable kErrStoreUnavailable
//   serialization failure, deadlock, lock timeout           -> kUnavailable kErrStoreBusy
//   integrity violations (unique, check, foreign key)       -> kBadInput kErrBadJob
//   data corruption                                         -> kIntegrity kErrStoreCorrupt
//   disk full, I/O error                                    -> kIo kErrStoreIo
//   anything else (a bug: bad SQL, missing table)           -> kInternal "store_error"
// Messages name the server by its redacted URL (RedactUrl): a password never appears in an
// Error or a log line, even when libpq echoes part of the connection string back.
//
// A broken connection (the server restarted, the network dropped) is reopened by the next
// statement that runs outside a transaction (Transaction::Begin included). A statement inside a
// transaction whose connection broke fails with kUnavailable: the transaction is gone. When a
// COMMIT fails that way its outcome is unknown to the caller.
//
// Not thread-safe: the owner serializes calls (PgJobStore holds a mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

struct pg_conn;
struct pg_result;

namespace steno::store::pg {

// kUnavailable: the PostgreSQL server cannot be reached (or refused the login).
inline constexpr const char kErrStoreUnavailable[] = "store_unavailable";

// "postgres://user@host:port/dbname" for messages: the password (in the userinfo or a
// password= parameter) and every other option are left out. A spec libpq cannot parse gives
// "postgres://(unparsable URL)".
std::string RedactUrl(const std::string& url);

// A statement parameter: text (PostgreSQL casts it to the column's type), or NULL.
using Param = std::optional<std::string>;
inline Param P(int64_t v) {
  return std::to_string(v);
}
inline Param P(std::string s) {
  return Param(std::move(s));
}
inline Param P(const char* s) {
  return Param(std::string(s));
}
// Empty text binds NULL (optional TEXT columns such as an idempotency key).
inline Param TextOrNull(const std::string& s) {
  return s.empty() ? Param() : Param(s);
}

// The rows a statement returned (text format). Column indexes start at 0.
class Rows {
 public:
  explicit Rows(pg_result* result) : result_(result) {}
  ~Rows();
  Rows(Rows&& other) noexcept : result_(other.result_) { other.result_ = nullptr; }
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  Rows& operator=(Rows&&) = delete;

  int size() const;
  bool empty() const { return size() == 0; }
  bool IsNull(int row, int column) const;
  std::string Text(int row, int column) const;  // NULL reads as ""
  int64_t Int(int row, int column) const;       // NULL (or not a number) reads as 0
  // Rows an INSERT/UPDATE/DELETE changed (with or without RETURNING).
  int64_t Affected() const;

 private:
  pg_result* result_;
};

class Connection {
 public:
  // Connects to `url` (postgres://... or postgresql://...; libpq's other forms work too).
  // kUnavailable kErrStoreUnavailable when the server cannot be reached or refuses the login.
  static Result<std::unique_ptr<Connection>> Open(const std::string& url, int connect_timeout_s);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One statement with parameters $1, $2, ... .
  Result<Rows> Query(std::string_view sql, const std::vector<Param>& params = {});
  // Runs `sql` (one or more statements, no parameters: schema changes, BEGIN, COMMIT).
  Status Exec(std::string_view sql);

  // LISTEN/NOTIFY. Waits up to `timeout_ms` for notifications on the channels this connection
  // listens to (Exec("LISTEN channel")) and returns those that arrived, maybe none. kUnavailable
  // when the connection broke: the next statement reconnects, and the listener must LISTEN again
  // (notifications sent meanwhile are lost).
  struct Notification {
    std::string channel;
    std::string payload;
  };
  Result<std::vector<Notification>> WaitForNotifications(int timeout_ms);

  bool in_transaction() const { return in_transaction_; }
  const std::string& redacted_url() const { return redacted_; }

 private:
  friend class Transaction;
  Connection(pg_conn* conn, std::string redacted, std::string password);
  // Reopens a broken connection (only outside a transaction).
  Status Reconnect();
  Error ErrorOf(pg_result* result, std::string_view what) const;
  std::string Scrub(std::string message) const;  // removes the password wherever it appears

  pg_conn* conn_;
  std::string redacted_;
  std::string password_;
  bool in_transaction_ = false;
};

// BEGIN (or `begin_sql`, e.g. "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); rolls back
// unless Commit() succeeded.
class Transaction {
 public:
  static Result<Transaction> Begin(Connection& conn, std::string_view begin_sql = "BEGIN");
  Transaction(Transaction&& other) noexcept : conn_(other.conn_) { other.conn_ = nullptr; }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  Status Commit();

 private:
  explicit Transaction(Connection* conn) : conn_(conn) {}
  Connection* conn_;
};

}  // namespace steno::store::pg
