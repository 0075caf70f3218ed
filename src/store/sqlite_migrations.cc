#include "store/sqlite_migrations.h"

#include <chrono>
#include <string>

#include "core/log.h"
#include "store/job_store.h"

namespace steno::store::sqlite {
namespace {

// v1: jobs and their results.
constexpr const char kV1[] = R"sql(
CREATE TABLE schema_version (
  version     INTEGER PRIMARY KEY,
  description TEXT NOT NULL,
  applied_ms  INTEGER NOT NULL
);
CREATE TABLE jobs (
  id               TEXT PRIMARY KEY,
  state            TEXT NOT NULL CHECK (state IN
                     ('pending','loading','processing','completed','failed','cancelled')),
  priority         INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 2),
  model            TEXT NOT NULL,
  params           TEXT NOT NULL,
  blob_digest      TEXT,
  attempt          INTEGER NOT NULL DEFAULT 1,
  error_kind       TEXT,
  error_code       TEXT,
  error_message    TEXT,
  created_ms       INTEGER NOT NULL,
  updated_ms       INTEGER NOT NULL,
  started_ms       INTEGER,
  finished_ms      INTEGER,
  lease_owner      TEXT,
  lease_expires_ms INTEGER,
  idempotency_key  TEXT UNIQUE
);
CREATE INDEX jobs_queue ON jobs (state, priority, created_ms, id);
CREATE INDEX jobs_created ON jobs (created_ms, id);
CREATE INDEX jobs_finished ON jobs (finished_ms) WHERE finished_ms IS NOT NULL;
CREATE TABLE results (
  job_id     TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
  result     TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
)sql";

// v2: retry backoff, attempt history, measured model footprints, and the indexes that blob
// reference counting and lease heartbeats scan.
constexpr const char kV2[] = R"sql(
ALTER TABLE jobs ADD COLUMN not_before_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_blob ON jobs (blob_digest) WHERE blob_digest IS NOT NULL;
CREATE INDEX jobs_lease ON jobs (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE TABLE attempts (
  job_id        TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  attempt       INTEGER NOT NULL,
  owner         TEXT NOT NULL,
  started_ms    INTEGER NOT NULL,
  ended_ms      INTEGER,
  outcome       TEXT,
  error_kind    TEXT,
  error_code    TEXT,
  error_message TEXT,
  PRIMARY KEY (job_id, attempt)
);
CREATE TABLE model_footprints (
  model         TEXT NOT NULL,
  device_name   TEXT NOT NULL,
  weights_bytes INTEGER NOT NULL CHECK (weights_bytes >= 0),
  stream_bytes  INTEGER NOT NULL CHECK (stream_bytes >= 0),
  measured_ms   INTEGER NOT NULL,
  PRIMARY KEY (model, device_name)
);
)sql";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> kAll = {
      {1, "jobs and results", kV1},
      {2, "retry backoff, attempts, model footprints", kV2},
  };
  return kAll;
}

int LatestSchemaVersion() {
  return Migrations().back().version;
}

Result<int> SchemaVersion(Db& db) {
  auto has_table = db.Prepare(
      "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'");
  if (!has_table.ok()) return has_table.error();
  auto row = has_table->Step();
  if (!row.ok()) return row.error();
  if (has_table->Int(0) == 0) {
    auto others = db.Prepare("SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'");
    if (!others.ok()) return others.error();
    if (auto r = others->Step(); !r.ok()) return r.error();
    if (others->Int(0) > 0) {
      return Error(ErrorKind::kIntegrity, kErrForeignSchema,
                   "the job database holds tables but no schema_version: it was not written by "
                   "steno; move it away or point --data-dir elsewhere");
    }
    return 0;
  }
  auto version = db.Prepare("SELECT coalesce(max(version), 0) FROM schema_version");
  if (!version.ok()) return version.error();
  if (auto r = version->Step(); !r.ok()) return r.error();
  return static_cast<int>(version->Int(0));
}

Status Migrate(Db& db, int target) {
  auto current = SchemaVersion(db);
  if (!current.ok()) return current.error();
  if (*current > LatestSchemaVersion() || *current > target) {
    return Error(ErrorKind::kIntegrity, kErrSchemaTooNew,
                 "the job database has schema version " + std::to_string(*current) +
                     " but this steno knows versions up to " + std::to_string(target) +
                     "; it was written by a newer steno");
  }
  for (const auto& m : Migrations()) {
    if (m.version <= *current || m.version > target) continue;
    auto tx = Transaction::Begin(db);
    if (!tx.ok()) return tx.error();
    if (auto st = db.Exec(m.sql); !st.ok()) return st;
    auto record = db.Prepare(
        "INSERT INTO schema_version (version, description, applied_ms) VALUES (?, ?, ?)");
    if (!record.ok()) return record.error();
    record->Bind(1, int64_t{m.version}).Bind(2, m.description).Bind(3, NowMs());
    if (auto st = record->Run(); !st.ok()) return st;
    if (auto st = tx->Commit(); !st.ok()) return st;
    // A new database is not news; upgrading an existing one is worth a line in the log.
    if (*current > 0) {
      spdlog::info("job database migrated to schema version {} ({})", m.version, m.description);
    }
  }
  return {};
}

}  // namespace steno::store::sqlite
