#include "store/open_job_store.h"

#include <algorithm>
#include <cctype>

#include "store/pg_job_store.h"

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

}  // namespace

Result<std::unique_ptr<JobStore>> OpenJobStore(const std::string& spec) {
  auto options = PgOptionsOf(spec);
  if (!options.ok()) return options.error();
  auto store = PgJobStore::Open(*options);
  if (!store.ok()) return store.error();
  return std::unique_ptr<JobStore>(std::move(store).value());
}

Result<std::unique_ptr<PgBlobStore>> OpenSharedBlobStore(const std::string& spec) {
  auto options = PgOptionsOf(spec);
  if (!options.ok()) return options.error();
  return PgBlobStore::Open(*options);
}

}  // namespace steno::store
