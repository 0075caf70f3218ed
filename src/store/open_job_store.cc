#include "store/open_job_store.h"

#include <algorithm>
#include <cctype>

#include "core/log.h"
#include "core/wall_clock.h"
#include "store/data_dir.h"
#include "store/pg_blob_store.h"
#include "store/pg_cluster_store.h"
#include "store/pg_connection.h"
#include "store/pg_job_store.h"
#include "store/retention.h"

namespace steno::store {

bool IsPostgresSpec(const std::string& spec) {
  auto scheme_end = spec.find("://");
  if (scheme_end == std::string::npos) return false;
  std::string scheme = spec.substr(0, scheme_end);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return scheme == "postgres" || scheme == "postgresql";
}

namespace {

Result<PgOptions> PgOptionsOf(const std::string& spec) {
  if (!IsPostgresSpec(spec)) {
    return Error(ErrorKind::kBadInput, "bad_store",
                 "a job store is given as postgres://user:password@host:port/dbname "
                 "(or postgresql://...)");
  }
  PgOptions options;
  // libpq only knows the lowercase schemes.
  auto scheme_end = spec.find("://");
  options.url = (scheme_end == 8 ? "postgres" : "postgresql") + spec.substr(scheme_end);
  return options;
}

Result<OpenedStore> OpenSqlite(const std::string& data_dir) {
  auto stores = OpenDataDir(data_dir);
  if (!stores.ok()) return stores.error();
  return OpenedStore{std::shared_ptr<JobStore>(std::move(stores->jobs)), nullptr,
                     std::move(stores->blobs), stores->recovered};
}

// What a crash of this node left behind; other nodes may be mid-upload, so with the grace.
void SweepShared(JobStore& jobs, ClusterStore& cluster, const BlobStore& blobs) {
  RetentionPolicy policy;
  const int64_t now = UnixMillis();
  if (auto swept = RunRetention(jobs, blobs, policy, now); !swept.ok()) {
    spdlog::warn("retention sweep failed: {}", swept.error().message);
  }
  (void)blobs.RemoveTempFiles(now + 1);  // nothing is in flight on this node yet
  if (auto swept = cluster.RemoveUnreferencedBlobs(policy.grace_ms); !swept.ok()) {
    spdlog::warn("retention sweep of shared uploads failed: {}", swept.error().message);
  } else if (swept->removed > 0) {
    spdlog::info("retention: removed {} shared uploads ({} bytes)", swept->removed,
                 swept->bytes_freed);
  }
  if (auto requeued = jobs.RequeueExpired(); !requeued.ok()) {
    spdlog::warn("could not requeue expired leases: {}", requeued.error().message);
  } else if (!requeued->empty()) {
    spdlog::info("requeued {} jobs whose node stopped renewing its lease", requeued->size());
  }
}

Result<OpenedStore> OpenPostgres(const std::string& spec, const std::string& data_dir) {
  auto options = PgOptionsOf(spec);
  if (!options.ok()) return options.error();
  auto local = OpenDataDirBlobs(data_dir);
  if (!local.ok()) return local.error();
  auto jobs = PgJobStore::Open(*options);
  if (!jobs.ok()) return jobs.error();
  auto blobs = PgBlobStore::Open(*options);
  if (!blobs.ok()) return blobs.error();
  std::shared_ptr<PgJobStore> pg_jobs(std::move(jobs).value());
  auto cluster = std::make_shared<PgClusterStore>(options->url, options->connect_timeout_s, pg_jobs,
                                                  std::move(blobs).value());
  SweepShared(*pg_jobs, *cluster, *local);
  spdlog::info("shared job store {}", pg::RedactUrl(options->url));
  return OpenedStore{pg_jobs, cluster, std::move(local).value(), 0};
}

}  // namespace

Result<OpenedStore> OpenJobStore(const std::string& spec, const std::string& data_dir) {
  if (spec.empty()) return OpenSqlite(data_dir);
  return OpenPostgres(spec, data_dir);
}

}  // namespace steno::store
