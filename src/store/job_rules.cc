#include "store/job_rules.h"

#include <nlohmann/json.hpp>

#include "core/log.h"
#include "store/blob_store.h"
#include "store/job_id.h"

namespace steno::store {

Error BadJob(const std::string& message) {
  return Error(ErrorKind::kBadInput, kErrBadJob, message);
}

Status ValidateNewJob(const NewJob& job) {
  if (job.model.empty()) return BadJob("a job needs a model");
  if (job.model.size() > 1024) return BadJob("model name longer than 1024 bytes");
  if (!job.blob_digest.empty() && !IsValidDigest(job.blob_digest)) {
    return BadJob("blob digest is not a SHA-256 hex digest: " + job.blob_digest);
  }
  if (job.idempotency_key.size() > 255) return BadJob("idempotency key longer than 255 bytes");
  return {};
}

Job NewPendingJob(const NewJob& job, int64_t now) {
  Job out;
  out.id = NewJobId(now);
  out.priority = job.priority;
  out.model = job.model;
  out.params = job.params;
  out.blob_digest = job.blob_digest;
  out.created_ms = out.updated_ms = now;
  out.idempotency_key = job.idempotency_key;
  return out;
}

Status ValidateClaim(const ClaimRequest& request) {
  if (request.owner.empty()) return BadJob("a claim needs an owner");
  if (request.lease_ms <= 0) return BadJob("a lease must last longer than 0 ms");
  return {};
}

Status ValidateHeartbeat(const std::string& owner, int64_t lease_ms) {
  if (owner.empty() || lease_ms <= 0) return BadJob("a heartbeat needs an owner and a lease");
  return {};
}

Status ValidateResult(const std::string& id, const std::string& result_json) {
  if (!nlohmann::json::accept(result_json)) {
    return Error(ErrorKind::kBadInput, "bad_result", "the result of job " + id + " is not JSON");
  }
  return {};
}

Result<std::optional<PageKey>> ListStart(const JobFilter& filter) {
  if (filter.limit < 1 || filter.limit > 1000) {
    return Error(ErrorKind::kBadInput, "bad_limit", "a page holds 1 to 1000 jobs");
  }
  if (filter.page_token.empty()) return std::optional<PageKey>();
  auto after = ParsePageToken(filter.page_token, filter.order);
  if (!after) return BadPageToken();
  return after;
}

Status ValidateFootprint(const ModelFootprint& fp) {
  if (fp.model.empty() || fp.device_name.empty() || fp.weights_bytes < 0 || fp.stream_bytes < 0) {
    return Error(ErrorKind::kBadInput, "bad_footprint",
                 "a footprint needs a model, a device name and sizes of at least 0");
  }
  return {};
}

Status ValidateRetentionLimit(int limit) {
  if (limit < 1) return Error(ErrorKind::kBadInput, "bad_limit", "limit must be at least 1");
  return {};
}

Error JobNotFound(const std::string& id) {
  return Error(ErrorKind::kNotFound, kErrJobNotFound, "no job " + id);
}

Result<Job> FoundJob(std::optional<Job> job, const std::string& id) {
  if (!job) return JobNotFound(id);
  return std::move(*job);
}

Error NoResult(const std::string& id, const std::string& state) {
  return Error(ErrorKind::kNotFound, kErrResultNotFound,
               "job " + id + " has no result (it is " + state + ")");
}

bool PageIsFull(JobPage& page, const JobFilter& filter) {
  if (static_cast<int>(page.jobs.size()) < filter.limit) return false;
  page.next_page_token = PageToken(page.jobs.back(), filter.order);
  return true;
}

Result<Job> HeldJob(std::optional<Job> job, const std::string& id, const std::string& owner,
                    const char* action) {
  if (!job) return JobNotFound(id);
  const Job& j = *job;
  if (IsFinal(j.state)) {
    return Error(ErrorKind::kConflict, kErrJobFinished,
                 "cannot " + std::string(action) + " job " + id + ": it is already " +
                     JobStateName(j.state));
  }
  if (!IsActive(j.state) || j.lease_owner != owner) {
    return Error(ErrorKind::kConflict, kErrLeaseNotHeld,
                 "cannot " + std::string(action) + " job " + id + ": " + owner +
                     " does not hold it (state " + JobStateName(j.state) + ", holder '" +
                     j.lease_owner + "')");
  }
  return std::move(*job);
}

void NoteRefusedCompletion(const std::string& id, const std::string& owner, const Error& error) {
  if (error.code == kErrJobFinished || error.code == kErrLeaseNotHeld) {
    spdlog::warn("refused completion of job {} by {}: {}", id, owner, error.message);
  }
}

Error LeaseExpired(const Job& job) {
  return Error(ErrorKind::kTimeout, "lease_expired",
               "the lease of " + job.lease_owner + " on attempt " + std::to_string(job.attempt) +
                   " expired");
}

void NoteRequeuedExpired(const std::vector<Job>& expired) {
  for (const auto& job : expired) {
    spdlog::warn("lease of {} on job {} expired; queued again", job.lease_owner, job.id);
  }
}

Result<Job> CancellableJob(std::optional<Job> job, const std::string& id) {
  if (!job) return JobNotFound(id);
  if (job->state != JobState::kCancelled && IsFinal(job->state)) {
    return Error(ErrorKind::kConflict, kErrJobFinished,
                 "cannot cancel job " + id + ": it is already " + JobStateName(job->state));
  }
  return std::move(*job);
}

Error CancelledByUser() {
  return Error(ErrorKind::kCancelled, "cancelled", "cancelled by a user");
}

void MarkCancelled(Job& job, const Error& reason, int64_t now) {
  job.state = JobState::kCancelled;
  job.finished_ms = job.updated_ms = now;
  job.lease_owner.clear();
  job.lease_expires_ms = 0;
  job.error = reason;
}

}  // namespace steno::store
