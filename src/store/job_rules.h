// The rules every JobStore applies whatever its database (job_store.h): what a valid request
// is, which job a lease transition may touch, and the errors and texts both stores return for
// them. Each store keeps only its SQL and driver code and calls these, so the SQLite and the
// PostgreSQL store answer the same request with the same code and message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/job.h"
#include "core/result.h"
#include "store/job_page_token.h"
#include "store/job_store.h"

namespace steno::store {

// --- Requests ---
Error BadJob(const std::string& message);  // kBadInput kErrBadJob
// A job a client may submit: a model, a valid blob digest (or none), a short idempotency key.
Status ValidateNewJob(const NewJob& job);
// The job Insert stores for `job`: pending, attempt 1, created and updated at `now`.
Job NewPendingJob(const NewJob& job, int64_t now);
Status ValidateClaim(const ClaimRequest& request);
Status ValidateHeartbeat(const std::string& owner, int64_t lease_ms);
// kBadInput "bad_result" unless `result_json` is a JSON document.
Status ValidateResult(const std::string& id, const std::string& result_json);
// kBadInput "bad_limit" / "bad_page_token"; the key after which the page starts, if any.
Result<std::optional<PageKey>> ListStart(const JobFilter& filter);
Status ValidateFootprint(const ModelFootprint& footprint);  // kBadInput "bad_footprint"
Status ValidateRetentionLimit(int limit);                   // kBadInput "bad_limit"

// --- Reading ---
Error JobNotFound(const std::string& id);  // kNotFound kErrJobNotFound
// A job found by id, or kErrJobNotFound.
Result<Job> FoundJob(std::optional<Job> job, const std::string& id);
// kNotFound kErrResultNotFound for a job in `state` that has no result.
Error NoResult(const std::string& id, const std::string& state);
// Paging reads filter.limit + 1 rows: true when `page` is full, in which case the extra row is
// dropped and next_page_token names the page's last job.
bool PageIsFull(JobPage& page, const JobFilter& filter);

// --- Lease transitions ---
// The job `owner` may move (`action`, e.g. "complete", names the transition in the message):
// kErrJobNotFound, kErrJobFinished when it is final, kErrLeaseNotHeld when `owner` does not hold
// it. A lease that ran out but was not requeued still counts: nobody else has the job.
Result<Job> HeldJob(std::optional<Job> job, const std::string& id, const std::string& owner,
                    const char* action);
// Logs a completion refused by HeldJob (a second completion, or one by a lost lease).
void NoteRefusedCompletion(const std::string& id, const std::string& owner, const Error& error);
// Why a job whose lease ran out was requeued (kTimeout "lease_expired").
Error LeaseExpired(const Job& job);
void NoteRequeuedExpired(const std::vector<Job>& expired);

// --- Cancelling ---
// The job Cancel may move (or leave: one already cancelled): kErrJobNotFound, or
// kErrJobFinished for a completed or failed job.
Result<Job> CancellableJob(std::optional<Job> job, const std::string& id);
Error CancelledByUser();  // the error a cancelled job keeps
// `job` as Cancel returns it once stored as cancelled at `now`.
void MarkCancelled(Job& job, const Error& reason, int64_t now);

}  // namespace steno::store
