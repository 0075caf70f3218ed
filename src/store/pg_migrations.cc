#include "store/pg_migrations.h"

#include <optional>
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

// v3: uploads (pg_blob_store.h), so any node can run any job: one row per content-addressed
// blob, its bytes in chunk rows. Audio does not compress: chunks are stored uncompressed.
constexpr const char kV3[] = R"sql(
CREATE TABLE blobs (
  digest     TEXT COLLATE "C" PRIMARY KEY CHECK (digest ~ '^[0-9a-f]{64}$'),
  size       BIGINT NOT NULL CHECK (size >= 0),
  chunks     INTEGER NOT NULL CHECK (chunks >= 0),
  created_ms BIGINT NOT NULL
);
CREATE TABLE blob_chunks (
  digest TEXT COLLATE "C" NOT NULL REFERENCES blobs (digest) ON DELETE CASCADE,
  seq    INTEGER NOT NULL CHECK (seq >= 0),
  data   BYTEA NOT NULL,
  PRIMARY KEY (digest, seq)
);
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
)sql";

// v4: the node of each job (the one running it, or that ran its last attempt), kept when its
// lease ends; jobs claimed before it take the node of their last attempt.
constexpr const char kV4[] = R"sql(
ALTER TABLE jobs ADD COLUMN node TEXT;
UPDATE jobs j SET node = (SELECT a.owner FROM attempts a WHERE a.job_id = j.id
                          ORDER BY a.attempt DESC LIMIT 1);
)sql";

// v5: newest-first pages by state or by model read their own index instead of filtering the
// whole creation order (as SQLite's v4).
constexpr const char kV5[] = R"sql(
CREATE INDEX jobs_state_created ON jobs (state, created_ms, id);
CREATE INDEX jobs_model_created ON jobs (model, created_ms, id);
)sql";

// v6: Count without a scan of jobs. Every statement that adds, removes or moves jobs between
// states appends its net change per state to job_count_deltas (statement triggers, in the same
// transaction); a count is the sum of the deltas, which Count folds into one row per state when
// they pile up (PgJobStore::CompactCounts). Appending takes no row lock, so concurrent writers on
// any number of nodes never wait for each other here (a counter row per state would serialize
// every state change of the cluster on it). The table is locked while the deltas are seeded, so
// the seed and the triggers agree with every write.
constexpr const char kV6[] = R"sql(
LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE;
CREATE TABLE job_count_deltas (
  state TEXT NOT NULL,
  n     BIGINT NOT NULL
);
INSERT INTO job_count_deltas (state, n) SELECT state, count(*) FROM jobs GROUP BY state;
CREATE FUNCTION steno_job_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO job_count_deltas (state, n) SELECT state, count(*) FROM new_jobs GROUP BY state;
  RETURN NULL;
END $$;
CREATE FUNCTION steno_job_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO job_count_deltas (state, n) SELECT state, -count(*) FROM old_jobs GROUP BY state;
  RETURN NULL;
END $$;
CREATE FUNCTION steno_job_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO job_count_deltas (state, n)
  SELECT state, sum(d) FROM (
    SELECT o.state, -1 AS d FROM old_jobs o JOIN new_jobs n ON n.id = o.id
      WHERE o.state <> n.state
    UNION ALL
    SELECT n.state, 1 FROM old_jobs o JOIN new_jobs n ON n.id = o.id WHERE o.state <> n.state
  ) moved GROUP BY state HAVING sum(d) <> 0;
  RETURN NULL;
END $$;
CREATE TRIGGER job_counts_inserted AFTER INSERT ON jobs REFERENCING NEW TABLE AS new_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION steno_job_counts_inserted();
CREATE TRIGGER job_counts_deleted AFTER DELETE ON jobs REFERENCING OLD TABLE AS old_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION steno_job_counts_deleted();
CREATE TRIGGER job_counts_updated AFTER UPDATE ON jobs
  REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION steno_job_counts_updated();
)sql";

// Any 64-bit constant shared by every steno: serializes schema changes across nodes.
constexpr int64_t kMigrationLock = 0x737465'6e6f'6d67;  // "stenomg"

// Each migration runs in a transaction opened by Version, which holds the advisory lock until
// it ends: another node migrating waits there, then sees our rows.
class PgTarget final : public MigrationTarget {
 public:
  explicit PgTarget(Connection& conn) : conn_(conn) {}
  Result<int> Version() override {
    tx_.reset();  // a migration found applied: end its transaction (and lock) first
    auto tx = Transaction::Begin(conn_);
    if (!tx.ok()) return tx.error();
    tx_.emplace(std::move(tx).value());
    if (auto st = conn_.Query("SELECT pg_advisory_xact_lock($1)", {P(kMigrationLock)}); !st.ok()) {
      return st.error();
    }
    return SchemaVersion(conn_);
  }
  Status Apply(const Migration& m, int64_t applied_ms) override {
    if (auto st = conn_.Exec(m.sql); !st.ok()) return st;
    auto record = conn_.Query(
        "INSERT INTO schema_migrations (version, description, applied_ms) VALUES ($1, $2, $3)",
        {P(int64_t{m.version}), P(m.description), P(applied_ms)});
    if (!record.ok()) return record.error();
    auto st = tx_->Commit();
    tx_.reset();
    return st;
  }
  void Applied(const Migration& m, int /*at_start*/, int before) override {
    // A new database is not news; upgrading an existing one is worth a line in the log.
    spdlog::log(before > 0 ? spdlog::level::info : spdlog::level::debug,
                "PostgreSQL job store {}: schema version {} applied ({})", conn_.redacted_url(),
                m.version, m.description);
  }

 private:
  Connection& conn_;
  std::optional<Transaction> tx_;
};

}  // namespace

const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> kAll = {
      {1, "jobs, results, attempts, model footprints", kV1},
      {2, "nodes", kV2},
      {3, "upload blobs", kV3},
      {4, "the node of each job", kV4},
      {5, "indexes for listing by state and model", kV5},
      {6, "job counts kept by triggers", kV6},
  };
  return kAll;
}

int LatestSchemaVersion() {
  return LatestVersion(Migrations());
}

Result<int> SchemaVersion(Connection& conn) {
  auto tables = conn.Query(
      "SELECT to_regclass('schema_migrations') IS NOT NULL, "
      "(to_regclass('jobs') IS NOT NULL OR to_regclass('results') IS NOT NULL OR "
      "to_regclass('attempts') IS NOT NULL OR to_regclass('model_footprints') IS NOT NULL OR "
      "to_regclass('nodes') IS NOT NULL OR to_regclass('blobs') IS NOT NULL OR "
      "to_regclass('blob_chunks') IS NOT NULL)");
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
  PgTarget db(conn);
  return RunMigrations(db, Migrations(), target, "the PostgreSQL job store " + conn.redacted_url());
}

}  // namespace steno::store::pg
