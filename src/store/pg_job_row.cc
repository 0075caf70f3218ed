#include "store/pg_job_row.h"

#include "store/job_store.h"

namespace steno::store::pg {
namespace {

constexpr const char kWhere[] = "the PostgreSQL job store";

// Row `row` of a query result.
class ResultRow final : public RowColumns {
 public:
  ResultRow(const Rows& rows, int row) : rows_(rows), row_(row) {}
  std::string Text(int column) const override { return rows_.Text(row_, column); }
  int64_t Int(int column) const override { return rows_.Int(row_, column); }
  bool IsNull(int column) const override { return rows_.IsNull(row_, column); }

 private:
  const Rows& rows_;
  int row_;
};

}  // namespace

Result<Job> ReadJob(const Rows& rows, int row, int first) {
  return ReadJobColumns(ResultRow(rows, row), first, kWhere);
}

Result<std::vector<Job>> ReadJobs(const Rows& rows) {
  std::vector<Job> jobs;
  jobs.reserve(static_cast<size_t>(rows.size()));
  for (int r = 0; r < rows.size(); ++r) {
    auto job = ReadJob(rows, r);
    if (!job.ok()) return job.error();
    jobs.push_back(std::move(job).value());
  }
  return jobs;
}

Result<std::optional<Job>> LoadJob(Connection& conn, const std::string& id, bool for_update) {
  static const std::string kSelect =
      std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = $1";
  static const std::string kSelectForUpdate = kSelect + " FOR UPDATE";
  auto rows = conn.Query(for_update ? kSelectForUpdate : kSelect, {P(id)});
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return std::optional<Job>();
  auto job = ReadJob(*rows, 0);
  if (!job.ok()) return job.error();
  return std::optional<Job>(std::move(job).value());
}

std::optional<Error> ReadError(const Rows& rows, int row, int column) {
  return ReadErrorColumns(ResultRow(rows, row), column);
}

void AddError(std::vector<Param>& params, const std::optional<Error>& error) {
  if (!error) {
    params.insert(params.end(), {Param(), Param(), Param()});
    return;
  }
  params.push_back(P(ErrorKindName(error->kind)));
  params.push_back(P(error->code));
  params.push_back(P(error->message));
}

}  // namespace steno::store::pg
