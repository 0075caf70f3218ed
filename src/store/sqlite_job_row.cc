#include "store/sqlite_job_row.h"

#include "store/job_store.h"

namespace steno::store::sqlite {
namespace {

constexpr const char kWhere[] = "the job database";

// A row of a statement that has just stepped onto it.
class StatementRow final : public RowColumns {
 public:
  explicit StatementRow(const Statement& stmt) : stmt_(stmt) {}
  std::string Text(int column) const override { return stmt_.Text(column); }
  int64_t Int(int column) const override { return stmt_.Int(column); }
  bool IsNull(int column) const override { return stmt_.IsNull(column); }

 private:
  const Statement& stmt_;
};

}  // namespace

Result<Job> ReadJob(const Statement& row) {
  return ReadJobColumns(StatementRow(row), 0, kWhere);
}

Result<std::vector<Job>> ReadJobs(Statement& stmt) {
  std::vector<Job> jobs;
  for (;;) {
    auto row = stmt.Step();
    if (!row.ok()) return row.error();
    if (!*row) return jobs;
    auto job = ReadJob(stmt);
    if (!job.ok()) return job.error();
    jobs.push_back(std::move(job).value());
  }
}

Result<std::optional<Job>> LoadJob(Db& db, const std::string& id) {
  static const std::string kSelectJobById =
      std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?";
  auto stmt = db.Prepare(kSelectJobById);
  if (!stmt.ok()) return stmt.error();
  stmt->Bind(1, id);
  auto row = stmt->Step();
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<Job>();
  auto job = ReadJob(*stmt);
  if (!job.ok()) return job.error();
  return std::optional<Job>(std::move(job).value());
}

std::optional<Error> ReadError(const Statement& row, int column) {
  return ReadErrorColumns(StatementRow(row), column);
}

void BindError(Statement& stmt, int index, const std::optional<Error>& error) {
  if (!error) {
    stmt.BindNull(index).BindNull(index + 1).BindNull(index + 2);
    return;
  }
  stmt.Bind(index, ErrorKindName(error->kind))
      .Bind(index + 1, error->code)
      .Bind(index + 2, error->message);
}

}  // namespace steno::store::sqlite
