#include "store/sqlite_migrations.h"

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

// v3: the node of each job (the one running it, or that ran its last attempt), kept when its
// lease ends; jobs claimed before it take the node of their last attempt.
constexpr const char kV3[] = R"sql(
ALTER TABLE jobs ADD COLUMN node TEXT;
UPDATE jobs SET node = (SELECT a.owner FROM attempts a WHERE a.job_id = jobs.id
                        ORDER BY a.attempt DESC LIMIT 1);
)sql";

// v4: listing and counting that do not grow with the store. Newest-first pages by state or by
// model read their own index instead of filtering the whole creation order, and job_counts,
// kept by triggers in the same transaction as every change, answers Count without a scan.
constexpr const char kV4[] = R"sql(
CREATE INDEX jobs_state_created ON jobs (state, created_ms, id);
CREATE INDEX jobs_model_created ON jobs (model, created_ms, id);
CREATE TABLE job_counts (
  state TEXT PRIMARY KEY,
  n     INTEGER NOT NULL
);
INSERT INTO job_counts (state, n) SELECT state, count(*) FROM jobs GROUP BY state;
CREATE TRIGGER job_counts_insert AFTER INSERT ON jobs BEGIN
  INSERT INTO job_counts (state, n) VALUES (NEW.state, 1)
    ON CONFLICT (state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER job_counts_delete AFTER DELETE ON jobs BEGIN
  UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;
END;
CREATE TRIGGER job_counts_update AFTER UPDATE OF state ON jobs
  WHEN OLD.state <> NEW.state BEGIN
  UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;
  INSERT INTO job_counts (state, n) VALUES (NEW.state, 1)
    ON CONFLICT (state) DO UPDATE SET n = n + 1;
END;
)sql";

// Reads the version outside any transaction, so that a reader opening beside the process that
// owns the queue (steno ps) takes no write lock when the schema is already current.
class SqliteTarget final : public MigrationTarget {
 public:
  explicit SqliteTarget(Db& db) : db_(db) {}
  Result<int> Version() override { return SchemaVersion(db_); }
  Status Apply(const Migration& m, int64_t applied_ms) override {
    auto tx = Transaction::Begin(db_);
    if (!tx.ok()) return tx.error();
    if (auto st = db_.Exec(m.sql); !st.ok()) return st;
    auto record = db_.Prepare(
        "INSERT INTO schema_version (version, description, applied_ms) VALUES (?, ?, ?)");
    if (!record.ok()) return record.error();
    record->Bind(1, int64_t{m.version}).Bind(2, m.description).Bind(3, applied_ms);
    if (auto st = record->Run(); !st.ok()) return st;
    return tx->Commit();
  }
  void Applied(const Migration& m, int at_start, int /*before*/) override {
    // A new database is not news; upgrading an existing one is worth a line in the log.
    if (at_start > 0) {
      spdlog::info("job database migrated to schema version {} ({})", m.version, m.description);
    }
  }

 private:
  Db& db_;
};

}  // namespace

const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> kAll = {
      {1, "jobs and results", kV1},
      {2, "retry backoff, attempts, model footprints", kV2},
      {3, "the node of each job", kV3},
      {4, "indexes for listing by state and model, job counts kept by triggers", kV4},
  };
  return kAll;
}

int LatestSchemaVersion() {
  return LatestVersion(Migrations());
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
  SqliteTarget target_db(db);
  return RunMigrations(target_db, Migrations(), target, "the job database");
}

}  // namespace steno::store::sqlite
