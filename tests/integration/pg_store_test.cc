// PgJobStore against a real PostgreSQL server started by the test (support/pg_server.h): the
// behaviour every JobStore shares (support/store_cases.h), then what a store shared by several
// nodes adds: claimers on separate connections never get the same job, leases that run out on one
// node are requeued by another, migrations run once however many nodes open at once, the server
// going away is kUnavailable without leaking the password, and the nodes table.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "store/open_job_store.h"
#include "store/pg_connection.h"
#include "store/pg_job_store.h"
#include "store/pg_migrations.h"
#include "support/pg_server.h"
#include "support/store_cases.h"
#include "support/store_history_cases.h"
#include "support/test_env.h"

namespace steno::store {
namespace {

using cases::StoreCases;
using test::FreshPgDatabase;
using test::PgServer;
using test::SharedPgServer;

const std::string kDigest(64, 'd');

Result<std::unique_ptr<PgJobStore>> OpenPg(const std::string& url,
                                           std::function<int64_t()> clock = nullptr) {
  PgOptions options;
  options.url = url;
  options.connect_timeout_s = 5;
  options.clock = std::move(clock);
  return PgJobStore::Open(options);
}

class PgHarness : public cases::StoreHarness {
 public:
  std::unique_ptr<JobStore> Open(std::function<int64_t()> clock) override {
    if (url_.empty()) url_ = FreshPgDatabase();
    if (url_.empty()) return nullptr;
    auto store = OpenPg(url_, std::move(clock));
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
    return store.ok() ? std::move(store).value() : nullptr;
  }

 private:
  std::string url_;
};

INSTANTIATE_TEST_SUITE_P(Postgres, StoreCases,
                         ::testing::Values(cases::StoreBackend{
                             "postgres", [] { return std::make_unique<PgHarness>(); }}),
                         cases::BackendName);

class PgStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = FreshPgDatabase();
    ASSERT_FALSE(url_.empty());
  }

  std::unique_ptr<PgJobStore> Open() {
    auto store = OpenPg(url_, [this] { return now_.load(); });
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
    return store.ok() ? std::move(store).value() : nullptr;
  }

  static Job Submit(JobStore& store, const std::string& model = "base") {
    auto inserted = store.Insert({model, Priority::kNormal, {}, kDigest, ""});
    EXPECT_TRUE(inserted.ok()) << inserted.error().message;
    return inserted.ok() ? inserted->job : Job{};
  }

  // Rows of schema_migrations as "version:applied_ms", read over a separate connection.
  std::vector<std::string> MigrationRows() {
    auto conn = pg::Connection::Open(url_, 5);
    EXPECT_TRUE(conn.ok());
    if (!conn.ok()) return {};
    auto rows = (*conn)->Query("SELECT version, applied_ms FROM schema_migrations ORDER BY 1");
    EXPECT_TRUE(rows.ok()) << rows.error().message;
    std::vector<std::string> out;
    for (int r = 0; rows.ok() && r < rows->size(); ++r) {
      out.push_back(rows->Text(r, 0) + ":" + rows->Text(r, 1));
    }
    return out;
  }

  std::string url_;
  std::atomic<int64_t> now_{1'700'000'000'000};
};

TEST_F(PgStoreTest, MigrationsAreAppliedOnceAndReopeningChangesNothing) {
  auto store = Open();
  ASSERT_TRUE(store);
  auto first = MigrationRows();
  ASSERT_EQ(first.size(), pg::Migrations().size());
  Job job = Submit(*store);
  store.reset();
  for (int i = 0; i < 3; ++i) {
    store = Open();
    ASSERT_TRUE(store);
  }
  EXPECT_EQ(MigrationRows(), first) << "a migration ran again on reopen";
  EXPECT_EQ(store->Get(job.id)->state, JobState::kPending);
  auto conn = pg::Connection::Open(url_, 5);
  ASSERT_TRUE(conn.ok());
  EXPECT_EQ(pg::SchemaVersion(**conn).value(), pg::LatestSchemaVersion());
}

TEST_F(PgStoreTest, JobsOfAVersion3StoreTakeTheNodeOfTheirLastAttempt) {
  {
    auto conn = pg::Connection::Open(url_, 5);
    ASSERT_TRUE(conn.ok());
    ASSERT_TRUE(pg::Migrate(**conn, 3).ok());
    // As steno with schema v3 wrote them: a job run twice (lost on old-a, completed on old-b)
    // and a job never claimed.
    auto st = (*conn)->Exec(R"sql(
      INSERT INTO jobs (id, state, priority, model, params, attempt, created_ms, updated_ms)
        VALUES ('01HV3TWICE0000000000000000', 'completed', 1, 'base', '{}', 2, 100, 400),
               ('01HV3NEVER0000000000000000', 'pending', 1, 'base', '{}', 1, 500, 500);
      INSERT INTO attempts (job_id, attempt, owner, started_ms, ended_ms, outcome)
        VALUES ('01HV3TWICE0000000000000000', 1, 'old-a', 150, 250, 'lease_expired'),
               ('01HV3TWICE0000000000000000', 2, 'old-b', 300, 400, 'completed');
    )sql");
    ASSERT_TRUE(st.ok()) << st.error().message;
  }
  auto store = Open();
  ASSERT_TRUE(store);
  auto twice = store->GetWithAttempts("01HV3TWICE0000000000000000");
  ASSERT_TRUE(twice.ok()) << twice.error().message;
  EXPECT_EQ(twice->job.node, "old-b");
  ASSERT_EQ(twice->attempts.size(), 2u);
  EXPECT_EQ(twice->attempts[0].owner, "old-a");
  EXPECT_TRUE(store->Get("01HV3NEVER0000000000000000")->node.empty());
}

TEST_F(PgStoreTest, NodesOpeningAtOnceMigrateOnce) {
  constexpr int kNodes = 6;
  std::vector<std::future<Result<std::unique_ptr<PgJobStore>>>> opening;
  for (int i = 0; i < kNodes; ++i) {
    opening.push_back(std::async(std::launch::async, [this] { return OpenPg(url_); }));
  }
  for (auto& f : opening) {
    auto store = f.get();
    EXPECT_TRUE(store.ok()) << store.error().message;
  }
  EXPECT_EQ(MigrationRows().size(), pg::Migrations().size());
}

TEST_F(PgStoreTest, RefusesForeignTablesAndNewerSchemas) {
  auto conn = pg::Connection::Open(url_, 5);
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)->Exec("CREATE TABLE jobs (something INTEGER)").ok());
  auto foreign = OpenPg(url_);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.error().code, kErrForeignSchema);
  EXPECT_EQ(foreign.error().kind, ErrorKind::kIntegrity);

  ASSERT_TRUE((*conn)->Exec("DROP TABLE jobs").ok());
  ASSERT_TRUE(Open());
  ASSERT_TRUE((*conn)
                  ->Query("INSERT INTO schema_migrations VALUES ($1, 'from the future', 0)",
                          {pg::P(int64_t{pg::LatestSchemaVersion() + 1})})
                  .ok());
  auto newer = OpenPg(url_);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.error().code, kErrSchemaTooNew);
}

// The brief's acceptance figure: 4 threads, each with its own connection, claim 500 jobs at once.
TEST_F(PgStoreTest, ClaimersOnSeparateConnectionsGetEachJobExactlyOnce) {
  constexpr int kJobs = 500;
  constexpr int kClaimers = 4;
  {
    auto store = Open();
    ASSERT_TRUE(store);
    for (int i = 0; i < kJobs; ++i) Submit(*store, i % 3 ? "base" : "tiny");
  }
  std::vector<std::unique_ptr<PgJobStore>> nodes;
  for (int i = 0; i < kClaimers; ++i) {
    auto node = OpenPg(url_);  // the real clock: leases compare across connections
    ASSERT_TRUE(node.ok()) << node.error().message;
    nodes.push_back(std::move(node).value());
  }
  std::vector<std::vector<std::string>> claimed(kClaimers);
  std::vector<std::vector<double>> latency_ms(kClaimers);
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClaimers; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      std::string owner = "node-" + std::to_string(t);
      for (;;) {
        auto start = std::chrono::steady_clock::now();
        auto job = nodes[t]->Claim({owner, 60'000, std::nullopt, {}});
        latency_ms[t].push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count());
        ASSERT_TRUE(job.ok()) << job.error().message;
        if (!*job) return;
        claimed[t].push_back((*job)->id);
      }
    });
  }
  auto start = std::chrono::steady_clock::now();
  go = true;
  for (auto& th : threads) th.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::map<std::string, int> times_claimed;
  std::vector<double> all_latency;
  for (int t = 0; t < kClaimers; ++t) {
    for (const auto& id : claimed[t]) ++times_claimed[id];
    all_latency.insert(all_latency.end(), latency_ms[t].begin(), latency_ms[t].end());
    EXPECT_GT(claimed[t].size(), 0u) << "claimer " << t << " got nothing";
  }
  EXPECT_EQ(times_claimed.size(), static_cast<size_t>(kJobs));
  for (const auto& [id, n] : times_claimed) EXPECT_EQ(n, 1) << id << " was claimed " << n << "x";
  std::sort(all_latency.begin(), all_latency.end());
  double p99 = all_latency[all_latency.size() * 99 / 100];
  std::printf(
      "claimed %d jobs with %d connections in %.3f s: %.0f claims/s, p99 %.2f ms "
      "(per claimer:",
      kJobs, kClaimers, seconds, kJobs / seconds, p99);
  for (const auto& ids : claimed) std::printf(" %zu", ids.size());
  std::printf(")\n");
  auto counts = nodes[0]->Count();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[JobState::kLoading], kJobs);
  EXPECT_EQ((*counts)[JobState::kPending], 0);
  JobFilter mine;
  mine.lease_owner = "node-0";
  mine.limit = 1000;
  EXPECT_EQ(nodes[0]->List(mine)->jobs.size(), claimed[0].size());
}

// A node that stops heartbeating loses its jobs to whichever node sweeps expired leases, and can
// no longer complete them; a node opening the store never takes jobs other nodes are running.
TEST_F(PgStoreTest, AnotherNodeRequeuesExpiredLeasesAndOpeningStealsNothing) {
  auto a = Open();
  auto b = Open();
  ASSERT_TRUE(a && b);
  Job j1 = Submit(*a);
  Job j2 = Submit(*a);
  ASSERT_TRUE(a->Claim({"node-a", 1000, j1.id, {}})->has_value());
  ASSERT_TRUE(b->Claim({"node-b", 1000, j2.id, {}})->has_value());
  auto c = Open();  // a third node joins: nothing changes hands
  ASSERT_TRUE(c);
  EXPECT_EQ(c->Get(j1.id)->state, JobState::kLoading);
  EXPECT_TRUE(c->RequeueExpired()->empty());

  now_ += 600;
  EXPECT_EQ(b->Heartbeat("node-b", 1000).value(), std::vector<std::string>{j2.id});
  now_ += 600;  // node-a's lease ran out; node-b's did not
  EXPECT_EQ(c->RequeueExpired().value(), std::vector<std::string>{j1.id});
  EXPECT_EQ(a->Complete(j1.id, "node-a", "{}").error().code, kErrLeaseNotHeld);
  EXPECT_TRUE(a->Heartbeat("node-a", 1000)->empty());
  auto again = c->Claim({"node-c", 1000, std::nullopt, {}});
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ((*again)->id, j1.id);
  EXPECT_EQ((*again)->attempt, 2);
  EXPECT_TRUE(c->Complete(j1.id, "node-c", R"({"by":"c"})").ok());
  EXPECT_TRUE(b->Complete(j2.id, "node-b", R"({"by":"b"})").ok());
  EXPECT_EQ(a->GetResult(j1.id).value(), R"({"by":"c"})");
  auto history = a->Attempts(j1.id).value();
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].owner, "node-a");
  EXPECT_EQ(history[0].outcome, "lease_expired");
  EXPECT_EQ(history[1].owner, "node-c");
}

// Complete racing Cancel from two connections: exactly one wins, and the loser is told why.
TEST_F(PgStoreTest, RacingTransitionsOnTwoConnectionsHaveOneWinner) {
  auto worker = Open();
  auto user = Open();
  ASSERT_TRUE(worker && user);
  constexpr int kJobs = 40;
  std::vector<std::string> ids;
  for (int i = 0; i < kJobs; ++i) {
    Job job = Submit(*worker);
    ASSERT_TRUE(worker->Claim({"w", 60'000, job.id, {}})->has_value());
    ids.push_back(job.id);
  }
  std::vector<Status> completes(kJobs);
  std::vector<bool> cancels_ok(kJobs);
  std::thread t1([&] {
    for (int i = 0; i < kJobs; ++i) completes[i] = worker->Complete(ids[i], "w", "{}");
  });
  std::thread t2([&] {  // from the other end: the two meet somewhere in the middle
    for (int i = kJobs - 1; i >= 0; --i) cancels_ok[i] = user->Cancel(ids[i]).ok();
  });
  t1.join();
  t2.join();
  for (int i = 0; i < kJobs; ++i) {
    auto job = user->Get(ids[i]);
    ASSERT_TRUE(job.ok());
    if (completes[i].ok()) {
      EXPECT_FALSE(cancels_ok[i]) << ids[i];
      EXPECT_EQ(job->state, JobState::kCompleted);
      EXPECT_TRUE(user->GetResult(ids[i]).ok());
    } else {
      EXPECT_EQ(completes[i].error().code, kErrJobFinished);
      EXPECT_TRUE(cancels_ok[i]) << ids[i];
      EXPECT_EQ(job->state, JobState::kCancelled);
      EXPECT_EQ(user->GetResult(ids[i]).error().code, kErrResultNotFound);
    }
    EXPECT_EQ(user->Attempts(ids[i])->size(), 1u);
  }
}

TEST_F(PgStoreTest, SameIdempotencyKeyFromManyNodesMakesOneJob) {
  constexpr int kNodes = 4;
  std::vector<std::unique_ptr<PgJobStore>> nodes;
  for (int i = 0; i < kNodes; ++i) {
    nodes.push_back(Open());
    ASSERT_TRUE(nodes.back());
  }
  for (int round = 0; round < 10; ++round) {
    std::string key = "retry-" + std::to_string(round);
    std::vector<std::future<Result<Inserted>>> inserts;
    for (int i = 0; i < kNodes; ++i) {
      inserts.push_back(std::async(std::launch::async, [&, i] {
        return nodes[i]->Insert({"base", Priority::kNormal, {}, kDigest, key});
      }));
    }
    std::set<std::string> ids;
    int fresh = 0;
    for (auto& f : inserts) {
      auto r = f.get();
      ASSERT_TRUE(r.ok()) << r.error().message;
      ids.insert(r->job.id);
      if (!r->existing) ++fresh;
    }
    EXPECT_EQ(ids.size(), 1u) << key;
    EXPECT_EQ(fresh, 1) << key;
  }
  EXPECT_EQ(nodes[0]->Count().value()[JobState::kPending], 10);
}

TEST_F(PgStoreTest, NodesArePublishedListedAndRemoved) {
  auto store = Open();
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->ListNodes()->empty());
  NodeInfo a{"node-a", "http://10.0.0.1:8080", 0, R"([{"name":"cuda:0"}])", "[]", "{}"};
  ASSERT_TRUE(store->PublishNode(a).ok());
  now_ += 5;
  ASSERT_TRUE(store->PublishNode({"node-b", "http://10.0.0.2:8080", 0, "[]", "[]", "{}"}).ok());
  now_ += 5;
  a.ledger_json = R"({"cuda:0":{"used":100}})";
  ASSERT_TRUE(store->PublishNode(a).ok());  // an update, not a second row
  auto other = Open();                      // another node sees the same list
  ASSERT_TRUE(other);
  auto nodes = other->ListNodes();
  ASSERT_TRUE(nodes.ok()) << nodes.error().message;
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ((*nodes)[0].id, "node-a");
  EXPECT_EQ((*nodes)[0].url, "http://10.0.0.1:8080");
  EXPECT_EQ((*nodes)[0].heartbeat_ms, now_.load());
  EXPECT_EQ((*nodes)[0].devices_json, R"([{"name":"cuda:0"}])");
  EXPECT_EQ((*nodes)[0].ledger_json, R"({"cuda:0":{"used":100}})");
  EXPECT_EQ((*nodes)[1].heartbeat_ms, now_ - 5);
  EXPECT_EQ(store->PublishNode({"", "x", 0, "[]", "[]", "{}"}).error().code, "bad_node");
  EXPECT_EQ(store->PublishNode({"n", "x", 0, "[oops", "[]", "{}"}).error().code, "bad_node");
  ASSERT_TRUE(store->RemoveNode("node-b").ok());
  ASSERT_TRUE(store->RemoveNode("never-was").ok());
  EXPECT_EQ(other->ListNodes()->size(), 1u);

  // A node silent for long enough goes; one that published since stays.
  ASSERT_TRUE(store->PublishNode({"node-c", "http://10.0.0.3:8080", 0, "[]", "[]", "{}"}).ok());
  now_ += 1000;
  ASSERT_TRUE(store->PublishNode(a).ok());
  EXPECT_EQ(store->RemoveNodesSilentFor(1001).value(), 0);
  now_ += 1;
  EXPECT_EQ(store->RemoveNodesSilentFor(1001).value(), 1);
  nodes = other->ListNodes();
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ((*nodes)[0].id, "node-a");
}

TEST_F(PgStoreTest, UnreachableServerIsUnavailableAndNeverShowsThePassword) {
  // A port with nobody listening.
  auto closed = OpenPg("postgres://steno:hunter2-Secret@127.0.0.1:1/steno");
  ASSERT_FALSE(closed.ok());
  EXPECT_EQ(closed.error().kind, ErrorKind::kUnavailable);
  EXPECT_EQ(closed.error().code, pg::kErrStoreUnavailable);
  EXPECT_NE(closed.error().message.find("127.0.0.1"), std::string::npos) << closed.error().message;
  EXPECT_EQ(closed.error().message.find("hunter2"), std::string::npos) << closed.error().message;
  EXPECT_EQ(closed.error().message.find('\n'), std::string::npos) << "one line for logs";
  std::printf("unreachable: %s\n", closed.error().message.c_str());

  // The real server, a wrong password (in the URL and as a parameter).
  PgServer& server = SharedPgServer();
  std::string wrong =
      "postgresql://steno:Wrong-Pass-77@127.0.0.1:" + std::to_string(server.port()) + "/postgres";
  for (const auto& url : {wrong, "postgres://steno@127.0.0.1:" + std::to_string(server.port()) +
                                     "/postgres?password=Wrong-Pass-77"}) {
    auto refused = OpenPg(url);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().kind, ErrorKind::kUnavailable);
    EXPECT_NE(refused.error().message.find("password authentication failed"), std::string::npos)
        << refused.error().message;
    EXPECT_EQ(refused.error().message.find("Wrong-Pass-77"), std::string::npos)
        << refused.error().message;
    std::printf("refused: %s\n", refused.error().message.c_str());
  }
  EXPECT_EQ(pg::RedactUrl(wrong),
            "postgres://steno@127.0.0.1:" + std::to_string(server.port()) + "/postgres");
}

TEST_F(PgStoreTest, TheStoreFactoryGivesTheClusterCapabilityToASharedStoreOnly) {
  test::ScopedTempDir dir("steno-store-factory");
  // No spec: the single-node SQLite store in the data dir, with no cluster capability.
  auto single = OpenJobStore("", dir.path + "/single");
  ASSERT_TRUE(single.ok()) << single.error().message;
  ASSERT_NE(single->jobs, nullptr);
  EXPECT_EQ(single->cluster, nullptr);
  for (const std::string spec :
       {"sqlite:///var/lib/steno/steno.db", "/var/lib/steno", "mysql://u:pw@h/db"}) {
    auto store = OpenJobStore(spec, dir.path + "/bad");
    ASSERT_FALSE(store.ok()) << spec;
    EXPECT_EQ(store.error().kind, ErrorKind::kBadInput);
    EXPECT_EQ(store.error().code, "bad_store");
    EXPECT_EQ(store.error().message.find("pw@"), std::string::npos);
  }
  auto pg = OpenJobStore(url_, dir.path + "/node-a");
  ASSERT_TRUE(pg.ok()) << pg.error().message;
  ASSERT_NE(pg->cluster, nullptr);
  Job job = Submit(*pg->jobs);
  std::string upper = "POSTGRESQL" + url_.substr(std::string("postgres").size());
  auto again = OpenJobStore(upper, dir.path + "/node-b");
  ASSERT_TRUE(again.ok()) << again.error().message;
  ASSERT_NE(again->cluster, nullptr);
  EXPECT_EQ(again->jobs->Get(job.id)->id, job.id);
  EXPECT_TRUE(IsPostgresSpec("postgresql://h/db"));
  EXPECT_FALSE(IsPostgresSpec("postgresx://h/db"));

  // The capability reaches the other node: its nodes table and its notifications.
  ASSERT_TRUE(pg->cluster->PublishNode({"node-a", "http://a:1", 0, "[]", "[]", "{}"}).ok());
  auto nodes = again->cluster->ListNodes();
  ASSERT_TRUE(nodes.ok()) << nodes.error().message;
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ((*nodes)[0].id, "node-a");
  auto listener = again->cluster->Listen({"steno_factory_test"});
  ASSERT_TRUE(listener.ok()) << listener.error().message;
  ASSERT_TRUE(pg->cluster->Notify("steno_factory_test", "hello").ok());
  std::vector<Notification> heard;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (heard.empty() && std::chrono::steady_clock::now() < until) {
    auto notes = (*listener)->Wait(500);
    ASSERT_TRUE(notes.ok()) << notes.error().message;
    heard = std::move(notes).value();
  }
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard[0].channel, "steno_factory_test");
  EXPECT_EQ(heard[0].payload, "hello");
}

// One node's store calls do not queue behind one connection: while a call waits for a row lock
// another session holds, a second call of the same store object answers.
TEST_F(PgStoreTest, StoreCallsOfOneNodeRunAtOnceOnPooledConnections) {
  auto store = Open();
  ASSERT_TRUE(store);
  Job locked = Submit(*store);
  Job other = Submit(*store);
  auto locker = pg::Connection::Open(url_, 5);
  ASSERT_TRUE(locker.ok());
  ASSERT_TRUE((*locker)->Exec("BEGIN").ok());
  ASSERT_TRUE(
      (*locker)->Query("SELECT id FROM jobs WHERE id = $1 FOR UPDATE", {pg::P(locked.id)}).ok());
  // Cancel locks the job's row first (FOR UPDATE): it waits for the locker's transaction.
  auto cancel = std::async(std::launch::async, [&] { return store->Cancel(locked.id); });
  auto waiting = [&] {
    auto rows = (*locker)->Query(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND "
        "datname = current_database()");
    return rows.ok() && rows->Int(0, 0) > 0;
  };
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!waiting() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(waiting()) << "the cancel never waited for the row lock";
  // Meanwhile a read and a claim of another job answer (one connection would hold them until
  // the cancel ends, that is until the locker commits).
  auto read = std::async(std::launch::async, [&] { return store->Get(other.id); });
  const bool answered = read.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
  const bool cancel_still_waiting =
      cancel.wait_for(std::chrono::seconds(0)) != std::future_status::ready;
  ASSERT_TRUE((*locker)->Exec("ROLLBACK").ok());  // let the cancel go in every case
  EXPECT_TRUE(answered) << "a read queued behind a call waiting for a row lock";
  EXPECT_TRUE(cancel_still_waiting);
  auto got = read.get();
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->id, other.id);
  auto cancelled = cancel.get();
  ASSERT_TRUE(cancelled.ok()) << cancelled.error().message;
  EXPECT_EQ(cancelled->state, JobState::kCancelled);
}

// A server restart drops every connection: the call that finds it broken fails kUnavailable,
// the next one reconnects. Nothing committed is lost.
TEST_F(PgStoreTest, ReconnectsAfterTheServerRestarts) {
  auto store = Open();
  ASSERT_TRUE(store);
  Job job = Submit(*store);
  ASSERT_TRUE(SharedPgServer().Restart()) << SharedPgServer().error();
  auto first = store->Get(job.id);
  if (!first.ok()) {
    EXPECT_EQ(first.error().kind, ErrorKind::kUnavailable) << first.error().message;
    EXPECT_EQ(first.error().message.find(PgServer::kPassword), std::string::npos);
  }
  auto second = store->Get(job.id);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->state, JobState::kPending);
  auto claimed = store->Claim({"w", 1000, std::nullopt, {}});
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
}

}  // namespace
}  // namespace steno::store
