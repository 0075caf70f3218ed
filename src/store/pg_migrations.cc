#include "store/pg_migrations.h"

#include <chrono>
#include <string>

#include "core/log.h"
#include "store/job_store.h"

namespace steno::store::pg {
namespace {

// v1: jobs, their results and runs, and measured model footprints. Ids compare bytewise
// (COLLATE "C"): keyset paging and ORDER BY agree whatever the database's locale.
constexpr const char kV1[] = R"sql(
CREATE TABLE schema_migrations (
  version     INTEGER PRIMARY KEY,
  description TEXT NOT NULL,
  applied_ms  BIGINT NOT NULL
);
CREATE TABLE jobs (
  id               TEXT COLLATE "C" PRIMARY KEY,
  state            TEXT NOT NULL CHECK (state IN
                     ('pending','loading','processing','completed','failed','cancelled')),
  priority         SMALLINT NOT NULL CHECK (priority BETWEEN 0 AND 2),
  model            TEXT NOT NULL,
  params           TEXT NOT NULL,
  blob_digest      TEXT,
  attempt          INTEGER NOT NULL DEFAULT 1,
  error_kind       TEXT,
  error_code       TEXT,
  error_message    TEXT,
  created_ms       BIGINT NOT NULL,
  updated_ms       BIGINT NOT NULL,
  started_ms       BIGINT,
  finished_ms      BIGINT,
  not_before_ms    BIGINT NOT NULL DEFAULT 0,
  lease_owner      TEXT,
  lease_expires_ms BIGINT,
  idempotency_key  TEXT UNIQUE
);
CREATE INDEX jobs_claim ON jobs (priority, created_ms, id) WHERE state = 'pending';
CREATE INDEX jobs_queue ON jobs (state, priority, created_ms, id);
CREATE INDEX jobs_created ON jobs (created_ms, id);
CREATE INDEX jobs_finished ON jobs (finished_ms) WHERE finished_ms IS NOT NULL;
CREATE INDEX jobs_blob ON jobs (blob_digest) WHERE blob_digest IS NOT NULL;
CREATE INDEX jobs_lease ON jobs (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX jobs_lease_expiry ON jobs (lease_expires_ms) WHERE state IN ('loading','processing');
CREATE TABLE results (
  job_id     TEXT COLLATE "C" PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
  result     TEXT NOT NULL,
  created_ms BIGINT NOT NULL
);
CREATE TABLE attempts (
  job_id        TEXT COLLATE "C" NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  attempt       INTEGER NOT NULL,
  owner         TEXT NOT NULL,
  started_ms    BIGINT NOT NULL,
  ended_ms      BIGINT,
  outcome       TEXT,
  error_kind    TEXT,
  error_code    TEXT,
  error_message TEXT,
  PRIMARY KEY (job_id, attempt)
);
CREATE TABLE model_footprints (
  model         TEXT NOT NULL,
  device_name   TEXT NOT NULL,
  weights_bytes BIGINT NOT NULL CHECK (weights_bytes >= 0),
  stream_bytes  BIGINT NOT NULL CHECK (stream_bytes >= 0),
  measured_ms   BIGINT NOT NULL,
  PRIMARY KEY (model, device_name)
);
)sql";

// v2: the nodes sharing this queue, each publishing its devices, runners and ledger.
constexpr const char kV2[] = R"sql(
CREATE TABLE nodes (
  id           TEXT COLLATE "C" PRIMARY KEY,
  url          TEXT NOT NULL,
  heartbeat_ms BIGINT NOT NULL,
  devices      TEXT NOT NULL,
  runners      TEXT NOT NULL,
  ledger       TEXT NOT NULL
);
)sql";

// Any 64-bit constant shared by every steno: serializes schema changes across nodes.
constexpr int64_t kMigrationLock = 0x737465'6e6f'6d67;  // "stenomg"

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> kAll = {
      {1, "jobs, results, attempts, model footprints", kV1},
      {2, "nodes", kV2},
  };
  return kAll;
}

int LatestSchemaVersion() {
  return Migrations().back().version;
}

Result<int> SchemaVersion(Connection& conn) {
  auto tables = conn.Query(
      "SELECT to_regclass('schema_migrations') IS NOT NULL, "
      "(to_regclass('jobs') IS NOT NULL OR to_regclass('results') IS NOT NULL OR "
      "to_regclass('attempts') IS NOT NULL OR to_regclass('model_footprints') IS NOT NULL OR "
      "to_regclass('nodes') IS NOT NULL)");
  if (!tables.ok()) return tables.error();
  if (tables->Text(0, 0) != "t") {
    if (tables->Text(0, 1) == "t") {
      return Error(ErrorKind::kIntegrity, kErrForeignSchema,
                   "the PostgreSQL database " + conn.redacted_url() +
                       " holds tables named like steno's but no schema_migrations: they were "
                       "not made by steno; use another database or schema");
    }
    return 0;
  }
  auto version = conn.Query("SELECT coalesce(max(version), 0) FROM schema_migrations");
  if (!version.ok()) return version.error();
  return static_cast<int>(version->Int(0, 0));
}

Status Migrate(Connection& conn, int target) {
  for (const auto& m : Migrations()) {
    if (m.version > target) break;
    auto tx = Transaction::Begin(conn);
    if (!tx.ok()) return tx.error();
    // Held until this transaction ends: another node migrating waits here, then sees our rows.
    if (auto st = conn.Query("SELECT pg_advisory_xact_lock($1)", {P(kMigrationLock)}); !st.ok()) {
      return st.error();
    }
    auto current = SchemaVersion(conn);
    if (!current.ok()) return current.error();
    if (*current > LatestSchemaVersion() || *current > target) {
      return Error(ErrorKind::kIntegrity, kErrSchemaTooNew,
                   "the PostgreSQL job store " + conn.redacted_url() + " has schema version " +
                       std::to_string(*current) + " but this steno knows versions up to " +
                       std::to_string(target) + "; it was written by a newer steno");
    }
    if (m.version <= *current) continue;  // applied (by us earlier, or by another node)
    if (auto st = conn.Exec(m.sql); !st.ok()) return st;
    auto record = conn.Query(
        "INSERT INTO schema_migrations (version, description, applied_ms) VALUES ($1, $2, $3)",
        {P(int64_t{m.version}), P(m.description), P(NowMs())});
    if (!record.ok()) return record.error();
    if (auto st = tx->Commit(); !st.ok()) return st;
    // A new database is not news; upgrading an existing one is worth a line in the log.
    spdlog::log(*current > 0 ? spdlog::level::info : spdlog::level::debug,
                "PostgreSQL job store {}: schema version {} applied ({})", conn.redacted_url(),
                m.version, m.description);
  }
  return {};
}

}  // namespace steno::store::pg
