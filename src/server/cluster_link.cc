#include "server/cluster_link.h"

#include <chrono>

#include "core/log.h"
#include "store/pg_connection.h"

namespace steno::server {
namespace {

using Clock = std::chrono::steady_clock;

// NOTIFY payloads must stay under 8000 bytes.
constexpr size_t kMaxPayload = 7900;

Status ListenTo(store::pg::Connection& conn) {
  return conn.Exec(std::string("LISTEN ") + ClusterLink::kJobsChannel + "; LISTEN " +
                   ClusterLink::kEventsChannel);
}

}  // namespace

ClusterLink::ClusterLink(std::string node, int64_t publish_ms, int64_t poll_ms,
                         store::PgJobStore& store, ClusterHooks hooks)
    : node_(std::move(node)),
      publish_ms_(publish_ms),
      poll_ms_(poll_ms),
      store_(store),
      hooks_(std::move(hooks)) {}

Result<std::unique_ptr<ClusterLink>> ClusterLink::Start(const std::string& url,
                                                        const std::string& node, int64_t publish_ms,
                                                        int64_t poll_ms, store::PgJobStore& store,
                                                        ClusterHooks hooks) {
  // Listening starts now: a store that cannot be listened to fails the start.
  auto opened = store::pg::Connection::Open(url, 10);
  if (!opened.ok()) return opened.error();
  if (auto st = ListenTo(**opened); !st) return st.error();
  std::unique_ptr<ClusterLink> link(
      new ClusterLink(node, publish_ms, poll_ms, store, std::move(hooks)));
  link->Publish();
  ClusterLink* raw = link.get();
  link->listener_ = std::thread([raw, url, conn = std::move(opened).value()]() mutable {
    raw->ListenLoop(url, std::move(conn));
  });
  link->claimer_ = std::thread([raw] { raw->ClaimLoop(); });
  return link;
}

ClusterLink::~ClusterLink() {
  Stop();
}

void ClusterLink::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = stop_ = true;
  }
  cv_.notify_all();
  if (claimer_.joinable()) claimer_.join();
  if (listener_.joinable()) listener_.join();
  if (auto st = store_.RemoveNode(node_); !st) {
    spdlog::warn("could not remove node {} from the nodes table: {}", node_, st.error().message);
  }
}

void ClusterLink::WakeClaims() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

void ClusterLink::AnnounceJobs() {
  if (auto st = store_.Notify(kJobsChannel, node_); !st) {
    spdlog::warn("could not announce claimable jobs: {}", st.error().message);
  }
  WakeClaims();
}

void ClusterLink::SendEvent(nlohmann::json event) {
  event["node"] = node_;
  std::string payload = event.dump();
  if (payload.size() > kMaxPayload) {
    event.erase("segment");
    payload = event.dump();
  }
  if (payload.size() > kMaxPayload) return;
  if (auto st = store_.Notify(kEventsChannel, payload); !st) {
    spdlog::debug("could not send the event of job {}: {}", event.value("id", ""),
                  st.error().message);
  }
}

void ClusterLink::Publish() {
  store::NodeInfo info;
  if (hooks_.describe) info = hooks_.describe();
  info.id = node_;
  if (auto st = store_.PublishNode(info); !st) {
    spdlog::warn("could not publish node {}: {}", node_, st.error().message);
    return;
  }
  if (auto gone = store_.RemoveNodesSilentFor(kForgetSilentNodesMs); gone.ok() && *gone > 0) {
    spdlog::info("removed {} nodes silent for over {} min from the nodes table", *gone,
                 kForgetSilentNodesMs / 60'000);
  }
}

void ClusterLink::ClaimLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::milliseconds(poll_ms_), [&] { return stop_ || wake_; });
    if (stop_) break;
    wake_ = false;
    lock.unlock();
    if (hooks_.claim) hooks_.claim();
    lock.lock();
  }
}

void ClusterLink::ListenLoop(std::string url, std::unique_ptr<store::pg::Connection> conn) {
  auto next_publish = Clock::now() + std::chrono::milliseconds(publish_ms_);
  auto next_tick = Clock::now() + std::chrono::seconds(1);
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
    }
    if (!conn) {
      auto opened = store::pg::Connection::Open(url, 10);
      if (opened.ok() && ListenTo(**opened)) {
        conn = std::move(opened).value();
        WakeClaims();  // jobs announced while we were not listening
      }
    }
    if (conn) {
      auto notes = conn->WaitForNotifications(200);
      if (!notes.ok()) {
        spdlog::warn("{}; listening again", notes.error().message);
        conn.reset();
      } else {
        bool claimable = false;
        for (const auto& n : *notes) {
          if (n.channel == kJobsChannel) {
            claimable = true;
          } else if (n.channel == kEventsChannel && hooks_.on_event) {
            auto event = nlohmann::json::parse(n.payload, nullptr, false);
            if (event.is_object() && event.value("node", "") != node_) hooks_.on_event(event);
          }
        }
        if (claimable) WakeClaims();
      }
    } else {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; });
    }
    const auto now = Clock::now();
    if (now >= next_tick) {
      next_tick = now + std::chrono::seconds(1);
      if (hooks_.tick) hooks_.tick();
    }
    if (now >= next_publish) {
      next_publish = now + std::chrono::milliseconds(publish_ms_);
      Publish();
    }
  }
}

}  // namespace steno::server
