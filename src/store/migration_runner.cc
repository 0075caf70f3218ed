#include "store/migration_runner.h"

#include <optional>

#include "core/wall_clock.h"
#include "store/job_store.h"

namespace steno::store {

int LatestVersion(const std::vector<Migration>& all) {
  return all.back().version;
}

Status RunMigrations(MigrationTarget& db, const std::vector<Migration>& all, int target,
                     const std::string& where) {
  std::optional<int> at_start;
  for (const auto& m : all) {
    if (m.version > target) break;
    auto current = db.Version();
    if (!current.ok()) return current.error();
    if (!at_start) at_start = *current;
    if (*current > LatestVersion(all) || *current > target) {
      return Error(ErrorKind::kIntegrity, kErrSchemaTooNew,
                   where + " has schema version " + std::to_string(*current) +
                       " but this steno knows versions up to " + std::to_string(target) +
                       "; it was written by a newer steno");
    }
    if (m.version <= *current) continue;  // applied (earlier, or by another node)
    if (auto st = db.Apply(m, UnixMillis()); !st.ok()) return st;
    db.Applied(m, *at_start, *current);
  }
  return {};
}

}  // namespace steno::store
