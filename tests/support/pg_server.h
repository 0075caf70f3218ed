// A private PostgreSQL server for tests: a fresh cluster (initdb) in a temp dir, listening on a
// unix socket in that dir and on a free loopback port, stopped and removed by the destructor.
//
// The binaries come from Debian's postgresql package (/usr/lib/postgresql/<version>/bin, the
// newest version; STENO_PG_BIN overrides the directory). They are required: when they are
// missing, error() says so and the test must FAIL (scripts/install-deps installs them).
// PostgreSQL refuses to run as root, so a root test process runs initdb/pg_ctl as the
// `postgres` system user (runuser) and hands it the temp dir.
//
// Logins: user kUser. Over the unix socket without a password (trust); over TCP with kPassword
// (scram-sha-256), so tests can check what a wrong password does. The server runs with
// fsync=off: tests check behaviour, not power-loss durability.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "store/pg_job_store.h"

namespace steno::test {

// Not thread-safe: tests drive it from their main thread.
class PgServer {
 public:
  static constexpr const char kUser[] = "steno";
  static constexpr const char kPassword[] = "pg-test-Secret-42";

  PgServer();  // starts it; check ok()
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }  // why it is not running
  int port() const { return port_; }
  const std::string& socket_dir() const { return dir_; }

  // postgres://steno:PASSWORD@127.0.0.1:PORT/dbname
  std::string Url(const std::string& dbname) const;
  // postgresql://steno@/dbname?host=DIR&port=PORT (unix socket, no password)
  std::string SocketUrl(const std::string& dbname) const;
  // Creates a fresh empty database and returns its TCP URL (with the password); "" and an
  // error() on failure.
  std::string CreateDatabase();
  // Runs `sql` as kUser in `dbname` over the socket; "" on success, else the error message.
  std::string Exec(const std::string& dbname, const std::string& sql);
  // Restarts the server (fast shutdown: open connections are dropped). False on failure.
  bool Restart();
  // The server's log so far (for failure messages).
  std::string Log() const;

 private:
  bool Start();
  std::string RunAsOwner(const std::vector<std::string>& argv, int* exit_code);

  std::string error_;
  std::string bin_;  // directory with initdb, pg_ctl
  std::string dir_;  // temp dir: socket, data/, log, pwfile
  int port_ = 0;
  bool as_postgres_ = false;  // running as root: drop to the postgres user
  bool running_ = false;
  int next_db_ = 0;
};

// One server per test process, started on first use and stopped at exit.
PgServer& SharedPgServer();

// A new empty database on the shared server, as a postgres:// URL. The server must be there:
// missing binaries fail the calling test (never skip it); "" then.
std::string FreshPgDatabase();

// A job store on `url` for a test to look at what nodes did; null (and a test failure) if it
// cannot be opened.
std::unique_ptr<store::PgJobStore> OpenPgJobStore(const std::string& url);

}  // namespace steno::test
