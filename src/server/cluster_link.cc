#include "server/cluster_link.h"

#include <chrono>

#include "core/log.h"

namespace steno::server {
namespace {

using Clock = std::chrono::steady_clock;

// NOTIFY payloads must stay under 8000 bytes.
constexpr size_t kMaxPayload = 7900;

}  // namespace

ClusterLink::ClusterLink(std::string node, int64_t publish_ms, int64_t poll_ms,
                         store::ClusterStore& store)
    : node_(std::move(node)), publish_ms_(publish_ms), poll_ms_(poll_ms), store_(store) {}

Status ClusterLink::Start(ClusterHooks hooks) {
  // Listening starts now: a store that cannot be listened to fails the start.
  auto listener = store_.Listen({kJobsChannel, kEventsChannel});
  if (!listener.ok()) return listener.error();
  hooks_ = std::move(hooks);
  {
    MutexLock lock(mu_);
    started_ = true;
  }
  Publish();
  listener_ =
      std::thread([this, l = std::move(listener).value()]() mutable { ListenLoop(std::move(l)); });
  claimer_ = std::thread([this] { ClaimLoop(); });
  return {};
}

ClusterLink::~ClusterLink() {
  Stop();
}

void ClusterLink::Stop() {
  bool started;
  {
    MutexLock lock(mu_);
    if (stopped_) return;
    stopped_ = stop_ = true;
    started = started_;
  }
  cv_.SignalAll();
  if (claimer_.joinable()) claimer_.join();
  if (listener_.joinable()) listener_.join();
  if (!started) return;
  if (auto st = store_.RemoveNode(node_); !st) {
    spdlog::warn("could not remove node {} from the nodes table: {}", node_, st.error().message);
  }
}

bool ClusterLink::stopping() {
  MutexLock lock(mu_);
  return stop_;
}

void ClusterLink::WakeClaims() {
  {
    MutexLock lock(mu_);
    wake_ = true;
  }
  cv_.SignalAll();
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
  while (true) {
    {
      MutexLock lock(mu_);
      const auto until = Clock::now() + std::chrono::milliseconds(poll_ms_);
      while (!stop_ && !wake_ && cv_.WaitUntil(mu_, until)) {
      }
      if (stop_) break;
      wake_ = false;
    }
    if (hooks_.claim) hooks_.claim();  // no lock held: it reads the store
  }
}

void ClusterLink::ListenLoop(std::unique_ptr<store::NotificationListener> listener) {
  auto next_publish = Clock::now() + std::chrono::milliseconds(publish_ms_);
  auto next_tick = Clock::now() + std::chrono::seconds(1);
  bool broken = false;
  while (!stopping()) {
    auto notes = listener->Wait(200);
    if (!notes.ok()) {
      if (!broken) spdlog::warn("{}; listening again", notes.error().message);
      broken = true;
      MutexLock lock(mu_);
      const auto until = Clock::now() + std::chrono::seconds(1);
      while (!stop_ && cv_.WaitUntil(mu_, until)) {
      }
    } else {
      bool claimable = broken;  // jobs announced while we were not listening
      broken = false;
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
