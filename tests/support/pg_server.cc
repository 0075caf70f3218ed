#include "support/pg_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <gtest/gtest.h>

#include "store/pg_connection.h"
#include "support/process.h"
#include "support/test_env.h"

namespace steno::test {
namespace fs = std::filesystem;

namespace {

// The bin dir of the newest /usr/lib/postgresql/<version> with initdb and pg_ctl, or "".
std::string FindPgBin() {
  if (const char* env = std::getenv("STENO_PG_BIN"); env && *env) {
    return fs::exists(fs::path(env) / "initdb") && fs::exists(fs::path(env) / "pg_ctl") ? env : "";
  }
  std::string best;
  int best_version = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    fs::path bin = entry.path() / "bin";
    if (!fs::exists(bin / "initdb") || !fs::exists(bin / "pg_ctl")) continue;
    int version = std::atoi(entry.path().filename().c_str());
    if (version > best_version) {
      best_version = version;
      best = bin.string();
    }
  }
  return best;
}

// A loopback TCP port nobody listens on right now.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace

PgServer::PgServer() {
  bin_ = FindPgBin();
  if (bin_.empty()) {
    error_ =
        "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin "
        "(or $STENO_PG_BIN): install the Debian packages postgresql and libpq-dev "
        "(scripts/install-deps does)";
    return;
  }
  dir_ = MakeTempDir("steno-pg");
  as_postgres_ = geteuid() == 0;
  if (as_postgres_) {
    passwd* pw = getpwnam("postgres");
    if (!pw) {
      error_ =
          "running as root, but there is no 'postgres' user to run PostgreSQL as (the "
          "Debian postgresql package creates it)";
      return;
    }
    if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      error_ = "cannot hand " + dir_ + " to the postgres user";
      return;
    }
  }
  {
    std::ofstream pw(dir_ + "/pwfile");
    pw << kPassword << "\n";
  }
  if (as_postgres_) {
    passwd* pw = getpwnam("postgres");
    if (chown((dir_ + "/pwfile").c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      error_ = "cannot hand the password file to the postgres user";
      return;
    }
  }
  int code = 0;
  std::string out =
      RunAsOwner({bin_ + "/initdb", "-D", dir_ + "/data", "-U", kUser,
                  "--pwfile=" + dir_ + "/pwfile", "--auth-local=trust", "--auth-host=scram-sha-256",
                  "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"},
                 &code);
  if (code != 0) {
    error_ = "initdb failed (exit " + std::to_string(code) + "): " + out;
    return;
  }
  // A port found free may be taken before the server binds it: try a few.
  for (int attempt = 0; attempt < 5 && !running_; ++attempt) {
    port_ = FreePort();
    running_ = Start();
  }
  if (!running_) error_ = "PostgreSQL did not start: " + error_ + "\n" + Log();
}

PgServer::~PgServer() {
  if (running_) {
    int code = 0;
    RunAsOwner({bin_ + "/pg_ctl", "-D", dir_ + "/data", "-m", "immediate", "-w", "-s", "stop"},
               &code);
  }
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::string PgServer::RunAsOwner(const std::vector<std::string>& argv, int* exit_code) {
  std::vector<std::string> full;
  if (as_postgres_) full = {"runuser", "-u", "postgres", "--"};
  full.insert(full.end(), argv.begin(), argv.end());
  ProcessOptions options;
  options.cwd = dir_;  // the postgres user may not be allowed into the test's cwd
  options.timeout_s = 120;
  options.env = {{"LC_ALL", "C"}, {"PGTZ", "UTC"}};
  ProcessResult r = RunProcess(full, options);
  *exit_code = r.exit_code;
  return r.out + r.err;
}

bool PgServer::Start() {
  std::string options = "-k " + dir_ + " -h 127.0.0.1 -p " + std::to_string(port_) +
                        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                        " -c max_connections=60";
  int code = 0;
  std::string out = RunAsOwner({bin_ + "/pg_ctl", "-D", dir_ + "/data", "-l", dir_ + "/log", "-o",
                                options, "-w", "-t", "60", "-s", "start"},
                               &code);
  if (code != 0) {
    error_ = "pg_ctl start failed (exit " + std::to_string(code) + "): " + out;
    return false;
  }
  error_.clear();
  return true;
}

bool PgServer::Restart() {
  int code = 0;
  std::string out = RunAsOwner({bin_ + "/pg_ctl", "-D", dir_ + "/data", "-l", dir_ + "/log", "-m",
                                "fast", "-w", "-t", "60", "-s", "restart"},
                               &code);
  if (code != 0) error_ = "pg_ctl restart failed: " + out;
  return code == 0;
}

std::string PgServer::Log() const {
  return ReadFileText(dir_ + "/log");
}

std::string PgServer::Url(const std::string& dbname) const {
  return std::string("postgres://") + kUser + ":" + kPassword +
         "@127.0.0.1:" + std::to_string(port_) + "/" + dbname;
}

std::string PgServer::SocketUrl(const std::string& dbname) const {
  return std::string("postgresql://") + kUser + "@/" + dbname + "?host=" + dir_ +
         "&port=" + std::to_string(port_);
}

std::string PgServer::Exec(const std::string& dbname, const std::string& sql) {
  auto conn = store::pg::Connection::Open(SocketUrl(dbname), 10);
  if (!conn.ok()) return conn.error().message;
  auto st = (*conn)->Exec(sql);
  return st.ok() ? "" : st.error().message;
}

std::string PgServer::CreateDatabase() {
  if (!ok()) return "";
  std::string name = "t" + std::to_string(next_db_++);
  // The name is ours (t<number>): no quoting needed. CREATE DATABASE takes no parameters.
  if (std::string err = Exec("postgres", "CREATE DATABASE " + name); !err.empty()) {
    error_ = "CREATE DATABASE failed: " + err;
    return "";
  }
  return Url(name);
}

PgServer& SharedPgServer() {
  static PgServer server;
  return server;
}

std::string FreshPgDatabase() {
  PgServer& server = SharedPgServer();
  if (!server.ok()) {
    ADD_FAILURE() << server.error();
    return "";
  }
  std::string url = server.CreateDatabase();
  if (url.empty()) ADD_FAILURE() << server.error();
  return url;
}

std::unique_ptr<store::PgJobStore> OpenPgJobStore(const std::string& url) {
  store::PgOptions options;
  options.url = url;
  auto jobs = store::PgJobStore::Open(options);
  if (!jobs.ok()) {
    ADD_FAILURE() << jobs.error().message;
    return nullptr;
  }
  return std::move(jobs).value();
}

}  // namespace steno::test
