// LiveEvents against a real SQLite store whose reads a test can hold up: a subscriber's first
// look at the store holds no lock, so events delivered meanwhile (the writer's) are neither
// blocked nor lost, and they reach the subscriber after its first look, in order.
#include "server/live_events.h"

#include <chrono>
#include <future>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>

#include "core/mutex.h"
#include "store/data_dir.h"
#include "support/test_env.h"

namespace steno::server {
namespace {

using namespace std::chrono_literals;

// A JobStore whose Get waits while the gate is closed (a slow network round trip, say); every
// other call goes straight to the real store.
class GatedStore final : public store::JobStore {
 public:
  explicit GatedStore(store::JobStore& real) : real_(real) {}

  void Close() {
    MutexLock lock(mu_);
    open_ = false;
  }
  void Open() {
    {
      MutexLock lock(mu_);
      open_ = true;
    }
    cv_.SignalAll();
  }
  // True once a Get is waiting at the closed gate (gives up after `timeout`).
  bool WaitForWaiter(std::chrono::milliseconds timeout) {
    MutexLock lock(mu_);
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (waiting_ == 0 && cv_.WaitUntil(mu_, until)) {
    }
    return waiting_ > 0;
  }

  Result<Job> Get(const std::string& id) override {
    {
      MutexLock lock(mu_);
      ++waiting_;
      cv_.SignalAll();
      while (!open_) cv_.Wait(mu_);
      --waiting_;
    }
    return real_.Get(id);
  }

  Result<store::Inserted> Insert(const store::NewJob& j) override { return real_.Insert(j); }
  Result<store::JobPage> List(const store::JobFilter& f) override { return real_.List(f); }
  Result<store::JobCounts> Count() override { return real_.Count(); }
  Result<std::vector<store::PendingModel>> PendingByModel() override {
    return real_.PendingByModel();
  }
  Result<std::string> GetResult(const std::string& id) override { return real_.GetResult(id); }
  Result<std::vector<store::AttemptRecord>> Attempts(const std::string& id) override {
    return real_.Attempts(id);
  }
  Result<store::JobWithAttempts> GetWithAttempts(const std::string& id) override {
    return real_.GetWithAttempts(id);
  }
  Result<std::optional<Job>> Claim(const store::ClaimRequest& r) override { return real_.Claim(r); }
  Result<std::vector<std::string>> Heartbeat(const std::string& owner, int64_t ms) override {
    return real_.Heartbeat(owner, ms);
  }
  Status MarkProcessing(const std::string& id, const std::string& owner) override {
    return real_.MarkProcessing(id, owner);
  }
  Status Complete(const std::string& id, const std::string& owner,
                  const std::string& result) override {
    return real_.Complete(id, owner, result);
  }
  Status Fail(const std::string& id, const std::string& owner, const Error& e) override {
    return real_.Fail(id, owner, e);
  }
  Status Requeue(const store::RequeueRequest& r) override { return real_.Requeue(r); }
  Result<std::vector<std::string>> RequeueExpired() override { return real_.RequeueExpired(); }
  Result<Job> Cancel(const std::string& id) override { return real_.Cancel(id); }
  Status PutFootprint(const store::ModelFootprint& f) override { return real_.PutFootprint(f); }
  Result<std::optional<store::ModelFootprint>> GetFootprint(const std::string& m,
                                                            const std::string& d) override {
    return real_.GetFootprint(m, d);
  }
  Result<std::vector<store::ModelFootprint>> ListFootprints() override {
    return real_.ListFootprints();
  }
  Result<int> DeleteFinishedBefore(int64_t cutoff, int limit) override {
    return real_.DeleteFinishedBefore(cutoff, limit);
  }
  Result<std::vector<std::string>> ReferencedBlobs() override { return real_.ReferencedBlobs(); }

 private:
  store::JobStore& real_;
  Mutex mu_;
  CondVar cv_;
  bool open_ GUARDED_BY(mu_) = true;
  int waiting_ GUARDED_BY(mu_) = 0;
};

JobEvent StateEvent(Job job, JobState state) {
  JobEvent ev;
  job.state = state;
  ev.job = job;
  return ev;
}

TEST(LiveEventsTest, ASlowFirstLookBlocksNoDeliveryAndLosesNoEvent) {
  test::ScopedTempDir dir("steno-live-events");
  auto stores = store::OpenDataDir(dir.path);
  ASSERT_TRUE(stores.ok()) << stores.error().message;
  auto inserted = stores->jobs->Insert({"tiny", Priority::kNormal, {}, std::string(64, 'a'), ""});
  ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  const Job job = inserted->job;  // pending, attempt 1

  GatedStore gated(*stores->jobs);
  LiveEvents live(gated);
  std::mutex mu;
  std::vector<JobEvent> seen;
  gated.Close();
  auto subscribed = std::async(std::launch::async, [&] {
    return live.Subscribe(job.id, [&](const JobEvent& e) {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(e);
      return true;
    });
  });
  ASSERT_TRUE(gated.WaitForWaiter(60s)) << "Subscribe never read the store";

  // The writer's deliveries while the subscriber's read waits: they must return now.
  JobEvent progress;
  progress.kind = JobEvent::Kind::kProgress;
  progress.job = StateEvent(job, JobState::kProcessing).job;
  progress.percent = 40;
  auto delivered = std::async(std::launch::async, [&] {
    live.Deliver(StateEvent(job, JobState::kLoading));
    live.Deliver(StateEvent(job, JobState::kProcessing));
    live.Deliver(progress);
  });
  const bool answered = delivered.wait_for(60s) == std::future_status::ready;
  const bool still_reading = subscribed.wait_for(0s) != std::future_status::ready;
  gated.Open();  // in every case: the test must not hang on the old behaviour
  EXPECT_TRUE(answered) << "Deliver waited for a subscriber's store read";
  EXPECT_TRUE(still_reading);
  delivered.wait();
  auto sub = subscribed.get();
  ASSERT_TRUE(sub.ok()) << sub.error().message;

  // Its first look (the store: pending), then what arrived meanwhile, in order.
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(seen.size(), 4u);
    EXPECT_EQ(seen[0].kind, JobEvent::Kind::kState);
    EXPECT_EQ(seen[0].job.state, JobState::kPending);
    EXPECT_EQ(seen[1].job.state, JobState::kLoading);
    EXPECT_EQ(seen[2].job.state, JobState::kProcessing);
    EXPECT_EQ(seen[3].kind, JobEvent::Kind::kProgress);
    EXPECT_EQ(seen[3].percent, 40);
  }
  // And later events go straight through; the final one ends the stream.
  live.Deliver(StateEvent(job, JobState::kCompleted));
  live.Deliver(progress);  // after the end: nobody hears it
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[4].job.state, JobState::kCompleted);
}

TEST(LiveEventsTest, AnUnknownJobIsNotFoundAndLeavesNoSubscriber) {
  test::ScopedTempDir dir("steno-live-events");
  auto stores = store::OpenDataDir(dir.path);
  ASSERT_TRUE(stores.ok()) << stores.error().message;
  LiveEvents live(*stores->jobs);
  auto sub = live.Subscribe("job_missing", [](const JobEvent&) { return true; });
  ASSERT_FALSE(sub.ok());
  EXPECT_EQ(sub.error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(live.QuietStreams(0).empty());
}

}  // namespace
}  // namespace steno::server
