#include "store/pg_connection.h"

#include <libpq-fe.h>

#include <poll.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "core/log.h"
#include "store/job_store.h"

namespace steno::store::pg {
namespace {

struct ParsedUrl {
  std::string redacted;
  std::string password;
};

ParsedUrl ParseUrl(const std::string& url) {
  ParsedUrl out;
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &err);
  if (err) PQfreemem(err);  // its text may quote the URL: never shown
  if (!options) {
    out.redacted = "postgres://(unparsable URL)";
    return out;
  }
  std::string user, host, port, dbname;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (!o->val) continue;
    std::string_view key = o->keyword;
    if (key == "user") user = o->val;
    if (key == "host") host = o->val;
    if (key == "hostaddr" && host.empty()) host = o->val;
    if (key == "port") port = o->val;
    if (key == "dbname") dbname = o->val;
    if (key == "password") out.password = o->val;
  }
  PQconninfoFree(options);
  out.redacted = "postgres://" + (user.empty() ? "" : user + "@") + host +
                 (port.empty() ? "" : ":" + port) + "/" + dbname;
  return out;
}

// libpq's messages end in a newline and may span lines ("...failed: Connection refused\n\tIs
// the server running..."): one line for logs and JSON errors.
std::string Trim(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '\n' || c == '\t' || c == '\r') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

void OnNotice(void*, const char* message) {
  spdlog::debug("postgres: {}", Trim(message ? message : ""));
}

Error Unavailable(const std::string& message) {
  return Error(ErrorKind::kUnavailable, kErrStoreUnavailable, message);
}

}  // namespace

std::string RedactUrl(const std::string& url) {
  return ParseUrl(url).redacted;
}

Rows::~Rows() {
  if (result_) PQclear(result_);
}

int Rows::size() const {
  return PQntuples(result_);
}

bool Rows::IsNull(int row, int column) const {
  return PQgetisnull(result_, row, column) != 0;
}

std::string Rows::Text(int row, int column) const {
  if (IsNull(row, column)) return "";
  return std::string(PQgetvalue(result_, row, column),
                     static_cast<size_t>(PQgetlength(result_, row, column)));
}

int64_t Rows::Int(int row, int column) const {
  if (IsNull(row, column)) return 0;
  const char* text = PQgetvalue(result_, row, column);
  int64_t value = 0;
  std::from_chars(text, text + PQgetlength(result_, row, column), value);
  return value;
}

int64_t Rows::Affected() const {
  const char* n = PQcmdTuples(result_);
  int64_t value = 0;
  std::from_chars(n, n + std::strlen(n), value);
  return value;
}

Connection::Connection(pg_conn* conn, std::string redacted, std::string password)
    : conn_(conn), redacted_(std::move(redacted)), password_(std::move(password)) {
  PQsetNoticeProcessor(conn_, OnNotice, nullptr);
}

Connection::~Connection() {
  PQfinish(conn_);
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& url,
                                                     int connect_timeout_s) {
  ParsedUrl parsed = ParseUrl(url);
  std::string timeout = std::to_string(connect_timeout_s > 0 ? connect_timeout_s : 10);
  // Defaults first: expand_dbname lets the URL's own settings override them.
  const char* keywords[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), "steno", url.c_str(), nullptr};
  pg_conn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (!conn) return Unavailable("cannot connect to PostgreSQL: out of memory");
  std::unique_ptr<Connection> out(new Connection(conn, parsed.redacted, parsed.password));
  if (PQstatus(conn) != CONNECTION_OK) {
    return Unavailable("cannot connect to the PostgreSQL job store " + out->redacted_ + ": " +
                       out->Scrub(Trim(PQerrorMessage(conn))));
  }
  return out;
}

std::string Connection::Scrub(std::string message) const {
  if (password_.empty()) return message;
  for (size_t at = message.find(password_); at != std::string::npos;
       at = message.find(password_, at + 3)) {
    message.replace(at, password_.size(), "***");
  }
  return message;
}

Status Connection::Reconnect() {
  spdlog::warn("lost the connection to the PostgreSQL job store {}; reconnecting", redacted_);
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK) {
    return Unavailable("cannot reconnect to the PostgreSQL job store " + redacted_ + ": " +
                       Scrub(Trim(PQerrorMessage(conn_))));
  }
  PQsetNoticeProcessor(conn_, OnNotice, nullptr);
  return {};
}

Error Connection::ErrorOf(pg_result* result, std::string_view what) const {
  std::string detail = Scrub(Trim(result ? PQresultErrorMessage(result) : PQerrorMessage(conn_)));
  std::string message =
      "PostgreSQL job store " + redacted_ + ": " + std::string(what) + ": " + detail;
  if (PQstatus(conn_) != CONNECTION_OK) return Unavailable(message);
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string_view s = state ? state : "";
  if (s.starts_with("08") || s.starts_with("57P") || s == "53300") return Unavailable(message);
  if (s == "40001" || s == "40P01" || s == "55P03") {
    return Error(ErrorKind::kUnavailable, kErrStoreBusy, message);
  }
  if (s.starts_with("23")) return Error(ErrorKind::kBadInput, kErrBadJob, message);
  if (s.starts_with("XX0")) return Error(ErrorKind::kIntegrity, kErrStoreCorrupt, message);
  if (s.starts_with("53") || s.starts_with("58")) {
    return Error(ErrorKind::kIo, kErrStoreIo, message);
  }
  return Error(ErrorKind::kInternal, "store_error", message);
}

Result<Rows> Connection::Query(std::string_view sql, const std::vector<Param>& params) {
  if (PQstatus(conn_) != CONNECTION_OK) {
    if (in_transaction_) {
      return Unavailable("PostgreSQL job store " + redacted_ +
                         ": the connection broke inside a transaction");
    }
    if (auto st = Reconnect(); !st.ok()) return st.error();
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  std::string text(sql);
  pg_result* result = PQexecParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr,
                                   values.data(), nullptr, nullptr, /*resultFormat=*/0);
  ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    Error e = ErrorOf(result, "query failed");
    if (result) PQclear(result);
    return e;
  }
  return Rows(result);
}

Status Connection::Exec(std::string_view sql) {
  if (PQstatus(conn_) != CONNECTION_OK && !in_transaction_) {
    if (auto st = Reconnect(); !st.ok()) return st;
  }
  std::string text(sql);
  pg_result* result = PQexec(conn_, text.c_str());
  ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    Error e = ErrorOf(result, "statement failed");
    if (result) PQclear(result);
    return e;
  }
  PQclear(result);
  return {};
}

Result<std::vector<Connection::Notification>> Connection::WaitForNotifications(int timeout_ms) {
  std::vector<Notification> out;
  auto collect = [&] {
    while (PGnotify* n = PQnotifies(conn_)) {
      out.push_back({n->relname ? n->relname : "", n->extra ? n->extra : ""});
      PQfreemem(n);
    }
  };
  auto broken = [&] {
    return Unavailable("the PostgreSQL job store " + redacted_ +
                       " stopped sending notifications: " + Scrub(Trim(PQerrorMessage(conn_))));
  };
  if (PQstatus(conn_) != CONNECTION_OK) return broken();
  collect();
  if (!out.empty()) return out;
  const int sock = PQsocket(conn_);
  if (sock < 0) return broken();
  pollfd p{sock, POLLIN, 0};
  const int ready = poll(&p, 1, timeout_ms);
  if (ready < 0 && errno != EINTR) return broken();
  if (ready > 0) {
    if (!PQconsumeInput(conn_)) return broken();
    collect();
  }
  return out;
}

Result<Transaction> Transaction::Begin(Connection& conn, std::string_view begin_sql) {
  if (auto st = conn.Exec(begin_sql); !st.ok()) return st.error();
  conn.in_transaction_ = true;
  return Transaction(&conn);
}

Transaction::~Transaction() {
  if (!conn_) return;
  // Nothing to report if the connection is gone: the server rolled the transaction back.
  if (PQstatus(conn_->conn_) == CONNECTION_OK) {
    if (pg_result* r = PQexec(conn_->conn_, "ROLLBACK")) PQclear(r);
  }
  conn_->in_transaction_ = false;
}

Status Transaction::Commit() {
  Connection* conn = conn_;
  conn_ = nullptr;
  Status st = conn->Exec("COMMIT");
  conn->in_transaction_ = false;
  return st;
}

}  // namespace steno::store::pg
